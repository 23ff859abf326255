// SHA-256 (FIPS 180-4) in the engine subset: a streaming hasher for artifacts read from flash
// and a one-shot function. Where a target has a native one (Espruino's crypto, Moddable's Digest)
// it may be passed in instead. Engine subset.

const SHA_K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** A running SHA-256: update() any number of times, then digest() once. */
export interface Hasher {
  update(data: Uint8Array, start: number, end: number): void;
  digest(): Uint8Array;
}

export class Sha256 implements Hasher {
  _h: Uint32Array;
  _w: Uint32Array;
  _buf: Uint8Array;
  _n: number;
  _len: number;

  constructor() {
    this._h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this._w = new Uint32Array(64);
    this._buf = new Uint8Array(64);
    this._n = 0;
    this._len = 0;
  }

  update(data: Uint8Array, start: number, end: number): void {
    let i = start;
    this._len += end - start;
    if (this._n > 0) {
      while (this._n < 64 && i < end) this._buf[this._n++] = data[i++];
      if (this._n < 64) return;
      this._block(this._buf, 0);
      this._n = 0;
    }
    while (end - i >= 64) {
      this._block(data, i);
      i += 64;
    }
    while (i < end) this._buf[this._n++] = data[i++];
  }

  digest(): Uint8Array {
    const bitsHi = Math.floor(this._len / 0x20000000);
    const bitsLo = (this._len * 8) >>> 0;
    const pad = new Uint8Array(this._n < 56 ? 64 - this._n : 128 - this._n);
    pad[0] = 0x80;
    const p = pad.length - 8;
    pad[p] = bitsHi >>> 24;
    pad[p + 1] = (bitsHi >>> 16) & 255;
    pad[p + 2] = (bitsHi >>> 8) & 255;
    pad[p + 3] = bitsHi & 255;
    pad[p + 4] = bitsLo >>> 24;
    pad[p + 5] = (bitsLo >>> 16) & 255;
    pad[p + 6] = (bitsLo >>> 8) & 255;
    pad[p + 7] = bitsLo & 255;
    const len = this._len;
    this.update(pad, 0, pad.length);
    this._len = len;
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      const v = this._h[i];
      out[i * 4] = v >>> 24;
      out[i * 4 + 1] = (v >>> 16) & 255;
      out[i * 4 + 2] = (v >>> 8) & 255;
      out[i * 4 + 3] = v & 255;
    }
    return out;
  }

  _block(b: Uint8Array, off: number): void {
    const w = this._w;
    for (let t = 0; t < 16; t++) {
      const j = off + t * 4;
      w[t] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    const h = this._h;
    let a = h[0];
    let bb = h[1];
    let c = h[2];
    let d = h[3];
    let e = h[4];
    let f = h[5];
    let g = h[6];
    let hh = h[7];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + SHA_K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & bb) ^ (a & c) ^ (bb & c);
      const t2 = (S0 + maj) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = bb;
      bb = a;
      a = (t1 + t2) | 0;
    }
    h[0] = h[0] + a;
    h[1] = h[1] + bb;
    h[2] = h[2] + c;
    h[3] = h[3] + d;
    h[4] = h[4] + e;
    h[5] = h[5] + f;
    h[6] = h[6] + g;
    h[7] = h[7] + hh;
  }
}

/** SHA-256 of a whole array. */
export function sha256(data: Uint8Array): Uint8Array {
  const s = new Sha256();
  s.update(data, 0, data.length);
  return s.digest();
}
