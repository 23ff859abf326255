// Two connected UART ends (Node side): what one end writes, the other end's receiver gets, after
// the time the bytes take on the line, in order, in chunks. A chip model keeps one end and hands
// the other (`device`) to the firmware as its platform `Uart`.
//
// - Timing: a write occupies the line for bytes x 10 bits / baud (8N1) after any earlier write in
//   the same direction; each chunk is delivered when its last byte has arrived, plus `latencyMs`
//   (a USB-serial bridge or a slow ISR). `baud: 0` delivers without byte time (only the latency).
//   Delivery always goes through a timer, never inside `write`, as on a real UART.
// - Chunks: a write is delivered in pieces of at most `chunkBytes` (default 32), so receivers are
//   exercised with frames split across callbacks, as a real driver's FIFO delivers them.
// - Faults: `setConnected(false)` cuts the line (bytes in flight and new writes are lost both
//   ways, as an unplugged cable); `flipNext(direction)` flips the lowest bit of the first byte of
//   the next write in that direction; `inject(direction, bytes)` puts line noise on the wire.

import type { Timers, Uart } from "../../device/platform/platform.ts";

export type UartDirection = "toDevice" | "toChip";

export interface UartPairOptions {
  timers: Timers;
  /** Line speed in bit/s (8N1: 10 bits a byte). Default 115200; 0 = no byte time. */
  baud?: number;
  /** Extra delay before a chunk reaches the receiver (ms). Default 0. */
  latencyMs?: number;
  /** Largest piece handed to a receiver at once. Default 32. */
  chunkBytes?: number;
}

export interface UartTransfer {
  direction: UartDirection;
  data: Uint8Array;
  delivered: boolean;
}

class End implements Uart {
  receiver: ((data: Uint8Array) => void) | null = null;
  constructor(private readonly send: (data: Uint8Array) => void) {}
  write(data: Uint8Array): void {
    this.send(data);
  }
  onData(cb: (data: Uint8Array) => void): void {
    this.receiver = cb;
  }
}

export class UartPair {
  /** The firmware's end (give it to the driver as its Uart). */
  readonly device: Uart;
  /** The chip model's end. */
  readonly chip: Uart;
  /** Optional tracer, called for every chunk when it is delivered or lost. */
  onTransfer: ((t: UartTransfer) => void) | null = null;
  readonly counters = { toDevice: 0, toChip: 0, lost: 0 };

  private readonly timers: Timers;
  private readonly baud: number;
  private readonly latencyMs: number;
  private readonly chunkBytes: number;
  private readonly deviceEnd: End;
  private readonly chipEnd: End;
  private connected = true;
  /** Incremented on every disconnect, so that chunks in flight from before it are dropped. */
  private epoch = 0;
  private lineFreeAt: Record<UartDirection, number> = { toDevice: 0, toChip: 0 };
  private flip: Record<UartDirection, boolean> = { toDevice: false, toChip: false };

  constructor(options: UartPairOptions) {
    this.timers = options.timers;
    this.baud = options.baud ?? 115200;
    this.latencyMs = options.latencyMs ?? 0;
    this.chunkBytes = Math.max(1, options.chunkBytes ?? 32);
    this.deviceEnd = new End((data) => this.transmit("toChip", data));
    this.chipEnd = new End((data) => this.transmit("toDevice", data));
    this.device = this.deviceEnd;
    this.chip = this.chipEnd;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Plugs or unplugs the line; unplugging loses every byte in flight. */
  setConnected(on: boolean): void {
    if (this.connected && !on) this.epoch++;
    this.connected = on;
  }

  /** Flips the lowest bit of the first byte of the next write in `direction`. */
  flipNext(direction: UartDirection): void {
    this.flip[direction] = true;
  }

  /** Line noise: `bytes` arrive at the receiver of `direction` as if they had been sent. */
  inject(direction: UartDirection, bytes: Uint8Array): void {
    this.schedule(direction, new Uint8Array(bytes));
  }

  /** Milliseconds that `n` bytes take on the line. */
  byteTimeMs(n: number): number {
    return this.baud > 0 ? (n * 10 * 1000) / this.baud : 0;
  }

  private transmit(direction: UartDirection, data: Uint8Array): void {
    const copy = new Uint8Array(data);
    if (this.flip[direction] && copy.length > 0) {
      this.flip[direction] = false;
      copy[0] ^= 0x01;
    }
    this.schedule(direction, copy);
  }

  private schedule(direction: UartDirection, data: Uint8Array): void {
    if (data.length === 0) return;
    if (!this.connected) {
      this.lose(direction, data);
      return;
    }
    const epoch = this.epoch;
    const start = Math.max(this.timers.now(), this.lineFreeAt[direction]);
    let at = start;
    for (let off = 0; off < data.length; off += this.chunkBytes) {
      const piece = data.slice(off, Math.min(data.length, off + this.chunkBytes));
      at += this.byteTimeMs(piece.length);
      const due = at + this.latencyMs;
      this.timers.setTimeout(() => this.deliver(direction, piece, epoch), Math.max(0, due - this.timers.now()));
    }
    this.lineFreeAt[direction] = at;
  }

  private deliver(direction: UartDirection, piece: Uint8Array, epoch: number): void {
    if (!this.connected || epoch !== this.epoch) {
      this.lose(direction, piece);
      return;
    }
    const end = direction === "toDevice" ? this.deviceEnd : this.chipEnd;
    this.counters[direction] += piece.length;
    if (this.onTransfer) this.onTransfer({ direction, data: piece, delivered: end.receiver !== null });
    if (end.receiver) end.receiver(piece);
  }

  private lose(direction: UartDirection, data: Uint8Array): void {
    this.counters.lost += data.length;
    if (this.onTransfer) this.onTransfer({ direction, data, delivered: false });
  }
}
