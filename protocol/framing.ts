// Line framing for every byte stream between a device and a host (USB CDC serial, BLE UART).
// Shared by the firmware and the host agent; engine subset (ENGINES.md).
//
// A frame carries one protobuf Envelope. Its body is
//     length (2 bytes, big-endian) | payload | CRC-16/XMODEM over length and payload (2 bytes, BE)
// written as base64 in one or more text lines:
//     "!" + base64 chunk + "\n"   the first fragment
//     "*" + base64 chunk + "\n"   each continuation
// Neither marker is in the base64 alphabet. Each chunk is at most 124 characters (a multiple of 4,
// so every line decodes on its own), so a line is at most 126 bytes with its marker and newline:
// short enough for small BLE MTUs and device buffers. Any line without a marker is console text.
//
// The decoder resynchronises by itself: a first-fragment marker always starts a new frame
// (reporting the unfinished one), stray continuations and bad CRCs are reported and dropped.

import { ErrorCode } from "./generated/device_codec.ts";

export const FIRST_MARKER = 33; // "!"
export const CONTINUATION_MARKER = 42; // "*"
export const CHUNK_CHARS = 124;
/** Longest line a receiver must accept, newline included. */
export const MAX_LINE_BYTES = 128;
/** Largest payload (encoded Envelope) in one frame. */
export const MAX_FRAME_PAYLOAD = 2048;
/** Longest console line kept; longer ones are cut (and marked). */
export const MAX_CONSOLE_CHARS = 512;

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
let b64Codes: Uint8Array | null = null;
let b64Lookup: Int16Array | null = null;
let crcTable: Uint16Array | null = null;

function codes(): Uint8Array {
  if (b64Codes === null) {
    b64Codes = new Uint8Array(64);
    for (let i = 0; i < 64; i++) b64Codes[i] = B64.charCodeAt(i);
  }
  return b64Codes;
}

function lookup(): Int16Array {
  if (b64Lookup === null) {
    b64Lookup = new Int16Array(128);
    b64Lookup.fill(-1);
    for (let i = 0; i < 64; i++) b64Lookup[B64.charCodeAt(i)] = i;
  }
  return b64Lookup;
}

function table(): Uint16Array {
  if (crcTable === null) {
    crcTable = new Uint16Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i << 8;
      for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
      crcTable[i] = c;
    }
  }
  return crcTable;
}

/** CRC-16/XMODEM (poly 0x1021, init 0, no reflection) of bytes[start, end). */
export function crc16Xmodem(bytes: Uint8Array, start: number, end: number): number {
  const t = table();
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ t[((crc >> 8) ^ bytes[i]) & 255]) & 0xffff;
  return crc;
}

/** Number of bytes on the wire (markers, base64 and newlines) for a payload of n bytes. */
export function framedSize(n: number): number {
  const chars = Math.ceil((n + 4) / 3) * 4;
  const lines = Math.ceil(chars / CHUNK_CHARS);
  return chars + lines * 2;
}

/** Encodes one payload as frame lines, returned as ASCII bytes ready for a link. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  if (n > MAX_FRAME_PAYLOAD) return new Uint8Array(0);
  const body = new Uint8Array(n + 4);
  body[0] = n >> 8;
  body[1] = n & 255;
  body.set(payload, 2);
  const crc = crc16Xmodem(body, 0, n + 2);
  body[n + 2] = crc >> 8;
  body[n + 3] = crc & 255;

  const c = codes();
  const out = new Uint8Array(framedSize(n));
  let o = 0;
  let col = CHUNK_CHARS; // forces a marker before the first group
  const total = body.length;
  for (let i = 0; i < total; i += 3) {
    if (col === CHUNK_CHARS) {
      if (o > 0) out[o++] = 10;
      out[o] = o === 0 ? FIRST_MARKER : CONTINUATION_MARKER;
      o++;
      col = 0;
    }
    const b0 = body[i];
    const b1 = i + 1 < total ? body[i + 1] : 0;
    const b2 = i + 2 < total ? body[i + 2] : 0;
    out[o++] = c[b0 >> 2];
    out[o++] = c[((b0 & 3) << 4) | (b1 >> 4)];
    out[o++] = i + 1 < total ? c[((b1 & 15) << 2) | (b2 >> 6)] : 61;
    out[o++] = i + 2 < total ? c[b2 & 63] : 61;
    col += 4;
  }
  out[o++] = 10;
  return out;
}

export interface FrameDecoderOptions {
  /** A complete frame whose CRC checked out: the payload (an encoded Envelope). */
  onFrame: (payload: Uint8Array) => void;
  /** A line that is not a frame: the device's console text. */
  onConsole: (text: string) => void;
  /** A framing problem; `code` is an ErrorCode from the schema. The decoder has already resynced. */
  onError: (code: number, detail: string) => void;
  maxFramePayload?: number;
}

/**
 * Turns lines (host: from @serialport/parser-readline) or raw bytes (device) into frames,
 * console text and errors.
 */
export class FrameDecoder {
  _o: FrameDecoderOptions;
  _max: number;
  /** The frame being assembled: body bytes received so far and the length it must reach. */
  _buf: Uint8Array;
  _have: number;
  _need: number;
  /** Byte-level line assembly (pushBytes). */
  _line: Uint8Array;
  _lineLen: number;
  _overlong: boolean;

  constructor(options: FrameDecoderOptions) {
    this._o = options;
    this._max = options.maxFramePayload ?? MAX_FRAME_PAYLOAD;
    this._buf = new Uint8Array(this._max + 4);
    this._have = 0;
    this._need = 0;
    this._line = new Uint8Array(MAX_LINE_BYTES);
    this._lineLen = 0;
    this._overlong = false;
  }

  /** True while a multi-line frame is half received. */
  inFrame(): boolean {
    return this._need > 0;
  }

  /** Drops any half-received frame (link reset). */
  reset(): void {
    this._need = 0;
    this._have = 0;
    this._lineLen = 0;
    this._overlong = false;
  }

  /** Feeds raw bytes; lines longer than MAX_LINE_BYTES are dropped with an error. */
  pushBytes(data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const b = data[i];
      if (b === 10) {
        if (this._overlong) {
          this._overlong = false;
          this._abandon();
          this._o.onError(ErrorCode.MALFORMED_FRAME, "line longer than " + MAX_LINE_BYTES + " bytes dropped");
        } else this._lineBytes(this._line, this._lineLen);
        this._lineLen = 0;
      } else if (this._lineLen < MAX_LINE_BYTES - 1) {
        this._line[this._lineLen++] = b;
      } else this._overlong = true;
    }
  }

  /** Feeds one line (without its newline). */
  pushLine(line: string): void {
    let n = line.length;
    if (n > 0 && line.charCodeAt(n - 1) === 13) n--;
    const first = n > 0 ? line.charCodeAt(0) : 0;
    if (first !== FIRST_MARKER && first !== CONTINUATION_MARKER) {
      this._console(line, n);
      return;
    }
    if (n > MAX_LINE_BYTES) {
      this._abandon();
      this._o.onError(ErrorCode.MALFORMED_FRAME, "frame line longer than " + MAX_LINE_BYTES + " bytes");
      return;
    }
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = line.charCodeAt(i);
      bytes[i] = c < 128 ? c : 0;
    }
    this._fragment(bytes, n);
  }

  _lineBytes(bytes: Uint8Array, n: number): void {
    if (n > 0 && bytes[n - 1] === 13) n--;
    const first = n > 0 ? bytes[0] : 0;
    if (first === FIRST_MARKER || first === CONTINUATION_MARKER) {
      this._fragment(bytes, n);
      return;
    }
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(bytes[i]);
    this._console(s, n);
  }

  _console(line: string, n: number): void {
    if (n === 0) return;
    if (n > MAX_CONSOLE_CHARS) this._o.onConsole(line.substring(0, MAX_CONSOLE_CHARS) + "...");
    else this._o.onConsole(n === line.length ? line : line.substring(0, n));
  }

  _abandon(): void {
    this._need = 0;
    this._have = 0;
  }

  /** One marker line of n bytes (marker included). */
  _fragment(line: Uint8Array, n: number): void {
    const first = line[0] === FIRST_MARKER;
    if (first && this._need > 0) {
      this._o.onError(ErrorCode.MALFORMED_FRAME, "frame cut short: " + this._have + " of " + this._need + " bytes");
      this._abandon();
    }
    if (!first && this._need === 0) {
      this._o.onError(ErrorCode.MALFORMED_FRAME, "continuation without a first fragment");
      return;
    }
    const chars = n - 1;
    if (chars === 0 || chars % 4 !== 0 || chars > CHUNK_CHARS) {
      this._abandon();
      this._o.onError(ErrorCode.MALFORMED_FRAME, "fragment of " + chars + " base64 characters");
      return;
    }
    const look = lookup();
    // Decode into the frame buffer; for a first fragment, learn the length from its first bytes.
    let have = this._have;
    const cap = this._buf.length;
    for (let i = 1; i < n; i += 4) {
      const c0 = line[i];
      const c1 = line[i + 1];
      const c2 = line[i + 2];
      const c3 = line[i + 3];
      const v0 = c0 < 128 ? look[c0] : -1;
      const v1 = c1 < 128 ? look[c1] : -1;
      const pad2 = c2 === 61;
      const pad3 = c3 === 61;
      const v2 = pad2 ? 0 : c2 < 128 ? look[c2] : -1;
      const v3 = pad3 ? 0 : c3 < 128 ? look[c3] : -1;
      const last = i + 4 >= n;
      if (v0 < 0 || v1 < 0 || v2 < 0 || v3 < 0 || (pad2 && !pad3) || ((pad2 || pad3) && !last)) {
        this._abandon();
        this._o.onError(ErrorCode.MALFORMED_FRAME, "bad base64 in frame line");
        return;
      }
      const count = pad2 ? 1 : pad3 ? 2 : 3;
      if (have + count > cap) {
        this._abandon();
        this._o.onError(ErrorCode.FRAME_TOO_LARGE, "frame longer than " + this._max + " bytes");
        return;
      }
      const triple = (v0 << 18) | (v1 << 12) | (v2 << 6) | v3;
      this._buf[have++] = (triple >> 16) & 255;
      if (count > 1) this._buf[have++] = (triple >> 8) & 255;
      if (count > 2) this._buf[have++] = triple & 255;
    }
    if (first) {
      const len = (this._buf[0] << 8) | this._buf[1];
      if (len > this._max) {
        this._abandon();
        this._o.onError(ErrorCode.FRAME_TOO_LARGE, "frame of " + len + " bytes, limit " + this._max);
        return;
      }
      this._need = len + 4;
    }
    this._have = have;
    if (have < this._need) return;
    const need = this._need;
    this._abandon();
    if (have > need) {
      this._o.onError(ErrorCode.MALFORMED_FRAME, "frame longer than its length field");
      return;
    }
    const crc = (this._buf[need - 2] << 8) | this._buf[need - 1];
    if (crc16Xmodem(this._buf, 0, need - 2) !== crc) {
      this._o.onError(ErrorCode.BAD_CRC, "frame CRC mismatch");
      return;
    }
    this._o.onFrame(this._buf.slice(2, need - 2));
  }
}
