// Line impairments for byte streams: bit errors at a given rate, dropped and duplicated bytes.
// Deterministic from a seed, so a failing run can be replayed. Used on in-process links (fleets)
// and on the pseudo-terminal links of the simulator.

export interface LineNoiseOptions {
  /** Probability that any one bit is flipped (e.g. 1e-5). */
  bitErrorRate?: number;
  /** Probability that a byte is lost. */
  dropRate?: number;
  /** Probability that a byte is sent twice. */
  duplicateRate?: number;
  seed?: number;
}

export interface LineNoiseCounters {
  bytes: number;
  bitsFlipped: number;
  bytesDropped: number;
  bytesDuplicated: number;
}

/** A small, fast, seedable PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class LineNoise {
  readonly counters: LineNoiseCounters = { bytes: 0, bitsFlipped: 0, bytesDropped: 0, bytesDuplicated: 0 };
  private readonly rnd: () => number;
  private readonly byteErrorRate: number;

  constructor(readonly options: LineNoiseOptions) {
    this.rnd = seededRandom(options.seed ?? 1);
    // The chance that a byte has at least one flipped bit; which bit is drawn separately.
    this.byteErrorRate = 1 - Math.pow(1 - (options.bitErrorRate ?? 0), 8);
  }

  /** Returns the bytes as the far end receives them. */
  apply(data: Uint8Array): Uint8Array {
    const drop = this.options.dropRate ?? 0;
    const dup = this.options.duplicateRate ?? 0;
    if (this.byteErrorRate === 0 && drop === 0 && dup === 0) return data;
    const out: number[] = [];
    for (const b of data) {
      this.counters.bytes++;
      if (drop > 0 && this.rnd() < drop) {
        this.counters.bytesDropped++;
        continue;
      }
      let v = b;
      if (this.byteErrorRate > 0 && this.rnd() < this.byteErrorRate) {
        v ^= 1 << Math.floor(this.rnd() * 8);
        this.counters.bitsFlipped++;
      }
      out.push(v);
      if (dup > 0 && this.rnd() < dup) {
        out.push(v);
        this.counters.bytesDuplicated++;
      }
    }
    return Uint8Array.from(out);
  }
}
