// Authority: what the commission signs and what technicians may do. Engine subset.
//
// ARTIFACTS. A SignedArtifact is accepted only when
//   - it parses, carries a 64-byte signature and is of the kind expected;
//   - it is for this device's station: station_id "" (any station) or the device's station
//     (ArtifactStore.stationId(): the configuration's `station`, else the held station register's
//     or election definition's). A device without a station takes the first one it is given. A
//     configuration may name a new station only while the device holds no role data (station
//     register, election definition) of another station: clear the election first;
//   - it is not older than what the device accepted for that (kind, station): version >= floor,
//     and an equal version only with the same content (an idempotent reload);
//   - the commission's signature (P-256 over SHA-256 of the artifact encoded with `signature`
//     empty, as the device codec encodes it) verifies on the secure element against
//     platform.identity.commissionKey.
// Large artifacts (firmware) are parsed and hashed from flash through a ByteSource.
//
// COMMANDS that change the device carry Command.authority = an encoded Authority: a technician
// token (SignedArtifact of kind TECHNICIAN_TOKEN, body TechnicianToken) and the technician's
// signature over SHA-256(Command encoded with `authority` empty || device id (UTF-8) ||
// issued_ms as 8 bytes big-endian). Accepted when
//   - the token verifies against the commission key, names a technician and a 64-byte key;
//   - token.site is "*" or the device's site (ArtifactStore.site(): the configuration's `site`,
//     else the device's station id; a device with neither accepts only "*" tokens);
//   - the token is valid now: not_before_ms <= now < expires_ms on the device's wall clock. A
//     device whose clock is unset (0) accepts only SetTime: the token's validity is then checked
//     against issued_ms, and the time set must itself lie within the validity. When the clock is
//     set, issued_ms of any command but SetTime must be within AUTH_WINDOW_MS of it;
//   - issued_ms is greater than that of the last authority accepted (kept on flash in the
//     ArtifactStore before the command runs): an authority is never accepted twice;
//   - the technician's signature verifies with the token's key for this command and device.
// Checks run one at a time (the replay floor moves in order).

import type { WallClock } from "../platform/platform.ts";
import type { SeError } from "../drivers/secure_element.ts";
import {
  ArtifactKind,
  decodeAuthority,
  decodeSignedArtifact,
  decodeTechnicianToken,
  encodeCommand,
  encodeSignedArtifact,
  type Command,
  type SignedArtifact,
  type TechnicianToken,
  type Authority as AuthorityMessage,
} from "../../protocol/generated/device_codec.ts";
import {
  readVarint32,
  readInt32,
  readUint64,
  readString,
  readBytes,
  skipField,
  sizeUtf8,
  writeUtf8,
  writeVarint32,
  tryDecode,
  type Reader,
  type Writer,
} from "../../protocol/codec_runtime.ts";
import {
  Sha256,
  hashSource,
  memorySource,
  parseConfiguration,
  sameBytes,
  type ArtifactStore,
  type ByteSource,
  type Hasher,
} from "./artifact_store.ts";

export const AUTH_ERR_MALFORMED = 1;
export const AUTH_ERR_UNSIGNED = 2;
export const AUTH_ERR_BAD_SIGNATURE = 3;
export const AUTH_ERR_WRONG_KIND = 4;
export const AUTH_ERR_OTHER_STATION = 5;
export const AUTH_ERR_ROLLBACK = 6;
export const AUTH_ERR_NO_KEY = 7;
export const AUTH_ERR_MISSING = 8;
export const AUTH_ERR_EXPIRED = 9;
export const AUTH_ERR_NOT_YET_VALID = 10;
export const AUTH_ERR_OTHER_SITE = 11;
export const AUTH_ERR_REPLAY = 12;
export const AUTH_ERR_CLOCK = 13;
export const AUTH_ERR_SECURE_ELEMENT = 14;
export const AUTH_ERR_STORE = 15;

/** How far issued_ms may be from the device clock (commands other than SetTime). */
export const AUTH_WINDOW_MS = 3600000;
/** Largest configuration body (it is read into RAM to learn its station). */
export const MAX_CONFIGURATION_BYTES = 4096;

export interface AuthError {
  code: number;
  message: string;
}

function authError(code: number, message: string): AuthError {
  return { code: code, message: message };
}

const KIND_NAMES = ["unspecified", "firmware", "station register", "election definition", "configuration", "technician token"];

export function artifactKindName(kind: number): string {
  return kind >= 0 && kind < KIND_NAMES.length ? KIND_NAMES[kind] : "kind " + kind;
}

// ---------------------------------------------------------------------------------------------
// Parsing an artifact without holding its body

/** The fields of a SignedArtifact, with where its body lies in the source. */
export interface ArtifactHeader {
  kind: number;
  stationId: string;
  electionId: string;
  version: number;
  issuedMs: number;
  bodyOffset: number;
  bodyLength: number;
  signature: Uint8Array;
  /** Total bytes of the encoded artifact. */
  length: number;
  /** SHA-256 the signature covers (set by the verification). */
  digest: Uint8Array;
  /** The same version and content as the one already accepted. */
  reload: boolean;
}

const WINDOW = 512;
/** Longest field other than the body (station and election ids, signature) read into RAM. */
const BIG_WINDOW = 4096;

/**
 * Parses a SignedArtifact from a source, reading the small fields into RAM and only locating
 * the body. Returns the header or an error text. Like the codec: unknown fields are skipped and
 * a repeated field keeps its last value.
 */
export function parseArtifactHeader(src: ByteSource): ArtifactHeader | string {
  const total = src.length;
  const h: ArtifactHeader = {
    kind: 0,
    stationId: "",
    electionId: "",
    version: 0,
    issuedMs: 0,
    bodyOffset: 0,
    bodyLength: 0,
    signature: new Uint8Array(0),
    length: total,
    digest: new Uint8Array(0),
    reload: false,
  };
  let base = 0;
  let buf = src.read(0, total < WINDOW ? total : WINDOW);
  let pos = 0;
  let retried = false;
  while (pos < total) {
    if (pos < base || pos + 16 > base + buf.length) {
      base = pos;
      buf = src.read(pos, total - pos < WINDOW ? total - pos : WINDOW);
    }
    const r: Reader = { b: buf, p: pos - base };
    const end = buf.length;
    try {
      const tag = readVarint32(r);
      if ((tag & 7) === 2 && tag !== 18 && tag !== 26 && tag !== 58) {
        // The body and unknown length-delimited fields: located, not read.
        const n = readVarint32(r);
        const start = base + r.p;
        if (n > total - start) return "a field runs past the end of the artifact";
        if (tag === 50) {
          h.bodyOffset = start;
          h.bodyLength = n;
        } else if (tag >>> 3 === 0) return "field number 0";
        pos = start + n;
        retried = false;
        continue;
      }
      switch (tag) {
        case 8:
          h.kind = readInt32(r);
          break;
        case 18:
          h.stationId = readString(r, end);
          break;
        case 26:
          h.electionId = readString(r, end);
          break;
        case 32:
          h.version = readVarint32(r);
          break;
        case 40:
          h.issuedMs = readUint64(r);
          break;
        case 58:
          h.signature = readBytes(r, end);
          break;
        default:
          skipField(r, tag, end);
      }
    } catch (e) {
      // A field cut by the end of the window is read again from its start, in a larger window
      // if it has to be (strings up to BIG_WINDOW); cut by the end of the artifact: malformed.
      const size = base === pos ? BIG_WINDOW : WINDOW;
      if (retried || (base === pos && buf.length >= total - pos) || (base === pos && buf.length >= BIG_WINDOW)) {
        const m = typeof e === "object" && e !== null && (e as { message?: string }).message;
        return "malformed artifact: " + (m ? m : "bad field") + " at byte " + pos;
      }
      base = pos;
      buf = src.read(pos, total - pos < size ? total - pos : size);
      retried = base === pos && size === BIG_WINDOW;
      continue;
    }
    pos = base + r.p;
    retried = false;
  }
  return h;
}

/** SHA-256 of the artifact encoded with `signature` empty (what the commission signs). */
export function artifactDigest(src: ByteSource, h: ArtifactHeader, hasher: Hasher): Uint8Array {
  const head = encodeSignedArtifact({
    kind: h.kind,
    stationId: h.stationId,
    electionId: h.electionId,
    version: h.version,
    issuedMs: h.issuedMs,
  });
  hasher.update(head, 0, head.length);
  if (h.bodyLength > 0) {
    const pre = new Uint8Array(6);
    const w: Writer = { b: pre, p: 0 };
    pre[w.p++] = 50;
    writeVarint32(w, h.bodyLength);
    hasher.update(pre, 0, w.p);
    hashSource(hasher, src, h.bodyOffset, h.bodyOffset + h.bodyLength);
  }
  return hasher.digest();
}

/** The bytes a technician signs for a command: see the file comment. */
export function commandSigningBytes(cmd: Command, deviceId: string, issuedMs: number): Uint8Array {
  const bare: Command = {};
  Object.assign(bare, cmd);
  bare.authority = new Uint8Array(0);
  const c = encodeCommand(bare);
  const idLen = sizeUtf8(deviceId);
  const out = new Uint8Array(c.length + idLen + 8);
  out.set(c, 0);
  const w: Writer = { b: out, p: c.length };
  writeUtf8(w, deviceId);
  const hi = Math.floor(issuedMs / 4294967296);
  const lo = issuedMs - hi * 4294967296;
  const at = c.length + idLen;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 255;
  out[at + 2] = (hi >>> 8) & 255;
  out[at + 3] = hi & 255;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 255;
  out[at + 6] = (lo >>> 8) & 255;
  out[at + 7] = lo & 255;
  return out;
}

/** The body of a small artifact (token, configuration), read into RAM. */
function bodyOf(src: ByteSource, h: ArtifactHeader): Uint8Array {
  return src.read(h.bodyOffset, h.bodyLength);
}

// ---------------------------------------------------------------------------------------------

/** What the authority needs from the secure element driver. */
export interface SignatureVerifier {
  verify(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array, cb: (err: SeError | null, ok?: boolean) => void): void;
}

export interface AuthorityOptions {
  se: SignatureVerifier;
  /** platform.identity.commissionKey (X || Y); null: nothing signed is accepted. */
  commissionKey: Uint8Array | null;
  store: ArtifactStore;
  clock: WallClock;
  /** The device id the technician signs for (platform.identity.serial). */
  deviceId: string;
  /** The device's site, for technician tokens (store.site() unless the integrator knows better). */
  site(): string;
  /** A SHA-256 hasher; default the engine-subset one (Sha256). */
  hasher?: () => Hasher;
}

interface Job {
  cmd: Command;
  cb: (err: AuthError | null, technicianId?: string) => void;
}

export class Authority {
  _o: AuthorityOptions;
  _q: Job[];
  _busy: boolean;
  /** The last token whose commission signature verified (skips the chip for the next command). */
  _tok: Uint8Array | null;

  constructor(options: AuthorityOptions) {
    this._o = options;
    this._q = [];
    this._busy = false;
    this._tok = null;
  }

  _hasher(): Hasher {
    const f = this._o.hasher;
    return f !== undefined ? f() : new Sha256();
  }

  /** The technician whose authority was accepted last ("" for none). */
  technicianId(): string {
    return this._o.store.technicianId();
  }

  /** Verifies an artifact held in RAM; cb gets it decoded. */
  verifyArtifact(bytes: Uint8Array, expectKind: number, cb: (err: AuthError | null, a?: SignedArtifact) => void): void {
    this.verifySource(memorySource(bytes), expectKind, function (err: AuthError | null) {
      if (err !== null) {
        cb(err);
        return;
      }
      const d = tryDecode(decodeSignedArtifact, bytes);
      if (d.value === null) cb(authError(AUTH_ERR_MALFORMED, "artifact does not decode: " + d.error));
      else cb(null, d.value);
    });
  }

  /** Verifies an artifact read from a source (flash); cb gets its header, digest set. */
  verifySource(src: ByteSource, expectKind: number, cb: (err: AuthError | null, h?: ArtifactHeader) => void): void {
    const o = this._o;
    const parsed = parseArtifactHeader(src);
    if (typeof parsed === "string") {
      cb(authError(AUTH_ERR_MALFORMED, parsed));
      return;
    }
    const h = parsed;
    if (h.signature.length === 0) {
      cb(authError(AUTH_ERR_UNSIGNED, "the " + artifactKindName(h.kind) + " is not signed"));
      return;
    }
    if (h.signature.length !== 64) {
      cb(authError(AUTH_ERR_MALFORMED, "signature of " + h.signature.length + " bytes (P-256 r||s has 64)"));
      return;
    }
    if (h.kind !== expectKind) {
      cb(authError(AUTH_ERR_WRONG_KIND, "a " + artifactKindName(h.kind) + " where a " + artifactKindName(expectKind) + " was expected"));
      return;
    }
    if (h.version < 1) {
      cb(authError(AUTH_ERR_MALFORMED, "artifact without a version"));
      return;
    }
    const station = this._stationProblem(src, h);
    if (station !== null) {
      cb(station);
      return;
    }
    const floor = o.store.floor(h.kind, h.stationId);
    if (floor !== null && h.version < floor.version) {
      cb(authError(AUTH_ERR_ROLLBACK, "version " + h.version + " is older than version " + floor.version + " already accepted (no rollback)"));
      return;
    }
    if (o.commissionKey === null || o.commissionKey.length !== 64) {
      cb(authError(AUTH_ERR_NO_KEY, "this device has no commission key: it accepts nothing signed"));
      return;
    }
    h.digest = artifactDigest(src, h, this._hasher());
    o.se.verify(o.commissionKey, h.digest, h.signature, function (err: SeError | null, ok?: boolean) {
      if (err !== null) {
        cb(authError(AUTH_ERR_SECURE_ELEMENT, "secure element: " + err.message));
        return;
      }
      if (ok !== true) {
        cb(authError(AUTH_ERR_BAD_SIGNATURE, "the " + artifactKindName(h.kind) + " is not signed by the commission"));
        return;
      }
      if (floor !== null && h.version === floor.version) {
        if (!sameBytes(floor.digest, h.digest)) {
          cb(authError(AUTH_ERR_ROLLBACK, "version " + h.version + " was already accepted with other content"));
          return;
        }
        h.reload = true;
      }
      cb(null, h);
    });
  }

  _stationProblem(src: ByteSource, h: ArtifactHeader): AuthError | null {
    const store = this._o.store;
    if (h.kind === ArtifactKind.TECHNICIAN_TOKEN) return null;
    if (h.kind === ArtifactKind.CONFIGURATION) {
      if (h.bodyLength > MAX_CONFIGURATION_BYTES) {
        return authError(AUTH_ERR_MALFORMED, "configuration of " + h.bodyLength + " bytes (at most " + MAX_CONFIGURATION_BYTES + ")");
      }
      const named = parseConfiguration(bodyOf(src, h)).station;
      if (named !== "" && h.stationId !== "" && named !== h.stationId) {
        return authError(AUTH_ERR_MALFORMED, "configuration for station " + h.stationId + " names station " + named);
      }
      const target = named !== "" ? named : h.stationId;
      const roleData = store.roleDataStation();
      if (target !== "" && roleData !== "" && target !== roleData) {
        return authError(AUTH_ERR_OTHER_STATION, "configuration for station " + target + " but the device holds data of station " + roleData + ": clear the election first");
      }
      return null;
    }
    const mine = store.stationId();
    if (h.stationId !== "" && mine !== "" && h.stationId !== mine) {
      return authError(AUTH_ERR_OTHER_STATION, "the " + artifactKindName(h.kind) + " is for station " + h.stationId + "; this device serves station " + mine);
    }
    return null;
  }

  /** Checks the authority of a command that changes the device; cb gets the technician id. */
  checkCommand(cmd: Command, cb: (err: AuthError | null, technicianId?: string) => void): void {
    this._q.push({ cmd: cmd, cb: cb });
    if (!this._busy) this._next();
  }

  _next(): void {
    const self = this;
    const job = this._q.shift();
    if (job === undefined) {
      this._busy = false;
      return;
    }
    this._busy = true;
    this._check(job.cmd, function (err: AuthError | null, technicianId?: string) {
      job.cb(err, technicianId);
      self._next();
    });
  }

  _check(cmd: Command, done: (err: AuthError | null, technicianId?: string) => void): void {
    const o = this._o;
    const self = this;
    const key = o.commissionKey;
    if (key === null || key.length !== 64) {
      done(authError(AUTH_ERR_NO_KEY, "this device has no commission key: it accepts no technician authority"));
      return;
    }
    const raw = cmd.authority ?? new Uint8Array(0);
    if (raw.length === 0) {
      done(authError(AUTH_ERR_MISSING, "this command needs a technician's authority"));
      return;
    }
    const ad = tryDecode(decodeAuthority, raw);
    if (ad.value === null) {
      done(authError(AUTH_ERR_MALFORMED, "authority does not decode: " + ad.error));
      return;
    }
    const auth: AuthorityMessage = ad.value;
    const tokenBytes = auth.token ?? new Uint8Array(0);
    const sig = auth.signature ?? new Uint8Array(0);
    const issued = auth.issuedMs ?? 0;
    const tsrc = memorySource(tokenBytes);
    const th = parseArtifactHeader(tsrc);
    if (tokenBytes.length === 0 || typeof th === "string") {
      done(authError(AUTH_ERR_MALFORMED, "authority without a valid token" + (typeof th === "string" ? ": " + th : "")));
      return;
    }
    if (th.kind !== ArtifactKind.TECHNICIAN_TOKEN) {
      done(authError(AUTH_ERR_WRONG_KIND, "the authority's token is a " + artifactKindName(th.kind)));
      return;
    }
    if (th.signature.length !== 64) {
      done(authError(AUTH_ERR_UNSIGNED, "the technician token is not signed"));
      return;
    }
    const td = tryDecode(decodeTechnicianToken, bodyOf(tsrc, th));
    if (td.value === null) {
      done(authError(AUTH_ERR_MALFORMED, "technician token does not decode: " + td.error));
      return;
    }
    const tok: TechnicianToken = td.value;
    const tech = tok.technicianId ?? "";
    const pub = tok.publicKey ?? new Uint8Array(0);
    if (tech === "" || pub.length !== 64 || sig.length !== 64 || issued <= 0) {
      done(authError(AUTH_ERR_MALFORMED, "authority needs a technician id, a 64-byte key, a 64-byte signature and issued_ms"));
      return;
    }
    const site = o.site();
    const tsite = tok.site ?? "";
    if (tsite !== "*" && tsite !== site) {
      done(
        authError(
          AUTH_ERR_OTHER_SITE,
          "token of " + tech + " is for site " + (tsite === "" ? "(none)" : tsite) + "; this device is at " + (site === "" ? "no site yet" : "site " + site),
        ),
      );
      return;
    }
    const now = o.clock.wallMs();
    const setTime = cmd.setTime !== undefined;
    if (now === 0 && !setTime) {
      done(authError(AUTH_ERR_CLOCK, "the device clock is not set: set the time first"));
      return;
    }
    if (now !== 0 && !setTime && (issued > now + AUTH_WINDOW_MS || issued < now - AUTH_WINDOW_MS)) {
      done(authError(AUTH_ERR_CLOCK, "authority issued at " + issued + " but the device clock reads " + now + ": set the device's time first"));
      return;
    }
    const at = now !== 0 ? now : issued;
    const notBefore = tok.notBeforeMs ?? 0;
    const expires = tok.expiresMs ?? 0;
    if (at < notBefore) {
      done(authError(AUTH_ERR_NOT_YET_VALID, "token of " + tech + " is valid from " + notBefore + " (now " + at + ")"));
      return;
    }
    if (expires === 0 || at >= expires) {
      done(authError(AUTH_ERR_EXPIRED, "token of " + tech + " expired at " + expires + " (now " + at + ")"));
      return;
    }
    if (now === 0) {
      const t = cmd.setTime !== undefined ? (cmd.setTime.unixMs ?? 0) : 0;
      if (t < notBefore || t >= expires) {
        done(authError(AUTH_ERR_EXPIRED, "the time set (" + t + ") lies outside the token's validity"));
        return;
      }
    }
    if (issued <= o.store.lastIssuedMs()) {
      done(authError(AUTH_ERR_REPLAY, "authority issued at " + issued + " is not newer than the last accepted (" + o.store.lastIssuedMs() + "): a replay"));
      return;
    }
    const cmdDigest = sha256Of(this._hasher(), commandSigningBytes(cmd, o.deviceId, issued));
    const checkTechnician = function (): void {
      o.se.verify(pub, cmdDigest, sig, function (err: SeError | null, ok?: boolean) {
        if (err !== null) {
          done(authError(AUTH_ERR_SECURE_ELEMENT, "secure element: " + err.message));
          return;
        }
        if (ok !== true) {
          done(authError(AUTH_ERR_BAD_SIGNATURE, "the authority's signature does not match this command, this device and " + tech + "'s key"));
          return;
        }
        const serr = o.store.recordAuthority(issued, tech);
        if (serr !== null) {
          done(authError(AUTH_ERR_STORE, "cannot record the authority: " + serr));
          return;
        }
        done(null, tech);
      });
    };
    if (this._tok !== null && sameBytes(this._tok, tokenBytes)) {
      checkTechnician();
      return;
    }
    const tokDigest = artifactDigest(tsrc, th, this._hasher());
    o.se.verify(key, tokDigest, th.signature, function (err: SeError | null, ok?: boolean) {
      if (err !== null) {
        done(authError(AUTH_ERR_SECURE_ELEMENT, "secure element: " + err.message));
        return;
      }
      if (ok !== true) {
        done(authError(AUTH_ERR_BAD_SIGNATURE, "the token of " + tech + " is not signed by the commission"));
        return;
      }
      self._tok = tokenBytes;
      checkTechnician();
    });
  }
}

function sha256Of(h: Hasher, data: Uint8Array): Uint8Array {
  h.update(data, 0, data.length);
  return h.digest();
}
