// `pollkit dfu --image <file> [--transfer-size N] [--device <serial>]`: writes a firmware image to
// a device in its USB DFU bootloader, with a progress bar. The download is host/dfu/dfu_cli.ts
// (runDfu); finding the device is host/transport/usb/usb_transport.ts. Both are imported on
// demand: a machine without USB access (or a build without them) gets "not available" (exit 6)
// and the rest of the CLI is unaffected.

import { readFileSync } from "node:fs";
import cliProgress from "cli-progress";
import type { UsbHotplugBus } from "../../transport/usb/usb_bus.ts";
import type { DfuDeviceEntry } from "../../transport/usb/usb_transport.ts";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export interface DfuOptions {
  image: string;
  transferSize?: number;
  /** USB serial number (or "vvvv:pppp serial" label) of the device to update. */
  device?: string;
}

export interface DfuDeps {
  /** A `usb`-like bus instead of the real package (tests: the simulator's SimUsb). */
  usb?: UsbHotplugBus;
  /** Cancels the update (default: Ctrl-C). */
  signal?: AbortSignal;
}

function notAvailable(reason: string): CliError {
  return new CliError(EXIT.notAvailable, t("dfu.notAvailable", { reason }), t("dfu.notAvailableHint"));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function dfuCommand(ctx: CliContext, o: DfuOptions, deps: DfuDeps = {}): Promise<ExitCode> {
  let dfu: typeof import("../../dfu/dfu_cli.ts");
  let usb: typeof import("../../transport/usb/usb_transport.ts");
  try {
    dfu = await import("../../dfu/dfu_cli.ts");
    usb = await import("../../transport/usb/usb_transport.ts");
  } catch (e) {
    throw notAvailable(t("dfu.reasonLoad", { module: "host/dfu, host/transport/usb", detail: message(e) }));
  }

  let image: Uint8Array;
  try {
    image = new Uint8Array(readFileSync(o.image));
  } catch (e) {
    throw new CliError(EXIT.error, t("dfu.cannotReadImage", { file: o.image, detail: message(e) }), t("dfu.cannotReadImageHint"));
  }

  const transport = new usb.UsbTransport({ usb: deps.usb });
  try {
    const state = await transport.start();
    if (!state.available) throw notAvailable(state.reason ?? "no USB access");
    const target = chooseDevice(transport.dfuDevices(), o.device);

    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    const signal = deps.signal ?? stop.signal;
    if (deps.signal === undefined) process.once("SIGINT", onSignal);
    const bar = ctx.json ? null : new cliProgress.SingleBar({ format: t("dfu.progress"), hideCursor: true }, cliProgress.Presets.shades_classic);
    let started = false;
    try {
      const r = await dfu.runDfu({
        device: target.device,
        image,
        transferSize: o.transferSize,
        signal,
        onProgress: (done, total) => {
          if (bar === null) return;
          if (!started) bar.start(total, 0);
          started = true;
          bar.update(done);
        },
      });
      bar?.stop();
      if (ctx.json) ctx.printJson({ device: target.label, ...r });
      else ctx.print(t("dfu.done", { blocks: r.blocks, seconds: (r.ms / 1000).toFixed(1) }));
      return EXIT.ok;
    } catch (e) {
      bar?.stop();
      if (!(e instanceof dfu.DfuError)) throw e;
      switch (e.failure.kind) {
        case "aborted":
          throw new CliError(EXIT.error, t("dfu.cancelled"), t("dfu.cancelledHint"));
        case "disconnected":
          throw new CliError(EXIT.noAnswer, t("dfu.failed", { detail: e.message }), t("dfu.failedHint"));
        case "device-status":
        case "stalled":
        case "protocol":
        case "not-dfu-mode":
          throw new CliError(EXIT.deviceFailure, t("dfu.failed", { detail: e.message }), t("dfu.failedHint"));
        case "setup":
          throw new CliError(EXIT.error, t("dfu.failed", { detail: e.message }), t("dfu.failedHint"));
      }
    } finally {
      process.off("SIGINT", onSignal);
    }
  } finally {
    await transport.close();
  }
}

function chooseDevice(all: DfuDeviceEntry[], wanted: string | undefined): DfuDeviceEntry {
  const candidates = wanted === undefined ? all : all.filter((d) => d.serialNumber === wanted || d.label === wanted);
  if (candidates.length === 0) {
    if (wanted !== undefined && all.length > 0) {
      const list = all.map((d) => d.label).join(", ");
      throw new CliError(EXIT.unknownDevice, t("dfu.notFound", { device: wanted, devices: list }), t("dfu.severalDevicesHint"));
    }
    throw new CliError(EXIT.unknownDevice, t("dfu.noDevice"), t("dfu.noDeviceHint"));
  }
  if (candidates.length > 1) {
    const list = candidates.map((d) => d.label).join(", ");
    throw new CliError(EXIT.usage, t("dfu.severalDevices", { n: candidates.length, devices: list }), t("dfu.severalDevicesHint"));
  }
  return candidates[0];
}
