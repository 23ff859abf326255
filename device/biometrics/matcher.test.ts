// The 1:1 minutiae matcher on the real minutiae of the shared FVC2002 data: genuine pairs match
// and impostors do not (at the default threshold), rotation and translation leave the score
// alone, partial prints and missing or spurious minutiae still match, the stored form of a
// prepared template scores the same and garbage is refused, and the firmware bundle gives the
// same scores on Moddable XS as on Node.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { loadDatabases, type Database } from "../../bench/match_data.ts";
import { MatchXs, buildMatchBundle } from "../../bench/match_xs.ts";
import { checkBundle } from "../../tools/bundle_check.ts";
import { encodeTemplate, parseCompactCard, encodeCompactCard, type Template } from "./iso19794.ts";
import {
  DEFAULT_MATCH_THRESHOLD,
  MATCH_MAX_MINUTIAE,
  Matcher,
  loadPrepared,
  matchFeatures,
  prepare,
  prepareProbe,
  scorePrepared,
  serializePrepared,
  type Prepared,
} from "./matcher.ts";
import { FVC2002_DIR } from "../../simulator/data/fingerprints.ts";

const DATA = FVC2002_DIR;
const dbs: Database[] = loadDatabases(DATA);
const byName = (name: string): Database => {
  const db = dbs.find((d) => d.name === name);
  if (!db) throw new Error(`no ${name} in ${DATA}`);
  return db;
};
const DB1 = byName("DB1_B");
const t = (db: Database, file: string): Template => {
  const im = db.impressions.find((i) => i.file === file);
  if (!im) throw new Error(`no ${file}`);
  return im.template;
};

function copy(src: Template, count: number): Template {
  return {
    width: src.width,
    height: src.height,
    resX: src.resX,
    resY: src.resY,
    count,
    x: new Uint16Array(count),
    y: new Uint16Array(count),
    angle: new Uint8Array(count),
    kind: new Uint8Array(count),
    quality: new Uint8Array(count),
  };
}

/** Rotated by `deg` (counter-clockwise) about the image centre and moved by (dx, dy), in an 800 x 800 image. */
function rotated(src: Template, deg: number, dx: number, dy: number): Template {
  const out = copy(src, src.count);
  out.width = 800;
  out.height = 800;
  const r = (deg * Math.PI) / 180;
  for (let i = 0; i < src.count; i++) {
    const u = src.x[i] - src.width / 2;
    const v = -(src.y[i] - src.height / 2);
    out.x[i] = Math.round(400 + dx + u * Math.cos(r) - v * Math.sin(r));
    out.y[i] = Math.round(400 + dy - (u * Math.sin(r) + v * Math.cos(r)));
    out.angle[i] = Math.round(src.angle[i] + (deg * 256) / 360) & 255;
    out.kind[i] = src.kind[i];
  }
  return out;
}

/** The minutiae for which keep(i) holds. */
function subset(src: Template, keep: (i: number) => boolean): Template {
  const idx: number[] = [];
  for (let i = 0; i < src.count; i++) if (keep(i)) idx.push(i);
  const out = copy(src, idx.length);
  idx.forEach((s, k) => {
    out.x[k] = src.x[s];
    out.y[k] = src.y[s];
    out.angle[k] = src.angle[s];
    out.kind[k] = src.kind[s];
  });
  return out;
}

describe("matching the shared FVC2002 data", () => {
  test("genuine pairs score at or above the default threshold more often than not, impostors below", () => {
    const matcher = new Matcher({});
    assert.equal(matcher.threshold, DEFAULT_MATCH_THRESHOLD);
    for (const db of dbs) {
      const p = db.impressions.map((im) => prepare(im.template));
      // Every genuine pair of the first 4 fingers; impostor pairs spread over the whole list.
      const genuine = db.genuine.slice(0, 112);
      const impostor = db.impostor.filter((_, k) => k % 4 === 0);
      const gMatch = genuine.filter(([a, b]) => matcher.matches(p[a], p[b])).length;
      const iMatch = impostor.filter(([a, b]) => matcher.matches(p[a], p[b])).length;
      assert.ok(gMatch / genuine.length > 0.6, `${db.name}: ${gMatch} of ${genuine.length} genuine pairs match`);
      assert.ok(iMatch / impostor.length < 0.005, `${db.name}: ${iMatch} of ${impostor.length} impostor pairs match`);
    }
  });

  test("a template matches itself, far above any other impression", () => {
    for (const db of dbs) {
      const a = prepare(db.impressions[0].template);
      const self = scorePrepared(a, prepareProbe(db.impressions[0].template));
      assert.ok(self >= DEFAULT_MATCH_THRESHOLD + 100, `${db.name}: ${self}`);
      for (let k = 1; k < 8; k++) assert.ok(scorePrepared(a, prepare(db.impressions[k].template)) < self);
      assert.equal(matchFeatures[5], Math.min(db.impressions[0].template.count, MATCH_MAX_MINUTIAE));
    }
  });

  test("rotation and translation leave the score within a few points", () => {
    const enrolled = t(DB1, "101_1.iso");
    const probe = prepare(t(DB1, "101_3.iso"));
    const base = scorePrepared(prepare(enrolled), probe);
    assert.ok(base >= DEFAULT_MATCH_THRESHOLD, `genuine pair ${base}`);
    for (const [deg, dx, dy] of [
      [0, 50, -70],
      [17, 0, 0],
      [45, -30, 25],
      [90, 10, 10],
      [180, -60, 40],
      [271, 33, -12],
    ]) {
      const s = scorePrepared(prepare(rotated(enrolled, deg, dx, dy)), probe);
      assert.ok(Math.abs(s - base) <= 8, `rotated ${deg} degrees, moved (${dx}, ${dy}): ${s} vs ${base}`);
      // And the same for the probe side.
      const s2 = scorePrepared(prepare(enrolled), prepare(rotated(t(DB1, "101_3.iso"), deg, dx, dy)));
      assert.ok(Math.abs(s2 - base) <= 8, `probe rotated ${deg}: ${s2} vs ${base}`);
    }
    const self = scorePrepared(prepare(enrolled), prepare(rotated(enrolled, 123, 5, 9)));
    assert.ok(self >= DEFAULT_MATCH_THRESHOLD + 100, `a rotated copy of itself: ${self}`);
  });

  test("partial overlap, missing and spurious minutiae", () => {
    const full = t(DB1, "102_2.iso");
    const enrolled = prepare(full);
    // Only the upper 60 % of the print.
    let y0 = Infinity;
    let y1 = 0;
    for (let i = 0; i < full.count; i++) {
      y0 = Math.min(y0, full.y[i]);
      y1 = Math.max(y1, full.y[i]);
    }
    const top = subset(full, (i) => full.y[i] < y0 + 0.6 * (y1 - y0));
    assert.ok(top.count < full.count * 0.8);
    assert.ok(scorePrepared(enrolled, prepare(top)) >= DEFAULT_MATCH_THRESHOLD, "upper part");
    // A quarter of the minutiae missing and as many spurious ones added, all moved a little.
    const noisy = copy(full, full.count);
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    let n = 0;
    for (let i = 0; i < full.count; i++) {
      if (i % 4 === 0) continue;
      noisy.x[n] = Math.max(0, Math.min(299, full.x[i] + Math.round(rand() * 6 - 3)));
      noisy.y[n] = Math.max(0, Math.min(399, full.y[i] + Math.round(rand() * 6 - 3)));
      noisy.angle[n] = (full.angle[i] + Math.round(rand() * 8 - 4)) & 255;
      noisy.kind[n] = full.kind[i];
      n++;
    }
    for (let k = 0; k < Math.floor(full.count / 4); k++) {
      noisy.x[n] = Math.floor(rand() * 300);
      noisy.y[n] = Math.floor(rand() * 400);
      noisy.angle[n] = Math.floor(rand() * 256);
      noisy.kind[n] = 1;
      n++;
    }
    noisy.count = n;
    const s = scorePrepared(enrolled, prepare(noisy));
    assert.ok(s >= DEFAULT_MATCH_THRESHOLD, `noisy copy ${s}`);
    // The same amount of random minutiae alone does not match.
    const random = copy(full, full.count);
    for (let i = 0; i < full.count; i++) {
      random.x[i] = Math.floor(rand() * 300);
      random.y[i] = Math.floor(rand() * 400);
      random.angle[i] = Math.floor(rand() * 256);
      random.kind[i] = 1;
    }
    assert.ok(scorePrepared(enrolled, prepare(random)) < DEFAULT_MATCH_THRESHOLD - 50);
  });

  test("the compact card form of an enrolled template still matches", () => {
    const card = encodeCompactCard(t(DB1, "105_1.iso"));
    const fromCard = parseCompactCard(card, 300, 400).template;
    assert.ok(fromCard);
    const s = scorePrepared(prepare(fromCard), prepareProbe(t(DB1, "105_2.iso")));
    const direct = scorePrepared(prepare(t(DB1, "105_1.iso")), prepareProbe(t(DB1, "105_2.iso")));
    assert.ok(s >= DEFAULT_MATCH_THRESHOLD, `card ${s}, record ${direct}`);
    assert.ok(Math.abs(s - direct) <= 25, `card ${s}, record ${direct}`);
  });

  test("the threshold is configurable", () => {
    const a = prepare(t(DB1, "101_1.iso"));
    const b = prepare(t(DB1, "101_2.iso"));
    const s = scorePrepared(a, b);
    assert.equal(new Matcher({ threshold: s }).matches(a, b), true);
    assert.equal(new Matcher({ threshold: s + 1 }).matches(a, b), false);
    assert.equal(new Matcher({ threshold: s }).score(a, b), s);
  });

  test("prepareProbe scores as prepare does, on either side", () => {
    const db = byName("DB2_B");
    for (const [a, b] of db.genuine.slice(0, 20).concat(db.impostor.slice(0, 20))) {
      const ta = db.impressions[a].template;
      const tb = db.impressions[b].template;
      const s = scorePrepared(prepare(ta), prepare(tb));
      assert.equal(scorePrepared(prepare(ta), prepareProbe(tb)), s);
      assert.equal(scorePrepared(prepareProbe(ta), prepareProbe(tb)), s);
    }
  });

  test("bounded: a template of the most minutiae a record may hold uses MATCH_MAX_MINUTIAE of them", () => {
    const big = copy(t(DB1, "101_1.iso"), 128);
    for (let i = 0; i < 128; i++) {
      big.x[i] = (i * 37) % 300;
      big.y[i] = (i * 61) % 400;
      big.angle[i] = (i * 29) & 255;
      big.kind[i] = 1;
    }
    const p = prepare(big);
    assert.equal(p.n, MATCH_MAX_MINUTIAE);
    assert.ok(scorePrepared(p, p) >= DEFAULT_MATCH_THRESHOLD);
    assert.ok(scorePrepared(p, prepare(t(DB1, "101_1.iso"))) < DEFAULT_MATCH_THRESHOLD);
  });
});

describe("degenerate templates", () => {
  test("one minutia, two, all on one spot, far apart: a score in range, never an exception", () => {
    const real = prepare(t(DB1, "101_1.iso"));
    const one = copy(t(DB1, "101_1.iso"), 1);
    one.x[0] = 10;
    one.y[0] = 10;
    const same = copy(t(DB1, "101_1.iso"), 20);
    same.x.fill(150);
    same.y.fill(200);
    same.angle.fill(64);
    const far = copy(t(DB1, "101_1.iso"), 6);
    far.width = 16000;
    far.height = 16000;
    for (let i = 0; i < 6; i++) {
      far.x[i] = i * 3000;
      far.y[i] = 15999 - i * 2500;
      far.angle[i] = i * 40;
    }
    for (const odd of [one, copy(t(DB1, "101_1.iso"), 2), same, far]) {
      const p = prepare(odd);
      for (const [x, y] of [
        [p, real],
        [real, p],
        [p, p],
      ]) {
        const s = scorePrepared(x, y);
        assert.ok(Number.isInteger(s) && s >= 0 && s <= 1000, `score ${s}`);
      }
      assert.ok(scorePrepared(real, p) < DEFAULT_MATCH_THRESHOLD);
      const loaded = loadPrepared(serializePrepared(p));
      assert.ok(loaded);
      assert.equal(loaded.n, p.n);
    }
    assert.equal(scorePrepared(prepare(one), real), 0, "no edges, no votes, no pairs");
  });
});

describe("stored prepared templates", () => {
  const enrolled = prepare(t(DB1, "103_1.iso"));
  const stored = serializePrepared(enrolled);

  test("round trip: the same bytes again and the same scores", () => {
    assert.equal(stored.length, 4 + enrolled.n * 38 + 2);
    const loaded = loadPrepared(stored);
    assert.ok(loaded);
    assert.deepEqual(serializePrepared(loaded), stored);
    for (const im of DB1.impressions.slice(16, 40)) {
      const probe = prepareProbe(im.template);
      assert.equal(scorePrepared(loaded, probe), scorePrepared(enrolled, probe), im.file);
    }
  });

  test("garbage is refused", () => {
    /** The stored bytes with a change, and a valid checksum again (so that only the check named fails). */
    const forged = (change: (b: Uint8Array) => void): Uint8Array => {
      const b = stored.slice();
      change(b);
      const end = b.length - 2;
      let c = 0xffff;
      for (let i = 0; i < end; i++) {
        c ^= b[i] << 8;
        for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
      }
      b[end] = c >> 8;
      b[end + 1] = c & 255;
      return b;
    };
    assert.ok(loadPrepared(forged(() => {})), "the forging helper itself makes valid bytes");
    assert.equal(loadPrepared(new Uint8Array(0)), null);
    assert.equal(loadPrepared(stored.subarray(0, stored.length - 1)), null, "truncated");
    const flipped = stored.slice();
    flipped[100] ^= 4;
    assert.equal(loadPrepared(flipped), null, "one bit changed");
    assert.equal(loadPrepared(forged((b) => (b[0] = 0x4e))), null, "magic");
    assert.equal(loadPrepared(forged((b) => (b[2] = 2))), null, "version");
    assert.equal(loadPrepared(forged((b) => (b[3] = b[3] - 1))), null, "count that does not fit the length");
    assert.equal(loadPrepared(forged((b) => (b[4 + 5] = 3))), null, "minutia kind");
    const edges = 4 + enrolled.n * 6;
    assert.equal(loadPrepared(forged((b) => (b[edges] = enrolled.n))), null, "neighbour out of range");
    assert.equal(loadPrepared(forged((b) => (b[edges] = 0))), null, "a minutia its own neighbour");
    assert.equal(loadPrepared(forged((b) => (b[edges + 4] = 255))), null, "a gap in a neighbour list");
    let seed = 99;
    for (let k = 0; k < 200; k++) {
      const junk = new Uint8Array(stored.length);
      for (let i = 0; i < junk.length; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        junk[i] = seed >> 23;
      }
      junk[0] = 0x4d;
      junk[1] = 0x50;
      junk[2] = 1;
      junk[3] = enrolled.n;
      assert.equal(loadPrepared(junk), null);
    }
  });
});

describe("on Moddable XS (the firmware bundle)", () => {
  let xs: MatchXs;
  let bundle: string;
  before(async () => {
    bundle = await buildMatchBundle();
    xs = await MatchXs.start(bundle);
  });
  after(async () => {
    await xs.close();
  });

  test("the bundle keeps to the engine subset", () => {
    assert.deepEqual(checkBundle(bundle, "match_xs.js"), []);
  });

  test("parse + prepare + score of the probe's ISO bytes gives the same score as Node", async () => {
    const checks: [Database, number, number][] = [];
    for (const db of dbs) {
      checks.push([db, db.genuine[3][0], db.genuine[3][1]]);
      checks.push([db, db.impostor[100][0], db.impostor[100][1]]);
    }
    for (const [db, a, b] of checks) {
      const ia = db.impressions[a];
      const ib = db.impressions[b];
      assert.equal(await xs.enrol(ia.bytes), Math.min(ia.template.count, MATCH_MAX_MINUTIAE));
      const r = await xs.match(ib.bytes);
      assert.equal(r.score, scorePrepared(prepare(ia.template), prepareProbe(ib.template)), `${db.name} ${ia.file} ${ib.file}`);
      assert.ok(r.compute > 10000 && r.compute < 5e6, `compute ${r.compute}`);
    }
  });

  test("stored templates: XS writes the same bytes as Node, loads Node's, refuses garbage", async () => {
    const im = DB1.impressions[9];
    await xs.enrol(im.bytes);
    const node: Prepared = prepare(im.template);
    assert.deepEqual(await xs.prepared(), serializePrepared(node));
    assert.equal(await xs.enrolPrepared(serializePrepared(node)), true);
    const probe = DB1.impressions[10];
    assert.equal((await xs.match(probe.bytes)).score, scorePrepared(node, prepareProbe(probe.template)));
    const bad = serializePrepared(node);
    bad[7] ^= 1;
    assert.equal(await xs.enrolPrepared(bad), false);
  });

  test("a malformed probe is refused inside XS, not thrown", async () => {
    await xs.enrol(DB1.impressions[0].bytes);
    await assert.rejects(xs.match(DB1.impressions[1].bytes.subarray(0, 40)), /XS match failed: status 1/);
    // The same probe re-encoded (no extended data, another finger number) scores the same.
    const record = encodeTemplate(DB1.impressions[1].template, 1, 50);
    assert.equal((await xs.match(record)).score, scorePrepared(prepare(DB1.impressions[0].template), prepare(DB1.impressions[1].template)));
  });
});
