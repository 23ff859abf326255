#!/usr/bin/env -S npx tsx
// pollkit: the technician CLI. Talks to the host agent's local control API (devices, status,
// diagnostics, logs, clocks), runs the agent itself (`pollkit agent`), and decodes frames offline.
// Exit codes: see EXIT in messages.ts (also printed by `pollkit --help`).

import { main } from "./program.ts";

// A reader that went away (`pollkit logs -f | head`) is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

process.exit(await main(process.argv.slice(2)));
