// Worker entry of bench/fleet_console.ts: registers tsx's loader in this thread, then runs the
// TypeScript module (a worker does not inherit the loader of the thread that starts it).
import { register } from "tsx/esm/api";

register();
await import("./fleet_console.ts");
