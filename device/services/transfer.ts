// Chunked data transfer from the host (firmware images, station data, election definitions):
// begin with the size, chunks at offsets, end. Chunks must arrive in order; a repeated chunk is
// answered again without being written twice; a chunk from the future gets the offset to resume
// from. What is received goes to a sink chosen by the transfer's kind; checking signatures and
// using the data belong to the sink. Commission-signed artifacts (firmware, station register,
// election definition, configuration) go to an ArtifactSink: staged in flash, verified by the
// Authority when the last byte is in, handed to their consumer, then made current.
// Engine subset.

import {
  ArtifactKind,
  Status,
  TransferKind,
  decodeSignedArtifact,
  type CommandResult,
  type SignedArtifact,
  type TransferBegin,
  type TransferChunk,
} from "../../protocol/generated/device_codec.ts";
import { crc32Update, crc32Final } from "./journal.ts";
import { artifactKindName, type ArtifactHeader, type AuthError } from "./authority.ts";
import type { ArtifactStaging, ArtifactStore, ByteSource } from "./artifact_store.ts";

/** Where the bytes of one kind of transfer go. */
export interface TransferSink {
  /** Prepares for `total` bytes; false refuses the transfer (too large, busy). */
  begin(total: number, name: string): boolean;
  write(offset: number, data: Uint8Array): boolean;
  /** All bytes are in; false when the sink rejects the whole (bad digest, bad signature). */
  finish(signature: Uint8Array): boolean;
  /**
   * Optional second step after finish(), for checks that take time (signature verification on
   * the secure element): cb(null, message) accepts the transfer, cb(reason) refuses it.
   */
  complete?(cb: (err: string | null, message?: string) => void): void;
  /** Optional: why the last begin() refused. */
  refusal?(): string;
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
  /** Who began the transfer in progress (the technician whose authority was accepted). */
  _actor: string;
  /** The sink is checking the whole (between finish() and its answer). */
  _checking: boolean;

  constructor(fallback: TransferSink) {
    this._sinks = {};
    this._fallback = fallback;
    this._sink = null;
    this._kind = 0;
    this._total = 0;
    this._received = 0;
    this._complete = false;
    this._sha = new Uint8Array(0);
    this._actor = "";
    this._checking = false;
  }

  setSink(kind: number, sink: TransferSink): void {
    this._sinks[kind] = sink;
  }

  _status(status: number, message: string): CommandResult {
    return { status: status, message: message, transfer: { receivedBytes: this._received, complete: this._complete } };
  }

  /** True while a transfer is open: begun, not yet complete or refused. */
  active(): boolean {
    return this._sink !== null && !this._complete;
  }

  /** The technician who began the current (or last) transfer. */
  actor(): string {
    return this._actor;
  }

  kind(): number {
    return this._kind;
  }

  begin(b: TransferBegin, actor?: string): CommandResult {
    if (this._checking) return this._status(Status.BUSY, "checking the transfer just received");
    const total = b.totalBytes ?? 0;
    const kind = b.kind ?? 0;
    // The same transfer begun again (the host lost our answer, or resumes after a reconnect):
    // keep what we have so it continues from there. Same means same kind, size and announced
    // digest: another file of the same size must not be joined onto this one's bytes.
    const sha = b.sha256 ?? new Uint8Array(0);
    if (this._sink !== null && kind === this._kind && total === this._total && !this._complete && sameBytes(sha, this._sha)) {
      this._actor = actor ?? this._actor;
      return this._status(Status.OK, "resume at " + this._received);
    }
    if (total <= 0 || total > MAX_TRANSFER_BYTES) return this._status(Status.BAD_ARGUMENT, "size out of range: " + total);
    const sink = this._sinks[kind] ?? this._fallback;
    if (!sink.begin(total, b.name ?? "")) {
      this._sink = null;
      this._received = 0;
      this._complete = false;
      return this._status(Status.BUSY, sink.refusal !== undefined ? sink.refusal() : "transfer refused by its store");
    }
    this._actor = actor ?? "";
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
    if (this._complete || this._checking) return this._status(Status.BAD_ARGUMENT, "the transfer is already whole");
    if (offset !== this._received) return this._status(Status.BAD_ARGUMENT, "expected offset " + this._received);
    if (offset + data.length > this._total) return this._status(Status.BAD_ARGUMENT, "chunk past the end");
    if (!this._sink.write(offset, data)) return this._status(Status.ERROR, "store failed");
    this._received = offset + data.length;
    return this._status(Status.OK, "");
  }

  /** Ends the transfer; a sink with a second step answers later (use finish() for those). */
  end(signature: Uint8Array): CommandResult {
    let out: CommandResult | null = null;
    this.finish(signature, function (r: CommandResult) {
      out = r;
    });
    return out !== null ? out : this._status(Status.BUSY, "checking the transfer");
  }

  /** Ends the transfer: cb gets OK once the sink accepted the whole, DENIED with its reason if not. */
  finish(signature: Uint8Array, cb: (r: CommandResult) => void): void {
    const self = this;
    if (this._sink === null) {
      cb(this._status(Status.BAD_ARGUMENT, "no transfer in progress"));
      return;
    }
    if (this._complete) {
      cb(this._status(Status.OK, "complete"));
      return;
    }
    if (this._checking) {
      cb(this._status(Status.BUSY, "checking the transfer"));
      return;
    }
    if (this._received !== this._total) {
      cb(this._status(Status.BAD_ARGUMENT, "have " + this._received + " of " + this._total));
      return;
    }
    const sink = this._sink;
    if (!sink.finish(signature)) {
      this._sink = null;
      this._received = 0;
      cb(this._status(Status.DENIED, "rejected by its store"));
      return;
    }
    if (sink.complete === undefined) {
      this._complete = true;
      cb(this._status(Status.OK, "complete"));
      return;
    }
    this._checking = true;
    sink.complete(function (err: string | null, message?: string) {
      self._checking = false;
      if (err !== null) {
        self._sink = null;
        self._received = 0;
        cb(self._status(Status.DENIED, err));
        return;
      }
      self._complete = true;
      cb(self._status(Status.OK, message ?? "complete"));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Commission-signed artifacts

/** The artifact kind each transfer kind carries. */
export function artifactKindOf(transferKind: number): number {
  if (transferKind === TransferKind.FIRMWARE) return ArtifactKind.FIRMWARE;
  if (transferKind === TransferKind.STATION_DATA) return ArtifactKind.STATION_REGISTER;
  if (transferKind === TransferKind.ELECTION_DEFINITION) return ArtifactKind.ELECTION_DEFINITION;
  if (transferKind === TransferKind.CONFIGURATION) return ArtifactKind.CONFIGURATION;
  return ArtifactKind.UNSPECIFIED;
}

/** Hands a verified artifact to whoever uses it; cb(null) accepts, cb(reason) refuses. */
export type ArtifactConsumer = (kind: number, artifact: SignedArtifact, cb: (err: string | null) => void) => void;

/** What an ArtifactSink needs from the Authority. */
export interface ArtifactVerifier {
  verifySource(src: ByteSource, expectKind: number, cb: (err: AuthError | null, h?: ArtifactHeader) => void): void;
}

export interface ArtifactSinkOptions {
  /** The ArtifactKind this sink accepts. */
  kind: number;
  staging: ArtifactStaging;
  authority: ArtifactVerifier;
  /** Keeps the version floors (for artifacts staged elsewhere, e.g. firmware slots). */
  store: ArtifactStore;
  /**
   * The consumer (verification or tally service, ...). It gets the artifact decoded, except a
   * firmware artifact, which comes without its body (the bundle stays in its slot). Absent:
   * accepted as is.
   */
  deliver?: ArtifactConsumer;
  /** Called once the artifact is current (after the answer is decided): e.g. reboot into a firmware trial. */
  committed?: (kind: number, artifact: SignedArtifact) => void;
  /** Largest artifact read into RAM for the consumer (default 1 MiB). */
  maxInMemory?: number;
}

/**
 * A transfer sink for one kind of signed artifact: stages the bytes, and when they are all in,
 * verifies them (kind, station, version floor, commission signature), hands them to the consumer
 * and makes them current (artifact store or firmware slot, plus the version floor).
 */
export class ArtifactSink implements TransferSink {
  _o: ArtifactSinkOptions;
  _why: string;

  constructor(options: ArtifactSinkOptions) {
    this._o = options;
    this._why = "";
  }

  begin(total: number): boolean {
    const err = this._o.staging.begin(total);
    this._why = err ?? "";
    return err === null;
  }

  refusal(): string {
    return this._why;
  }

  write(offset: number, data: Uint8Array): boolean {
    return this._o.staging.write(offset, data);
  }

  /** The artifact carries its own signature: TransferEnd.signature is not used. */
  finish(): boolean {
    return true;
  }

  complete(cb: (err: string | null, message?: string) => void): void {
    const o = this._o;
    const src = o.staging.source();
    o.authority.verifySource(src, o.kind, function (err: AuthError | null, h?: ArtifactHeader) {
      if (err !== null || h === undefined) {
        cb(err !== null ? err.message : "not verified");
        return;
      }
      let a: SignedArtifact;
      if (o.kind === ArtifactKind.FIRMWARE) {
        a = { kind: h.kind, stationId: h.stationId, electionId: h.electionId, version: h.version, issuedMs: h.issuedMs, signature: h.signature };
      } else {
        if (src.length > (o.maxInMemory ?? 1048576)) {
          cb("the " + artifactKindName(h.kind) + " is too large to load (" + src.length + " bytes)");
          return;
        }
        try {
          a = decodeSignedArtifact(src.read(0, src.length));
        } catch (e) {
          cb("the " + artifactKindName(h.kind) + " does not decode");
          return;
        }
      }
      const commit = function (derr: string | null): void {
        if (derr !== null) {
          cb("the device did not take the " + artifactKindName(h.kind) + ": " + derr);
          return;
        }
        const cerr = o.staging.commit(h);
        const ferr = cerr !== null ? cerr : o.store.raiseFloor(h);
        if (ferr !== null) {
          cb("could not store the " + artifactKindName(h.kind) + ": " + ferr);
          return;
        }
        cb(null, "accepted " + artifactKindName(h.kind) + " version " + h.version + (h.reload ? " (already held: reloaded)" : ""));
        if (o.committed !== undefined) o.committed(h.kind, a);
      };
      if (o.deliver !== undefined) o.deliver(h.kind, a, commit);
      else commit(null);
    });
  }
}

export interface ArtifactSinksOptions {
  authority: ArtifactVerifier;
  store: ArtifactStore;
  /** Firmware slots (FirmwareUpdate.staging()); absent: firmware transfers keep the fallback sink. */
  firmware?: ArtifactStaging;
  deliver?: ArtifactConsumer;
  committed?: (kind: number, artifact: SignedArtifact) => void;
}

/** Installs an ArtifactSink for each transfer kind that carries a signed artifact. */
export function installArtifactSinks(rx: TransferReceiver, o: ArtifactSinksOptions): void {
  const kinds = [TransferKind.STATION_DATA, TransferKind.ELECTION_DEFINITION, TransferKind.CONFIGURATION, TransferKind.FIRMWARE];
  for (let i = 0; i < kinds.length; i++) {
    const tk = kinds[i];
    const staging = tk === TransferKind.FIRMWARE ? o.firmware : o.store.staging();
    if (staging === undefined) continue;
    rx.setSink(
      tk,
      new ArtifactSink({ kind: artifactKindOf(tk), staging: staging, authority: o.authority, store: o.store, deliver: o.deliver, committed: o.committed }),
    );
  }
}
