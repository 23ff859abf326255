// Finger minutiae record parsing: the ISO/IEC 19794-2:2005 annex example and the FVC2002
// records of the shared data as references, the ANSI/INCITS 378-2004 example told apart, and
// every kind of malformed input refused with its own error code and a detail.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  TEMPLATE_ERR_ANSI,
  TEMPLATE_ERR_EXTENDED,
  TEMPLATE_ERR_FIELD,
  TEMPLATE_ERR_GEOMETRY,
  TEMPLATE_ERR_ISO,
  TEMPLATE_ERR_LENGTH,
  TEMPLATE_ERR_MAGIC,
  TEMPLATE_ERR_NONE,
  TEMPLATE_ERR_NO_MINUTIAE,
  TEMPLATE_ERR_NO_VIEW,
  TEMPLATE_ERR_TOO_MANY,
  TEMPLATE_ERR_TRUNCATED,
  TEMPLATE_ERR_VERSION,
  TEMPLATE_MAX_MINUTIAE,
  countViews,
  encodeCompactCard,
  encodeTemplate,
  parseAnsi378,
  parseCompactCard,
  parseTemplate,
  type Template,
  type TemplateResult,
} from "./iso19794.ts";
import { FINGERPRINTS_DIR } from "../../simulator/data/fingerprints.ts";

const DATA = FINGERPRINTS_DIR;
const read = (path: string): Uint8Array => new Uint8Array(readFileSync(join(DATA, path)));
const ISO_ANNEX = read("samples/iso19794-2-2005-annex-c2.raw");
const ANSI_ANNEX = read("samples/ansi378-2004-annex-b2.raw");

function ok(r: TemplateResult): Template {
  assert.equal(r.error, TEMPLATE_ERR_NONE, r.detail);
  assert.ok(r.template);
  return r.template;
}

function refused(r: TemplateResult, error: number, detail?: RegExp): void {
  assert.equal(r.template, null);
  assert.equal(r.error, error, `expected error ${error}, got ${r.error}: ${r.detail}`);
  assert.ok(r.detail.length > 0, "an error needs a detail");
  if (detail) assert.match(r.detail, detail);
}

function u32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = (v >> 16) & 255;
  b[p + 2] = (v >> 8) & 255;
  b[p + 3] = v & 255;
}

/** A template of `n` minutiae spread over a 300 x 400 image at 197 px/cm. */
function synthetic(n: number): Template {
  const t: Template = {
    width: 300,
    height: 400,
    resX: 197,
    resY: 197,
    count: n,
    x: new Uint16Array(n),
    y: new Uint16Array(n),
    angle: new Uint8Array(n),
    kind: new Uint8Array(n),
    quality: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    t.x[i] = (i * 37) % 290;
    t.y[i] = (i * 53) % 390;
    t.angle[i] = (i * 71) & 255;
    t.kind[i] = 1 + (i % 2);
    t.quality[i] = 60;
  }
  return t;
}

describe("ISO/IEC 19794-2:2005 annex C.2 example", () => {
  test("header, first view and first minutia are as the data README states", () => {
    const r = parseTemplate(ISO_ANNEX);
    const t = ok(r);
    assert.equal(t.width, 512);
    assert.equal(t.height, 512);
    assert.equal(t.resX, 197);
    assert.equal(t.resY, 197);
    assert.equal(countViews(ISO_ANNEX), 2);
    assert.match(r.detail, /view 1 of 2, finger 7, quality 90/);
    assert.equal(t.count, 27);
    assert.equal(t.kind[0], 1, "the first minutia is a ridge ending");
    assert.equal(t.x[0], 100);
    assert.equal(t.y[0], 14);
    assert.equal(t.angle[0], 80);
    for (let i = 0; i < t.count; i++) {
      assert.ok(t.x[i] < 512 && t.y[i] < 512);
      assert.ok(t.kind[i] <= 2);
    }
  });

  test("its length field says 340 bytes, the file holds 341: noted, the first view is intact", () => {
    assert.equal(ISO_ANNEX.length, 341);
    assert.equal((ISO_ANNEX[8] << 24) | (ISO_ANNEX[9] << 16) | (ISO_ANNEX[10] << 8) | ISO_ANNEX[11], 340);
    assert.match(parseTemplate(ISO_ANNEX).detail, /340 bytes, its views take 341/);
  });

  test("the second view (finger 2, 22 minutiae) ends past the declared length and is refused", () => {
    refused(parseTemplate(ISO_ANNEX, 1), TEMPLATE_ERR_LENGTH, /view 2 ends at byte 341, past the record length field \(340\)/);
    // With the length field corrected, the second view reads.
    const fixed = ISO_ANNEX.slice();
    u32(fixed, 8, 341);
    const r = parseTemplate(fixed, 1);
    const t = ok(r);
    assert.equal(t.count, 22);
    assert.match(r.detail, /view 2 of 2, finger 2, quality 70/);
    // And the first view no longer carries a note.
    assert.doesNotMatch(parseTemplate(fixed).detail, /note/);
  });

  test("a view that does not exist", () => {
    refused(parseTemplate(ISO_ANNEX, 2), TEMPLATE_ERR_NO_VIEW, /view 3 asked for, the record holds 2/);
    refused(parseTemplate(ISO_ANNEX, -1), TEMPLATE_ERR_NO_VIEW);
    refused(parseTemplate(ISO_ANNEX, 0.5), TEMPLATE_ERR_NO_VIEW);
  });
});

describe("ANSI/INCITS 378-2004 annex example", () => {
  test("is told apart and refused by parseTemplate", () => {
    refused(parseTemplate(ANSI_ANNEX), TEMPLATE_ERR_ANSI, /ANSI\/INCITS 378-2004/);
    assert.equal(countViews(ANSI_ANNEX), 0, "not an ISO record, so no ISO views");
    assert.equal(countViews(read("invalid/101_1_truncate_1_byte.iso")), 0, "a truncated record");
  });

  test("parseAnsi378 reads the same minutiae as the ISO example (angles from 2-degree units)", () => {
    const iso = ok(parseTemplate(ISO_ANNEX));
    const r = parseAnsi378(ANSI_ANNEX);
    const ansi = ok(r);
    assert.match(r.detail, /ANSI\/INCITS 378-2004, view 1 of 2, finger 7, quality 90/);
    assert.equal(ANSI_ANNEX[26 + 4 + 4], 56, "the first minutia's ANSI angle byte");
    assert.equal(ansi.count, iso.count);
    assert.equal(ansi.width, 512);
    for (let i = 0; i < iso.count; i++) {
      assert.equal(ansi.x[i], iso.x[i]);
      assert.equal(ansi.y[i], iso.y[i]);
      assert.equal(ansi.kind[i], iso.kind[i]);
      const d = Math.abs(ansi.angle[i] - iso.angle[i]);
      assert.ok(Math.min(d, 256 - d) <= 1, `minutia ${i}: ${ansi.angle[i]} vs ${iso.angle[i]}`);
    }
    assert.equal(ok(parseAnsi378(ANSI_ANNEX, 1)).count, 22);
  });

  test("parseAnsi378 refuses an ISO record and ANSI angles over 179", () => {
    refused(parseAnsi378(ISO_ANNEX), TEMPLATE_ERR_ISO);
    const bad = ANSI_ANNEX.slice();
    bad[26 + 4 + 4] = 180;
    refused(parseAnsi378(bad), TEMPLATE_ERR_FIELD, /angle 180/);
  });
});

describe("FVC2002 records of the shared data", () => {
  const ranges: Record<string, [number, number]> = {
    DB1_B: [13, 61],
    DB2_B: [19, 69],
    DB3_B: [13, 49],
    DB4_B: [17, 38],
  };
  for (const db of Object.keys(ranges)) {
    test(`${db}: 80 records, 300 x 400 at 197 px/cm, quality 0, counts in the README's range`, () => {
      const files = readdirSync(join(DATA, "fvc2002", db)).filter((f) => f.endsWith(".iso"));
      assert.equal(files.length, 80);
      let lo = Infinity;
      let hi = 0;
      let endings = 0;
      let bifurcations = 0;
      for (const f of files) {
        const t = ok(parseTemplate(read(`fvc2002/${db}/${f}`)));
        assert.equal(t.width, 300);
        assert.equal(t.height, 400);
        assert.equal(t.resX, 197);
        assert.equal(t.resY, 197);
        lo = Math.min(lo, t.count);
        hi = Math.max(hi, t.count);
        for (let i = 0; i < t.count; i++) {
          assert.equal(t.quality[i], 0);
          if (t.kind[i] === 1) endings++;
          if (t.kind[i] === 2) bifurcations++;
        }
      }
      assert.deepEqual([lo, hi], ranges[db]);
      const ratio = endings / bifurcations;
      assert.ok(ratio > 1.5 && ratio < 3, `endings / bifurcations = ${ratio}`);
    });
  }
});

describe("malformed records", () => {
  test("the three truncated records of the shared data", () => {
    const files = readdirSync(join(DATA, "invalid")).sort();
    assert.equal(files.length, 3);
    for (const f of files) {
      const b = read(`invalid/${f}`);
      refused(parseTemplate(b), TEMPLATE_ERR_TRUNCATED, new RegExp(`record length field says 30 bytes, only ${b.length} given`));
    }
    // Made whole again (its last byte is the extended data length's low byte), the record is
    // valid in form but has no minutiae.
    const whole = new Uint8Array(30);
    whole.set(read("invalid/101_1_truncate_1_byte.iso"));
    refused(parseTemplate(whole), TEMPLATE_ERR_NO_MINUTIAE, /has no minutiae/);
  });

  test("every truncation of a valid record is refused, never thrown", () => {
    for (const record of [ISO_ANNEX, encodeTemplate(synthetic(30), 3, 80)]) {
      for (let n = 0; n < record.length - 1; n++) {
        const r = parseTemplate(record.subarray(0, n));
        assert.equal(r.template, null, `${n} bytes`);
        assert.notEqual(r.error, TEMPLATE_ERR_NONE);
        assert.ok(r.detail.length > 0);
      }
    }
  });

  test("wrong magic and wrong version", () => {
    const b = encodeTemplate(synthetic(20), 1, 50);
    const magic = b.slice();
    magic[0] = 0x46 ^ 1;
    refused(parseTemplate(magic), TEMPLATE_ERR_MAGIC, /FMR/);
    refused(parseTemplate(new TextEncoder().encode("GIF89a and some more bytes to fill a header")), TEMPLATE_ERR_MAGIC);
    const version = b.slice();
    version[5] = 0x31;
    refused(parseTemplate(version), TEMPLATE_ERR_VERSION);
  });

  test("record length fields that lie", () => {
    const b = encodeTemplate(synthetic(20), 1, 50);
    assert.equal(b.length, 24 + 4 + 20 * 6 + 2);
    const longer = b.slice();
    u32(longer, 8, b.length + 1);
    refused(parseTemplate(longer), TEMPLATE_ERR_TRUNCATED, /says 151 bytes, only 150 given/);
    const tiny = b.slice();
    u32(tiny, 8, 20);
    refused(parseTemplate(tiny), TEMPLATE_ERR_LENGTH, /less than a header and a view/);
    const short = b.slice();
    u32(short, 8, 100);
    refused(parseTemplate(short), TEMPLATE_ERR_LENGTH, /view 1 ends at byte 150, past the record length field \(100\)/);
    // Declared longer than its views, the difference padded with junk.
    const padded = new Uint8Array(b.length + 5);
    padded.set(b);
    u32(padded, 8, padded.length);
    refused(parseTemplate(padded), TEMPLATE_ERR_LENGTH, /says 155 bytes, its views end at 150/);
    const huge = b.slice();
    u32(huge, 8, 0xffffffff);
    refused(parseTemplate(huge), TEMPLATE_ERR_TRUNCATED);
    // Bytes after a complete record (a buffer larger than the record) are not part of it.
    const inBuffer = new Uint8Array(b.length + 7);
    inBuffer.set(b);
    inBuffer.fill(0xee, b.length);
    assert.deepEqual(ok(parseTemplate(inBuffer)), ok(parseTemplate(b)));
  });

  test("minutia counts and extended data lengths that lie", () => {
    const b = encodeTemplate(synthetic(20), 1, 50);
    const more = b.slice();
    more[27] = 21;
    refused(parseTemplate(more), TEMPLATE_ERR_TRUNCATED, /with 21 minutiae runs past the end/);
    const ext = b.slice();
    ext[b.length - 1] = 4;
    refused(parseTemplate(ext), TEMPLATE_ERR_TRUNCATED, /extended data of view 1 \(4 bytes\) runs past/);
    // Extended data present: one block of 6 bytes (4 header + 2 data).
    const withExt = new Uint8Array(b.length + 6);
    withExt.set(b);
    u32(withExt, 8, withExt.length);
    withExt[b.length - 1] = 6;
    withExt.set([0x00, 0x01, 0x00, 0x06, 0xaa, 0xbb], b.length);
    assert.equal(ok(parseTemplate(withExt)).count, 20, "a well-formed extended data block is skipped");
    const blockShort = withExt.slice();
    blockShort[b.length + 3] = 3;
    refused(parseTemplate(blockShort), TEMPLATE_ERR_EXTENDED, /says 3 bytes/);
    const blockLong = withExt.slice();
    blockLong[b.length + 3] = 7;
    refused(parseTemplate(blockLong), TEMPLATE_ERR_EXTENDED, /says 7 bytes, 6 left/);
    const headerCut = withExt.slice();
    headerCut[b.length - 1] = 3;
    u32(headerCut, 8, withExt.length - 3);
    refused(parseTemplate(headerCut.subarray(0, withExt.length - 3)), TEMPLATE_ERR_EXTENDED, /cut short/);
  });

  test("zero minutiae, too many minutiae, no views", () => {
    refused(parseTemplate(encodeTemplate(synthetic(0), 1, 50)), TEMPLATE_ERR_NO_MINUTIAE);
    const max = ok(parseTemplate(encodeTemplate(synthetic(TEMPLATE_MAX_MINUTIAE), 1, 50)));
    assert.equal(max.count, TEMPLATE_MAX_MINUTIAE);
    refused(parseTemplate(encodeTemplate(synthetic(TEMPLATE_MAX_MINUTIAE + 1), 1, 50)), TEMPLATE_ERR_TOO_MANY, /129 minutiae \(at most 128\)/);
    refused(parseTemplate(encodeTemplate(synthetic(255), 1, 50)), TEMPLATE_ERR_TOO_MANY);
    const noView = encodeTemplate(synthetic(5), 1, 50);
    noView[22] = 0;
    refused(parseTemplate(noView), TEMPLATE_ERR_NO_VIEW, /no finger view/);
    const twoViews = encodeTemplate(synthetic(5), 1, 50);
    twoViews[22] = 2;
    refused(parseTemplate(twoViews), TEMPLATE_ERR_TRUNCATED, /finger view 2 header runs past the end/);
  });

  test("geometry and field values the format does not allow", () => {
    const b = encodeTemplate(synthetic(10), 1, 50);
    const outside = b.slice();
    outside[28 + 6 * 3] = (outside[28 + 6 * 3] & 0xc0) | 0x01; // x of minutia 4 = 256 + low byte
    outside[28 + 6 * 3 + 1] = 0x40; // x = 320 >= 300
    refused(parseTemplate(outside), TEMPLATE_ERR_GEOMETRY, /minutia 4 at \(320, \d+\) lies outside the 300 x 400 image/);
    const noWidth = b.slice();
    noWidth[14] = 0;
    noWidth[15] = 0;
    refused(parseTemplate(noWidth), TEMPLATE_ERR_GEOMETRY, /image size 0 x 400/);
    const noRes = b.slice();
    noRes[20] = 0;
    noRes[21] = 0;
    refused(parseTemplate(noRes), TEMPLATE_ERR_GEOMETRY, /resolution/);
    const reserved = b.slice();
    reserved[28 + 6 * 2] |= 0xc0;
    refused(parseTemplate(reserved), TEMPLATE_ERR_FIELD, /minutia 3 has the reserved type 11/);
    const quality = b.slice();
    quality[26] = 101;
    refused(parseTemplate(quality), TEMPLATE_ERR_FIELD, /finger quality 101/);
  });

  test("random corruption never throws", () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const base = encodeTemplate(synthetic(25), 2, 70);
    for (let k = 0; k < 2000; k++) {
      const b = base.slice(0, Math.floor(rand() * (base.length + 1)));
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips && b.length > 0; f++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const r = parseTemplate(b);
      if (r.template === null) assert.ok(r.error !== TEMPLATE_ERR_NONE && r.detail.length > 0);
      else {
        assert.ok(r.template.count >= 1 && r.template.count <= TEMPLATE_MAX_MINUTIAE);
        for (let i = 0; i < r.template.count; i++) assert.ok(r.template.x[i] < r.template.width && r.template.y[i] < r.template.height);
      }
    }
  });
});

describe("encodeTemplate", () => {
  test("round trip through parseTemplate", () => {
    const t = synthetic(40);
    const back = ok(parseTemplate(encodeTemplate(t, 4, 77)));
    assert.deepEqual(back, t);
    assert.match(parseTemplate(encodeTemplate(t, 4, 77)).detail, /finger 4, quality 77/);
  });
});

describe("compact card format", () => {
  test("3 bytes per minutia in 0.1 mm units, type and 6-bit angle; round trip within the format's precision", () => {
    const t = ok(parseTemplate(read("fvc2002/DB1_B/101_1.iso")));
    const card = encodeCompactCard(t);
    assert.equal(card.length, t.count * 3);
    // The first minutia: x, y in 0.1 mm at 197 px/cm, type in the top 2 bits, angle / 4 below.
    assert.equal(card[0], Math.round((t.x[0] * 100) / 197));
    assert.equal(card[1], Math.round((t.y[0] * 100) / 197));
    assert.equal(card[2] >> 6, t.kind[0]);
    assert.equal(card[2] & 63, ((t.angle[0] + 2) >> 2) & 63);
    const back = ok(parseCompactCard(card, 300, 400));
    assert.equal(back.count, t.count);
    assert.equal(back.resX, 197);
    for (let i = 0; i < t.count; i++) {
      assert.ok(Math.abs(back.x[i] - t.x[i]) <= 1, `x ${back.x[i]} vs ${t.x[i]}`);
      assert.ok(Math.abs(back.y[i] - t.y[i]) <= 1, `y ${back.y[i]} vs ${t.y[i]}`);
      const d = Math.abs(back.angle[i] - t.angle[i]);
      assert.ok(Math.min(d, 256 - d) <= 2, `angle ${back.angle[i]} vs ${t.angle[i]}`);
      assert.equal(back.kind[i], t.kind[i]);
    }
    // Once in the card's precision, it stays exactly the same.
    assert.deepEqual(encodeCompactCard(back), card);
  });

  test("the resolution converts the units", () => {
    const card = Uint8Array.of(100, 50, (2 << 6) | 16);
    const at500dpi = ok(parseCompactCard(card, 600, 600));
    assert.deepEqual([at500dpi.x[0], at500dpi.y[0], at500dpi.kind[0], at500dpi.angle[0]], [197, 99, 2, 64]);
    const at250dpi = ok(parseCompactCard(card, 600, 600, 98));
    assert.deepEqual([at250dpi.x[0], at250dpi.y[0]], [98, 49]);
    assert.equal(at250dpi.resX, 98);
  });

  test("malformed card templates", () => {
    refused(parseCompactCard(new Uint8Array(0), 300, 400), TEMPLATE_ERR_NO_MINUTIAE);
    refused(parseCompactCard(new Uint8Array(10), 300, 400), TEMPLATE_ERR_LENGTH, /10 bytes \(3 per minutia\)/);
    refused(parseCompactCard(new Uint8Array(3 * 129), 300, 400), TEMPLATE_ERR_TOO_MANY);
    refused(parseCompactCard(Uint8Array.of(1, 1, 0xc0), 300, 400), TEMPLATE_ERR_FIELD, /reserved type/);
    refused(parseCompactCard(Uint8Array.of(100, 10, 0x40), 150, 400), TEMPLATE_ERR_GEOMETRY, /\(197, 20\) px lies outside/);
    refused(parseCompactCard(Uint8Array.of(1, 1, 0x40), 0, 400), TEMPLATE_ERR_GEOMETRY);
    refused(parseCompactCard(Uint8Array.of(1, 1, 0x40), 300, 400, 0), TEMPLATE_ERR_GEOMETRY);
  });

  test("encoding refuses what the format cannot hold", () => {
    const wide = synthetic(3);
    wide.width = 600;
    wide.x[1] = 520; // 26.4 mm at 197 px/cm
    assert.throws(() => encodeCompactCard(wide), /minutia 2 lies beyond 25.5 mm/);
    assert.throws(() => encodeCompactCard(synthetic(0)), /0 minutiae/);
  });
});
