// The BLE transport: finds devices advertising the Nordic UART Service with noble, connects to
// each, and hands a HostLink (kind "ble") per connection to whoever listens. Real noble is loaded
// only on start() and only when none was injected: importing it starts its HCI bindings, which
// throw EAFNOSUPPORT on a machine without Bluetooth sockets; that becomes a state, not a crash.
//
// noble reports a peripheral once per scan (it forgets what it has seen only when scanning
// restarts), so the scan is restarted every scanIntervalMs and at once after a link closes: that
// is how a device that comes back is seen again and reconnected.

import type { HostLink } from "../../link/host_link.ts";
import type { NobleCharacteristic, NobleLike, NoblePeripheral, NobleService } from "./noble_like.ts";

export const NUS_SERVICE_UUID = "6e400001b5a3f393e0a9e50e24dcca9e";
/** The host writes here (write without response). */
export const NUS_RX_UUID = "6e400002b5a3f393e0a9e50e24dcca9e";
/** The device notifies here. */
export const NUS_TX_UUID = "6e400003b5a3f393e0a9e50e24dcca9e";

/** ATT_MTU when none was exchanged; a write carries MTU - 3 bytes (the ATT header). */
const DEFAULT_ATT_MTU = 23;
const ATT_WRITE_HEADER = 3;

const DEFAULT_SCAN_INTERVAL_MS = 5000;
const DEFAULT_TIMEOUT_MS = 10_000;

export interface BleTransportOptions {
  /** A noble instance (tests: `@abandonware/noble/with-bindings.js` over simulated bindings). */
  noble?: NobleLike;
  /** Restart the scan this often so that devices seen again are reported again. Default 5000. */
  scanIntervalMs?: number;
  /** Ask noble for every advertisement, not the first one per scan. Default false. */
  allowDuplicates?: boolean;
  /** Longest wait for the adapter's state, each connection step and a disconnect. Default 10000. */
  timeoutMs?: number;
}

export interface BleState {
  available: boolean;
  /** Why BLE is not available (for people: the CLI shows it). */
  reason?: string;
}

type Phase = "idle" | "loading" | "waitingForAdapter" | "scanning" | "unavailable" | "closed";

export class BleTransport {
  private phase: Phase = "idle";
  private reason: string | undefined = "not started";
  private noble: NobleLike | null = null;
  private readonly links = new Map<string, BleHostLink>();
  /** Connection attempts in progress, by peripheral id; aborting one ends it. */
  private readonly attempts = new Map<string, AbortController>();
  private readonly linkCbs: ((link: HostLink) => void)[] = [];
  private readonly errorCbs: ((error: Error, address?: string) => void)[] = [];
  private scanTimer: NodeJS.Timeout | null = null;
  private restarting = false;
  private firstState: (() => void) | null = null;
  private readonly timeoutMs: number;

  constructor(private readonly options: BleTransportOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  state(): BleState {
    return this.phase === "scanning" ? { available: true } : { available: false, reason: this.reason };
  }

  /** A device is connected and its link ready. */
  onLink(cb: (link: HostLink) => void): void {
    this.linkCbs.push(cb);
  }

  /** Connection attempts that failed, scan errors and noble's warnings. */
  onError(cb: (error: Error, address?: string) => void): void {
    this.errorCbs.push(cb);
  }

  /** Loads noble if needed and waits for the adapter's state; resolves either way (see state()). */
  async start(): Promise<void> {
    if (this.phase !== "idle") return;
    this.phase = "loading";
    this.reason = "loading noble";
    let noble = this.options.noble;
    if (!noble) {
      const loaded = await loadRealNoble();
      if (this.isClosed()) return;
      if (!loaded.ok) {
        this.phase = "unavailable";
        this.reason = loaded.reason;
        return;
      }
      noble = loaded.noble;
    }
    this.noble = noble;
    this.phase = "waitingForAdapter";
    this.reason = "waiting for the Bluetooth adapter";
    const stated = new Promise<void>((resolve) => (this.firstState = resolve));
    noble.on("warning", this.onWarning);
    noble.on("discover", this.onDiscover);
    // Listening to stateChange makes noble initialise its bindings on the next tick.
    noble.on("stateChange", this.onStateChange);
    if (noble.state !== "unknown") this.onStateChange(noble.state);
    const timer = setTimeout(() => {
      if (this.phase !== "waitingForAdapter") return;
      this.phase = "unavailable";
      this.reason = `no Bluetooth adapter (no adapter state within ${this.timeoutMs} ms)`;
      this.firstState?.();
    }, this.timeoutMs);
    await stated;
    clearTimeout(timer);
  }

  private isClosed(): boolean {
    return this.phase === "closed";
  }

  async close(): Promise<void> {
    if (this.phase === "closed") return;
    this.phase = "closed";
    this.reason = "closed";
    this.firstState?.();
    this.stopScanTimer();
    const noble = this.noble;
    if (noble) {
      noble.removeListener("discover", this.onDiscover);
      noble.removeListener("stateChange", this.onStateChange);
      noble.removeListener("warning", this.onWarning);
      if (noble.state === "poweredOn") noble.stopScanning();
    }
    for (const a of this.attempts.values()) a.abort(new Error("transport closed"));
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  // ---- adapter and scanning ------------------------------------------------------------------

  private readonly onStateChange = (state: string): void => {
    if (this.phase === "closed") return;
    if (state === "poweredOn") {
      this.phase = "scanning";
      this.reason = undefined;
      this.scan();
    } else {
      this.phase = "unavailable";
      this.reason = describeAdapterState(state);
      this.stopScanTimer();
      for (const a of this.attempts.values()) a.abort(new Error(this.reason));
      for (const l of this.links.values()) l.finish(this.reason);
    }
    this.firstState?.();
    this.firstState = null;
  };

  private scan(): void {
    const noble = this.noble;
    if (!noble || this.phase !== "scanning") return;
    noble.startScanning([NUS_SERVICE_UUID], this.options.allowDuplicates ?? false, (err) => {
      if (err) this.report(new Error(`scan failed: ${err.message}`));
    });
    if (this.scanTimer === null) {
      this.scanTimer = setInterval(() => this.rescan(), this.options.scanIntervalMs ?? DEFAULT_SCAN_INTERVAL_MS);
    }
  }

  /** Stops and starts the scan: noble forgets which peripherals it has reported. */
  private rescan(): void {
    const noble = this.noble;
    if (!noble || this.phase !== "scanning" || this.restarting) return;
    this.restarting = true;
    noble.stopScanning(() => {
      this.restarting = false;
      this.scan();
    });
  }

  private stopScanTimer(): void {
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    this.scanTimer = null;
    this.restarting = false;
  }

  private readonly onWarning = (message: string): void => {
    this.report(new Error(`noble: ${message}`));
  };

  private report(error: Error, address?: string): void {
    for (const cb of this.errorCbs) cb(error, address);
  }

  // ---- connecting ----------------------------------------------------------------------------

  private readonly onDiscover = (p: NoblePeripheral): void => {
    if (this.phase !== "scanning" || this.links.has(p.id) || this.attempts.has(p.id)) return;
    if (p.state === "connected" || p.state === "connecting") return;
    void this.connect(p);
  };

  /** Connect, find RX and TX, subscribe to TX; then the link is handed out. */
  private async connect(p: NoblePeripheral): Promise<void> {
    const abort = new AbortController();
    this.attempts.set(p.id, abort);
    const lost = (reason?: unknown): void => abort.abort(new Error(`disconnected during setup: ${describeDisconnect(reason)}`));
    let connected = false;
    try {
      const t = this.timeoutMs;
      await step<void>("connect", abort.signal, t, (done) => p.connect((e) => done(e ?? null, undefined)));
      connected = true;
      p.once("disconnect", lost);
      const services = await step<NobleService[]>("discover services", abort.signal, t, (done) =>
        p.discoverServices([NUS_SERVICE_UUID], done),
      );
      const nus = services.find((s) => s.uuid === NUS_SERVICE_UUID);
      if (!nus) throw new Error("no Nordic UART Service");
      const chars = await step<NobleCharacteristic[]>("discover characteristics", abort.signal, t, (done) =>
        nus.discoverCharacteristics([NUS_RX_UUID, NUS_TX_UUID], done),
      );
      const rx = chars.find((c) => c.uuid === NUS_RX_UUID);
      const tx = chars.find((c) => c.uuid === NUS_TX_UUID);
      if (!rx || !tx) throw new Error("the Nordic UART Service lacks RX or TX");
      // Listen before subscribing: the device talks as soon as it sees the subscription.
      const link = new BleHostLink(p, rx, tx, t, (l) => this.linkClosed(l));
      try {
        await step<void>("subscribe to TX", abort.signal, t, (done) => tx.subscribe((e) => done(e, undefined)));
      } catch (e) {
        link.detach();
        throw e;
      }
      p.removeListener("disconnect", lost);
      this.attempts.delete(p.id);
      link.watchDisconnect();
      this.links.set(p.id, link);
      for (const cb of this.linkCbs) cb(link);
    } catch (e) {
      this.attempts.delete(p.id);
      p.removeListener("disconnect", lost);
      const error = e instanceof Error ? e : new Error(String(e));
      if (!this.isClosed()) this.report(new Error(`${p.id}: ${error.message}`), p.id);
      if (connected && p.state === "connected") p.disconnect();
      else if (!connected) p.cancelConnect();
    }
  }

  private linkClosed(link: BleHostLink): void {
    if (this.links.get(link.address) === link) this.links.delete(link.address);
    // The device advertises again once the connection is gone: a new scan reports it.
    this.rescan();
  }
}

/**
 * One connection to one device. Writes go out in chunks of (MTU - 3) bytes, each written without
 * response and awaited before the next; writes queue behind each other so chunks never mix.
 */
class BleHostLink implements HostLink {
  readonly kind = "ble" as const;
  readonly address: string;
  private bytesCb: ((chunk: Uint8Array) => void) | null = null;
  private closeCb: ((reason: string) => void) | null = null;
  /** Notifications that arrived before a receiver was installed. */
  private early: Uint8Array[] = [];
  private closedReason: string | null = null;
  private closing = false;
  private tail: Promise<void> = Promise.resolve();
  /** Aborted when the link closes: a write waiting for its callback fails at once. */
  private readonly gone = new AbortController();

  constructor(
    private readonly p: NoblePeripheral,
    private readonly rx: NobleCharacteristic,
    private readonly tx: NobleCharacteristic,
    private readonly timeoutMs: number,
    private readonly onClosed: (link: BleHostLink) => void,
  ) {
    this.address = p.id;
    tx.on("data", this.onData);
  }

  /** The current payload size of one write: negotiated MTU minus the ATT header. */
  chunkSize(): number {
    return Math.max(1, (this.p.mtu ?? DEFAULT_ATT_MTU) - ATT_WRITE_HEADER);
  }

  write(data: Uint8Array): Promise<void> {
    const copy = data.slice();
    const run = this.tail.then(() => this.send(copy));
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Never called: BLE delivers notifications, not lines (see onBytes). */
  onLine(): void {}

  onBytes(cb: (chunk: Uint8Array) => void): void {
    this.bytesCb = cb;
    const early = this.early;
    this.early = [];
    for (const c of early) cb(c);
  }

  onClose(cb: (reason: string) => void): void {
    this.closeCb = cb;
    if (this.closedReason !== null) cb(this.closedReason);
  }

  async close(): Promise<void> {
    if (this.closedReason !== null) return;
    this.closing = true;
    if (this.p.state === "connected" || this.p.state === "connecting") {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.timeoutMs);
        this.p.disconnect(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.finish("closed by host");
  }

  /** After setup: a disconnect from now on closes the link. */
  watchDisconnect(): void {
    this.p.once("disconnect", this.onDisconnect);
  }

  /** Setup failed before the link was handed out. */
  detach(): void {
    this.tx.removeListener("data", this.onData);
  }

  finish(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.gone.abort(new Error(`BLE link to ${this.address} closed: ${reason}`));
    this.detach();
    this.p.removeListener("disconnect", this.onDisconnect);
    this.onClosed(this);
    this.closeCb?.(reason);
  }

  private readonly onData = (data: Buffer, isNotification: boolean): void => {
    if (!isNotification || this.closedReason !== null) return;
    const chunk = new Uint8Array(data);
    if (this.bytesCb) this.bytesCb(chunk);
    else this.early.push(chunk);
  };

  private readonly onDisconnect = (reason?: unknown): void => {
    this.finish(this.closing ? "closed by host" : describeDisconnect(reason));
  };

  private async send(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length; ) {
      const n = this.chunkSize();
      await this.writeChunk(Buffer.from(data.subarray(off, off + n)));
      off += n;
    }
  }

  private writeChunk(chunk: Buffer): Promise<void> {
    const signal = this.gone.signal;
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const onGone = (): void => reject(signal.reason);
      signal.addEventListener("abort", onGone, { once: true });
      this.rx.write(chunk, true, (err) => {
        signal.removeEventListener("abort", onGone);
        if (err) reject(err);
        else resolve();
      });
    });
  }
}

/**
 * Runs one noble call that answers through an error-first callback; rejects on timeout or abort
 * (a disconnect during setup, the transport closing).
 */
function step<T>(
  what: string,
  signal: AbortSignal,
  timeoutMs: number,
  run: (done: (error: Error | null | undefined, value: T) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      reject(error instanceof Error ? error : new Error(`${what}: ${String(error)}`));
    };
    const onAbort = (): void => fail(signal.reason);
    const timer = setTimeout(() => fail(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    if (signal.aborted) {
      fail(signal.reason);
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    run((error, value) => {
      if (error) {
        fail(new Error(`${what}: ${error.message}`));
        return;
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    });
  });
}

type Loaded = { ok: true; noble: NobleLike } | { ok: false; reason: string };

/** Imports the real noble, whose import opens an HCI socket (and throws where there is none). */
async function loadRealNoble(): Promise<Loaded> {
  try {
    const mod: unknown = await import("@abandonware/noble");
    const noble = isObject(mod) && "default" in mod ? mod.default : mod;
    if (!isNobleLike(noble)) return { ok: false, reason: "BLE unavailable: @abandonware/noble loaded without its API" };
    return { ok: true, noble };
  } catch (e) {
    const code = isObject(e) && typeof e.code === "string" ? e.code : "";
    const message = e instanceof Error ? e.message : String(e);
    if (code === "EAFNOSUPPORT" || code === "ENODEV") {
      return { ok: false, reason: `no Bluetooth adapter (${message.startsWith(code) ? message : `${code}: ${message}`})` };
    }
    return { ok: false, reason: `BLE unavailable: cannot load @abandonware/noble: ${message}` };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null;
}

function isNobleLike(v: unknown): v is NobleLike {
  return isObject(v) && typeof v.startScanning === "function" && typeof v.on === "function";
}

function describeAdapterState(state: string): string {
  switch (state) {
    case "poweredOff":
      return "Bluetooth adapter is powered off";
    case "unauthorized":
      return "Bluetooth adapter not accessible (unauthorized: needs root or CAP_NET_RAW)";
    case "resetting":
      return "Bluetooth adapter is resetting";
    default:
      return `no Bluetooth adapter (adapter state "${state}")`;
  }
}

/** noble passes the HCI disconnect reason (a number) on the HCI stack. */
function describeDisconnect(reason: unknown): string {
  switch (reason) {
    case 0x08:
      return "radio link lost (supervision timeout)";
    case 0x13:
      return "device ended the connection";
    case 0x16:
      return "closed by host";
    default:
      return reason === undefined ? "disconnected" : `disconnected (reason ${String(reason)})`;
  }
}
