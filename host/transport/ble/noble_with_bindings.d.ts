// noble's entry point that takes its bindings as an argument ships without typings. Without an
// exports map in its package.json, ESM needs the ".js" in the specifier. What it returns is a
// Noble instance; callers narrow it to the part they use (noble_like.ts).
declare module "@abandonware/noble/with-bindings.js" {
  import type { EventEmitter } from "node:events";

  const withBindings: (bindings: EventEmitter) => unknown;
  export default withBindings;
}
