// The simulated device's end of a pty pair (pty_pair.ts), opened with the real serialport stack
// (@serialport/stream + @serialport/bindings-cpp) and presented to the firmware as its ByteLink.
// Node side only.
//
// - onConnection(cb): cb(true) once the port is open (immediately, in a microtask, if it already
//   is when cb is installed), cb(false) once when it closes or fails (unplug, close()). This is
//   the device's end of the simulated cable, not "a host program has the port open": a pty does
//   not carry DTR from the other side.
// - onData(cb): chunks as plain Uint8Array views (not Buffer, whose slice() shares memory).
//   Bytes that arrive before a receiver is installed are kept and handed over at install.
// - write(data): never throws, never blocks. The data is copied (the caller may reuse its
//   buffer). serialport's stream queues whatever the pty cannot take yet (write() returning false
//   only means "above highWaterMark"), so there is no loss and no need for 'drain' here. While
//   disconnected, writes are dropped and counted in droppedBytes, as a UART with no cable would.
// - Errors never surface as an unhandled 'error' event: they go to `log` and, if the port is gone,
//   to onConnection(false).
// - bytesPerSecond: paces outgoing bytes like a UART (115200 baud 8N1 = 11520 bytes/s). A byte
//   is handed to the pty no earlier than the moment its last bit would have left a real wire that
//   started sending when the data was written (so a 20-byte frame after idle arrives after
//   ~1.7 ms, not at once). Delivery happens on timer ticks of about 4 ms; the pace is computed
//   from the real clock, so late timers catch up instead of drifting.
// - receiveBytesPerSecond: the same pacing on the receive side (the UART's RX line): bytes read
//   from the port are handed to onData no faster than this rate, each no earlier than its last
//   bit would have arrived on a wire that started receiving when the bytes came in. Bytes waiting
//   are kept in order (none are dropped while connected); a disconnect drops them.

import { SerialPortStream } from "@serialport/stream";
import { autoDetect } from "@serialport/bindings-cpp";
import type { ByteLink } from "../../device/platform/platform.ts";

export interface SerialByteLinkOptions {
  /** Passed to the port (a pty ignores it). Default 115200. */
  baudRate?: number;
  /** Pace outgoing bytes at this rate (e.g. 11520 for 115200 baud 8N1). Default: unthrottled. */
  bytesPerSecond?: number;
  /** Pace incoming bytes (host to device) at this rate before onData sees them. Default: unthrottled. */
  receiveBytesPerSecond?: number;
  /** Diagnostics: port errors, open/close. */
  log?: (line: string) => void;
}

export interface SerialByteLink extends ByteLink {
  readonly path: string;
  readonly connected: boolean;
  /** Bytes written by the firmware but not yet handed to the port (throttle queue). */
  readonly pendingBytes: number;
  /** Bytes dropped because they were written while disconnected. */
  readonly droppedBytes: number;
  /** Resolves once the throttle queue is empty and the port has written everything. */
  drain(): Promise<void>;
  /**
   * Opens the port again, at `path` or the last one (after a replug the device pty has a new
   * name: pass pair.devicePath). Callbacks stay installed; onConnection(true) follows.
   */
  reopen(path?: string): Promise<void>;
  /** Closes the port (onConnection(false) follows). Idempotent. */
  close(): Promise<void>;
}

type Port = SerialPortStream;

const TICK_MS = 4;
const Binding = autoDetect();

function openPort(path: string, baudRate: number): Promise<Port> {
  return new Promise<Port>((resolve, reject) => {
    const port = new SerialPortStream({ binding: Binding, path, baudRate, autoOpen: false });
    port.open((err) => {
      if (err) reject(new Error(`cannot open serial port ${path}: ${err.message}`));
      else resolve(port);
    });
  });
}

class SerialByteLinkImpl implements SerialByteLink {
  path: string;
  _baudRate: number;
  _rate: number; // bytes per ms, 0 = unthrottled
  _log: (line: string) => void;
  _port: Port | null = null;
  _connected = false;
  _dataCb: ((data: Uint8Array) => void) | null = null;
  _connCb: ((connected: boolean) => void) | null = null;
  _early: Uint8Array[] = [];
  // Throttle state: queued chunks, the offset into the first, and the virtual wire clock.
  _queue: Uint8Array[] = [];
  _queueOffset = 0;
  _queued = 0;
  _wireAt = 0;
  _timer: NodeJS.Timeout | null = null;
  _dropped = 0;
  _idleWaiters: (() => void)[] = [];
  // Receive pacing (0 = off): bytes read from the port and not yet handed to onData.
  _rxRate: number;
  _rxQueue: Uint8Array[] = [];
  _rxOffset = 0;
  _rxQueued = 0;
  _rxWireAt = 0;
  _rxTimer: NodeJS.Timeout | null = null;

  constructor(path: string, options: SerialByteLinkOptions) {
    this.path = path;
    this._baudRate = options.baudRate ?? 115200;
    const bps = options.bytesPerSecond;
    if (bps !== undefined && !(bps > 0)) throw new RangeError("bytesPerSecond must be > 0");
    this._rate = bps === undefined ? 0 : bps / 1000;
    const rbps = options.receiveBytesPerSecond;
    if (rbps !== undefined && !(rbps > 0)) throw new RangeError("receiveBytesPerSecond must be > 0");
    this._rxRate = rbps === undefined ? 0 : rbps / 1000;
    this._log = options.log ?? (() => {});
  }

  get connected(): boolean {
    return this._connected;
  }
  get pendingBytes(): number {
    return this._queued;
  }
  get droppedBytes(): number {
    return this._dropped;
  }

  async _open(path: string): Promise<void> {
    const port = await openPort(path, this._baudRate);
    this.path = path;
    this._port = port;
    port.on("error", (err: Error) => {
      this._log(`serial ${path}: ${err.message}`);
      if (this._port === port && !port.isOpen) this._gone(port);
    });
    port.on("close", (err?: Error & { disconnected?: boolean }) => {
      this._log(`serial ${path}: closed${err ? ` (${err.message})` : ""}`);
      this._gone(port);
    });
    port.on("data", (chunk: Buffer) => {
      const view = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
      if (this._rxRate !== 0) this._receivePaced(view);
      else this._deliver(view);
    });
    this._connected = true;
    this._wireAt = performance.now();
    this._log(`serial ${path}: open`);
    if (this._connCb !== null) this._connCb(true);
  }

  _deliver(view: Uint8Array): void {
    if (this._dataCb !== null) this._dataCb(view);
    else this._early.push(view);
  }

  _receivePaced(view: Uint8Array): void {
    if (view.length === 0) return;
    if (this._rxQueued === 0) this._rxWireAt = Math.max(this._rxWireAt, performance.now());
    this._rxQueue.push(view);
    this._rxQueued += view.length;
    if (this._rxTimer === null) this._rxSchedule(view.length);
  }

  /** Arms the receive timer for when `bytes` more bytes will have come in (max one tick). */
  _rxSchedule(bytes: number): void {
    const due = this._rxWireAt + bytes / this._rxRate - performance.now();
    const ms = Math.max(1, Math.min(TICK_MS, Math.ceil(due)));
    this._rxTimer = setTimeout(() => {
      this._rxTimer = null;
      this._rxPump();
    }, ms);
  }

  _rxPump(): void {
    let n = Math.floor((performance.now() - this._rxWireAt) * this._rxRate);
    if (n > this._rxQueued) n = this._rxQueued;
    if (n > 0) {
      const parts: Uint8Array[] = [];
      let left = n;
      while (left > 0) {
        const head = this._rxQueue[0]!;
        const take = Math.min(left, head.length - this._rxOffset);
        parts.push(head.subarray(this._rxOffset, this._rxOffset + take));
        left -= take;
        this._rxOffset += take;
        if (this._rxOffset === head.length) {
          this._rxQueue.shift();
          this._rxOffset = 0;
        }
      }
      this._rxQueued -= n;
      this._rxWireAt += n / this._rxRate;
      for (const part of parts) this._deliver(part);
    }
    if (this._rxQueued > 0) this._rxSchedule(Math.min(this._rxQueued, Math.max(1, Math.ceil(this._rxRate * TICK_MS))));
  }

  _resetReceive(): void {
    if (this._rxTimer !== null) clearTimeout(this._rxTimer);
    this._rxTimer = null;
    this._rxQueue = [];
    this._rxOffset = 0;
    this._rxQueued = 0;
  }

  _gone(port: Port): void {
    if (this._port !== port) return;
    this._port = null;
    this._resetQueue();
    this._resetReceive();
    if (!this._connected) return;
    this._connected = false;
    if (this._connCb !== null) this._connCb(false);
  }

  _resetQueue(): void {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    this._dropped += this._queued;
    this._queue = [];
    this._queueOffset = 0;
    this._queued = 0;
    this._wakeIdle();
  }

  _wakeIdle(): void {
    const waiters = this._idleWaiters;
    this._idleWaiters = [];
    for (const w of waiters) w();
  }

  write(data: Uint8Array): void {
    if (data.length === 0) return;
    if (!this._connected || this._port === null) {
      this._dropped += data.length;
      return;
    }
    const copy = Buffer.from(data); // copies: the firmware may reuse its buffer
    if (this._rate === 0) {
      this._send(copy);
      return;
    }
    if (this._queued === 0) this._wireAt = Math.max(this._wireAt, performance.now());
    this._queue.push(copy);
    this._queued += copy.length;
    if (this._timer === null) this._schedule(copy.length);
  }

  _send(buf: Buffer): void {
    const port = this._port;
    if (port === null) {
      this._dropped += buf.length;
      return;
    }
    // false only means "above highWaterMark": the stream keeps the data and writes it in order.
    port.write(buf, (err) => {
      if (err) this._log(`serial ${this.path}: write failed: ${err.message}`);
    });
  }

  /** Arms the timer for when `bytes` more bytes will have left the virtual wire (max one tick). */
  _schedule(bytes: number): void {
    const due = this._wireAt + bytes / this._rate - performance.now();
    const ms = Math.max(1, Math.min(TICK_MS, Math.ceil(due)));
    this._timer = setTimeout(() => {
      this._timer = null;
      this._pump();
    }, ms);
  }

  _pump(): void {
    const now = performance.now();
    let n = Math.floor((now - this._wireAt) * this._rate);
    if (n > this._queued) n = this._queued;
    if (n > 0) {
      const parts: Buffer[] = [];
      let left = n;
      while (left > 0) {
        const head = this._queue[0] as Buffer;
        const take = Math.min(left, head.length - this._queueOffset);
        parts.push(head.subarray(this._queueOffset, this._queueOffset + take));
        left -= take;
        this._queueOffset += take;
        if (this._queueOffset === head.length) {
          this._queue.shift();
          this._queueOffset = 0;
        }
      }
      this._queued -= n;
      this._wireAt += n / this._rate;
      this._send(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
    if (this._queued > 0) this._schedule(Math.min(this._queued, Math.max(1, Math.ceil(this._rate * TICK_MS))));
    else this._wakeIdle();
  }

  onData(cb: (data: Uint8Array) => void): void {
    this._dataCb = cb;
    const early = this._early;
    this._early = [];
    for (const chunk of early) cb(chunk);
  }

  onConnection(cb: (connected: boolean) => void): void {
    this._connCb = cb;
    if (this._connected) {
      queueMicrotask(() => {
        if (this._connCb === cb && this._connected) cb(true);
      });
    }
  }

  async drain(): Promise<void> {
    if (this._queued > 0) await new Promise<void>((resolve) => this._idleWaiters.push(resolve));
    const port = this._port;
    if (port === null || !port.isOpen) return;
    await new Promise<void>((resolve) => {
      port.drain((err) => {
        if (err) this._log(`serial ${this.path}: drain failed: ${err.message}`);
        resolve();
      });
    });
  }

  async reopen(path?: string): Promise<void> {
    await this.close();
    await this._open(path ?? this.path);
  }

  async close(): Promise<void> {
    const port = this._port;
    if (port === null) return;
    if (port.isOpen) {
      await new Promise<void>((resolve) => {
        port.close((err) => {
          if (err) this._log(`serial ${this.path}: close failed: ${err.message}`);
          resolve();
        });
      });
    }
    this._gone(port);
  }
}

/** Opens `path` (a pty end, or any serial port) and resolves once it is open. */
export async function openSerialByteLink(path: string, options: SerialByteLinkOptions = {}): Promise<SerialByteLink> {
  const link = new SerialByteLinkImpl(path, options);
  await link._open(path);
  return link;
}
