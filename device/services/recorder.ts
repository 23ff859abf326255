// The recorder: turns events into journal records, one at a time: stamps the sequence number and
// time, signs the kinds that must be signed (on the secure element) and appends to the journal.
// Engine subset.

import { encodeRecord, RecordKind, type Record as JournalRecord } from "../../protocol/generated/device_codec.ts";
import type { WallClock } from "../platform/platform.ts";

/** What the recorder needs from the journal (device/services/journal.ts). */
export interface RecordSink {
  nextSeq(): number;
  /** Returns the sequence number given, or a negative error code (journal full, too large). */
  append(encode: (seq: number) => Uint8Array): number;
}

/** Signs a message with the device key: callback(err, 64-byte r||s). */
export type Signer = (message: Uint8Array, cb: (err: { code: number; message: string } | null, sig?: Uint8Array) => void) => void;

/** Record kinds signed by the device key (see RecordKind in the schema). */
export const SIGNED_KINDS = [
  RecordKind.AUDIT,
  RecordKind.VOTER_VERIFIED,
  RecordKind.VOTER_EXEMPTED,
  RecordKind.TURNOUT_HOURLY,
  RecordKind.TURNOUT_REPORT,
  RecordKind.RESULT,
  RecordKind.COMMAND,
];

export const RECORD_ERR_SIGN = -100;

export function isSignedKind(kind: number): boolean {
  return SIGNED_KINDS.indexOf(kind) >= 0;
}

/** The bytes a signature covers: the Record with its signature field empty. */
export function signingBytes(r: JournalRecord): Uint8Array {
  return encodeRecord({ seq: r.seq, timeMs: r.timeMs, kind: r.kind, payload: r.payload, prevSeq: r.prevSeq });
}

interface Pending {
  kind: number;
  payload: Uint8Array;
  cb: (seq: number) => void;
}

export interface RecorderOptions {
  journal: RecordSink;
  clock: WallClock;
  signer: Signer;
  /** Called after each record lands in the journal (the link sends it). */
  onAppended: (seq: number) => void;
  /** The last record already in the journal (see lastRecordSeq), chained from the next one. */
  prevSeq: number;
}

/** The journal's last existing record above what is acknowledged (skipped numbers passed over). */
export function lastRecordSeq(journal: { nextSeq(): number; ackedSeq(): number; read(seq: number): Uint8Array | null }): number {
  let s = journal.nextSeq() - 1;
  const floor = journal.ackedSeq();
  while (s > floor && journal.read(s) === null) s--;
  return s;
}

export class Recorder {
  _o: RecorderOptions;
  _queue: Pending[];
  _busy: boolean;
  _prev: number;

  constructor(options: RecorderOptions) {
    this._o = options;
    this._prev = options.prevSeq;
    this._queue = [];
    this._busy = false;
  }

  /** Journals a record; cb gets its sequence number or a negative error code. */
  record(kind: number, payload: Uint8Array, cb?: (seq: number) => void): void {
    this._queue.push({ kind: kind, payload: payload, cb: cb ?? function () {} });
    if (!this._busy) this._next();
  }

  /** Sets the record the next one chains to (after the journal is recovered at boot). */
  setPrevSeq(seq: number): void {
    this._prev = seq;
  }

  /** True while a record is being signed or queued. */
  busy(): boolean {
    return this._busy || this._queue.length > 0;
  }

  _next(): void {
    const self = this;
    // A loop, not recursion: a burst of unsigned records must not grow the stack (Espruino).
    for (;;) {
      const job = this._queue.shift();
      if (job === undefined) {
        this._busy = false;
        return;
      }
      this._busy = true;
      const rec: JournalRecord = {
        seq: this._o.journal.nextSeq(),
        timeMs: this._o.clock.wallMs(),
        kind: job.kind,
        payload: job.payload,
        prevSeq: this._prev,
      };
      if (!isSignedKind(job.kind)) {
        this._append(rec, job);
        continue;
      }
      this._o.signer(signingBytes(rec), function (err, sig) {
        if (err !== null || sig === undefined) job.cb(RECORD_ERR_SIGN);
        else {
          rec.signature = sig;
          self._append(rec, job);
        }
        self._next();
      });
      return;
    }
  }

  _append(rec: JournalRecord, job: Pending): void {
    const seq = this._o.journal.append(function (s: number) {
      // Records are appended one at a time, so the journal gives the number that was signed.
      rec.seq = s;
      return encodeRecord(rec);
    });
    job.cb(seq);
    if (seq > 0) {
      this._prev = seq;
      this._o.onAppended(seq);
    }
  }
}
