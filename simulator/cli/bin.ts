#!/usr/bin/env -S npx tsx
// pollkit-sim: the hardware simulator. `device` runs one simulated device on a pseudo-terminal;
// `demo` runs a small station end to end (the README's first command).

import { Command } from "commander";
import { runDevice } from "./device_runner.ts";
import { DEFAULT_SPEED, runDemo } from "./demo.ts";

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
  .description(
    "an election day played on simulated devices: the embedded broker, the operations console, a host agent per site and, per polling station, a verification and a result device on pseudo-terminals",
  )
  .option("--stations <n>", "polling stations, each with a verification device and a result device, over two sites", "2")
  .option("--devices <n>", "number of devices (two per station; rounded up): the same as --stations n/2")
  .option("--voters <n>", "voters on each station's register", "4")
  .option("--speed <x>", "simulated seconds per real second: battery physics and the pacing of the story", String(DEFAULT_SPEED))
  .option("--port <port>", "the dashboard's port (0: any free port)", "8080")
  .option("--seconds <n>", "stop after this many seconds (default: until Ctrl-C)")
  .option("--verbose", "also print every device's console lines")
  .action(async (opts: { stations: string; devices?: string; voters: string; speed: string; port: string; seconds?: string; verbose?: boolean }) => {
    const stations = opts.devices !== undefined ? Math.ceil(Number(opts.devices) / 2) : Number(opts.stations);
    await runDemo({
      stations,
      voters: Number(opts.voters),
      speed: Number(opts.speed),
      port: Number(opts.port),
      seconds: opts.seconds !== undefined ? Number(opts.seconds) : undefined,
      verbose: opts.verbose === true,
    });
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`pollkit-sim: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
