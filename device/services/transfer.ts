// Chunked data transfer from the host (firmware images, station data, election definitions):
// begin with the size, chunks at offsets, end. Chunks must arrive in order; a repeated chunk is
// answered again without being written twice; a chunk from the future gets the offset to resume
// from. What is received goes to a sink chosen by the transfer's kind; checking signatures and
// using the data belong to the sink (the commission-signed artifact issue adds real sinks).
// Engine subset.

import { Status, type CommandResult, type TransferBegin, type TransferChunk } from "../../protocol/generated/device_codec.ts";
import { crc32Update, crc32Final } from "./journal.ts";

/** Where the bytes of one kind of transfer go. */
export interface TransferSink {
  /** Prepares for `total` bytes; false refuses the transfer (too large, busy). */
  begin(total: number, name: string): boolean;
  write(offset: number, data: Uint8Array): boolean;
  /** All bytes are in; false when the sink rejects the whole (bad digest, bad signature). */
  finish(signature: Uint8Array): boolean;
}

/** A sink that keeps nothing but a CRC-32 of what came: the default for kinds with no sink yet. */
export class CountingSink implements TransferSink {
  crc: number;
  bytes: number;
  constructor() {
    this.crc = 0xffffffff;
    this.bytes = 0;
  }
  begin(): boolean {
    this.crc = 0xffffffff;
    this.bytes = 0;
    return true;
  }
  write(offset: number, data: Uint8Array): boolean {
    this.crc = crc32Update(this.crc, data, 0, data.length);
    this.bytes = offset + data.length;
    return true;
  }
  finish(): boolean {
    return true;
  }
  digest(): number {
    return crc32Final(this.crc);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Largest transfer accepted (bytes), whatever the sink. */
export const MAX_TRANSFER_BYTES = 4 * 1024 * 1024;

export class TransferReceiver {
  _sinks: { [kind: number]: TransferSink };
  _fallback: TransferSink;
  _sink: TransferSink | null;
  _kind: number;
  _total: number;
  _received: number;
  _complete: boolean;
  /** The digest the sender announced for the transfer in progress (empty: none). */
  _sha: Uint8Array;

  constructor(fallback: TransferSink) {
    this._sinks = {};
    this._fallback = fallback;
    this._sink = null;
    this._kind = 0;
    this._total = 0;
    this._received = 0;
    this._complete = false;
    this._sha = new Uint8Array(0);
  }

  setSink(kind: number, sink: TransferSink): void {
    this._sinks[kind] = sink;
  }

  _status(status: number, message: string): CommandResult {
    return { status: status, message: message, transfer: { receivedBytes: this._received, complete: this._complete } };
  }

  begin(b: TransferBegin): CommandResult {
    const total = b.totalBytes ?? 0;
    const kind = b.kind ?? 0;
    // The same transfer begun again (the host lost our answer, or resumes after a reconnect):
    // keep what we have so it continues from there. Same means same kind, size and announced
    // digest: another file of the same size must not be joined onto this one's bytes.
    const sha = b.sha256 ?? new Uint8Array(0);
    if (this._sink !== null && kind === this._kind && total === this._total && !this._complete && sameBytes(sha, this._sha)) {
      return this._status(Status.OK, "resume at " + this._received);
    }
    if (total <= 0 || total > MAX_TRANSFER_BYTES) return this._status(Status.BAD_ARGUMENT, "size out of range: " + total);
    const sink = this._sinks[kind] ?? this._fallback;
    if (!sink.begin(total, b.name ?? "")) return this._status(Status.BUSY, "transfer refused by its store");
    this._sink = sink;
    this._kind = kind;
    this._total = total;
    this._received = 0;
    this._complete = false;
    this._sha = sha;
    return this._status(Status.OK, "ready for " + total + " bytes");
  }

  chunk(c: TransferChunk): CommandResult {
    if (this._sink === null) return this._status(Status.BAD_ARGUMENT, "no transfer in progress");
    const offset = c.offset ?? 0;
    const data = c.data ?? new Uint8Array(0);
    if (offset + data.length <= this._received) return this._status(Status.OK, "already have it");
    if (offset !== this._received) return this._status(Status.BAD_ARGUMENT, "expected offset " + this._received);
    if (offset + data.length > this._total) return this._status(Status.BAD_ARGUMENT, "chunk past the end");
    if (!this._sink.write(offset, data)) return this._status(Status.ERROR, "store failed");
    this._received = offset + data.length;
    return this._status(Status.OK, "");
  }

  end(signature: Uint8Array): CommandResult {
    if (this._sink === null) return this._status(Status.BAD_ARGUMENT, "no transfer in progress");
    if (this._complete) return this._status(Status.OK, "complete");
    if (this._received !== this._total) return this._status(Status.BAD_ARGUMENT, "have " + this._received + " of " + this._total);
    if (!this._sink.finish(signature)) {
      this._sink = null;
      this._received = 0;
      return this._status(Status.DENIED, "rejected by its store");
    }
    this._complete = true;
    return this._status(Status.OK, "complete");
  }
}
