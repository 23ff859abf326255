// USB serial transport: finds devices (USB listing by vendor/product id, configured paths and
// globs), opens each new port with an exclusive lock and hands it out as a HostLink. A port that
// closes (cable pulled) is forgotten and reopened when its path comes back (replug).
// Node only (host agent).
//
// Facts this module is built around (DESIGN.md, "Facts measured on this kind of machine"):
// - binding.list() spawns `udevadm`; where it is missing the listing rejects with ENOENT. The
//   transport then keeps working from configured paths and says why listing is unavailable.
// - Pseudo-terminals (the simulator, socat) are never listed by udev: they come from paths/globs.
// - serialport reports a vanished port as 'close' with a DisconnectedError (err.disconnected).

import { readdirSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { SerialPortStream } from "@serialport/stream";
import { autoDetect, type AutoDetectTypes } from "@serialport/bindings-cpp";
import { ReadlineParser } from "@serialport/parser-readline";
import type { HostLink } from "../../link/host_link.ts";

export interface SerialTransportOptions {
  /** USB vendor ids (hex, as listed: "2fe3"); a listed port must match one. */
  vendorIds?: string[];
  /** USB product ids (hex); when given, a listed port must match one as well. */
  productIds?: string[];
  /** Paths opened whenever they exist (symlinks followed): /dev/serial/by-id/..., a pty link. */
  paths?: string[];
  /** Globs with `*` and `?` in the last path segment only, e.g. "/tmp/pollkit/*.tty". */
  globs?: string[];
  /** Time between scans. Default 1000 ms. */
  scanIntervalMs?: number;
  /** Passed to the port (a pty and USB CDC ignore it). Default 115200. */
  baudRate?: number;
  /**
   * A partial line (no newline yet) left this long without a new byte is delivered as a line, so
   * that a device that stopped mid-line cannot glue its garbage onto the next frame. Default 1000.
   */
  staleLineMs?: number;
  /** After a failed listing, try listing again after this long. Default 30000 ms. */
  listRetryMs?: number;
  /** Replaces binding.list() (tests; other platforms). */
  listPorts?: () => Promise<PortInfo[]>;
  /** Diagnostics (opens, closes, open failures, listing state changes). */
  log?: (line: string) => void;
}

/** What binding.list() reports for one port (path, vendorId, productId, ...). */
export type PortInfo = Awaited<ReturnType<AutoDetectTypes["list"]>>[number];

export interface ListingState {
  available: boolean;
  reason?: string;
}

/** Longest partial line kept before it is handed over as a line (a device sending no newline). */
const MAX_PENDING_LINE_BYTES = 4096;
/** Lines kept for a link whose owner has not called onLine yet. */
const MAX_EARLY_LINES = 1000;
/** Longest wait before reopening a path whose open failed. */
const MAX_OPEN_BACKOFF_MS = 30000;

export const UDEVADM_MISSING = "udevadm not found: USB listing unavailable, using configured paths";

type Port = SerialPortStream<AutoDetectTypes>;

/** A glob segment (`*`, `?`) as an anchored RegExp; like a shell, `*` and `?` skip dotfiles. */
export function globSegmentRegExp(segment: string): RegExp {
  let src = "";
  for (const ch of segment) {
    if (ch === "*") src += "[^/]*";
    else if (ch === "?") src += "[^/]";
    else src += ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  const hidden = segment.startsWith(".") ? "" : "(?!\\.)";
  return new RegExp(`^${hidden}${src}$`);
}

/** Paths matching `pattern` (wildcards in its last segment only), sorted. */
export function expandGlob(pattern: string): string[] {
  const dir = dirname(pattern);
  const segment = basename(pattern);
  if (/[*?]/.test(dir)) throw new Error(`glob ${pattern}: wildcards are supported in the last path segment only`);
  if (!/[*?]/.test(segment)) return [pattern];
  const re = globSegmentRegExp(segment);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // the directory does not exist (yet)
  }
  return names.filter((n) => re.test(n)).sort().map((n) => join(dir, n));
}

/** The real device node behind `path` when it exists and is a character device, else null. */
function characterDevice(path: string): string | null {
  try {
    if (!statSync(path).isCharacterDevice()) return null;
    return realpathSync(path);
  } catch {
    return null; // gone, or a dangling symlink (an unplugged pty link)
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function matchesId(value: string | undefined, wanted: string[] | undefined): boolean {
  if (wanted === undefined || wanted.length === 0) return true;
  if (value === undefined) return false;
  const v = value.toLowerCase().replace(/^0x/, "");
  return wanted.some((w) => w.toLowerCase().replace(/^0x/, "") === v);
}

/** One open port as a HostLink. Created open; closes once. */
class SerialHostLink implements HostLink {
  readonly kind = "serial" as const;
  readonly address: string;
  /** The device node that was opened (the address may be a symlink to it). */
  readonly realPath: string;
  private readonly port: Port;
  private readonly parser: ReadlineParser;
  private readonly staleLineMs: number;
  private lineCb: ((line: string) => void) | null = null;
  private early: string[] = [];
  private closeCbs: ((reason: string) => void)[] = [];
  private closedReason: string | null = null;
  private closingByHost = false;
  private staleTimer: NodeJS.Timeout | null = null;
  private pendingWrites = new Set<(e: Error) => void>();
  /** Write completions waiting for a tcdrain; at most one drain per port runs at a time. */
  private drainWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private draining = false;
  private readonly onGone: (link: SerialHostLink) => void;
  private readonly log: (line: string) => void;

  constructor(o: {
    address: string;
    realPath: string;
    port: Port;
    staleLineMs: number;
    onGone: (link: SerialHostLink) => void;
    log: (line: string) => void;
  }) {
    this.address = o.address;
    this.realPath = o.realPath;
    this.port = o.port;
    this.staleLineMs = o.staleLineMs;
    this.onGone = o.onGone;
    this.log = o.log;
    this.parser = new ReadlineParser({ delimiter: "\n", encoding: "latin1" });
    this.parser.on("data", (line: string) => this.deliver(line));
    this.parser.on("error", (e: Error) => this.log(`serial ${this.address}: parser error: ${e.message}`));
    this.port.pipe(this.parser);
    // Registered after pipe(): the parser has taken the chunk when this runs.
    this.port.on("data", () => this.watchPartialLine());
    this.port.on("error", (e: Error) => {
      this.log(`serial ${this.address}: ${e.message}`);
      if (!this.port.isOpen) this.finish(`port error: ${e.message}`);
    });
    this.port.on("close", (err?: Error & { disconnected?: boolean }) => {
      if (this.closingByHost) this.finish("closed by host");
      else if (err?.disconnected) this.finish(`disconnected: ${err.message}`);
      else this.finish(err ? `closed: ${err.message}` : "closed");
    });
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  write(data: Uint8Array): Promise<void> {
    if (this.closedReason !== null || !this.port.isOpen) {
      return Promise.reject(new Error(`serial ${this.address}: link closed (${this.closedReason ?? "not open"})`));
    }
    const buf = Buffer.from(data); // a copy: the caller may reuse its buffer
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        this.pendingWrites.delete(fail);
        reject(e);
      };
      this.pendingWrites.add(fail);
      this.port.write(buf, (err) => {
        if (err) {
          fail(new Error(`serial ${this.address}: write failed: ${err.message}`));
          return;
        }
        this.drainWaiters.push({
          resolve: () => {
            if (settled) return;
            settled = true;
            this.pendingWrites.delete(fail);
            resolve();
          },
          reject: fail,
        });
        this.drain();
      });
    });
  }

  /** tcdrain() runs on libuv's thread pool: never more than one per port. */
  private drain(): void {
    if (this.draining || this.drainWaiters.length === 0) return;
    if (this.closedReason !== null || !this.port.isOpen) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w.reject(new Error(`serial ${this.address}: link closed before drain`));
      return;
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    this.draining = true;
    this.port.drain((err) => {
      this.draining = false;
      for (const w of waiters) {
        if (err) w.reject(new Error(`serial ${this.address}: drain failed: ${err.message}`));
        else w.resolve();
      }
      this.drain(); // writes that completed meanwhile
    });
  }

  onLine(cb: (line: string) => void): void {
    this.lineCb = cb;
    const early = this.early;
    this.early = [];
    for (const l of early) cb(l);
  }

  /** Serial links deliver lines only (see onLine). */
  onBytes(cb: (chunk: Uint8Array) => void): void {
    void cb;
  }

  onClose(cb: (reason: string) => void): void {
    const reason = this.closedReason;
    if (reason !== null) queueMicrotask(() => cb(reason));
    else this.closeCbs.push(cb);
  }

  close(): Promise<void> {
    if (this.closedReason !== null) return Promise.resolve();
    if (!this.port.isOpen) {
      this.finish("closed by host");
      return Promise.resolve();
    }
    this.closingByHost = true;
    return new Promise<void>((resolve) => {
      this.port.close((err) => {
        if (err) this.log(`serial ${this.address}: close failed: ${err.message}`);
        this.finish("closed by host");
        resolve();
      });
    });
  }

  private deliver(line: string): void {
    if (this.lineCb !== null) this.lineCb(line);
    else if (this.early.length < MAX_EARLY_LINES) this.early.push(line);
  }

  private watchPartialLine(): void {
    if (this.staleTimer !== null) clearTimeout(this.staleTimer);
    this.staleTimer = null;
    const pending = this.parser.buffer.length;
    if (pending === 0) return;
    if (pending > MAX_PENDING_LINE_BYTES) {
      this.flushPartialLine();
      return;
    }
    this.staleTimer = setTimeout(() => {
      this.staleTimer = null;
      this.flushPartialLine();
    }, this.staleLineMs);
  }

  /** Hands a partial line over as a line (the receiver treats it as console text or a bad frame). */
  private flushPartialLine(): void {
    const buf = this.parser.buffer;
    if (buf.length === 0) return;
    this.parser.buffer = Buffer.alloc(0);
    this.deliver(buf.toString("latin1"));
  }

  private finish(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    if (this.staleTimer !== null) clearTimeout(this.staleTimer);
    this.staleTimer = null;
    this.port.unpipe(this.parser);
    const err = new Error(`serial ${this.address}: link closed (${reason})`);
    for (const fail of [...this.pendingWrites]) fail(err);
    this.pendingWrites.clear();
    this.drainWaiters = [];
    this.log(`serial ${this.address}: ${reason}`);
    this.onGone(this);
    const cbs = this.closeCbs;
    this.closeCbs = [];
    for (const cb of cbs) cb(reason);
  }
}

interface OpenFailure {
  count: number;
  nextTryMs: number;
  message: string;
}

/**
 * Discovers serial devices and keeps one HostLink per present device. Call start(), then each
 * device that appears (again) comes out of onLink.
 */
export class SerialTransport {
  private readonly o: SerialTransportOptions;
  private readonly binding: AutoDetectTypes;
  private readonly scanIntervalMs: number;
  private readonly log: (line: string) => void;
  private readonly linkCbs: ((link: HostLink) => void)[] = [];
  /** Open links by real device node. */
  private readonly links = new Map<string, SerialHostLink>();
  private readonly opening = new Set<string>();
  private readonly failures = new Map<string, OpenFailure>();
  private listing: ListingState = { available: false, reason: "USB listing not tried yet" };
  private listTried = false;
  private listedPaths: string[] = [];
  private nextListMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private running = false;
  private closed = false;

  constructor(options: SerialTransportOptions) {
    this.o = options;
    this.binding = autoDetect();
    this.scanIntervalMs = options.scanIntervalMs ?? 1000;
    this.log = options.log ?? (() => {});
    for (const g of options.globs ?? []) {
      if (/[*?]/.test(dirname(g))) throw new Error(`glob ${g}: wildcards are supported in the last path segment only`);
    }
  }

  /** Each newly opened device (also after a replug). */
  onLink(cb: (link: HostLink) => void): void {
    this.linkCbs.push(cb);
  }

  /** Whether USB listing works here, and if not, why. */
  listingState(): ListingState {
    return { ...this.listing };
  }

  /** Addresses of the links open now. */
  openAddresses(): string[] {
    return [...this.links.values()].map((l) => l.address);
  }

  /** Starts scanning (the first scan runs at once). */
  start(): void {
    if (this.closed) throw new Error("serial transport is closed");
    if (this.running) return;
    this.running = true;
    void this.tick();
  }

  /** One scan now; resolves when the ports it found have been opened (or failed to). */
  scanNow(): Promise<void> {
    if (this.scanning === null) {
      this.scanning = this.scan().finally(() => {
        this.scanning = null;
      });
    }
    return this.scanning;
  }

  /** Stops scanning and closes every port. */
  async close(): Promise<void> {
    this.closed = true;
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.scanning !== null) await this.scanning;
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  private async tick(): Promise<void> {
    this.timer = null;
    try {
      await this.scanNow();
    } catch (e) {
      this.log(`serial scan failed: ${errorText(e)}`);
    }
    if (this.running && !this.closed) this.timer = setTimeout(() => void this.tick(), this.scanIntervalMs);
  }

  private wantsListing(): boolean {
    return (this.o.vendorIds?.length ?? 0) > 0 || (this.o.productIds?.length ?? 0) > 0;
  }

  /** Lists USB ports when ids are configured (and once anyway, to report the listing state). */
  private async listUsb(now: number): Promise<void> {
    if ((this.listTried && !this.wantsListing()) || now < this.nextListMs) return;
    this.listTried = true;
    const before = this.listing.available;
    try {
      const ports: PortInfo[] = await (this.o.listPorts ? this.o.listPorts() : this.binding.list());
      this.listing = { available: true };
      this.listedPaths = ports
        .filter((p) => matchesId(p.vendorId, this.o.vendorIds) && matchesId(p.productId, this.o.productIds))
        .map((p) => p.path);
      this.nextListMs = 0;
      if (!before) this.log("serial: USB listing available");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const reason = code === "ENOENT" ? UDEVADM_MISSING : `USB listing failed (${errorText(e)}), using configured paths`;
      if (this.listing.reason !== reason) this.log(`serial: ${reason}`);
      this.listing = { available: false, reason };
      this.listedPaths = [];
      this.nextListMs = now + (this.o.listRetryMs ?? 30000);
    }
  }

  private candidates(): string[] {
    const out: string[] = [];
    if (this.wantsListing()) out.push(...this.listedPaths);
    out.push(...(this.o.paths ?? []));
    for (const g of this.o.globs ?? []) out.push(...expandGlob(g));
    return [...new Set(out)];
  }

  private async scan(): Promise<void> {
    if (this.closed) return;
    const now = Date.now();
    await this.listUsb(now);
    if (this.closed) return;
    const seen = new Set<string>();
    const opens: Promise<void>[] = [];
    for (const path of this.candidates()) {
      const real = characterDevice(path);
      if (real === null || seen.has(real)) continue;
      seen.add(real);
      // An open link whose configured path now leads elsewhere is stale (replugged meanwhile).
      for (const l of this.links.values()) {
        if (l.address === path && l.realPath !== real) void l.close();
      }
      if (this.links.has(real) || this.opening.has(real)) continue;
      const f = this.failures.get(real);
      if (f !== undefined && now < f.nextTryMs) continue;
      opens.push(this.open(path, real));
    }
    await Promise.all(opens);
  }

  private open(path: string, real: string): Promise<void> {
    this.opening.add(real);
    return new Promise<void>((resolve) => {
      const port: Port = new SerialPortStream({
        binding: this.binding,
        path,
        baudRate: this.o.baudRate ?? 115200,
        autoOpen: false,
        lock: true,
      });
      // Never an unhandled 'error': SerialHostLink installs its own once the port is open.
      const early = (e: Error): void => this.log(`serial ${path}: ${e.message}`);
      port.on("error", early);
      port.open((err) => {
        this.opening.delete(real);
        if (err) {
          const prev = this.failures.get(real);
          const count = (prev?.count ?? 0) + 1;
          const backoff = Math.min(MAX_OPEN_BACKOFF_MS, this.scanIntervalMs * 2 ** (count - 1));
          if (prev?.message !== err.message) this.log(`serial ${path}: cannot open: ${err.message}`);
          this.failures.set(real, { count, nextTryMs: Date.now() + backoff, message: err.message });
          resolve();
          return;
        }
        this.failures.delete(real);
        if (this.closed) {
          port.close(() => resolve());
          return;
        }
        const link = new SerialHostLink({
          address: path,
          realPath: real,
          port,
          staleLineMs: this.o.staleLineMs ?? 1000,
          log: this.log,
          onGone: (l) => {
            if (this.links.get(real) === l) this.links.delete(real);
          },
        });
        port.off("error", early);
        this.links.set(real, link);
        this.log(`serial ${path}: open (${real})`);
        for (const cb of this.linkCbs) {
          try {
            cb(link);
          } catch (e) {
            this.log(`serial ${path}: onLink handler threw: ${errorText(e)}`);
          }
        }
        resolve();
      });
    });
  }
}
