// Shared by the match benchmark and its tests: loads FVC-style minutiae databases, lists the
// evaluation pairs, and computes the error rates.
//
// A database is a folder of `<finger>_<impression>.iso` records (ISO/IEC 19794-2:2005). Pairs:
// - genuine: every pair of impressions of the same finger, each once (FVC: 8 impressions give
//   28 pairs per finger, 280 for 10 fingers);
// - impostor: every pair of impressions of two different fingers, each once (10 fingers of 8
//   impressions: 45 finger pairs x 8 x 8 = 2,880). The data README says "2,800"; that is
//   80 x 70 / 2, which does not count pairs of impressions: every cross-finger impression pair
//   is 80 x 72 / 2 = 2,880 (the README's 45 FVC impostor pairs, first impressions only, are a
//   subset). We use all 2,880.
// Score: the first record of a pair (lower finger, then lower impression) is the enrolled
// template, the second the probe.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseTemplate, type Template } from "../device/biometrics/iso19794.ts";

export interface Impression {
  finger: string;
  impression: number;
  file: string;
  bytes: Uint8Array;
  template: Template;
}

export interface Database {
  name: string;
  impressions: Impression[];
  genuine: [number, number][];
  impostor: [number, number][];
}

/** Every sub-folder of `dir` holding `.iso` records, as a database, sorted by name. */
export function loadDatabases(dir: string): Database[] {
  const out: Database[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isDirectory()) continue;
    const files = readdirSync(path).filter((f) => /^[^_]+_\d+\.iso$/.test(f));
    if (files.length === 0) continue;
    const impressions: Impression[] = [];
    for (const file of files) {
      const m = /^([^_]+)_(\d+)\.iso$/.exec(file);
      if (!m) continue;
      const bytes = new Uint8Array(readFileSync(join(path, file)));
      const r = parseTemplate(bytes);
      if (r.template === null) throw new Error(`${name}/${file}: ${r.detail}`);
      impressions.push({ finger: m[1], impression: Number(m[2]), file, bytes, template: r.template });
    }
    impressions.sort((a, b) => (a.finger === b.finger ? a.impression - b.impression : a.finger < b.finger ? -1 : 1));
    const genuine: [number, number][] = [];
    const impostor: [number, number][] = [];
    for (let i = 0; i < impressions.length; i++) {
      for (let j = i + 1; j < impressions.length; j++) {
        (impressions[i].finger === impressions[j].finger ? genuine : impostor).push([i, j]);
      }
    }
    out.push({ name, impressions, genuine, impostor });
  }
  return out;
}

export interface Rates {
  /** Equal error rate, %. */
  eerPct: number;
  /** FNMR at the lowest threshold where FMR <= 0.1 %, %. */
  fnmrAtFmr1e3Pct: number;
  /** That threshold. */
  thresholdAtFmr1e3: number;
  /** FNMR at the lowest threshold where no impostor matches, %. */
  fnmrAtZeroFmrPct: number;
}

/**
 * Error rates from genuine and impostor scores, a pair matching when score >= threshold.
 * EER: over every candidate threshold (each distinct score), the point where FMR and FNMR are
 * closest; the EER is their mean there (FVC's definition when they do not cross exactly).
 */
export function errorRates(genuine: number[], impostor: number[]): Rates {
  const thresholds = [...new Set([...genuine, ...impostor])].sort((a, b) => a - b);
  thresholds.push(Infinity);
  const g = [...genuine].sort((a, b) => a - b);
  const im = [...impostor].sort((a, b) => a - b);
  let gi = 0;
  let ii = 0;
  let best = Infinity;
  let eer = 100;
  let fnmr1e3 = 100;
  let t1e3 = Infinity;
  let fnmr0 = 100;
  let found1e3 = false;
  let found0 = false;
  for (const t of thresholds) {
    while (gi < g.length && g[gi] < t) gi++;
    while (ii < im.length && im[ii] < t) ii++;
    const fnmr = gi / g.length;
    const fmr = (im.length - ii) / im.length;
    const gap = Math.abs(fnmr - fmr);
    if (gap < best) {
      best = gap;
      eer = ((fnmr + fmr) / 2) * 100;
    }
    if (!found1e3 && fmr <= 0.001) {
      found1e3 = true;
      fnmr1e3 = fnmr * 100;
      t1e3 = t;
    }
    if (!found0 && fmr === 0) {
      found0 = true;
      fnmr0 = fnmr * 100;
    }
  }
  return { eerPct: eer, fnmrAtFmr1e3Pct: fnmr1e3, thresholdAtFmr1e3: t1e3, fnmrAtZeroFmrPct: fnmr0 };
}
