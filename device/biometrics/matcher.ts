// 1:1 minutiae matcher for the verification device: compares the live finger's template with
// the one enrolled for the voter.
//
// Method (engine subset: typed arrays, scratch buffers allocated once, nothing allocated while
// matching; coordinates in pixels at 197 px/cm, angles 0..255 for a full turn):
// 1. prepare(): each minutia's 8 nearest neighbours as edges: length, direction of the edge
//    relative to the minutia's direction, and the neighbour's direction relative to it, which
//    do not change when the finger is rotated or moved. An enrolled template's edges are also
//    indexed in 16 x 8 x 8 buckets (edge angle, direction difference, length). All of it is
//    computed once per enrolled template and kept compact (serializePrepared, loadPrepared);
//    a live probe needs no index (prepareProbe).
// 2. Local similarity: each probe edge is looked up in the enrolled index; every compatible
//    enrolled edge (length within 12 % or 6 px, both angles within 14 degrees) votes for the
//    two minutia pairs at the ends of the two edges, the closer the edges the more.
// 3. Alignment: the 12 minutia pairs with the most votes are seeds. From each seed the enrolled
//    minutiae are rotated and moved onto the probe and paired one to one, best first, within a
//    radius that grows with the distance from the seed (10 px + 8 %: elastic distortion) and
//    28 degrees of direction. The 3 best pairings are redone after a least-squares affine fit
//    to their pairs, which takes up the different stretch of x and y that some sensors' images
//    have and part of the distortion (its scales are held to 0.85..1.18, no mirroring).
// 4. Score of the best pairing: a logistic combination of the number of pairs, their votes,
//    how many of their neighbours are paired with each other's neighbours, how tightly they fit,
//    and how many minutiae lie where the two prints overlap and in all: partial overlap and
//    missing or spurious minutiae count against a match only where the prints overlap. The
//    weights were fitted on the FVC2002 B minutiae (bench/match.ts) and checked by leaving each
//    database out in turn: fitted on the other three, they gave the same error rates.
// The score is 200 + 20 x the log-odds of "same finger" (equal priors), held to 0..1000.
// DEFAULT_MATCH_THRESHOLD (245) was calibrated on the same data: at it, 3 of the 11,520
// impostor pairs match (0.026 %; at most 0.1 % on every database), and 9.1 % of the genuine
// pairs do not (DB3, the hardest, 20 %): polling stations must not let impostors through.
// Memory: about 20 KB of scratch for the module, about 2 KB + 54 bytes per minutia for an
// enrolled Prepared (the index's bucket table is 2 KB), 38 bytes per minutia for a probe.
// Cost on XS: see bench/match.ts (parse + prepare + score of a probe, median about 850,000).
import { TEMPLATE_MAX_MINUTIAE, type Template } from "./iso19794.ts";

/** At most this many minutiae take part in matching (the ones nearest the template's centre). */
export const MATCH_MAX_MINUTIAE = 48;
/** Score at and above which two templates are taken to come from the same finger. */
export const DEFAULT_MATCH_THRESHOLD = 245;

/** Tuning (read by bench/match_tune.ts; the firmware never changes it). */
export const MATCH_PARAMS = {
  dTolMin: 6,
  dTolRel: 0.12,
  aTol: 10,
  bTol: 10,
  seeds: 12,
  r0: 10,
  rc: 0.08,
  tTol: 20,
  m0: 12,
  m1: 10,
  sc: 3,
  smin: 0.85,
  refine: 3,
};
const P = MATCH_PARAMS;

const K = 8;
const MAXN = MATCH_MAX_MINUTIAE;
// Edge index key: 16 bins of the edge angle, 8 of the direction difference, 8 of the length.
const BUCKETS = 1024;
const PREPARED_MAGIC0 = 0x4d; // "M"
const PREPARED_MAGIC1 = 0x50; // "P"
const PREPARED_VERSION = 1;
const TO256 = 128 / Math.PI;
const COS = new Float32Array(256);
const SIN = new Float32Array(256);
for (let i = 0; i < 256; i++) {
  COS[i] = Math.cos((i * Math.PI) / 128);
  SIN[i] = Math.sin((i * Math.PI) / 128);
}

/** A template made ready for matching: everything that depends on it alone. */
export interface Prepared {
  /** Minutiae used (at most MATCH_MAX_MINUTIAE). */
  n: number;
  /** Coordinates at 197 px/cm. */
  x: Int16Array;
  y: Int16Array;
  /** Direction, 0..255 = 0..360 degrees. */
  t: Uint8Array;
  kind: Uint8Array;
  /** Edge e = i * 8 + r: the r-th nearest neighbour of minutia i (255: none). */
  nbr: Uint8Array;
  /** Edge length in px (255 at most). */
  ed: Uint8Array;
  /** Edge direction minus the minutia's direction. */
  ea: Uint8Array;
  /** Neighbour's direction minus the minutia's direction. */
  eb: Uint8Array;
  /** Edges sorted by bucketKey(); those of bucket k are order[bucketStart[k]..bucketStart[k+1]). */
  order: Uint16Array;
  bucketStart: Uint16Array;
}

// ---------------------------------------------------------------------------------------------
// Scratch, allocated once.

const kd = new Float64Array(K);
const NO_INDEX = new Uint16Array(0);
const byY = new Uint8Array(MAXN);
const S = new Uint16Array(MAXN * MAXN); // local similarity x 256
// The cells of S set by the last localSimilarity (their count may exceed the list's size).
const TOUCH_MAX = 768;
const touched = new Uint16Array(TOUCH_MAX);
let touchedCount = 0;
const MAX_SEEDS = 32;
const seedA = new Uint8Array(MAX_SEEDS);
const seedB = new Uint8Array(MAX_SEEDS);
const seedS = new Uint16Array(MAX_SEEDS);
const tx = new Float64Array(MAXN);
const ty = new Float64Array(MAXN);
const tt = new Uint8Array(MAXN);
const MAXC = MAXN * 12;
const candA = new Uint8Array(MAXC);
const candB = new Uint8Array(MAXC);
const candC = new Float32Array(MAXC);
const candO = new Uint16Array(MAXC);
const candQ = new Uint8Array(MAXC);
const costCount = new Uint16Array(64);
const usedA = new Uint8Array(MAXN);
const usedB = new Uint8Array(MAXN);
const pairA = new Uint8Array(MAXN);
const pairB = new Uint8Array(MAXN);
const pairC = new Float64Array(MAXN);
const mateA = new Uint8Array(MAXN);
const markB = new Uint8Array(MAXN);
const AF = new Float64Array(6);
const keep = new Uint8Array(TEMPLATE_MAX_MINUTIAE);
const keepD = new Float64Array(TEMPLATE_MAX_MINUTIAE);
const bucketCount = new Uint16Array(BUCKETS);
const edgeKey = new Uint16Array(MAXN * K);
// Best pairing found so far, and its overlap counts.
const bestA = new Uint8Array(MAXN);
const bestB = new Uint8Array(MAXN);
const bestC = new Float64Array(MAXN);
const ov = new Uint8Array(2);

// ---------------------------------------------------------------------------------------------
// prepare

/** Chooses the minutiae to use: all of them, or the MAXN nearest the centre of the template. */
function chooseMinutiae(tpl: Template): number {
  const n = tpl.count;
  if (n <= MAXN) {
    for (let i = 0; i < n; i++) keep[i] = i;
    return n;
  }
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < n; i++) {
    cx += tpl.x[i];
    cy += tpl.y[i];
  }
  cx /= n;
  cy /= n;
  for (let i = 0; i < n; i++) {
    const dx = tpl.x[i] - cx;
    const dy = tpl.y[i] - cy;
    keepD[i] = dx * dx + dy * dy;
  }
  // Selection of the MAXN smallest distances (insertion into a sorted prefix).
  let m = 0;
  for (let i = 0; i < n; i++) {
    const d = keepD[i];
    if (m === MAXN && d >= keepD[keep[MAXN - 1]]) continue;
    let p = m < MAXN ? m++ : MAXN - 1;
    while (p > 0 && keepD[keep[p - 1]] > d) {
      keep[p] = keep[p - 1];
      p--;
    }
    keep[p] = i;
  }
  return MAXN;
}

/** Index bucket of an edge: angle bin (16), direction-difference bin (8), length bin (8). */
function bucketKey(a: number, b: number, d: number): number {
  return ((a >> 4) << 6) | ((b >> 5) << 3) | (d > 127 ? 7 : d >> 4);
}

function buildIndex(ea: Uint8Array, eb: Uint8Array, ed: Uint8Array, nbr: Uint8Array, edges: number, order: Uint16Array, start: Uint16Array): void {
  bucketCount.fill(0);
  for (let e = 0; e < edges; e++) {
    if (nbr[e] === 255) continue;
    const k = bucketKey(ea[e], eb[e], ed[e]);
    edgeKey[e] = k;
    bucketCount[k]++;
  }
  let sum = 0;
  for (let k = 0; k < BUCKETS; k++) {
    const c = bucketCount[k];
    start[k] = sum;
    bucketCount[k] = sum;
    sum += c;
  }
  start[BUCKETS] = sum;
  for (let e = 0; e < edges; e++) if (nbr[e] !== 255) order[bucketCount[edgeKey[e]]++] = e;
}

function prepareTemplate(tpl: Template, withIndex: boolean): Prepared {
  const n = chooseMinutiae(tpl);
  const sx = 197 / (tpl.resX > 0 ? tpl.resX : 197);
  const sy = 197 / (tpl.resY > 0 ? tpl.resY : 197);
  const x = new Int16Array(n);
  const y = new Int16Array(n);
  const t = new Uint8Array(n);
  const kind = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const s = keep[i];
    const xs = Math.round(tpl.x[s] * sx);
    const ys = Math.round(tpl.y[s] * sy);
    x[i] = xs > 16383 ? 16383 : xs;
    y[i] = ys > 16383 ? 16383 : ys;
    t[i] = tpl.angle[s];
    kind[i] = tpl.kind[s];
  }
  const nbr = new Uint8Array(n * K);
  const ed = new Uint8Array(n * K);
  const ea = new Uint8Array(n * K);
  const eb = new Uint8Array(n * K);
  nbr.fill(255);
  // Minutiae by row (insertion sort), so that each one's nearest neighbours are looked for
  // outwards from it and the search stops once the row distance alone exceeds the K-th best.
  for (let i = 0; i < n; i++) {
    const yi = y[i];
    let p = i;
    while (p > 0 && y[byY[p - 1]] > yi) {
      byY[p] = byY[p - 1];
      p--;
    }
    byY[p] = i;
  }
  for (let p = 0; p < n; p++) {
    const i = byY[p];
    const base = i * K;
    const xi = x[i];
    const yi = y[i];
    let m = 0;
    kd.fill(1e12);
    for (let dir = -1; dir <= 1; dir += 2) {
      for (let q = p + dir; q >= 0 && q < n; q += dir) {
        const j = byY[q];
        const dy = y[j] - yi;
        const dy2 = dy * dy;
        const worst = kd[K - 1];
        if (dy2 >= worst) break;
        const dx = x[j] - xi;
        const d2 = dx * dx + dy2;
        if (d2 >= worst) continue;
        let r = m < K ? m++ : K - 1;
        while (r > 0 && kd[r - 1] > d2) {
          kd[r] = kd[r - 1];
          nbr[base + r] = nbr[base + r - 1];
          r--;
        }
        kd[r] = d2;
        nbr[base + r] = j;
      }
    }
    for (let r = 0; r < m; r++) {
      const j = nbr[base + r];
      const d = Math.sqrt(kd[r]);
      ed[base + r] = d > 255 ? 255 : Math.round(d);
      ea[base + r] = (Math.round(Math.atan2(yi - y[j], x[j] - xi) * TO256) - t[i]) & 255;
      eb[base + r] = (t[j] - t[i]) & 255;
    }
  }
  const p: Prepared = { n: n, x: x, y: y, t: t, kind: kind, nbr: nbr, ed: ed, ea: ea, eb: eb, order: NO_INDEX, bucketStart: NO_INDEX };
  if (withIndex) indexPrepared(p);
  return p;
}

/** Builds p's edge index if it has none (a probe prepared by prepareProbe). */
function indexPrepared(p: Prepared): void {
  if (p.bucketStart.length !== 0) return;
  let edges = 0;
  for (let e = 0; e < p.n * K; e++) if (p.nbr[e] !== 255) edges++;
  p.order = new Uint16Array(edges);
  p.bucketStart = new Uint16Array(BUCKETS + 1);
  buildIndex(p.ea, p.eb, p.ed, p.nbr, p.n * K, p.order, p.bucketStart);
}

/** Everything about a template that matching needs, computed once (for an enrolled template). */
export function prepare(tpl: Template): Prepared {
  return prepareTemplate(tpl, true);
}

/**
 * The same without the edge index, which only the enrolled side of a comparison uses: for a
 * live probe that is scored once. (Given as the enrolled side, it gets its index then.)
 */
export function prepareProbe(tpl: Template): Prepared {
  return prepareTemplate(tpl, false);
}

// ---------------------------------------------------------------------------------------------
// Stored form: "MP" | version | n | n x (x, y: 2 bytes each, t, kind) | n x 8 x (nbr, ed, ea, eb)
// | CRC-16/CCITT of everything before it (2 bytes). The index is rebuilt on loading (a few
// thousand steps) rather than stored, so a stored template cannot carry an inconsistent one.

function crc16(b: Uint8Array, end: number): number {
  let c = 0xffff;
  for (let i = 0; i < end; i++) {
    c ^= b[i] << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  }
  return c;
}

/** The compact stored form of a prepared template (6 + 38 bytes per minutia). */
export function serializePrepared(p: Prepared): Uint8Array {
  const n = p.n;
  const out = new Uint8Array(4 + n * 6 + n * K * 4 + 2);
  out[0] = PREPARED_MAGIC0;
  out[1] = PREPARED_MAGIC1;
  out[2] = PREPARED_VERSION;
  out[3] = n;
  let o = 4;
  for (let i = 0; i < n; i++) {
    out[o] = (p.x[i] >> 8) & 255;
    out[o + 1] = p.x[i] & 255;
    out[o + 2] = (p.y[i] >> 8) & 255;
    out[o + 3] = p.y[i] & 255;
    out[o + 4] = p.t[i];
    out[o + 5] = p.kind[i];
    o += 6;
  }
  for (let e = 0; e < n * K; e++) {
    out[o] = p.nbr[e];
    out[o + 1] = p.ed[e];
    out[o + 2] = p.ea[e];
    out[o + 3] = p.eb[e];
    o += 4;
  }
  const c = crc16(out, o);
  out[o] = c >> 8;
  out[o + 1] = c & 255;
  return out;
}

/** A prepared template from its stored form, or null if the bytes are not a valid one. */
export function loadPrepared(bytes: Uint8Array): Prepared | null {
  if (bytes.length < 6 || bytes[0] !== PREPARED_MAGIC0 || bytes[1] !== PREPARED_MAGIC1 || bytes[2] !== PREPARED_VERSION) return null;
  const n = bytes[3];
  if (n < 1 || n > MAXN || bytes.length !== 4 + n * 6 + n * K * 4 + 2) return null;
  const end = bytes.length - 2;
  if (crc16(bytes, end) !== ((bytes[end] << 8) | bytes[end + 1])) return null;
  const x = new Int16Array(n);
  const y = new Int16Array(n);
  const t = new Uint8Array(n);
  const kind = new Uint8Array(n);
  let o = 4;
  for (let i = 0; i < n; i++) {
    x[i] = (bytes[o] << 8) | bytes[o + 1];
    y[i] = (bytes[o + 2] << 8) | bytes[o + 3];
    t[i] = bytes[o + 4];
    kind[i] = bytes[o + 5];
    if (kind[i] > 2) return null;
    o += 6;
  }
  const nbr = new Uint8Array(n * K);
  const ed = new Uint8Array(n * K);
  const ea = new Uint8Array(n * K);
  const eb = new Uint8Array(n * K);
  for (let e = 0; e < n * K; e++) {
    const j = bytes[o];
    // A neighbour is another minutia of this template, or 255 (none) for the rest of the list.
    if (j !== 255) {
      if (j >= n || j === ((e / K) | 0)) return null;
      if (e % K !== 0 && nbr[e - 1] === 255) return null;
    }
    nbr[e] = j;
    ed[e] = bytes[o + 1];
    ea[e] = bytes[o + 2];
    eb[e] = bytes[o + 3];
    o += 4;
  }
  const p: Prepared = { n: n, x: x, y: y, t: t, kind: kind, nbr: nbr, ed: ed, ea: ea, eb: eb, order: NO_INDEX, bucketStart: NO_INDEX };
  indexPrepared(p);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Matching

/** Local similarity of every minutia pair (a's i, b's j) into S[i * MAXN + j], x 256. */
function localSimilarity(a: Prepared, b: Prepared): void {
  const nb = b.n;
  // Clear what the previous call set (all of S if its list overflowed).
  if (touchedCount > TOUCH_MAX) S.fill(0);
  else for (let k = 0; k < touchedCount; k++) S[touched[k]] = 0;
  let nt = 0;
  const aTol = P.aTol;
  const bTol = P.bTol;
  const aHi = 256 - aTol;
  const bHi = 256 - bTol;
  const wA = 256 / 3 / aTol;
  const wB = 256 / 3 / bTol;
  const start = a.bucketStart;
  const order = a.order;
  const aed = a.ed;
  const aea = a.ea;
  const aeb = a.eb;
  const anbr = a.nbr;
  const bnbr = b.nbr;
  const edges = nb * K;
  for (let f = 0; f < edges; f++) {
    const jb = bnbr[f];
    if (jb === 255) continue;
    const j = (f / K) | 0;
    const db = b.ed[f];
    const alpha = b.ea[f];
    const beta = b.eb[f];
    let td = db * P.dTolRel;
    if (td < P.dTolMin) td = P.dTolMin;
    const wD = 256 / 3 / td;
    // The bins that the tolerance windows reach: edge angle (circular, 16 units a bin),
    // direction difference (circular, 32 a bin), length (16 px a bin, the last one open).
    const loA = (alpha - aTol + 256) >> 4;
    const nA = ((alpha + aTol + 256) >> 4) - loA + 1;
    const loB = (beta - bTol + 256) >> 5;
    const nB = ((beta + bTol + 256) >> 5) - loB + 1;
    let loD = Math.floor(db - td);
    let hiD = Math.floor(db + td);
    loD = loD < 0 ? 0 : loD > 127 ? 7 : loD >> 4;
    hiD = hiD > 127 ? 7 : hiD >> 4;
    for (let qa = 0; qa < nA; qa++) {
      const ka = ((loA + qa) & 15) << 6;
      for (let qb = 0; qb < nB; qb++) {
        const kab = ka | (((loB + qb) & 7) << 3);
        const end = start[kab + hiD + 1];
        for (let q = start[kab + loD]; q < end; q++) {
          const e = order[q];
          let dd = aed[e] - db;
          if (dd < 0) dd = -dd;
          if (dd > td) continue;
          let d1 = (aea[e] - alpha) & 255;
          if (d1 > aTol) {
            if (d1 < aHi) continue;
            d1 = 256 - d1;
          }
          let d2 = (aeb[e] - beta) & 255;
          if (d2 > bTol) {
            if (d2 < bHi) continue;
            d2 = 256 - d2;
          }
          const v = (256.5 - dd * wD - d1 * wA - d2 * wB) | 0;
          if (v <= 0) continue;
          const p1 = ((e / K) | 0) * MAXN + j;
          const p2 = anbr[e] * MAXN + jb;
          const s1 = S[p1];
          const s2 = S[p2];
          if (s1 === 0) {
            if (nt < TOUCH_MAX) touched[nt] = p1;
            nt++;
          }
          S[p1] = s1 + v > 65535 ? 65535 : s1 + v;
          if (s2 === 0 && p2 !== p1) {
            if (nt < TOUCH_MAX) touched[nt] = p2;
            nt++;
          }
          S[p2] = s2 + v > 65535 ? 65535 : s2 + v;
        }
      }
    }
  }
  touchedCount = nt;
}

/** The minutia pairs with the highest local similarity, best first; returns how many. */
function pickSeeds(na: number): number {
  const M = P.seeds > MAX_SEEDS ? MAX_SEEDS : P.seeds;
  let m = 0;
  let floor = 0;
  // The cells that received votes (or all of them if there were too many to list).
  const all = touchedCount > TOUCH_MAX;
  const end = all ? na * MAXN : touchedCount;
  for (let k = 0; k < end; k++) {
    const c = all ? k : touched[k];
    const s = S[c];
    if (s <= floor) continue;
    const i = (c / MAXN) | 0;
    const j = c - i * MAXN;
    let p = m < M ? m++ : M - 1;
    while (p > 0 && seedS[p - 1] < s) {
      seedS[p] = seedS[p - 1];
      seedA[p] = seedA[p - 1];
      seedB[p] = seedB[p - 1];
      p--;
    }
    seedS[p] = s;
    seedA[p] = i;
    seedB[p] = j;
    if (m === M) floor = seedS[M - 1];
  }
  return m;
}

/** Moves a onto b: rotation rot (0..255) about (ox, oy), then (ox, oy) to (px, py). */
function transformRigid(a: Prepared, rot: number, ox: number, oy: number, px: number, py: number): void {
  const c = COS[rot & 255];
  const s = SIN[rot & 255];
  for (let i = 0; i < a.n; i++) {
    const dx = a.x[i] - ox;
    const dy = a.y[i] - oy;
    // Angles count counter-clockwise with y up; image rows grow downwards.
    tx[i] = px + c * dx + s * dy;
    ty[i] = py - s * dx + c * dy;
    tt[i] = (a.t[i] + rot) & 255;
  }
}

function transformAffine(a: Prepared): void {
  for (let i = 0; i < a.n; i++) {
    const x = a.x[i];
    const y = a.y[i];
    tx[i] = AF[0] * x + AF[1] * y + AF[4];
    ty[i] = AF[2] * x + AF[3] * y + AF[5];
    const c = COS[a.t[i]];
    const s = -SIN[a.t[i]];
    tt[i] = Math.round(Math.atan2(-(AF[2] * c + AF[3] * s), AF[0] * c + AF[1] * s) * TO256) & 255;
  }
}

/**
 * Least-squares affine map of the paired a minutiae onto their b mates into AF; false if the
 * pairs are degenerate or the map strays too far from a rotation (folds, scales, shears).
 */
function affineFit(a: Prepared, b: Prepared, m: number): boolean {
  let ax = 0;
  let ay = 0;
  let bx = 0;
  let by = 0;
  for (let k = 0; k < m; k++) {
    ax += a.x[pairA[k]];
    ay += a.y[pairA[k]];
    bx += b.x[pairB[k]];
    by += b.y[pairB[k]];
  }
  ax /= m;
  ay /= m;
  bx /= m;
  by /= m;
  let suu = 0;
  let suv = 0;
  let svv = 0;
  let sux = 0;
  let svx = 0;
  let suy = 0;
  let svy = 0;
  for (let k = 0; k < m; k++) {
    const u = a.x[pairA[k]] - ax;
    const v = a.y[pairA[k]] - ay;
    const X = b.x[pairB[k]] - bx;
    const Y = b.y[pairB[k]] - by;
    suu += u * u;
    suv += u * v;
    svv += v * v;
    sux += u * X;
    svx += v * X;
    suy += u * Y;
    svy += v * Y;
  }
  const det = suu * svv - suv * suv;
  if (det <= 1e-6 * (suu * svv + 1)) return false;
  const a11 = (sux * svv - svx * suv) / det;
  const a12 = (svx * suu - sux * suv) / det;
  const a21 = (suy * svv - svy * suv) / det;
  const a22 = (svy * suu - suy * suv) / det;
  // Singular values of [[a11 a12] [a21 a22]].
  const e = (a11 + a22) / 2;
  const f = (a11 - a22) / 2;
  const g = (a21 + a12) / 2;
  const h = (a21 - a12) / 2;
  const q = Math.sqrt(e * e + h * h);
  const r = Math.sqrt(f * f + g * g);
  if (q - r < P.smin || q + r > 1 / P.smin || a11 * a22 - a12 * a21 <= 0) return false;
  AF[0] = a11;
  AF[1] = a12;
  AF[2] = a21;
  AF[3] = a22;
  AF[4] = bx - a11 * ax - a12 * ay;
  AF[5] = by - a21 * ax - a22 * ay;
  return true;
}

const CELL = 32;
const INV_CELL = 1 / CELL;
const GRID_MAX = 24;
const gridHead = new Uint8Array(GRID_MAX * GRID_MAX);
const gridNext = new Uint8Array(MAXN);
let bBoxX0 = 0;
let bBoxY0 = 0;
let bBoxX1 = 0;
let bBoxY1 = 0;
let gridW = 1;
let gridH = 1;
let gridX = 0;
let gridY = 0;

/** Buckets b's minutiae into a grid of CELL-pixel cells (at most GRID_MAX a side, clamped). */
function buildGrid(b: Prepared): void {
  let x0 = 32767;
  let y0 = 32767;
  let x1 = -32768;
  let y1 = -32768;
  for (let j = 0; j < b.n; j++) {
    if (b.x[j] < x0) x0 = b.x[j];
    if (b.x[j] > x1) x1 = b.x[j];
    if (b.y[j] < y0) y0 = b.y[j];
    if (b.y[j] > y1) y1 = b.y[j];
  }
  gridX = x0;
  gridY = y0;
  bBoxX0 = x0;
  bBoxY0 = y0;
  bBoxX1 = x1;
  bBoxY1 = y1;
  gridW = Math.floor((x1 - x0) / CELL) + 1;
  gridH = Math.floor((y1 - y0) / CELL) + 1;
  if (gridW > GRID_MAX) gridW = GRID_MAX;
  if (gridH > GRID_MAX) gridH = GRID_MAX;
  gridHead.fill(255, 0, gridW * gridH);
  for (let j = b.n - 1; j >= 0; j--) {
    let gx = Math.floor((b.x[j] - x0) / CELL);
    let gy = Math.floor((b.y[j] - y0) / CELL);
    if (gx >= gridW) gx = gridW - 1;
    if (gy >= gridH) gy = gridH - 1;
    const c = gy * gridW + gx;
    gridNext[j] = gridHead[c];
    gridHead[c] = j;
  }
}

/**
 * Pairs the moved a minutiae (tx, ty, tt) with b's, one to one, best first, within a distance
 * that grows from the seed at (cx, cy); fills pairA/pairB/pairC; returns the number of pairs.
 */
function assign(a: Prepared, b: Prepared, cx: number, cy: number): number {
  const na = a.n;
  const nb = b.n;
  const bx = b.x;
  const by = b.y;
  const bt = b.t;
  const r0 = P.r0;
  const rc = P.rc;
  const tTol = P.tTol;
  const gw = gridW;
  const gh = gridH;
  let nc = 0;
  for (let i = 0; i < na; i++) {
    const xi = tx[i];
    const yi = ty[i];
    const ddx = xi - cx;
    const ddy = yi - cy;
    const r = r0 + rc * Math.sqrt(ddx * ddx + ddy * ddy);
    const r2 = r * r;
    const ti = tt[i];
    // The grid cells that the circle of radius r reaches (the last row and column of the grid
    // also hold whatever lies beyond them).
    if (xi - r > bBoxX1 || yi - r > bBoxY1) continue;
    const fx1 = (xi + r - gridX) * INV_CELL;
    const fy1 = (yi + r - gridY) * INV_CELL;
    if (fx1 < 0 || fy1 < 0) continue;
    const fx0 = (xi - r - gridX) * INV_CELL;
    const fy0 = (yi - r - gridY) * INV_CELL;
    const gx0 = fx0 < 0 ? 0 : fx0 >= gw ? gw - 1 : fx0 | 0;
    const gy0 = fy0 < 0 ? 0 : fy0 >= gh ? gh - 1 : fy0 | 0;
    const gx1 = fx1 >= gw ? gw - 1 : fx1 | 0;
    const gy1 = fy1 >= gh ? gh - 1 : fy1 | 0;
    for (let gy = gy0; gy <= gy1; gy++) {
      for (let gx = gx0; gx <= gx1; gx++) {
        for (let j = gridHead[gy * gw + gx]; j !== 255; j = gridNext[j]) {
          const dx = bx[j] - xi;
          const dy = by[j] - yi;
          const d2 = dx * dx + dy * dy;
          if (d2 > r2) continue;
          let da = (bt[j] - ti) & 255;
          if (da > 128) da = 256 - da;
          if (da > tTol || nc === MAXC) continue;
          candA[nc] = i;
          candB[nc] = j;
          candC[nc] = Math.sqrt(d2) / r + da / tTol;
          nc++;
        }
      }
    }
  }
  // Candidates by cost, a counting sort on the cost in 1/32 steps (the cost is below 2).
  costCount.fill(0);
  for (let c = 0; c < nc; c++) {
    let q = (candC[c] * 32) | 0;
    if (q > 63) q = 63;
    candQ[c] = q;
    costCount[q]++;
  }
  let sum = 0;
  for (let q = 0; q < 64; q++) {
    const v = costCount[q];
    costCount[q] = sum;
    sum += v;
  }
  for (let c = 0; c < nc; c++) candO[costCount[candQ[c]]++] = c;
  usedA.fill(0, 0, na);
  usedB.fill(0, 0, nb);
  let m = 0;
  for (let c = 0; c < nc; c++) {
    const o = candO[c];
    const i = candA[o];
    const j = candB[o];
    if (usedA[i] === 1 || usedB[j] === 1) continue;
    usedA[i] = 1;
    usedB[j] = 1;
    pairA[m] = i;
    pairB[m] = j;
    pairC[m] = candC[o];
    m++;
  }
  return m;
}

/** Into ov: moved a minutiae inside b's bounding box, and b minutiae inside the moved a's (8 px margin). */
function overlap(a: Prepared, b: Prepared): void {
  let x0 = bBoxX0 - 8;
  let y0 = bBoxY0 - 8;
  let x1 = bBoxX1 + 8;
  let y1 = bBoxY1 + 8;
  let c = 0;
  for (let i = 0; i < a.n; i++) {
    const x = tx[i];
    const y = ty[i];
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1) c++;
  }
  ov[0] = c;
  x0 = 32767;
  y0 = 32767;
  x1 = -32768;
  y1 = -32768;
  for (let i = 0; i < a.n; i++) {
    if (tx[i] < x0) x0 = tx[i];
    if (tx[i] > x1) x1 = tx[i];
    if (ty[i] < y0) y0 = ty[i];
    if (ty[i] > y1) y1 = ty[i];
  }
  c = 0;
  for (let j = 0; j < b.n; j++) if (b.x[j] >= x0 - 8 && b.x[j] <= x1 + 8 && b.y[j] >= y0 - 8 && b.y[j] <= y1 + 8) c++;
  ov[1] = c;
}

/** Sum over the pairs of min(1, local similarity / sc). */
function supportedPairs(m: number, pa: Uint8Array, pb: Uint8Array): number {
  const lim = P.sc * 256;
  let w = 0;
  for (let k = 0; k < m; k++) {
    const v = S[pa[k] * MAXN + pb[k]];
    w += v >= lim ? 1 : v / lim;
  }
  return w;
}

const REFINE_MAX = 8;
const refS = new Float64Array(REFINE_MAX);
const refSeed = new Uint8Array(REFINE_MAX);
const refSlot = new Uint8Array(REFINE_MAX);
const refM = new Uint8Array(REFINE_MAX);
const refA = new Uint8Array(REFINE_MAX * MAXN);
const refB = new Uint8Array(REFINE_MAX * MAXN);

/** The score that chooses among alignments: supported pairs squared over the overlap counts. */
function selection(a: Prepared, b: Prepared, m: number): number {
  overlap(a, b);
  const n0 = ov[0] < P.m0 ? P.m0 : ov[0];
  const n1 = ov[1] < P.m0 ? P.m0 : ov[1];
  const w = supportedPairs(m, pairA, pairB);
  let sc = (w * w) / (n0 * n1);
  if (w < P.m1) sc *= w / P.m1;
  return sc;
}

/**
 * What the last score was made of (for tests and the tuning tools): pairs, supported pairs,
 * local similarity of the pairs, enrolled and probe minutiae in the overlap, enrolled and probe
 * minutiae used, pairing cost, paired neighbours.
 */
export const matchFeatures = new Float64Array(9);

const W_PAIRS = 1.69;
const W_SUPPORTED = 1.64;
const W_LOCAL = 2.1;
const W_OVERLAP = -1.28;
const W_TOTAL = -1.51;
const W_COST = -0.81;
const W_NEIGHBOURS = 1.58;
const W_BIAS = 0.43;

/**
 * Similarity of enrolled template a and probe b: 200 + 20 x log-odds of the same finger, held
 * to 0..1000 (0 when no minutia pairs at all). a's edge index is used (built now if a came
 * from prepareProbe); b's edges are looked up in it.
 */
export function scorePrepared(a: Prepared, b: Prepared): number {
  indexPrepared(a);
  localSimilarity(a, b);
  const ns = pickSeeds(a.n);
  buildGrid(b);
  // Stage 1: every seed, a rigid alignment and pairing; the REFINE best pairings are kept (in
  // slots, refSlot[rank] naming the slot of each rank).
  const refine = P.refine > REFINE_MAX ? REFINE_MAX : P.refine;
  let nr = 0;
  for (let s = 0; s < ns; s++) {
    const i = seedA[s];
    const j = seedB[s];
    transformRigid(a, (b.t[j] - a.t[i]) & 255, a.x[i], a.y[i], b.x[j], b.y[j]);
    const m = assign(a, b, b.x[j], b.y[j]);
    const sc = selection(a, b, m);
    if (nr === refine && sc <= refS[nr - 1]) continue;
    let p = 0;
    let slot = 0;
    if (nr < refine) {
      p = nr;
      slot = nr;
      nr++;
    } else {
      p = nr - 1;
      slot = refSlot[p];
    }
    while (p > 0 && refS[p - 1] < sc) {
      refS[p] = refS[p - 1];
      refSlot[p] = refSlot[p - 1];
      refSeed[p] = refSeed[p - 1];
      p--;
    }
    refS[p] = sc;
    refSlot[p] = slot;
    refSeed[p] = s;
    refM[slot] = m;
    const o = slot * MAXN;
    for (let k = 0; k < m; k++) {
      refA[o + k] = pairA[k];
      refB[o + k] = pairB[k];
    }
  }
  // Stage 2: those pairings again after an affine fit to them.
  let best = 0;
  let bm = 0;
  let bo0 = 0;
  let bo1 = 0;
  for (let r = 0; r < nr; r++) {
    const s = refSeed[r];
    const i = seedA[s];
    const j = seedB[s];
    const slot = refSlot[r];
    let m = refM[slot];
    const o = slot * MAXN;
    for (let k = 0; k < m; k++) {
      pairA[k] = refA[o + k];
      pairB[k] = refB[o + k];
    }
    if (m >= 6 && affineFit(a, b, m)) transformAffine(a);
    else transformRigid(a, (b.t[j] - a.t[i]) & 255, a.x[i], a.y[i], b.x[j], b.y[j]);
    m = assign(a, b, b.x[j], b.y[j]);
    const sc = selection(a, b, m);
    if (sc > best) {
      best = sc;
      bm = m;
      bo0 = ov[0];
      bo1 = ov[1];
      for (let k = 0; k < m; k++) {
        bestA[k] = pairA[k];
        bestB[k] = pairB[k];
        bestC[k] = pairC[k];
      }
    }
  }
  if (bm === 0) {
    matchFeatures.fill(0);
    return 0;
  }
  // Features of the best pairing.
  const m = bm;
  mateA.fill(255, 0, a.n);
  for (let k = 0; k < m; k++) mateA[bestA[k]] = bestB[k];
  markB.fill(0, 0, b.n);
  let local = 0;
  let cost = 0;
  let nbrs = 0;
  for (let k = 0; k < m; k++) {
    const ia = bestA[k];
    const jb = bestB[k];
    local += S[ia * MAXN + jb];
    cost += bestC[k];
    // Neighbours of ia paired with neighbours of jb.
    for (let r = 0; r < K; r++) {
      const q = b.nbr[jb * K + r];
      if (q !== 255) markB[q] = 1;
    }
    for (let r = 0; r < K; r++) {
      const q = a.nbr[ia * K + r];
      if (q !== 255 && mateA[q] !== 255 && markB[mateA[q]] === 1) nbrs++;
    }
    for (let r = 0; r < K; r++) {
      const q = b.nbr[jb * K + r];
      if (q !== 255) markB[q] = 0;
    }
  }
  local /= 256;
  const w = supportedPairs(m, bestA, bestB);
  matchFeatures[0] = m;
  matchFeatures[1] = w;
  matchFeatures[2] = local;
  matchFeatures[3] = bo0;
  matchFeatures[4] = bo1;
  matchFeatures[5] = a.n;
  matchFeatures[6] = b.n;
  matchFeatures[7] = cost;
  matchFeatures[8] = nbrs;
  const z =
    W_PAIRS * Math.log(m + 1) +
    W_SUPPORTED * Math.log(w + 1) +
    W_LOCAL * Math.log(local + 1) +
    W_OVERLAP * (Math.log(bo0 + 1) + Math.log(bo1 + 1)) +
    W_TOTAL * (Math.log(a.n + 1) + Math.log(b.n + 1)) +
    W_COST * Math.log(cost + 1) +
    W_NEIGHBOURS * Math.log(nbrs + 1) +
    W_BIAS;
  const score = Math.round(z * 20) + 200;
  return score < 0 ? 0 : score > 1000 ? 1000 : score;
}

export interface MatcherOptions {
  /** Score at and above which templates match (DEFAULT_MATCH_THRESHOLD if not given). */
  threshold?: number;
}

/** 1:1 matcher with a configurable threshold. */
export class Matcher {
  threshold: number;

  constructor(options: MatcherOptions) {
    const t = options !== undefined && options !== null ? options.threshold : undefined;
    this.threshold = t === undefined ? DEFAULT_MATCH_THRESHOLD : t;
  }

  /** Similarity of enrolled template a and probe b (0..1000, see scorePrepared). */
  score(a: Prepared, b: Prepared): number {
    return scorePrepared(a, b);
  }

  /** Whether probe b comes from the same finger as enrolled template a. */
  matches(a: Prepared, b: Prepared): boolean {
    return scorePrepared(a, b) >= this.threshold;
  }
}
