// USB DFU 1.1 download, host side: an explicit state machine that drives a device in its DFU
// bootloader through DFU_GETSTATUS / CLRSTATUS / ABORT to dfuIDLE, sends the image in
// wTransferSize blocks (waiting each bwPollTimeout the device asks for), ends with a zero-length
// DFU_DNLOAD and follows manifestation. Expected failures (a device error status, a stall, an
// unplugged cable, a cancel) come back as values; only bugs throw.

import {
  DfuRequest,
  DfuState,
  DfuStatus,
  MAX_POLL_TIMEOUT_MS,
  STATUS_REPLY_LENGTH,
  USB_DESCRIPTOR_CONFIGURATION,
  USB_REQUEST_GET_DESCRIPTOR,
  DFU_PROTOCOL_DFU_MODE,
  DFU_PROTOCOL_RUNTIME,
  describeDfuStatus,
  dfuRequestName,
  dfuStateName,
  dfuStatusName,
  findDfuInterfaces,
  parseStatusReply,
  type DfuInterfaceInfo,
  type DfuStatusReply,
} from "./dfu_protocol.ts";
import type { DfuUsbDevice, UsbControlSetup, UsbInResult } from "./dfu_usb_device.ts";

export type { DfuUsbDevice } from "./dfu_usb_device.ts";

export interface DfuDownloadOptions {
  image: Uint8Array;
  /** Used when the device has no DFU functional descriptor to read wTransferSize from. */
  transferSize?: number;
  /** The DFU interface; by default the DFU-mode interface of the configuration descriptor, else 0. */
  interfaceNumber?: number;
  /** Selected with SET_INTERFACE when given (devices that expose several memories as alt settings). */
  alternateSetting?: number;
  /** Used when the device has no functional descriptor: bitManifestationTolerant. */
  manifestationTolerant?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Cancels the download: the device is brought back to dfuIDLE with DFU_ABORT. Ignored once manifestation started. */
  signal?: AbortSignal;
  /** Longest single bwPollTimeout accepted (a device asking for more is taken as broken). */
  maxPollMs?: number;
  /** Most DFU_GETSTATUS polls for one block or for manifestation. */
  maxPolls?: number;
}

export type DfuFailureKind =
  /** The device reported an error status (errWRITE, errVERIFY, ...). */
  | "device-status"
  /** The device stalled a request. */
  | "stalled"
  /** The device stopped answering: unplugged, reset, or powered off. */
  | "disconnected"
  /** The signal fired. */
  | "aborted"
  /** The device runs its application (appIDLE) or waits for a reset, not in its bootloader. */
  | "not-dfu-mode"
  /** The device answered outside the protocol (short replies, impossible states, endless busy). */
  | "protocol"
  /** Nothing was sent: the device could not be opened, or the image or options are unusable. */
  | "setup";

export interface DfuFailure {
  kind: DfuFailureKind;
  message: string;
  /** The block being written (0-based), when the failure happened during the download. */
  block: number | null;
  /** The device's bStatus name when it told one ("errWRITE"). */
  status: string | null;
  /** The device's last reported state ("dfuERROR"). */
  state: string | null;
}

/** How the download ended: back in dfuIDLE (manifestation tolerant) or the device reset itself. */
export type ManifestOutcome = "idle" | "device-reset";

export interface DfuDownloadReport {
  /** DFU_DNLOAD requests that carried data. */
  blocks: number;
  bytes: number;
  transferSize: number;
  manifest: ManifestOutcome;
  /** Total of the bwPollTimeout waits honoured. */
  pollWaitMs: number;
  ms: number;
}

export type DfuResult = { ok: true; value: DfuDownloadReport } | { ok: false; error: DfuFailure };

/** What to tell a technician after any failure that left the device half-written. */
export const RETRY_ADVICE = "run `pollkit dfu` again to retry from the start";

/** GETSTATUS / CLRSTATUS / ABORT rounds allowed to bring the device to dfuIDLE. */
const MAX_IDLE_ROUNDS = 6;
const DEFAULT_MAX_POLL_MS = 60_000;
const DEFAULT_MAX_POLLS = 1000;
/** Bytes asked for when reading the configuration descriptor (wTotalLength is read first). */
const CONFIG_HEADER_LENGTH = 9;

/** The states of the download. `done` and `failed` are final. */
type Phase =
  /** open the device, read the configuration descriptor, claim the DFU interface */
  | { at: "open" }
  /** DFU_GETSTATUS until the device is in dfuIDLE (after waitMs) */
  | { at: "sync"; round: number; waitMs: number }
  /** DFU_CLRSTATUS: leave dfuERROR */
  | { at: "clear"; round: number }
  /** DFU_ABORT: leave dfuDNLOAD-IDLE or dfuUPLOAD-IDLE */
  | { at: "abort"; round: number }
  /** DFU_DNLOAD of one block */
  | { at: "download"; block: number }
  /** DFU_GETSTATUS after waitMs, until the block is written (dfuDNLOAD-IDLE) */
  | { at: "poll"; block: number; polls: number; waitMs: number }
  /** the zero-length DFU_DNLOAD that ends the transfer */
  | { at: "finish" }
  /** DFU_GETSTATUS through dfuMANIFEST-SYNC / dfuMANIFEST */
  | { at: "manifest"; polls: number; waitMs: number }
  /** a USB reset for a device waiting in dfuMANIFEST-WAIT-RESET */
  | { at: "reset" }
  /** cancelled: bring the device back to dfuIDLE, then fail as aborted */
  | { at: "cancel"; block: number; round: number; waitMs: number }
  | { at: "done"; manifest: ManifestOutcome }
  | { at: "failed"; failure: DfuFailure };

type ActivePhase = Exclude<Phase, { at: "done" } | { at: "failed" }>;

/** The outcome of one control transfer: data, a stall, or no answer at all (a rejected transfer). */
type Transfer<T> = { kind: "ok"; value: T } | { kind: "stall" } | { kind: "gone"; reason: string } | { kind: "garbled"; reason: string };

/** Downloads `image` into a device in DFU mode. Opens and closes the device if it was not open. */
export async function downloadFirmware(device: DfuUsbDevice, options: DfuDownloadOptions): Promise<DfuResult> {
  return new DfuDownload(device, options).run();
}

class DfuDownload {
  private phase: Phase = { at: "open" };
  private iface = 0;
  private transferSize = 0;
  private tolerant = false;
  private blockCount = 0;
  private blocksSent = 0;
  private bytesDone = 0;
  private pollWaitMs = 0;
  private lastState: number | null = null;
  private openedHere = false;
  private claimed = false;
  private readonly started = performance.now();
  private readonly maxPollMs: number;
  private readonly maxPolls: number;

  constructor(
    private readonly device: DfuUsbDevice,
    private readonly options: DfuDownloadOptions,
  ) {
    this.maxPollMs = options.maxPollMs ?? DEFAULT_MAX_POLL_MS;
    this.maxPolls = options.maxPolls ?? DEFAULT_MAX_POLLS;
  }

  async run(): Promise<DfuResult> {
    try {
      for (;;) {
        const p = this.phase;
        if (p.at === "done") {
          return {
            ok: true,
            value: {
              blocks: this.blocksSent,
              bytes: this.bytesDone,
              transferSize: this.transferSize,
              manifest: p.manifest,
              pollWaitMs: this.pollWaitMs,
              ms: performance.now() - this.started,
            },
          };
        }
        if (p.at === "failed") return { ok: false, error: p.failure };
        this.phase = await this.step(p);
      }
    } finally {
      await this.release();
    }
  }

  private step(p: ActivePhase): Promise<Phase> {
    switch (p.at) {
      case "open":
        return this.open();
      case "sync":
        return this.sync(p.round, p.waitMs);
      case "clear":
        return this.clear(p.round);
      case "abort":
        return this.abortToIdle(p.round);
      case "download":
        return this.download(p.block);
      case "poll":
        return this.poll(p.block, p.polls, p.waitMs);
      case "finish":
        return this.finish();
      case "manifest":
        return this.manifest(p.polls, p.waitMs);
      case "reset":
        return this.reset();
      case "cancel":
        return this.cancel(p.block, p.round, p.waitMs);
      default:
        return unreachable(p);
    }
  }

  // --- phases -----------------------------------------------------------------------------

  private async open(): Promise<Phase> {
    const { image } = this.options;
    if (image.length === 0) return this.fail("setup", "the firmware image is empty; nothing to download");
    try {
      if (!this.device.opened) {
        await this.device.open();
        this.openedHere = true;
      }
    } catch (e) {
      return this.fail("setup", `cannot open the USB device: ${errorText(e)}`);
    }
    const dfu = await this.readDfuInterface();
    if (dfu !== null && dfu.protocol === DFU_PROTOCOL_RUNTIME) {
      return this.fail(
        "not-dfu-mode",
        "the device is running its application (DFU run-time interface only), not its DFU bootloader; put it into DFU mode and run `pollkit dfu` again",
      );
    }
    this.iface = this.options.interfaceNumber ?? dfu?.interfaceNumber ?? 0;
    const functional = dfu?.functional ?? null;
    if (functional !== null && !functional.canDownload) {
      return this.fail("setup", "the device's DFU functional descriptor says it cannot download (bitCanDnload = 0)");
    }
    const transferSize = functional?.transferSize || this.options.transferSize || 0;
    if (!Number.isInteger(transferSize) || transferSize <= 0 || transferSize > 0xffff) {
      return this.fail(
        "setup",
        functional === null
          ? "the device has no DFU functional descriptor to read wTransferSize from; give a transfer size"
          : `unusable transfer size ${transferSize}`,
      );
    }
    this.transferSize = transferSize;
    this.tolerant = functional?.manifestationTolerant ?? this.options.manifestationTolerant ?? false;
    this.blockCount = Math.ceil(image.length / transferSize);
    try {
      await this.device.claimInterface(this.iface);
      this.claimed = true;
      if (this.options.alternateSetting !== undefined) {
        await this.device.selectAlternateInterface(this.iface, this.options.alternateSetting);
      }
    } catch (e) {
      return this.fail("setup", `cannot claim DFU interface ${this.iface}: ${errorText(e)}`);
    }
    return { at: "sync", round: 0, waitMs: 0 };
  }

  /** GETSTATUS until dfuIDLE: clear dfuERROR, abort a pending transfer, wait out busy states. */
  private async sync(round: number, waitMs: number): Promise<Phase> {
    if (this.options.signal?.aborted) return this.aborted(0, "before the download started");
    if (round >= MAX_IDLE_ROUNDS) {
      return this.fail("protocol", `the device did not reach dfuIDLE (last state ${this.stateText()}); unplug it, replug it and ${RETRY_ADVICE}`);
    }
    await sleepUntil(performance.now() + waitMs);
    const t = await this.getStatus();
    if (t.kind === "stall") return { at: "sync", round: round + 1, waitMs: 0 }; // now in dfuERROR: the next GETSTATUS says so
    if (t.kind !== "ok") return this.transferFailed(t, "DFU_GETSTATUS", null);
    const reply = t.value;
    switch (reply.state) {
      case DfuState.dfuIDLE:
        this.options.onProgress?.(0, this.options.image.length);
        return { at: "download", block: 0 };
      case DfuState.dfuERROR:
        return { at: "clear", round };
      case DfuState.dfuDNLOAD_IDLE:
      case DfuState.dfuUPLOAD_IDLE:
        return { at: "abort", round };
      case DfuState.dfuDNLOAD_SYNC:
      case DfuState.dfuDNBUSY:
      case DfuState.dfuMANIFEST_SYNC:
      case DfuState.dfuMANIFEST: {
        const wait = this.checkedPoll(reply.pollTimeoutMs);
        if (wait < 0) return this.pollTooLong(reply, null);
        return { at: "sync", round: round + 1, waitMs: wait };
      }
      case DfuState.appIDLE:
      case DfuState.appDETACH:
        return this.fail(
          "not-dfu-mode",
          `the device is in ${dfuStateName(reply.state)}: it runs its application, not its DFU bootloader; put it into DFU mode and run \`pollkit dfu\` again`,
        );
      case DfuState.dfuMANIFEST_WAIT_RESET:
        return this.fail("not-dfu-mode", "the device waits for a USB reset after an earlier download; unplug it, replug it and run `pollkit dfu` again");
      default:
        return this.fail("protocol", `the device reported an unknown state ${reply.state}`);
    }
  }

  private async clear(round: number): Promise<Phase> {
    const t = await this.out(DfuRequest.CLRSTATUS, 0, EMPTY);
    if (t.kind === "ok" || t.kind === "stall") return { at: "sync", round: round + 1, waitMs: 0 };
    return this.transferFailed(t, "DFU_CLRSTATUS", null);
  }

  private async abortToIdle(round: number): Promise<Phase> {
    const t = await this.out(DfuRequest.ABORT, 0, EMPTY);
    if (t.kind === "ok" || t.kind === "stall") return { at: "sync", round: round + 1, waitMs: 0 };
    return this.transferFailed(t, "DFU_ABORT", null);
  }

  private async download(block: number): Promise<Phase> {
    if (this.options.signal?.aborted) return { at: "cancel", block, round: 0, waitMs: 0 };
    const { image } = this.options;
    const start = block * this.transferSize;
    const chunk = image.subarray(start, Math.min(image.length, start + this.transferSize));
    const t = await this.out(DfuRequest.DNLOAD, block & 0xffff, chunk);
    if (t.kind !== "ok") return this.requestFailed(t, DfuRequest.DNLOAD, block);
    this.blocksSent++;
    return { at: "poll", block, polls: 0, waitMs: 0 };
  }

  /** Waits the poll timeout the device asked for, then DFU_GETSTATUS: is the block written? */
  private async poll(block: number, polls: number, waitMs: number): Promise<Phase> {
    const until = performance.now() + waitMs;
    if (!(await sleepUntil(until, this.options.signal))) {
      return { at: "cancel", block, round: 0, waitMs: Math.max(0, until - performance.now()) };
    }
    this.pollWaitMs += waitMs;
    const t = await this.getStatus();
    if (t.kind !== "ok") return this.requestFailed(t, DfuRequest.GETSTATUS, block);
    const reply = t.value;
    switch (reply.state) {
      case DfuState.dfuDNLOAD_IDLE: {
        this.bytesDone = Math.min(this.options.image.length, (block + 1) * this.transferSize);
        this.options.onProgress?.(this.bytesDone, this.options.image.length);
        return block + 1 < this.blockCount ? { at: "download", block: block + 1 } : { at: "finish" };
      }
      case DfuState.dfuDNBUSY:
      case DfuState.dfuDNLOAD_SYNC: {
        if (polls + 1 >= this.maxPolls) {
          return this.fail("protocol", `the device stayed busy with block ${block} for ${this.maxPolls} status polls; ${RETRY_ADVICE}`, block, reply);
        }
        const wait = this.checkedPoll(reply.pollTimeoutMs);
        if (wait < 0) return this.pollTooLong(reply, block);
        return { at: "poll", block, polls: polls + 1, waitMs: wait };
      }
      case DfuState.dfuERROR:
        return this.fail(
          "device-status",
          `device reported ${describeDfuStatus(reply.status)} in block ${block} of ${this.blockCount}; ${RETRY_ADVICE}`,
          block,
          reply,
        );
      default:
        return this.fail("protocol", `the device went to ${dfuStateName(reply.state)} while writing block ${block}; ${RETRY_ADVICE}`, block, reply);
    }
  }

  /** The zero-length DFU_DNLOAD: the image is complete, manifestation may begin. */
  private async finish(): Promise<Phase> {
    const t = await this.out(DfuRequest.DNLOAD, this.blockCount & 0xffff, EMPTY);
    if (t.kind === "ok") return { at: "manifest", polls: 0, waitMs: 0 };
    // A device that is not manifestation tolerant may reset itself as soon as it has the image.
    if (t.kind === "gone" && !this.tolerant) return { at: "done", manifest: "device-reset" };
    return this.requestFailed(t, DfuRequest.DNLOAD, null);
  }

  private async manifest(polls: number, waitMs: number): Promise<Phase> {
    // Not cancellable: the device is committing the image; an interrupted manifestation helps nobody.
    await sleepUntil(performance.now() + waitMs);
    this.pollWaitMs += waitMs;
    const t = await this.getStatus();
    if (t.kind !== "ok") {
      // DFU 1.1 section 7: a device with bitManifestationTolerant = 0 may answer nothing but a USB
      // reset after manifestation, or reset and leave the bus by itself. Both mean the image is in.
      if (!this.tolerant && (t.kind === "gone" || t.kind === "stall")) return { at: "reset" };
      return this.requestFailed(t, DfuRequest.GETSTATUS, null);
    }
    const reply = t.value;
    switch (reply.state) {
      case DfuState.dfuIDLE:
        return { at: "done", manifest: "idle" };
      case DfuState.dfuMANIFEST_WAIT_RESET:
        return { at: "reset" };
      case DfuState.dfuMANIFEST_SYNC:
      case DfuState.dfuMANIFEST: {
        if (polls + 1 >= this.maxPolls) {
          return this.fail("protocol", `the device stayed in manifestation for ${this.maxPolls} status polls; ${RETRY_ADVICE}`, null, reply);
        }
        const wait = this.checkedPoll(reply.pollTimeoutMs);
        if (wait < 0) return this.pollTooLong(reply, null);
        return { at: "manifest", polls: polls + 1, waitMs: wait };
      }
      case DfuState.dfuERROR:
        return this.fail("device-status", `device reported ${describeDfuStatus(reply.status)} during manifestation (after the last block); ${RETRY_ADVICE}`, null, reply);
      default:
        return this.fail("protocol", `the device went to ${dfuStateName(reply.state)} during manifestation; ${RETRY_ADVICE}`, null, reply);
    }
  }

  private async reset(): Promise<Phase> {
    try {
      await this.device.reset();
    } catch {
      // Gone already (it reset itself) or the reset made it re-enumerate: both are the expected end.
    }
    this.claimed = false;
    return { at: "done", manifest: "device-reset" };
  }

  /** After a cancel: bring the device back to dfuIDLE (wait out busy, ABORT, CLRSTATUS), then fail. */
  private async cancel(block: number, round: number, waitMs: number): Promise<Phase> {
    const where = `after ${this.bytesDone} of ${this.options.image.length} bytes (block ${block})`;
    if (round >= MAX_IDLE_ROUNDS) return this.aborted(block, `${where}; the device did not return to dfuIDLE (last state ${this.stateText()})`);
    await sleepUntil(performance.now() + waitMs);
    const t = await this.getStatus();
    if (t.kind === "stall") return { at: "cancel", block, round: round + 1, waitMs: 0 };
    if (t.kind !== "ok") return this.aborted(block, `${where}; the device stopped answering (${t.reason})`);
    const reply = t.value;
    switch (reply.state) {
      case DfuState.dfuIDLE:
        return this.aborted(block, `${where}; the device is back in dfuIDLE with an incomplete image`);
      case DfuState.dfuDNLOAD_IDLE:
      case DfuState.dfuUPLOAD_IDLE: {
        await this.out(DfuRequest.ABORT, 0, EMPTY);
        return { at: "cancel", block, round: round + 1, waitMs: 0 };
      }
      case DfuState.dfuERROR: {
        await this.out(DfuRequest.CLRSTATUS, 0, EMPTY);
        return { at: "cancel", block, round: round + 1, waitMs: 0 };
      }
      case DfuState.dfuDNBUSY:
      case DfuState.dfuDNLOAD_SYNC:
        return { at: "cancel", block, round: round + 1, waitMs: Math.min(reply.pollTimeoutMs, this.maxPollMs) };
      default:
        return this.aborted(block, `${where}; the device is in ${dfuStateName(reply.state)}`);
    }
  }

  // --- transfers ------------------------------------------------------------------------------

  private setup(request: number, value: number): UsbControlSetup {
    return { requestType: "class", recipient: "interface", request, value, index: this.iface };
  }

  private async out(request: number, value: number, data: Uint8Array): Promise<Transfer<undefined>> {
    try {
      const r = await this.device.controlTransferOut(this.setup(request, value), data);
      if (r.status !== "ok") return { kind: "stall" };
      if (r.bytesWritten !== data.length) return { kind: "garbled", reason: `${dfuRequestName(request)} wrote ${r.bytesWritten} of ${data.length} bytes` };
      return { kind: "ok", value: undefined };
    } catch (e) {
      return { kind: "gone", reason: errorText(e) };
    }
  }

  private async getStatus(): Promise<Transfer<DfuStatusReply>> {
    let r: UsbInResult;
    try {
      r = await this.device.controlTransferIn(this.setup(DfuRequest.GETSTATUS, 0), STATUS_REPLY_LENGTH);
    } catch (e) {
      return { kind: "gone", reason: errorText(e) };
    }
    if (r.status !== "ok") return { kind: "stall" };
    const reply = r.data === undefined ? null : parseStatusReply(r.data);
    if (reply === null) return { kind: "garbled", reason: `DFU_GETSTATUS returned ${r.data?.byteLength ?? 0} bytes, not ${STATUS_REPLY_LENGTH}` };
    this.lastState = reply.state;
    return { kind: "ok", value: reply };
  }

  /** The DFU interface from GET_DESCRIPTOR(CONFIGURATION); null when the device will not say. */
  private async readDfuInterface(): Promise<DfuInterfaceInfo | null> {
    const setup: UsbControlSetup = {
      requestType: "standard",
      recipient: "device",
      request: USB_REQUEST_GET_DESCRIPTOR,
      value: (USB_DESCRIPTOR_CONFIGURATION << 8) | 0,
      index: 0,
    };
    try {
      const head = await this.device.controlTransferIn(setup, CONFIG_HEADER_LENGTH);
      if (head.status !== "ok" || head.data === undefined || head.data.byteLength < 4) return null;
      const total = head.data.getUint16(2, true);
      const full = await this.device.controlTransferIn(setup, total);
      if (full.status !== "ok" || full.data === undefined) return null;
      const bytes = new Uint8Array(full.data.buffer, full.data.byteOffset, full.data.byteLength);
      const interfaces = findDfuInterfaces(bytes).filter((i) => this.options.interfaceNumber === undefined || i.interfaceNumber === this.options.interfaceNumber);
      const wantedAlt = this.options.alternateSetting ?? 0;
      return (
        interfaces.find((i) => i.protocol === DFU_PROTOCOL_DFU_MODE && i.alternateSetting === wantedAlt) ??
        interfaces.find((i) => i.protocol === DFU_PROTOCOL_DFU_MODE) ??
        interfaces[0] ??
        null
      );
    } catch {
      return null; // no descriptor: fall back to the options (interface 0, the given transfer size)
    }
  }

  /**
   * A request other than the descriptor read did not succeed. Some stacks (usb 3.x among them,
   * depending on the platform) reject a stalled transfer instead of resolving with "stall", so
   * one DFU_GETSTATUS tells a stall (the device answers, in dfuERROR) from a device that is gone.
   */
  private async requestFailed(first: Exclude<Transfer<unknown>, { kind: "ok" }>, request: number, block: number | null): Promise<Phase> {
    if (first.kind === "garbled") return this.transferFailed(first, dfuRequestName(request), block);
    const probe = await this.getStatus();
    const what = block === null ? dfuRequestName(request) : `${dfuRequestName(request)} of block ${block}`;
    if (probe.kind === "ok") {
      const reply = probe.value;
      if (reply.status !== DfuStatus.OK && reply.status !== DfuStatus.errSTALLEDPKT) {
        const where = block === null ? "at the end of the download" : `in block ${block} of ${this.blockCount}`;
        return this.fail("device-status", `device reported ${describeDfuStatus(reply.status)} ${where}; ${RETRY_ADVICE}`, block, reply);
      }
      return this.fail(
        "stalled",
        `the device refused ${what} (stall; now ${dfuStateName(reply.state)}, ${dfuStatusName(reply.status)}); ${RETRY_ADVICE}`,
        block,
        reply,
      );
    }
    return this.transferFailed(first.kind === "gone" ? first : probe, what, block);
  }

  private transferFailed(t: Exclude<Transfer<unknown>, { kind: "ok" }>, what: string, block: number | null): Phase {
    const where = block === null ? "" : ` in block ${block} of ${this.blockCount}`;
    switch (t.kind) {
      case "gone":
        return this.fail(
          "disconnected",
          `the device stopped answering${where} (${what}: ${t.reason}): it was unplugged, reset or lost power; reconnect it in DFU mode and ${RETRY_ADVICE}`,
          block,
        );
      case "stall":
        return this.fail("stalled", `the device stalled ${what}${where}; ${RETRY_ADVICE}`, block);
      case "garbled":
        return this.fail("protocol", `the device answered outside the DFU protocol${where}: ${t.reason}; ${RETRY_ADVICE}`, block);
      default:
        return unreachable(t);
    }
  }

  // --- helpers --------------------------------------------------------------------------------

  /** The poll wait to honour, or -1 when the device asks for more than maxPollMs. */
  private checkedPoll(ms: number): number {
    return ms > Math.min(this.maxPollMs, MAX_POLL_TIMEOUT_MS) ? -1 : ms;
  }

  private pollTooLong(reply: DfuStatusReply, block: number | null): Phase {
    return this.fail(
      "protocol",
      `the device asked to wait ${reply.pollTimeoutMs} ms (limit ${this.maxPollMs} ms)${block === null ? "" : ` in block ${block}`}; ${RETRY_ADVICE}`,
      block,
      reply,
    );
  }

  private aborted(block: number, detail: string): Phase {
    return this.fail("aborted", `download cancelled ${detail}; ${RETRY_ADVICE} before using the device`, block);
  }

  private fail(kind: DfuFailureKind, message: string, block: number | null = null, reply: DfuStatusReply | null = null): Phase {
    return {
      at: "failed",
      failure: {
        kind,
        message,
        block,
        status: reply === null ? null : dfuStatusName(reply.status),
        state: reply !== null ? dfuStateName(reply.state) : this.lastState === null ? null : dfuStateName(this.lastState),
      },
    };
  }

  private stateText(): string {
    return this.lastState === null ? "unknown" : dfuStateName(this.lastState);
  }

  private async release(): Promise<void> {
    if (this.claimed) {
      this.claimed = false;
      await this.device.releaseInterface(this.iface).catch(() => undefined);
    }
    if (this.openedHere) {
      this.openedHere = false;
      await this.device.close().catch(() => undefined);
    }
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Sleeps until performance.now() >= until (setTimeout may wake up to a millisecond early on the
 * high-resolution clock, and a poll timeout is a minimum). Resolves false if `signal` fired first.
 */
function sleepUntil(until: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const tick = (): void => {
      const left = until - performance.now();
      if (left <= 0) {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
        return;
      }
      timer = setTimeout(tick, Math.ceil(left));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    tick();
  });
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function unreachable(value: never): never {
  throw new Error(`dfu: impossible value ${JSON.stringify(value)}`);
}
