// A simulated USB device with a DFU 1.1 interface, behind exactly the WebUSB-shaped interface the
// host's DFU downloader and USB transport use. It runs the spec's state machine (DFU 1.1 appendix
// A.2): blocks are written into a NOR flash model while the device sits in dfuDNBUSY for its
// poll timeout (real time; a DFU_GETSTATUS before the timeout elapsed is stalled into dfuERROR,
// as on hardware), manifestation tolerant or not, and faults to inject: an error status at a
// block, a stalled block, leaving the bus mid-transfer, a failing manifestation.
// In application mode it shows a CDC serial function plus a DFU run-time interface; DFU_DETACH and
// a USB reset take it into its bootloader (a re-enumeration with the DFU product id).

import {
  DFU_DESCRIPTOR_FUNCTIONAL,
  DFU_PROTOCOL_DFU_MODE,
  DFU_PROTOCOL_RUNTIME,
  DFU_SUBCLASS,
  DFU_VERSION_1_1,
  DfuRequest,
  DfuState,
  DfuStatus,
  USB_CLASS_APPLICATION_SPECIFIC,
  USB_DESCRIPTOR_CONFIGURATION,
  USB_DESCRIPTOR_INTERFACE,
  USB_REQUEST_GET_DESCRIPTOR,
  encodeFunctionalDescriptor,
  encodeStatusReply,
  type DfuStateCode,
  type DfuStatusName,
} from "../../host/dfu/dfu_protocol.ts";
import type { UsbControlSetup, UsbInResult, UsbOutResult } from "../../host/dfu/dfu_usb_device.ts";
import type { UsbBusDevice, UsbConfigurationInfo, UsbInterfaceInfo } from "../../host/transport/usb/usb_bus.ts";
import { SimFlash } from "../models/flash.ts";

/** One-shot faults: each fires once, so the next attempt of the host succeeds. */
export type DfuFault =
  /** Writing this block (0-based in the download) ends in dfuERROR with this status. */
  | { kind: "status"; block: number; status: DfuStatusName }
  /** The DFU_DNLOAD of this block is stalled (dfuERROR, errSTALLEDPKT). */
  | { kind: "stall"; block: number }
  /** The device leaves the bus when the host sends this block (cable pulled, power lost). */
  | { kind: "disconnect"; block: number }
  /** Manifestation ends in dfuERROR with this status (errVERIFY, errFIRMWARE, ...). */
  | { kind: "manifest"; status: DfuStatusName };

export interface SimDfuDeviceOptions {
  vendorId?: number;
  /** Product id in application mode. */
  appProductId?: number;
  /** Product id in the DFU bootloader. */
  dfuProductId?: number;
  serialNumber?: string | null;
  /** "dfu": in the bootloader (default); "app": running its application (DFU run-time interface). */
  mode?: "dfu" | "app";
  /** wTransferSize of the functional descriptor. */
  transferSize?: number;
  /** A device without a DFU functional descriptor (the host must be told the transfer size). */
  omitFunctionalDescriptor?: boolean;
  /** Where the image lands; 256 KiB in 4 KiB pages by default. */
  flash?: SimFlash;
  /** How long programming a block keeps the device in dfuDNBUSY (bwPollTimeout), per block. */
  pollTimeoutMs?: number | ((block: number) => number);
  /** How long manifestation takes (bwPollTimeout announced in dfuMANIFEST). */
  manifestTimeoutMs?: number;
  /** bitManifestationTolerant. */
  manifestationTolerant?: boolean;
  /** A non-tolerant device reboots on its own after manifestation (leaves the bus) instead of waiting for a USB reset. */
  rebootAfterManifest?: boolean;
  /** How a stall reaches the host: WebUSB's `{ status: "stall" }` (default) or a rejected transfer. */
  stallAs?: "status" | "reject";
  /** Start in dfuERROR with this status (a bootloader after a power-on reset: errPOR). */
  startError?: DfuStatusName;
  canUpload?: boolean;
  /** wDetachTimeOut: how long appDETACH waits for a USB reset. */
  detachTimeoutMs?: number;
  /** Latency of each control transfer; 0 (default) answers on the next turn of the event loop. */
  latencyMs?: number;
}

/** What the device saw during the current (or last) download, reset when a new one starts. */
export interface SimDfuSession {
  /** DFU_DNLOAD requests with data accepted. */
  blocks: number;
  bytes: number;
  /** Sum of the bwPollTimeout values the device announced while busy (blocks and manifestation). */
  announcedPollMs: number;
}

export interface SimDfuCounters {
  getStatus: number;
  clrStatus: number;
  abort: number;
  dnload: number;
  zeroLengthDnload: number;
  /** Requests stalled (wrong state, early poll, injected). */
  stalls: number;
  /** DFU_GETSTATUS (or anything) received while still busy: the host did not honour a poll timeout. */
  earlyRequests: number;
  resets: number;
}

/** Rejections look like WebUSB's: a NotFoundError once the device has left the bus. */
export class SimUsbError extends Error {
  constructor(name: "NotFoundError" | "InvalidStateError" | "NetworkError", message: string) {
    super(message);
    this.name = name;
  }
}

type BusEvent = "attach" | "detach";

interface InterfaceSpec {
  number: number;
  cls: number;
  subclass: number;
  protocol: number;
  /** Followed by the DFU functional descriptor. */
  functional: boolean;
}

type Answer = { kind: "stall" } | { kind: "in"; data: Uint8Array } | { kind: "out" };

const DEFAULT_VENDOR = 0x1209; // pid.codes, the open-source vendor id
const DEFAULT_APP_PRODUCT = 0x0001;
const DEFAULT_DFU_PRODUCT = 0x0002;
const STALL: Answer = { kind: "stall" };
const OUT_OK: Answer = { kind: "out" };

export class SimDfuDevice implements UsbBusDevice {
  readonly vendorId: number;
  readonly serialNumber: string | null;
  readonly flash: SimFlash;
  readonly counters: SimDfuCounters = { getStatus: 0, clrStatus: 0, abort: 0, dnload: 0, zeroLengthDnload: 0, stalls: 0, earlyRequests: 0, resets: 0 };
  session: SimDfuSession = { blocks: 0, bytes: 0, announcedPollMs: 0 };
  /** The image of the last successful manifestation. */
  firmware: Uint8Array | null = null;

  private mode: "dfu" | "app";
  private state: DfuStateCode;
  private status: number;
  private connected = true;
  private isOpen = false;
  private readonly claimed = new Set<number>();
  private readonly faults: DfuFault[] = [];
  private readonly listeners = new Set<(event: BusEvent) => void>();
  // Download in progress.
  private nextBlock = 0;
  private cursor = 0;
  private readonly erased = new Set<number>();
  private pending: Uint8Array | null = null;
  private pendingIndex = 0;
  /** A status the pending block will fail with (an out-of-order block number). */
  private pendingError: number | null = null;
  private busyUntil = 0;
  private manifestUntil = 0;
  private manifested = false;
  private detachUntil = 0;
  private manifestTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: SimDfuDeviceOptions = {}) {
    this.vendorId = options.vendorId ?? DEFAULT_VENDOR;
    this.serialNumber = options.serialNumber === undefined ? "SIMDFU0001" : options.serialNumber;
    this.flash = options.flash ?? new SimFlash({ pageSize: 4096, pageCount: 64 });
    this.mode = options.mode ?? "dfu";
    this.state = this.mode === "app" ? DfuState.appIDLE : DfuState.dfuIDLE;
    this.status = DfuStatus.OK;
    if (this.mode === "dfu" && options.startError !== undefined) {
      this.state = DfuState.dfuERROR;
      this.status = DfuStatus[options.startError];
    }
  }

  // --- what the host sees ------------------------------------------------------------------

  get productId(): number {
    return this.mode === "dfu" ? (this.options.dfuProductId ?? DEFAULT_DFU_PRODUCT) : (this.options.appProductId ?? DEFAULT_APP_PRODUCT);
  }

  get opened(): boolean {
    return this.isOpen;
  }

  get configuration(): UsbConfigurationInfo | null {
    if (!this.connected) return null;
    return {
      interfaces: this.interfaceSpecs().map(
        (i): UsbInterfaceInfo => ({
          interfaceNumber: i.number,
          alternates: [{ alternateSetting: 0, interfaceClass: i.cls, interfaceSubclass: i.subclass, interfaceProtocol: i.protocol }],
        }),
      ),
    };
  }

  async open(): Promise<void> {
    await this.turn();
    this.requireConnected();
    this.isOpen = true;
  }

  async close(): Promise<void> {
    await this.turn();
    this.requireConnected();
    this.isOpen = false;
    this.claimed.clear();
  }

  async claimInterface(interfaceNumber: number): Promise<void> {
    await this.turn();
    this.requireOpen();
    if (!this.interfaceSpecs().some((i) => i.number === interfaceNumber)) {
      throw new SimUsbError("NotFoundError", `interface ${interfaceNumber} does not exist`);
    }
    this.claimed.add(interfaceNumber);
  }

  async releaseInterface(interfaceNumber: number): Promise<void> {
    await this.turn();
    this.requireOpen();
    this.claimed.delete(interfaceNumber);
  }

  async selectAlternateInterface(interfaceNumber: number, alternateSetting: number): Promise<void> {
    await this.turn();
    this.requireOpen();
    if (!this.claimed.has(interfaceNumber)) throw new SimUsbError("InvalidStateError", `interface ${interfaceNumber} is not claimed`);
    if (alternateSetting !== 0) throw new SimUsbError("NotFoundError", `interface ${interfaceNumber} has no alternate setting ${alternateSetting}`);
  }

  async controlTransferIn(setup: UsbControlSetup, length: number): Promise<UsbInResult> {
    await this.turn();
    this.requireTransferable(setup);
    const answer = this.handle(setup, "in", length, null);
    if (answer.kind === "stall") return this.stalled();
    const data = answer.kind === "in" ? answer.data.subarray(0, length) : new Uint8Array(0);
    const copy = data.slice();
    return { status: "ok", data: new DataView(copy.buffer) };
  }

  async controlTransferOut(setup: UsbControlSetup, data: Uint8Array): Promise<UsbOutResult> {
    await this.turn();
    this.requireTransferable(setup);
    const answer = this.handle(setup, "out", data.length, data);
    // A fault may have taken the device off the bus while it handled the request.
    this.requireConnected();
    if (answer.kind === "stall") {
      const r = this.stalled();
      return { status: r.status, bytesWritten: 0 };
    }
    return { status: "ok", bytesWritten: data.length };
  }

  /**
   * A USB bus reset. In appDETACH: re-enumerate into the bootloader. In DFU mode with a manifested
   * image: boot it (re-enumerate in application mode). Otherwise stay in the bootloader.
   */
  async reset(): Promise<void> {
    await this.turn();
    this.requireConnected();
    this.counters.resets++;
    this.refreshTimedStates();
    if (this.mode === "app") {
      if (this.state === DfuState.appDETACH) this.reenumerate("dfu");
      else this.reenumerate("app");
      return;
    }
    if (this.manifested && this.firmware !== null) {
      this.reenumerate("app");
      return;
    }
    this.abandonDownload();
    this.state = DfuState.dfuIDLE;
    this.status = DfuStatus.OK;
  }

  // --- test controls ----------------------------------------------------------------------

  injectFault(fault: DfuFault): void {
    this.faults.push(fault);
  }

  /** The device's state now, as a host GETSTATE would see it (without the request's effects). */
  currentState(): DfuStateCode {
    this.refreshTimedStates();
    return this.state;
  }

  currentStatus(): number {
    this.refreshTimedStates();
    return this.status;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** The first `length` bytes of flash. */
  readFlash(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let at = 0; at < length; ) {
      const page = Math.floor(at / this.flash.pageSize);
      const offset = at % this.flash.pageSize;
      const n = Math.min(this.flash.pageSize - offset, length - at);
      out.set(this.flash.read(page, offset, n), at);
      at += n;
    }
    return out;
  }

  /** Pull the cable: every later transfer rejects, listeners hear "detach". */
  unplug(): void {
    if (!this.connected) return;
    this.connected = false;
    this.isOpen = false;
    this.claimed.clear();
    if (this.manifestTimer !== null) clearTimeout(this.manifestTimer);
    this.manifestTimer = null;
    this.emit("detach");
  }

  /** Plug the cable back in: the device comes up again from power-on. */
  plug(): void {
    if (this.connected) return;
    this.connected = true;
    this.abandonDownload();
    if (this.mode === "dfu") {
      this.state = DfuState.dfuIDLE;
      this.status = DfuStatus.OK;
    } else {
      this.state = DfuState.appIDLE;
      this.status = DfuStatus.OK;
    }
    this.emit("attach");
  }

  /** Bus presence changes the device makes by itself (unplug, reboot, re-enumeration): for SimUsb. */
  onBusEvent(cb: (event: BusEvent) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  // --- the DFU state machine ----------------------------------------------------------------

  private handle(setup: UsbControlSetup, direction: "in" | "out", length: number, data: Uint8Array | null): Answer {
    if (setup.requestType === "standard") return this.handleStandard(setup, direction);
    if (setup.requestType !== "class" || setup.recipient !== "interface" || setup.index !== this.dfuInterfaceNumber()) {
      return STALL; // not ours: a plain protocol stall, the DFU state is untouched
    }
    this.refreshTimedStates();
    if (this.mode === "app") return this.handleRuntime(setup.request, direction);
    return this.handleDfu(setup.request, setup.value, direction, length, data);
  }

  private handleStandard(setup: UsbControlSetup, direction: "in" | "out"): Answer {
    if (direction === "in" && setup.recipient === "device" && setup.request === USB_REQUEST_GET_DESCRIPTOR && setup.value >> 8 === USB_DESCRIPTOR_CONFIGURATION) {
      return { kind: "in", data: this.configurationDescriptor() };
    }
    return STALL;
  }

  /** Run-time (application) mode: appIDLE / appDETACH. */
  private handleRuntime(request: number, direction: "in" | "out"): Answer {
    if (request === DfuRequest.GETSTATUS && direction === "in") return this.statusReply(0);
    if (request === DfuRequest.GETSTATE && direction === "in") return { kind: "in", data: Uint8Array.of(this.state) };
    if (request === DfuRequest.DETACH && direction === "out" && this.state === DfuState.appIDLE) {
      this.state = DfuState.appDETACH;
      this.detachUntil = performance.now() + (this.options.detachTimeoutMs ?? 1000);
      return OUT_OK;
    }
    this.state = DfuState.appIDLE; // appDETACH: any other request returns to appIDLE
    return STALL;
  }

  /** DFU mode, one case per state of DFU 1.1 appendix A.2. */
  private handleDfu(request: number, value: number, direction: "in" | "out", length: number, data: Uint8Array | null): Answer {
    const isIn = direction === "in";
    const getStatus = request === DfuRequest.GETSTATUS && isIn;
    const getState = request === DfuRequest.GETSTATE && isIn;
    if (getStatus) this.counters.getStatus++;
    const busy = this.state === DfuState.dfuDNBUSY || this.state === DfuState.dfuMANIFEST || this.state === DfuState.dfuMANIFEST_WAIT_RESET;
    if (getState && !busy) return { kind: "in", data: Uint8Array.of(this.state) };
    const dnload = request === DfuRequest.DNLOAD && !isIn;
    if (dnload) {
      this.counters.dnload++;
      if (length === 0) this.counters.zeroLengthDnload++;
    }
    if (request === DfuRequest.ABORT && !isIn) this.counters.abort++;
    if (request === DfuRequest.CLRSTATUS && !isIn) this.counters.clrStatus++;

    switch (this.state) {
      case DfuState.dfuIDLE:
        if (dnload && length > 0) {
          this.beginDownload(value);
          return this.acceptBlock(value, data ?? new Uint8Array(0));
        }
        if (request === DfuRequest.UPLOAD && isIn && this.options.canUpload) return this.upload(length);
        if (getStatus) return this.statusReply(0);
        if (request === DfuRequest.ABORT && !isIn) return OUT_OK;
        return this.stallToError();

      case DfuState.dfuDNLOAD_SYNC:
        if (getStatus) {
          if (this.pending === null) {
            this.state = DfuState.dfuDNLOAD_IDLE;
            return this.statusReply(0);
          }
          const poll = this.blockPollMs(this.pendingIndex);
          if (poll <= 0) {
            this.completeBlock();
            if (this.state === DfuState.dfuDNLOAD_SYNC) this.state = DfuState.dfuDNLOAD_IDLE;
            return this.statusReply(0);
          }
          this.state = DfuState.dfuDNBUSY;
          this.busyUntil = performance.now() + poll;
          this.session.announcedPollMs += poll;
          return this.statusReply(poll);
        }
        return this.stallToError();

      case DfuState.dfuDNBUSY:
        // Still busy (refreshTimedStates moved on otherwise): the host did not wait bwPollTimeout.
        this.counters.earlyRequests++;
        return this.stallToError();

      case DfuState.dfuDNLOAD_IDLE:
        if (dnload && length > 0) return this.acceptBlock(value, data ?? new Uint8Array(0));
        if (dnload) {
          if (this.session.blocks === 0) return this.stallToError(DfuStatus.errNOTDONE);
          this.state = DfuState.dfuMANIFEST_SYNC;
          return OUT_OK;
        }
        if (request === DfuRequest.ABORT && !isIn) {
          this.abandonDownload();
          this.state = DfuState.dfuIDLE;
          return OUT_OK;
        }
        if (getStatus) return this.statusReply(0);
        return this.stallToError();

      case DfuState.dfuMANIFEST_SYNC:
        if (getStatus) {
          if (this.manifested) {
            this.state = DfuState.dfuIDLE; // tolerant device, manifestation complete
            return this.statusReply(0);
          }
          const poll = this.options.manifestTimeoutMs ?? 20;
          this.state = DfuState.dfuMANIFEST;
          this.manifestUntil = performance.now() + poll;
          this.session.announcedPollMs += poll;
          this.scheduleSelfReboot(poll);
          return this.statusReply(poll);
        }
        return this.stallToError();

      case DfuState.dfuMANIFEST:
        // Busy committing the image: it cannot answer, and stays where it is.
        this.counters.earlyRequests++;
        this.counters.stalls++;
        return STALL;

      case DfuState.dfuMANIFEST_WAIT_RESET:
        // Waits for a USB reset and answers nothing else.
        this.counters.stalls++;
        return STALL;

      case DfuState.dfuUPLOAD_IDLE:
        if (request === DfuRequest.UPLOAD && isIn) return this.upload(length);
        if (request === DfuRequest.ABORT && !isIn) {
          this.state = DfuState.dfuIDLE;
          return OUT_OK;
        }
        if (getStatus) return this.statusReply(0);
        return this.stallToError();

      case DfuState.dfuERROR:
        if (getStatus) return this.statusReply(0);
        if (request === DfuRequest.CLRSTATUS && !isIn) {
          this.abandonDownload();
          this.state = DfuState.dfuIDLE;
          this.status = DfuStatus.OK;
          return OUT_OK;
        }
        this.counters.stalls++;
        return STALL; // stays in dfuERROR with its status

      case DfuState.appIDLE:
      case DfuState.appDETACH:
        return this.stallToError(); // not reachable in DFU mode
      default:
        return unreachable(this.state);
    }
  }

  /** A DFU_DNLOAD with data, in dfuIDLE or dfuDNLOAD-IDLE. */
  private acceptBlock(value: number, data: Uint8Array): Answer {
    const index = this.session.blocks;
    const fault = this.takeFault((f) => (f.kind === "stall" || f.kind === "disconnect") && f.block === index);
    if (fault?.kind === "disconnect") {
      this.unplug();
      return STALL; // never seen: the transfer rejects because the device is gone
    }
    if (fault?.kind === "stall") return this.stallToError();
    if (data.length > this.transferSize()) return this.stallToError();
    this.pending = data.slice();
    this.pendingIndex = index;
    this.session.blocks++;
    this.session.bytes += data.length;
    // Blocks must come in order; a gap or repeat is an address the device cannot place.
    if (value !== this.nextBlock) this.pendingError = DfuStatus.errADDRESS;
    this.nextBlock = (value + 1) & 0xffff;
    this.state = DfuState.dfuDNLOAD_SYNC;
    return OUT_OK;
  }

  /** The poll timeout elapsed: program the pending block into flash (or fail as injected). */
  private completeBlock(): void {
    const data = this.pending;
    this.pending = null;
    if (data === null) return;
    const fault = this.takeFault((f) => f.kind === "status" && f.block === this.pendingIndex);
    const status = fault?.kind === "status" ? DfuStatus[fault.status] : this.pendingError;
    this.pendingError = null;
    if (status !== null) return this.enterError(status);
    const capacity = this.flash.pageSize * this.flash.pageCount;
    if (this.cursor + data.length > capacity) return this.enterError(DfuStatus.errADDRESS);
    for (let i = 0; i < data.length; ) {
      const at = this.cursor + i;
      const page = Math.floor(at / this.flash.pageSize);
      const offset = at % this.flash.pageSize;
      const n = Math.min(this.flash.pageSize - offset, data.length - i);
      if (!this.erased.has(page)) {
        this.flash.erase(page);
        this.erased.add(page);
      }
      this.flash.program(page, offset, data.subarray(i, i + n));
      i += n;
    }
    this.cursor += data.length;
    this.state = DfuState.dfuDNLOAD_SYNC;
  }

  /** Moves states that change with time alone: the end of dfuDNBUSY, dfuMANIFEST, appDETACH. */
  private refreshTimedStates(): void {
    const now = performance.now();
    if (this.state === DfuState.dfuDNBUSY && now >= this.busyUntil) this.completeBlock();
    if (this.state === DfuState.dfuMANIFEST && now >= this.manifestUntil) this.completeManifest();
    if (this.state === DfuState.appDETACH && now >= this.detachUntil) this.state = DfuState.appIDLE;
  }

  private completeManifest(): void {
    const fault = this.takeFault((f) => f.kind === "manifest");
    if (fault?.kind === "manifest") return this.enterError(DfuStatus[fault.status]);
    this.firmware = this.readFlash(this.cursor);
    this.manifested = true;
    this.state = this.options.manifestationTolerant ? DfuState.dfuMANIFEST_SYNC : DfuState.dfuMANIFEST_WAIT_RESET;
  }

  /** A non-tolerant device that reboots itself leaves the bus once manifestation is over. */
  private scheduleSelfReboot(afterMs: number): void {
    if (this.options.manifestationTolerant || !this.options.rebootAfterManifest) return;
    this.manifestTimer = setTimeout(() => {
      this.manifestTimer = null;
      this.refreshTimedStates();
      if (this.state === DfuState.dfuMANIFEST_WAIT_RESET) this.reenumerate("app");
    }, afterMs + 1);
    this.manifestTimer.unref();
  }

  private beginDownload(firstBlock: number): void {
    this.abandonDownload();
    this.session = { blocks: 0, bytes: 0, announcedPollMs: 0 };
    this.nextBlock = firstBlock;
    this.manifested = false;
  }

  private abandonDownload(): void {
    this.pending = null;
    this.pendingError = null;
    this.cursor = 0;
    this.erased.clear();
  }

  private upload(length: number): Answer {
    const image = this.firmware ?? new Uint8Array(0);
    const chunk = image.subarray(this.cursor, this.cursor + length);
    this.cursor += chunk.length;
    this.state = chunk.length < length ? DfuState.dfuIDLE : DfuState.dfuUPLOAD_IDLE;
    return { kind: "in", data: chunk };
  }

  private statusReply(pollTimeoutMs: number): Answer {
    return { kind: "in", data: encodeStatusReply({ status: this.status, pollTimeoutMs, state: this.state, iString: 0 }) };
  }

  /** DFU 1.1: a request the state does not allow is stalled and the device goes to dfuERROR. */
  private stallToError(status: number = DfuStatus.errSTALLEDPKT): Answer {
    this.counters.stalls++;
    this.enterError(status);
    return STALL;
  }

  private enterError(status: number): void {
    this.state = DfuState.dfuERROR;
    this.status = status;
    this.pending = null;
  }

  private takeFault(match: (f: DfuFault) => boolean): DfuFault | undefined {
    const i = this.faults.findIndex(match);
    return i < 0 ? undefined : this.faults.splice(i, 1)[0];
  }

  private reenumerate(mode: "dfu" | "app"): void {
    this.unplug();
    this.mode = mode;
    this.plug();
  }

  private stalled(): UsbInResult {
    if (this.options.stallAs === "reject") throw new SimUsbError("NetworkError", "control transfer stalled");
    return { status: "stall" };
  }

  // --- descriptors ------------------------------------------------------------------------

  private transferSize(): number {
    return this.options.transferSize ?? 1024;
  }

  private dfuInterfaceNumber(): number {
    return this.mode === "dfu" ? 0 : 2;
  }

  private interfaceSpecs(): InterfaceSpec[] {
    const functional = !this.options.omitFunctionalDescriptor;
    if (this.mode === "dfu") {
      return [{ number: 0, cls: USB_CLASS_APPLICATION_SPECIFIC, subclass: DFU_SUBCLASS, protocol: DFU_PROTOCOL_DFU_MODE, functional }];
    }
    return [
      { number: 0, cls: 0x02, subclass: 0x02, protocol: 0x01, functional: false }, // CDC ACM control
      { number: 1, cls: 0x0a, subclass: 0x00, protocol: 0x00, functional: false }, // CDC data
      { number: 2, cls: USB_CLASS_APPLICATION_SPECIFIC, subclass: DFU_SUBCLASS, protocol: DFU_PROTOCOL_RUNTIME, functional },
    ];
  }

  /** Configuration descriptor: configuration, then each interface (and the DFU functional descriptor). */
  private configurationDescriptor(): Uint8Array {
    const parts: number[] = [];
    const specs = this.interfaceSpecs();
    for (const i of specs) {
      parts.push(9, USB_DESCRIPTOR_INTERFACE, i.number, 0, 0, i.cls, i.subclass, i.protocol, 0);
      if (i.functional) {
        const fd = encodeFunctionalDescriptor({
          canDownload: true,
          canUpload: this.options.canUpload ?? false,
          manifestationTolerant: this.options.manifestationTolerant ?? false,
          willDetach: false,
          detachTimeoutMs: this.options.detachTimeoutMs ?? 1000,
          transferSize: this.transferSize(),
          dfuVersion: DFU_VERSION_1_1,
        });
        if (fd[1] !== DFU_DESCRIPTOR_FUNCTIONAL) throw new Error("functional descriptor encoding");
        parts.push(...fd);
      }
    }
    const total = 9 + parts.length;
    return Uint8Array.of(9, USB_DESCRIPTOR_CONFIGURATION, total & 0xff, total >> 8, specs.length, 1, 0, 0x80, 50, ...parts);
  }

  // --- plumbing ---------------------------------------------------------------------------

  private turn(): Promise<void> {
    const ms = this.options.latencyMs ?? 0;
    return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
  }

  private requireConnected(): void {
    if (!this.connected) throw new SimUsbError("NotFoundError", "the device was disconnected");
  }

  private requireOpen(): void {
    this.requireConnected();
    if (!this.isOpen) throw new SimUsbError("InvalidStateError", "the device must be opened first");
  }

  private requireTransferable(setup: UsbControlSetup): void {
    this.requireOpen();
    if (setup.recipient === "interface" && !this.claimed.has(setup.index & 0xff)) {
      throw new SimUsbError("InvalidStateError", `interface ${setup.index & 0xff} must be claimed first`);
    }
  }

  private emit(event: BusEvent): void {
    for (const cb of [...this.listeners]) cb(event);
  }

  private blockPollMs(index: number): number {
    const p = this.options.pollTimeoutMs ?? 5;
    return typeof p === "function" ? p(index) : p;
  }
}

function unreachable(value: never): never {
  throw new Error(`SimDfuDevice: impossible state ${String(value)}`);
}
