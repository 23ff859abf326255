// Protobuf wire-format primitives for the generated device codec (protocol/generated/).
// Engine subset (ENGINES.md): bitwise 32-bit arithmetic only, 64-bit values split into two
// 32-bit halves, UTF-8 by hand, no exceptions classes (errors are plain objects).
//
// 64-bit integers are JS numbers on the device: exact up to 2^53 - 1. The decoder refuses a
// value it cannot represent exactly instead of rounding it silently.

export interface Writer {
  b: Uint8Array;
  p: number;
}

export interface Reader {
  b: Uint8Array;
  p: number;
}

/** What the decoders throw; `tryDecode` turns it into a value. */
export interface CodecError {
  codecError: true;
  message: string;
  offset: number;
}

export interface DecodeResult<T> {
  value: T | null;
  error: string | null;
}

const TWO32 = 4294967296;
/** 2^53: the first integer a double cannot tell from its neighbour. */
const SAFE_LIMIT = 9007199254740992;
const SAFE_HI = 2097152; // 2^21: hi half of SAFE_LIMIT

export function codecError(message: string, offset: number): CodecError {
  return { codecError: true, message: message, offset: offset };
}

export function isCodecError(e: unknown): e is CodecError {
  return typeof e === "object" && e !== null && (e as CodecError).codecError === true;
}

export function tryDecode<T>(decode: (bytes: Uint8Array) => T, bytes: Uint8Array): DecodeResult<T> {
  try {
    return { value: decode(bytes), error: null };
  } catch (e) {
    if (isCodecError(e)) return { value: null, error: e.message + " at byte " + e.offset };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes

export function sizeVarint32(v: number): number {
  v = v >>> 0;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** int32: negative values take ten bytes (sign-extended to 64 bits). */
export function sizeInt32(v: number): number {
  return v < 0 ? 10 : sizeVarint32(v);
}

function sizeHalves(lo: number, hi: number): number {
  if (hi === 0) return sizeVarint32(lo);
  let n = 5;
  hi = hi >>> 0;
  // 32 bits of lo plus 3 bits of hi fit 5 bytes; each further byte carries 7 more bits of hi.
  hi = hi >>> 3;
  while (hi !== 0) {
    n++;
    hi = hi >>> 7;
  }
  return n;
}

function splitLo(v: number): number {
  return v % TWO32 >>> 0;
}

function splitHi(v: number): number {
  return Math.floor(v / TWO32) >>> 0;
}

/** uint64 and non-negative int64 from a number. */
export function sizeVarint64(v: number): number {
  if (v >= 0 && v < TWO32) return sizeVarint32(v);
  if (v < 0) return 10;
  return sizeHalves(splitLo(v), splitHi(v));
}

export function sizeSint32(v: number): number {
  return sizeVarint32(((v << 1) ^ (v >> 31)) >>> 0);
}

/** Zigzag of a 64-bit number, computed on halves (2|v| can exceed 2^53): sets ZLO and ZHI. */
let ZLO = 0;
let ZHI = 0;

function zigzag64(v: number): void {
  const m = v < 0 ? -v : v;
  const lo = splitLo(m);
  const hi = splitHi(m);
  let zlo = (lo << 1) >>> 0;
  let zhi = ((hi << 1) | (lo >>> 31)) >>> 0;
  if (v < 0) {
    // 2|v| - 1
    if (zlo === 0) zhi = (zhi - 1) >>> 0;
    zlo = (zlo - 1) >>> 0;
  }
  ZLO = zlo;
  ZHI = zhi;
}

export function sizeSint64(v: number): number {
  zigzag64(v);
  return sizeHalves(ZLO, ZHI);
}

// Strings are walked with for...of, never charCodeAt(i): XS keeps strings as UTF-8, so indexing
// by UTF-16 position is linear and a charCodeAt loop is quadratic on long strings.

export function sizeUtf8(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (ch.length > 1) n += 4;
    else n += 3;
  }
  return n;
}

export function sizeString(s: string): number {
  const n = sizeUtf8(s);
  return sizeVarint32(n) + n;
}

export function sizeBytes(b: Uint8Array): number {
  return sizeVarint32(b.length) + b.length;
}

// ---------------------------------------------------------------------------------------------
// Writing (the buffer is sized exactly beforehand)

export function writeVarint32(w: Writer, v: number): void {
  v = v >>> 0;
  const b = w.b;
  let p = w.p;
  while (v > 127) {
    b[p++] = (v & 127) | 128;
    v = v >>> 7;
  }
  b[p++] = v;
  w.p = p;
}

function writeHalves(w: Writer, lo: number, hi: number): void {
  const b = w.b;
  let p = w.p;
  while (hi !== 0) {
    b[p++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi = hi >>> 7;
  }
  while (lo > 127) {
    b[p++] = (lo & 127) | 128;
    lo = lo >>> 7;
  }
  b[p++] = lo;
  w.p = p;
}

export function writeInt32(w: Writer, v: number): void {
  if (v < 0) writeHalves(w, v >>> 0, 0xffffffff);
  else writeVarint32(w, v);
}

/** uint64 / int64 from a number (negative int64 in two's complement, ten bytes). */
export function writeVarint64(w: Writer, v: number): void {
  if (v >= 0 && v < TWO32) {
    writeVarint32(w, v);
    return;
  }
  if (v < 0) {
    const m = -v;
    let lo = splitLo(m);
    let hi = splitHi(m);
    // two's complement of (hi, lo)
    lo = ~lo >>> 0;
    hi = ~hi >>> 0;
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi = (hi + 1) >>> 0;
    writeHalves(w, lo, hi);
    return;
  }
  writeHalves(w, splitLo(v), splitHi(v));
}

export function writeSint32(w: Writer, v: number): void {
  writeVarint32(w, ((v << 1) ^ (v >> 31)) >>> 0);
}

export function writeSint64(w: Writer, v: number): void {
  zigzag64(v);
  writeHalves(w, ZLO, ZHI);
}

export function writeFixed32(w: Writer, v: number): void {
  const b = w.b;
  let p = w.p;
  b[p++] = v & 255;
  b[p++] = (v >>> 8) & 255;
  b[p++] = (v >>> 16) & 255;
  b[p++] = (v >>> 24) & 255;
  w.p = p;
}

export function writeFixed64(w: Writer, v: number): void {
  if (v < 0) {
    const m = -v;
    let lo = ~splitLo(m) >>> 0;
    let hi = ~splitHi(m) >>> 0;
    lo = (lo + 1) >>> 0;
    if (lo === 0) hi = (hi + 1) >>> 0;
    writeFixed32(w, lo);
    writeFixed32(w, hi);
    return;
  }
  writeFixed32(w, splitLo(v));
  writeFixed32(w, splitHi(v));
}

let scratchView: DataView | null = null;
let scratchBytes: Uint8Array | null = null;

function scratch(): DataView {
  if (scratchView === null) {
    const buf = new ArrayBuffer(8);
    scratchView = new DataView(buf);
    scratchBytes = new Uint8Array(buf);
  }
  return scratchView;
}

export function writeFloat(w: Writer, v: number): void {
  scratch().setFloat32(0, v, true);
  const s = scratchBytes as Uint8Array;
  for (let i = 0; i < 4; i++) w.b[w.p++] = s[i];
}

export function writeDouble(w: Writer, v: number): void {
  scratch().setFloat64(0, v, true);
  const s = scratchBytes as Uint8Array;
  for (let i = 0; i < 8; i++) w.b[w.p++] = s[i];
}

export function writeUtf8(w: Writer, s: string): void {
  const b = w.b;
  let p = w.p;
  for (const ch of s) {
    let c = ch.charCodeAt(0);
    if (c < 0x80) b[p++] = c;
    else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6);
      b[p++] = 0x80 | (c & 63);
    } else if (ch.length > 1) {
      // a surrogate pair: one code point above U+FFFF
      c = 0x10000 + ((c - 0xd800) << 10) + (ch.charCodeAt(1) - 0xdc00);
      b[p++] = 0xf0 | (c >> 18);
      b[p++] = 0x80 | ((c >> 12) & 63);
      b[p++] = 0x80 | ((c >> 6) & 63);
      b[p++] = 0x80 | (c & 63);
    } else {
      // lone surrogates are written as their 3-byte form (as protobufjs does)
      b[p++] = 0xe0 | (c >> 12);
      b[p++] = 0x80 | ((c >> 6) & 63);
      b[p++] = 0x80 | (c & 63);
    }
  }
  w.p = p;
}

export function writeString(w: Writer, s: string): void {
  writeVarint32(w, sizeUtf8(s));
  writeUtf8(w, s);
}

export function writeBytes(w: Writer, v: Uint8Array): void {
  writeVarint32(w, v.length);
  w.b.set(v, w.p);
  w.p += v.length;
}

// ---------------------------------------------------------------------------------------------
// Reading

function truncated(r: Reader): CodecError {
  return codecError("truncated input", r.p);
}

/** A varint read as its low 32 bits (upper bits of a 64-bit varint are checked and dropped). */
export function readVarint32(r: Reader): number {
  const b = r.b;
  let p = r.p;
  let v = 0;
  let shift = 0;
  let c = 0;
  do {
    if (p >= b.length) throw truncated(r);
    c = b[p++];
    if (shift < 32) v = (v | ((c & 127) << shift)) >>> 0;
    shift += 7;
    if (shift > 70) throw codecError("varint longer than 10 bytes", r.p);
  } while (c & 128);
  r.p = p;
  return v;
}

/** Reads a varint into halves; returns lo and leaves hi in HI. */
let HI = 0;

function readHalves(r: Reader): number {
  const b = r.b;
  let p = r.p;
  let lo = 0;
  let hi = 0;
  let shift = 0;
  let c = 0;
  do {
    if (p >= b.length) throw truncated(r);
    c = b[p++];
    const bits = c & 127;
    if (shift < 28) lo = (lo | (bits << shift)) >>> 0;
    else if (shift === 28) {
      lo = (lo | (bits << 28)) >>> 0;
      hi = bits >>> 4;
    } else if (shift < 64) hi = (hi | (bits << (shift - 32))) >>> 0;
    shift += 7;
    if (shift > 70) throw codecError("varint longer than 10 bytes", r.p);
  } while (c & 128);
  r.p = p;
  HI = hi;
  return lo;
}

function combineUnsigned(r: Reader, lo: number, hi: number): number {
  if (hi >= SAFE_HI) throw codecError("64-bit value above 2^53 cannot be held exactly", r.p);
  return hi * TWO32 + lo;
}

function combineSigned(r: Reader, lo: number, hi: number): number {
  if (hi & 0x80000000) {
    // negative: magnitude is the two's complement
    let mlo = ~lo >>> 0;
    let mhi = ~hi >>> 0;
    mlo = (mlo + 1) >>> 0;
    if (mlo === 0) mhi = (mhi + 1) >>> 0;
    if (mhi >= SAFE_HI) throw codecError("64-bit value below -2^53 cannot be held exactly", r.p);
    return -(mhi * TWO32 + mlo);
  }
  return combineUnsigned(r, lo, hi);
}

export function readInt32(r: Reader): number {
  return readVarint32(r) | 0;
}

export function readUint64(r: Reader): number {
  const lo = readHalves(r);
  return combineUnsigned(r, lo, HI);
}

export function readInt64(r: Reader): number {
  const lo = readHalves(r);
  return combineSigned(r, lo, HI);
}

export function readSint32(r: Reader): number {
  const v = readVarint32(r);
  return (v >>> 1) ^ -(v & 1);
}

export function readSint64(r: Reader): number {
  const lo = readHalves(r);
  const hi = HI;
  // zigzag decode on halves: n = (z >>> 1) ^ -(z & 1)
  const neg = lo & 1;
  let mlo = ((lo >>> 1) | (hi << 31)) >>> 0;
  const mhi = hi >>> 1;
  if (!neg) return combineUnsigned(r, mlo, mhi);
  // value = -(m + 1)
  if (mhi >= SAFE_HI) throw codecError("64-bit value below -2^53 cannot be held exactly", r.p);
  mlo = mhi * TWO32 + mlo;
  if (mlo + 1 > SAFE_LIMIT) throw codecError("64-bit value below -2^53 cannot be held exactly", r.p);
  return -(mlo + 1);
}

export function readBool(r: Reader): boolean {
  const lo = readHalves(r);
  return lo !== 0 || HI !== 0;
}

export function readFixed32(r: Reader): number {
  const b = r.b;
  const p = r.p;
  if (p + 4 > b.length) throw truncated(r);
  r.p = p + 4;
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

export function readSfixed32(r: Reader): number {
  return readFixed32(r) | 0;
}

export function readFixed64(r: Reader): number {
  const lo = readFixed32(r);
  const hi = readFixed32(r);
  return combineUnsigned(r, lo, hi);
}

export function readSfixed64(r: Reader): number {
  const lo = readFixed32(r);
  const hi = readFixed32(r);
  return combineSigned(r, lo, hi);
}

export function readFloat(r: Reader): number {
  if (r.p + 4 > r.b.length) throw truncated(r);
  const v = scratch();
  const s = scratchBytes as Uint8Array;
  for (let i = 0; i < 4; i++) s[i] = r.b[r.p++];
  return v.getFloat32(0, true);
}

export function readDouble(r: Reader): number {
  if (r.p + 8 > r.b.length) throw truncated(r);
  const v = scratch();
  const s = scratchBytes as Uint8Array;
  for (let i = 0; i < 8; i++) s[i] = r.b[r.p++];
  return v.getFloat64(0, true);
}

/** Reads a length prefix and returns the end offset of the field, checked against `end`. */
export function readLength(r: Reader, end: number): number {
  const n = readVarint32(r);
  const e = r.p + n;
  if (n > end - r.p) throw codecError("length " + n + " runs past the end of its message", r.p);
  return e;
}

export function readBytes(r: Reader, end: number): Uint8Array {
  const e = readLength(r, end);
  const out = r.b.slice(r.p, e);
  r.p = e;
  return out;
}

/** UTF-8 to a JS string; invalid sequences become U+FFFD (as TextDecoder does). */
export function readString(r: Reader, end: number): string {
  const e = readLength(r, end);
  const b = r.b;
  let p = r.p;
  // Codes gathered in chunks and joined once: repeated `s +=` is superlinear on XS.
  const parts: string[] = [];
  let u: number[] = [];
  while (p < e) {
    if (u.length >= 512) {
      parts.push(String.fromCharCode.apply(null, u));
      u = [];
    }
    const c = b[p++];
    if (c < 0x80) {
      u.push(c);
      continue;
    }
    let need = 0;
    let cp = 0;
    let min = 0;
    if (c >= 0xc2 && c < 0xe0) {
      need = 1;
      cp = c & 31;
      min = 0x80;
    } else if (c >= 0xe0 && c < 0xf0) {
      need = 2;
      cp = c & 15;
      min = 0x800;
    } else if (c >= 0xf0 && c < 0xf5) {
      need = 3;
      cp = c & 7;
      min = 0x10000;
    } else {
      u.push(0xfffd);
      continue;
    }
    let ok = true;
    let k = 0;
    for (; k < need; k++) {
      if (p + k >= e || (b[p + k] & 0xc0) !== 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (b[p + k] & 63);
    }
    if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
      u.push(0xfffd);
      p += k === 0 ? 0 : k;
      continue;
    }
    p += need;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 1023));
    } else u.push(cp);
  }
  r.p = e;
  if (parts.length === 0) return String.fromCharCode.apply(null, u);
  parts.push(String.fromCharCode.apply(null, u));
  return parts.join("");
}

/** Skips a field of an unknown number (or of an unexpected wire type). */
export function skipField(r: Reader, tag: number, end: number): void {
  if (tag >>> 3 === 0) throw codecError("field number 0", r.p);
  switch (tag & 7) {
    case 0:
      readHalves(r);
      break;
    case 1:
      if (r.p + 8 > end) throw truncated(r);
      r.p += 8;
      break;
    case 2:
      r.p = readLength(r, end);
      break;
    case 5:
      if (r.p + 4 > end) throw truncated(r);
      r.p += 4;
      break;
    default:
      throw codecError("unsupported wire type " + (tag & 7), r.p);
  }
  if (r.p > end) throw truncated(r);
}

/** A nested message or packed run must end exactly where its length said. */
export function checkEnd(r: Reader, end: number): void {
  if (r.p !== end) throw codecError("field runs past the end of its message", r.p);
}
