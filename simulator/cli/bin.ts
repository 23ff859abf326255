#!/usr/bin/env -S npx tsx
// pollkit-sim: the hardware simulator. `device` runs one simulated device on a pseudo-terminal;
// `demo` runs a small station end to end (the README's first command).

import { Command } from "commander";
import { runDevice } from "./device_runner.ts";
import { runDemo } from "./demo.ts";

const program = new Command();
program.name("pollkit-sim").description("pollkit hardware simulator: devices on real pseudo-terminals");

program
  .command("device")
  .description("start one simulated device and print the serial port path a host can open")
  .option("--serial <id>", "device serial number", "VVD-000001")
  .option("--role <role>", "verification | result", "verification")
  .option("--link <path>", "stable symlink for the host end (kept across unplug/replug)")
  .option("--state <dir>", "keep flash and secure-element state in this directory")
  .option("--health-interval <ms>", "health report interval", "60000")
  .action(async (opts: { serial: string; role: string; link?: string; state?: string; healthInterval: string }) => {
    if (opts.role !== "verification" && opts.role !== "result") {
      console.error(`pollkit-sim: --role must be verification or result, not "${opts.role}"`);
      process.exit(2);
    }
    const dev = await runDevice({
      serial: opts.serial,
      role: opts.role,
      link: opts.link,
      stateDir: opts.state,
      healthIntervalMs: Number(opts.healthInterval),
      onLog: (l) => console.log(`[${opts.serial}] ${l}`),
    });
    console.log(`${opts.serial} is on ${dev.hostPath}`);
    console.log(`open it with: picocom -b 115200 ${dev.hostPath}   (Ctrl-C here stops the device)`);
    const stop = async (): Promise<void> => {
      await dev.stop();
      process.exit(0);
    };
    process.on("SIGINT", () => void stop());
    process.on("SIGTERM", () => void stop());
  });

program
  .command("demo")
  .description("simulated devices on pseudo-terminals, a host session on each, what flows between them")
  .option("--devices <n>", "number of devices", "2")
  .option("--seconds <n>", "stop after this many seconds (default: until Ctrl-C)")
  .action(async (opts: { devices: string; seconds?: string }) => {
    await runDemo({ devices: Number(opts.devices), seconds: opts.seconds ? Number(opts.seconds) : undefined });
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`pollkit-sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
