// The `pollkit dfu` command's engine: one download into a device in DFU mode, a failure thrown as
// a DfuError whose message a technician can act on. Argument parsing, device choice and the
// progress bar belong to the CLI that calls this.

import { downloadFirmware, type DfuFailure, type DfuUsbDevice } from "./dfu.ts";

export type { DfuUsbDevice } from "./dfu.ts";

export class DfuError extends Error {
  constructor(readonly failure: DfuFailure) {
    super(failure.message);
    this.name = "DfuError";
  }
}

export async function runDfu(options: {
  device: DfuUsbDevice;
  image: Uint8Array;
  transferSize?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}): Promise<{ blocks: number; ms: number }> {
  const result = await downloadFirmware(options.device, {
    image: options.image,
    transferSize: options.transferSize,
    onProgress: options.onProgress,
    signal: options.signal,
  });
  if (!result.ok) throw new DfuError(result.error);
  return { blocks: result.value.blocks, ms: Math.round(result.value.ms) };
}
