// The journal on a simulated NOR flash: API behaviour, then an exhaustive power-cut test (a cut
// at every byte of every write of a fixed script, and of a compaction), then the flash model.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { crc32 as zlibCrc32 } from "node:zlib";
import { join } from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";
import { PowerCut, SimFlash } from "../../simulator/models/flash.ts";
import {
  ACK_PENDING,
  BAD_ACK,
  BAD_CONFIG,
  crc32,
  ENTRY_OVERHEAD,
  Journal,
  JOURNAL_FULL,
  JOURNAL_OK,
  NOT_OPEN,
  PAGE_HEADER_SIZE,
  TOO_LARGE,
} from "./journal.ts";

const PAGE = 256;
const PAGES = 8;

function newFlash(seed?: number): SimFlash {
  return new SimFlash({ pageSize: PAGE, pageCount: PAGES, seed });
}

function openJournal(flash: SimFlash): Journal {
  const j = new Journal({ flash });
  assert.equal(j.open().code, JOURNAL_OK);
  return j;
}

/** Deterministic payload bytes for a seq: the seq itself first, so a mix-up cannot pass. */
function payload(seq: number, salt: number, len: number): Uint8Array {
  const d = new Uint8Array(len);
  let x = (seq * 2654435761 + salt * 40503 + len) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    d[i] = x & 0xff;
  }
  for (let i = 0; i < 4 && i < len; i++) d[i] = (seq >>> (8 * i)) & 0xff;
  return d;
}

function appendLen(j: Journal, len: number, salt = 0): number {
  return j.append((seq) => payload(seq, salt, len));
}

function bytesEqual(a: Uint8Array | null, b: Uint8Array): boolean {
  if (a === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameFlash(a: SimFlash, b: SimFlash): boolean {
  return bytesEqual(a.snapshot().data, b.snapshot().data);
}

describe("journal API", () => {
  test("CRC-32 is the IEEE/zlib one", () => {
    assert.equal(crc32(new Uint8Array(Buffer.from("123456789")), 0, 9), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0), 0, 0), 0);
  });

  test("a native CRC-32 (E.CRC32 on Espruino) can replace the JS one; a wrong one is refused", () => {
    const flash = newFlash();
    const js = openJournal(flash);
    for (let i = 0; i < 5; i++) appendLen(js, 30);
    let calls = 0;
    const native = (b: Uint8Array): number => {
      calls++;
      return zlibCrc32(b);
    };
    const n = new Journal({ flash, crc32: native });
    assert.equal(n.open().records, 5);
    assert.ok(bytesEqual(n.read(3), payload(3, 0, 30)));
    assert.equal(appendLen(n, 30), 6);
    assert.ok(calls > 5);
    assert.ok(bytesEqual(openJournal(flash).read(6), payload(6, 0, 30)), "both CRCs agree on the format");
    const wrong = new Journal({ flash, crc32: (b) => zlibCrc32(b) ^ 1 });
    assert.equal(wrong.open().code, BAD_CONFIG);
    assert.equal(wrong.append(() => new Uint8Array(1)), NOT_OPEN);
  });

  test("refuses a geometry that cannot hold it, and calls before open", () => {
    const j = new Journal({ flash: new SimFlash({ pageSize: 256, pageCount: 1 }) });
    assert.equal(j.append(() => new Uint8Array(1)), NOT_OPEN);
    assert.equal(j.ack(0), NOT_OPEN);
    assert.equal(j.open().code, BAD_CONFIG);
    assert.equal(new Journal({ flash: new SimFlash({ pageSize: 30, pageCount: 4 }) }).open().code, BAD_CONFIG);
  });

  test("fresh flash: empty journal, seqs start at 1", () => {
    const j = new Journal({ flash: newFlash() });
    const st = j.open();
    assert.deepEqual(st, {
      code: JOURNAL_OK, logPages: 0, freePages: PAGES, records: 0, tornTail: false, nextSeq: 1, ackedSeq: 0,
    });
    assert.equal(j.firstSeq(), 1);
    assert.equal(j.backlog(), 0);
    assert.equal(j.read(1), null);
    assert.equal(j.freeBytes(), PAGES * (PAGE - PAGE_HEADER_SIZE));
    assert.equal(j.isNearFull(), false);
  });

  test("append, read, reopen, ack, backlog", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    const seen: number[] = [];
    const s1 = j.append((seq) => {
      seen.push(seq);
      return payload(seq, 0, 10);
    });
    assert.equal(s1, 1);
    assert.deepEqual(seen, [1]);
    assert.equal(appendLen(j, 0), 2);
    assert.equal(appendLen(j, 50), 3);
    assert.ok(bytesEqual(j.read(1), payload(1, 0, 10)));
    assert.deepEqual(j.read(2), new Uint8Array(0));
    assert.ok(bytesEqual(j.read(3), payload(3, 0, 50)));
    assert.equal(j.read(4), null);
    assert.equal(j.read(0), null);
    assert.equal(j.read(-1), null);
    assert.equal(j.read(1.5), null);
    assert.equal(j.backlog(), 3);
    assert.deepEqual(j.unackedSeqs(10), [1, 2, 3]);

    const r = openJournal(flash);
    assert.equal(r.nextSeq(), 4);
    assert.ok(bytesEqual(r.read(3), payload(3, 0, 50)));
    assert.equal(r.ack(2), JOURNAL_OK);
    assert.equal(r.ackedSeq(), 2);
    assert.equal(r.durableAckSeq(), 2);
    assert.equal(r.backlog(), 1);
    assert.deepEqual(r.unackedSeqs(10), [3]);
    assert.equal(r.nextUnacked(0), 3);
    assert.equal(r.nextUnacked(3), 0);
    // Acked records stay readable until compaction reclaims their page.
    assert.ok(bytesEqual(r.read(1), payload(1, 0, 10)));

    const again = openJournal(flash);
    assert.equal(again.ackedSeq(), 2);
    assert.equal(again.backlog(), 1);
    assert.equal(appendLen(again, 5), 4);
    assert.equal(flash.reprogrammedBytes, 0);
  });

  test("forEachUnacked walks in order from a seq and stops on false", () => {
    const j = openJournal(newFlash());
    for (let i = 0; i < 30; i++) appendLen(j, 20 + i);
    assert.equal(j.ack(7), JOURNAL_OK);
    const seqs: number[] = [];
    j.forEachUnacked(0, (seq, data) => {
      assert.ok(bytesEqual(data, payload(seq, 0, 19 + seq)));
      seqs.push(seq);
    });
    assert.deepEqual(seqs, Array.from({ length: 23 }, (_, i) => i + 8));
    const some: number[] = [];
    const n = j.forEachUnacked(20, (seq) => {
      some.push(seq);
      return some.length < 3;
    });
    assert.equal(n, 3);
    assert.deepEqual(some, [20, 21, 22]);
    assert.deepEqual(j.unackedSeqs(4), [8, 9, 10, 11]);
  });

  test("ack of a never-sent seq is BAD_ACK and changes nothing", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    for (let i = 0; i < 5; i++) appendLen(j, 8);
    assert.equal(j.ack(2), JOURNAL_OK);
    const before = flash.snapshot();
    for (const bad of [6, 7, 1000, 2 ** 32, -1, 2.5, Number.NaN]) assert.equal(j.ack(bad), BAD_ACK, `ack(${bad})`);
    assert.equal(j.ackedSeq(), 2);
    assert.equal(j.backlog(), 3);
    assert.ok(bytesEqual(flash.snapshot().data, before.data));
    assert.equal(openJournal(flash).ackedSeq(), 2);
  });

  test("replayed and out-of-order acks are harmless no-ops", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    for (let i = 0; i < 6; i++) appendLen(j, 8);
    assert.equal(j.ack(4), JOURNAL_OK);
    const after4 = SimFlash.fromSnapshot(flash.snapshot());
    for (const old of [4, 1, 3, 0, 2, 4]) assert.equal(j.ack(old), JOURNAL_OK);
    assert.equal(j.ackedSeq(), 4);
    assert.ok(sameFlash(flash, after4), "a no-op ack writes nothing");
    assert.equal(j.ack(6), JOURNAL_OK);
    assert.equal(j.ack(5), JOURNAL_OK);
    assert.equal(j.ackedSeq(), 6);
    assert.equal(openJournal(flash).ackedSeq(), 6);
    assert.equal(openJournal(flash).backlog(), 0);
  });

  test("a record larger than a page is TOO_LARGE; the largest that fits is accepted", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    const max = j.maxRecordSize();
    assert.equal(max, PAGE - PAGE_HEADER_SIZE - ENTRY_OVERHEAD);
    assert.equal(appendLen(j, max + 1), TOO_LARGE);
    assert.equal(appendLen(j, PAGE * 2), TOO_LARGE);
    assert.equal(j.nextSeq(), 1, "a refused record consumes no seq");
    assert.equal(appendLen(j, max), 1);
    assert.equal(appendLen(j, max), 2);
    assert.ok(bytesEqual(openJournal(flash).read(2), payload(2, 0, max)));
  });

  test("full journal refuses and overwrites nothing unacknowledged; acks make room again", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    const written: number[] = [];
    let s: number;
    while ((s = appendLen(j, 40)) > 0) written.push(s);
    assert.equal(s, JOURNAL_FULL);
    assert.equal(written.length, PAGES * Math.floor((PAGE - PAGE_HEADER_SIZE) / 52));
    const full = flash.snapshot();
    assert.equal(appendLen(j, 40), JOURNAL_FULL);
    assert.ok(bytesEqual(flash.snapshot().data, full.data), "a refused append writes nothing");
    assert.equal(j.freeBytes(), PAGE - PAGE_HEADER_SIZE - 4 * 52);
    assert.equal(j.isNearFull(), true);
    for (const seq of written) assert.ok(bytesEqual(j.read(seq), payload(seq, 0, 40)));

    // Acking part of the oldest page frees nothing: still full, nothing overwritten.
    assert.equal(j.ack(2), JOURNAL_OK); // the marker fits in the head's spare bytes
    assert.equal(appendLen(j, 40), JOURNAL_FULL);
    for (const seq of written) assert.ok(bytesEqual(j.read(seq), payload(seq, 0, 40)));
    // Acking the whole oldest page lets the next append reclaim it, and only it.
    assert.equal(j.ack(4), JOURNAL_OK);
    for (let i = 1; i <= 4; i++) assert.equal(appendLen(j, 40), written.length + i);
    assert.equal(appendLen(j, 40), JOURNAL_FULL);
    const r = openJournal(flash);
    for (let seq = 1; seq <= 4; seq++) assert.equal(r.read(seq), null);
    for (let seq = 5; seq <= written.length + 4; seq++) assert.ok(bytesEqual(r.read(seq), payload(seq, 0, 40)));
    assert.equal(r.ackedSeq(), 4);
    assert.equal(r.backlog(), written.length);
    assert.equal(flash.reprogrammedBytes, 0);
  });

  test("near-full reporting follows unacknowledged data, compaction reclaims", () => {
    const flash = newFlash();
    const j = new Journal({ flash, nearFullPercent: 50 });
    j.open();
    let last = 0;
    while (!j.isNearFull()) last = appendLen(j, 60);
    assert.ok(last > 0);
    const used = j.capacityBytes() - j.freeBytes();
    assert.ok(used * 100 >= 50 * j.capacityBytes());
    assert.equal(j.ack(last), JOURNAL_OK);
    assert.equal(j.isNearFull(), false, "acknowledged pages count as free");
    const erasesBefore = flash.eraseOps;
    const n = j.compact();
    assert.ok(n >= 3, `compacted ${n} pages`);
    assert.equal(flash.eraseOps - erasesBefore, n);
    assert.equal(j.compact(), 0, "nothing left to reclaim");
    assert.equal(j.backlog(), 0);
    assert.ok(j.firstSeq() > 1);
    for (let s = 1; s < j.firstSeq(); s++) assert.equal(j.read(s), null);
  });

  test("seqs never repeat after acking and compacting everything, across reboots", () => {
    const flash = newFlash();
    let j = openJournal(flash);
    let max = 0;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 12; i++) {
        const s = appendLen(j, 30 + round);
        assert.ok(s > max, `seq ${s} after ${max}`);
        max = s;
      }
      assert.equal(j.ack(max), JOURNAL_OK);
      j.compact();
      j = openJournal(flash);
      assert.equal(j.nextSeq(), max + 1);
      assert.equal(j.ackedSeq(), max);
      assert.equal(j.backlog(), 0);
    }
    // Every page has been used: wear is spread.
    const wear = flash.eraseCounts();
    assert.ok(Math.min(...wear) >= 1, `wear ${wear.join(",")}`);
    assert.ok(Math.max(...wear) - Math.min(...wear) <= 3, `wear ${wear.join(",")}`);
    assert.equal(flash.reprogrammedBytes, 0);
  });

  test("full with nothing to persist into: ack is ACK_PENDING until it covers the oldest page", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    // Empty records take 12 bytes: 19 per page and 8 bytes left, too few for an ack marker.
    const perPage = Math.floor((PAGE - PAGE_HEADER_SIZE) / ENTRY_OVERHEAD);
    let n = 0;
    while (appendLen(j, 0) > 0) n++;
    assert.equal(n, PAGES * perPage);
    assert.equal(j.ack(1), ACK_PENDING);
    assert.equal(j.ackedSeq(), 1);
    assert.equal(j.durableAckSeq(), 0);
    assert.equal(j.backlog(), n - 1);
    assert.equal(openJournal(flash).ackedSeq(), 0, "a pending ack is not on flash");
    assert.equal(j.ack(perPage - 1), ACK_PENDING);
    // Covering the oldest page: it is erased (which persists the ack of its records) and becomes
    // the new head, whose header carries the ack.
    assert.equal(j.ack(perPage + 3), JOURNAL_OK);
    assert.equal(j.durableAckSeq(), perPage + 3);
    const r = openJournal(flash);
    assert.equal(r.ackedSeq(), perPage + 3);
    assert.equal(r.read(perPage), null);
    for (let s = perPage + 1; s <= n; s++) assert.deepEqual(r.read(s), new Uint8Array(0));
    assert.equal(appendLen(r, 0), n + 1);
    assert.equal(flash.reprogrammedBytes, 0);
  });

  test("a torn tail is dropped, its seq is not reused, new records go to a fresh page", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    for (let i = 0; i < 3; i++) appendLen(j, 16);
    // Half an entry after record 3, as a power cut would leave it (page 0, offset 20 + 3 * 28).
    const off = PAGE_HEADER_SIZE + 3 * 28;
    flash.program(0, off, new Uint8Array([0x52, 0x00, 0x10, 0x00, 0x04]));
    const r = new Journal({ flash });
    const st = r.open();
    assert.equal(st.tornTail, true);
    assert.equal(st.records, 3);
    assert.equal(r.nextSeq(), 5, "seq 4 is consumed by the torn entry");
    assert.equal(r.read(4), null);
    assert.equal(appendLen(r, 16), 5);
    assert.deepEqual(flash.read(1, 0, 4), new Uint8Array([0x50, 0x4b, 0x4a, 0x31]), "page 1 started");
    const again = openJournal(flash);
    assert.equal(again.nextSeq(), 6);
    for (const s of [1, 2, 3, 5]) assert.ok(bytesEqual(again.read(s), payload(s, 0, 16)));
    assert.deepEqual(again.unackedSeqs(10), [1, 2, 3, 5]);
    assert.equal(flash.reprogrammedBytes, 0);
  });

  test("a corrupt record is never returned; nothing after it in its page is trusted", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    for (let i = 0; i < 6; i++) appendLen(j, 16); // all in page 0, 28 bytes each
    // Clear the bits of one payload byte of record 3 (bit rot).
    const at = PAGE_HEADER_SIZE + 2 * 28 + ENTRY_OVERHEAD + 5;
    assert.notEqual(flash.read(0, at, 1)[0], 0);
    flash.program(0, at, new Uint8Array([0x00]));
    const r = new Journal({ flash });
    const st = r.open();
    assert.equal(st.records, 2);
    assert.equal(r.read(3), null);
    assert.equal(r.read(4), null);
    assert.ok(bytesEqual(r.read(2), payload(2, 0, 16)));
    assert.equal(st.tornTail, true);
    assert.equal(r.nextSeq(), 7, "the seqs of the untrusted records after it are not reused");
    assert.equal(appendLen(r, 3), 7);
  });

  test("garbage on flash (never formatted) is treated as free and erased before use", () => {
    const flash = newFlash();
    for (let p = 0; p < PAGES; p++) flash.program(p, 0, payload(p + 1, 99, PAGE));
    const j = new Journal({ flash });
    const st = j.open();
    assert.equal(st.logPages, 0);
    assert.equal(st.freePages, PAGES);
    assert.equal(appendLen(j, 30), 1);
    assert.ok(bytesEqual(openJournal(flash).read(1), payload(1, 0, 30)));
  });

  test("a half-erased old page keeps its header: only its intact prefix is read", () => {
    const flash = newFlash();
    const j = openJournal(flash);
    for (let i = 0; i < 12; i++) appendLen(j, 40); // pages 0 and 1 full, page 2 partly
    assert.equal(j.ack(4), JOURNAL_OK);
    // Page 0 as an erase cut short might leave it: header intact, records 3 and 4 damaged.
    const snap = flash.snapshot();
    snap.data.fill(0xff, PAGE_HEADER_SIZE + 2 * 52 + 7, PAGE_HEADER_SIZE + 2 * 52 + 30);
    const f2 = SimFlash.fromSnapshot(snap);
    const r = openJournal(f2);
    assert.ok(bytesEqual(r.read(1), payload(1, 0, 40)));
    assert.equal(r.read(3), null);
    assert.equal(r.read(4), null);
    assert.ok(r.ackedSeq() >= 4);
    for (let s = 5; s <= 12; s++) assert.ok(bytesEqual(r.read(s), payload(s, 0, 40)));
  });
});

// ---------------------------------------------------------------- power cuts

type Op =
  | { k: "append"; len: number }
  | { k: "ack"; back: number } // ack(last returned seq - back)
  | { k: "ackRaw"; seq: number }
  | { k: "ackOldest" } // ack(the first unacknowledged seq)
  | { k: "compact" }
  | { k: "reopen" }
  | { k: "fill"; len: number }; // append until JOURNAL_FULL

interface Model {
  /** What each seq's successful append wrote. */
  returned: Map<number, Uint8Array>;
  maxReturned: number;
  /** The append in flight: encode() was called, append() has not returned. */
  pending: { seq: number; data: Uint8Array } | null;
  /** Records in flight at earlier cuts: each may be on flash, whole, or not at all. */
  maybe: Map<number, Uint8Array>;
  /** The head already ended in a torn entry when the run began (a cut in an earlier run). */
  tornBefore: boolean;
  /** Highest seq passed to ack() (the host has stored it), the interrupted call included. */
  maxAckCalled: number;
  /** Highest seq an ack() call reported as on flash (JOURNAL_OK). */
  durableAck: number;
  results: Map<string, number>;
}

function newModel(): Model {
  return {
    returned: new Map(), maxReturned: 0, pending: null, maybe: new Map(), tornBefore: false, maxAckCalled: 0, durableAck: 0,
    results: new Map(),
  };
}

function copyModel(m: Model): Model {
  return { ...m, returned: new Map(m.returned), maybe: new Map(m.maybe), results: new Map(m.results) };
}

function count(m: Model, what: string): void {
  m.results.set(what, (m.results.get(what) ?? 0) + 1);
}

function modelAppend(j: Journal, m: Model, len: number, salt: number): number {
  const s = j.append((seq) => {
    const data = payload(seq, salt, len);
    m.pending = { seq, data };
    return data;
  });
  if (s > 0) {
    assert.ok(m.pending !== null && m.pending.seq === s);
    assert.ok(s > m.maxReturned, `append returned ${s} after ${m.maxReturned}`);
    m.returned.set(s, m.pending.data);
    m.maxReturned = s;
    count(m, "append");
  } else {
    count(m, s === JOURNAL_FULL ? "full" : s === TOO_LARGE ? "tooLarge" : `append${s}`);
  }
  m.pending = null;
  return s;
}

function modelAck(j: Journal, m: Model, seq: number): void {
  const valid = Number.isInteger(seq) && seq >= 0 && seq < j.nextSeq();
  if (valid && seq > m.maxAckCalled) m.maxAckCalled = seq;
  const r = j.ack(seq);
  if (r === JOURNAL_OK) {
    if (seq > m.durableAck) m.durableAck = seq;
    count(m, "ackOk");
  } else {
    count(m, r === ACK_PENDING ? "ackPending" : r === BAD_ACK ? "badAck" : `ack${r}`);
  }
}

/** Runs the script on a journal over `flash`; a PowerCut propagates out. */
function runScript(flash: SimFlash, ops: Op[], m: Model): Journal {
  let j = openJournal(flash);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    switch (op.k) {
      case "append":
        modelAppend(j, m, op.len, i);
        break;
      case "fill":
        for (let n = 0; modelAppend(j, m, op.len, i) > 0; n++) assert.ok(n < 1000, "the journal never fills");
        break;
      case "ack":
        modelAck(j, m, Math.max(0, m.maxReturned - op.back));
        break;
      case "ackRaw":
        modelAck(j, m, op.seq);
        break;
      case "ackOldest":
        modelAck(j, m, j.nextUnacked(0));
        break;
      case "compact":
        count(m, `compacted${j.compact()}`);
        break;
      case "reopen":
        j = openJournal(flash);
        break;
    }
  }
  return j;
}

/** Everything that must hold on the flash after a reboot, given what the script saw before it. */
function verifyRecovery(flash: SimFlash, m: Model, where: string): void {
  const j = new Journal({ flash });
  const st = j.open();
  assert.equal(st.code, JOURNAL_OK, where);
  const acked = j.ackedSeq();
  assert.ok(acked >= m.durableAck, `${where}: acked ${acked} behind a completed ack ${m.durableAck}`);
  assert.ok(j.nextSeq() > m.maxReturned, `${where}: nextSeq ${j.nextSeq()} reuses ${m.maxReturned}`);
  const expect = (s: number): Uint8Array | undefined =>
    m.returned.get(s) ?? (m.pending !== null && m.pending.seq === s ? m.pending.data : m.maybe.get(s));

  // Every returned record is there unless it was acknowledged (and so may have been compacted);
  // nothing the host has not acknowledged counts as acknowledged.
  for (const [s, data] of m.returned) {
    const r = j.read(s);
    if (s > acked) assert.ok(bytesEqual(r, data), `${where}: record ${s} lost or changed`);
    else {
      assert.ok(s <= m.maxAckCalled, `${where}: record ${s} <= acked ${acked} but never acked`);
      if (r !== null) assert.ok(bytesEqual(r, data), `${where}: acked record ${s} changed`);
    }
  }
  // The torn record is either whole or absent, and if any of it may be there its seq is used.
  if (m.pending !== null && st.tornTail && !m.tornBefore) {
    assert.ok(j.nextSeq() > m.pending.seq, `${where}: the seq of a torn record would be reused`);
  }
  if (m.pending !== null) {
    const r = j.read(m.pending.seq);
    if (r !== null) {
      assert.ok(bytesEqual(r, m.pending.data), `${where}: torn record ${m.pending.seq} returned corrupt`);
      assert.ok(j.nextSeq() > m.pending.seq, `${where}: seq of a present record reused`);
    }
  }
  // Never a corrupt record, whatever seq is asked.
  for (let s = 0; s <= j.nextSeq() + 1; s++) {
    const r = j.read(s);
    if (r !== null) {
      const e = expect(s);
      assert.ok(e !== undefined && bytesEqual(r, e), `${where}: read(${s}) returned bytes never written as ${s}`);
    }
  }
  // The unacknowledged walk is exactly the stored records above acked, in order.
  const walked: number[] = [];
  j.forEachUnacked(0, (s, data) => {
    const e = expect(s);
    assert.ok(e !== undefined && bytesEqual(data, e), `${where}: walk gave a corrupt ${s}`);
    walked.push(s);
  });
  const want: number[] = [];
  for (let s = acked + 1; s < j.nextSeq(); s++) if (j.read(s) !== null) want.push(s);
  assert.deepEqual(walked, want, where);
  for (const s of m.returned.keys()) if (s > acked) assert.ok(walked.includes(s), `${where}: ${s} not in backlog`);
  assert.equal(j.backlog(), walked.length, where);
  assert.deepEqual(j.unackedSeqs(1 << 20), walked, where);

  // Life goes on: a new record gets a fresh seq and survives another reboot.
  const before = j.nextSeq();
  let s = j.append((seq) => payload(seq, 7777, 21));
  if (s === JOURNAL_FULL) {
    assert.ok(j.ack(j.nextSeq() - 1) >= 0, where);
    s = j.append((seq) => payload(seq, 7777, 21));
  }
  assert.ok(s >= before && s > m.maxReturned, `${where}: new append got ${s}`);
  const again = new Journal({ flash });
  assert.equal(again.open().code, JOURNAL_OK);
  assert.ok(bytesEqual(again.read(s), payload(s, 7777, 21)), `${where}: record appended after recovery lost`);
  assert.ok(again.nextSeq() > s, where);
  assert.ok(again.ackedSeq() >= acked, `${where}: ack went back after another reboot`);
  assert.equal(flash.reprogrammedBytes, 0, `${where}: a byte was programmed twice without an erase`);
}

/** The fixed script: pages fill, wrap several times, get erased; full, pending acks, bad input. */
function crashScript(): Op[] {
  const ops: Op[] = [];
  let x = 12345;
  const rnd = (n: number): number => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x % n;
  };
  // Steady state: acks lag a few records behind, compaction now and then.
  for (let i = 0; i < 28; i++) {
    ops.push({ k: "append", len: [0, 3, 17, 40, 64, 90, 120, 200][rnd(8)] });
    if (i % 3 === 2) ops.push({ k: "ack", back: rnd(4) });
    if (i % 9 === 8) ops.push({ k: "compact" });
    if (i === 13) ops.push({ k: "reopen" });
  }
  // Replayed, out-of-order and bad acks, an oversized record.
  ops.push({ k: "ack", back: 6 }, { k: "ack", back: 2 }, { k: "ackRaw", seq: 100000 }, { k: "append", len: 300 });
  // Full journal: fill, ack a little (pending), then enough to free the oldest pages.
  ops.push({ k: "fill", len: 0 });
  ops.push({ k: "ackOldest" }, { k: "ack", back: 150 }, { k: "fill", len: 0 }, { k: "ack", back: 120 }, { k: "ack", back: 100 });
  ops.push({ k: "fill", len: 33 }, { k: "ack", back: 0 }, { k: "compact" });
  // After the wrap: more traffic, then everything acknowledged and compacted.
  for (let i = 0; i < 10; i++) {
    ops.push({ k: "append", len: [1, 12, 48, 100, 160][rnd(5)] });
    if (i % 4 === 3) ops.push({ k: "ack", back: 1 });
  }
  ops.push({ k: "ack", back: 0 }, { k: "compact" }, { k: "append", len: 25 });
  return ops;
}

describe("journal power cuts", () => {
  test("a cut at every step of the script: nothing returned is lost, nothing corrupt, no seq reused", () => {
    const ops = crashScript();
    const clean = newFlash(1);
    const cm = newModel();
    runScript(clean, ops, cm);
    const total = clean.steps;
    const cleanErases = clean.eraseCounts();
    verifyRecovery(clean, cm, "no cut");
    const results = Object.fromEntries(cm.results);
    // The script reaches every interesting state.
    for (const what of ["full", "tooLarge", "badAck", "ackPending", "ackOk"]) {
      assert.ok((results[what] ?? 0) > 0, `script never gave ${what}: ${JSON.stringify(results)}`);
    }
    assert.ok(cm.maxReturned > 150, `${cm.maxReturned} records`);
    assert.ok(Math.min(...cleanErases) >= 2, `every page erased at least twice: ${cleanErases}`);

    const t0 = Date.now();
    let cuts = 0;
    const kinds = { program: 0, erase: 0 };
    let eraseRuns = 0;
    let headerSurvived = 0;
    for (let k = 0; k <= total; k++) {
      // A cut inside an erase is tried with many seeds: each leaves a different half-erased page.
      for (let variant = 0; variant < 24; variant++) {
        const flash = newFlash(1000 + k + 100000 * variant);
        flash.armPowerCut(k);
        const m = newModel();
        try {
          runScript(flash, ops, m);
          assert.equal(k, total, `the script ended before cut ${k} of ${total}`);
          flash.disarmPowerCut();
        } catch (e) {
          if (!(e instanceof PowerCut)) throw e;
          flash.restorePower();
        }
        const cut = flash.lastCut;
        if (variant === 0 && cut !== null) {
          cuts++;
          kinds[cut.kind]++;
        }
        if (variant > 0) eraseRuns++;
        if (cut !== null && cut.kind === "erase") {
          const h = flash.read(cut.page, 0, PAGE_HEADER_SIZE);
          const word = (at: number): number => (h[at] | (h[at + 1] << 8) | (h[at + 2] << 16) | (h[at + 3] << 24)) >>> 0;
          if (h[0] === 0x50 && crc32(h, 0, 16) === word(16)) {
            headerSurvived++;
            assert.notEqual(word(20), 0xffffffff, "a page is retired before its erase starts");
          }
        }
        verifyRecovery(flash, m, `cut at step ${k} (variant ${variant})`);
        if (cut === null || cut.kind !== "erase") break;
      }
    }
    const ms = Date.now() - t0;
    console.log(
      `journal crash test: ${total + 1} cut points (${cuts} cuts: ${kinds.program} in program, ${kinds.erase} in erase, ` +
        `each erase cut retried with 23 more seeds: ${eraseRuns} runs, ${headerSurvived} left the header intact, retired; ` +
        `${cm.maxReturned} records, ${clean.eraseOps} erases in the clean run) in ${ms} ms; results ${JSON.stringify(results)}`,
    );
    assert.equal(cuts, total);
  });

  test("a cut at every step of an ack that reclaims a page and of the compaction after it", () => {
    // A full journal: six pages of 40-byte records (4 a page), two of empty ones, no page free.
    const base = newFlash(7);
    const m = newModel();
    const j = openJournal(base);
    for (let i = 0; i < 24; i++) modelAppend(j, m, 40, i);
    while (modelAppend(j, m, 0, 99) > 0);
    assert.equal(j.freeBytes() < ENTRY_OVERHEAD, true);
    const snap = base.snapshot();
    const ackTo = 22;

    // The dry run: the ack erases the oldest page to persist itself, compaction four more.
    const dry = SimFlash.fromSnapshot(snap);
    const dj = openJournal(dry);
    assert.equal(dj.ack(ackTo), JOURNAL_OK);
    const erased = dj.compact();
    assert.equal(erased, 4);
    assert.equal(dry.eraseOps, 5);
    const steps = dry.steps;

    let cuts = 0;
    let runs = 0;
    for (let k = 0; k <= steps; k++) {
      for (let variant = 0; variant < 24; variant++) {
        const flash = SimFlash.fromSnapshot(snap, 500 + k + 10000 * variant);
        const mk = copyModel(m);
        const cj = openJournal(flash);
        flash.armPowerCut(k);
        try {
          modelAck(cj, mk, ackTo);
          cj.compact();
          flash.disarmPowerCut();
        } catch (e) {
          if (!(e instanceof PowerCut)) throw e;
          flash.restorePower();
        }
        if (variant === 0 && flash.lastCut !== null) cuts++;
        runs++;
        verifyRecovery(flash, mk, `ack+compaction cut at step ${k} (variant ${variant})`);
        if (flash.lastCut === null || flash.lastCut.kind !== "erase") break;
      }
    }
    console.log(`journal compaction crash test: ${steps + 1} cut points (${cuts} cuts, 5 erases each tried with 24 seeds: ${runs} runs)`);
    assert.equal(cuts, steps);
  });

  test("repeated cuts, one after each reboot, at varying depths", () => {
    const flash = newFlash(3);
    const m = newModel();
    const j = openJournal(flash);
    for (let i = 0; i < 20; i++) modelAppend(j, m, 30, i);
    modelAck(j, m, 10);
    let cuts = 0;
    for (let round = 0; round < 60; round++) {
      flash.armPowerCut((round * 37) % 160, round);
      try {
        const r = new Journal({ flash });
        m.tornBefore = r.open().tornTail;
        for (let i = 0; i < 4; i++) modelAppend(r, m, 10 + (round % 50), 1000 + round * 10 + i);
        modelAck(r, m, Math.max(0, m.maxReturned - 8));
        if (round % 3 === 0) r.compact();
      } catch (e) {
        if (!(e instanceof PowerCut)) throw e;
        cuts++;
        flash.restorePower();
      }
      flash.disarmPowerCut();
      verifyRecovery(SimFlash.fromSnapshot(flash.snapshot()), copyModel(m), `round ${round}`);
      if (m.pending !== null) m.maybe.set(m.pending.seq, m.pending.data);
      m.pending = null;
    }
    assert.ok(cuts > 20 && cuts < 60, `${cuts} cuts`);
    assert.ok(m.maxReturned > 60, `${m.maxReturned} records`);
  });
});

// ---------------------------------------------------------------- the flash model

describe("SimFlash", () => {
  test("NOR semantics: erased is 0xFF, program only clears bits, page bounds are enforced", () => {
    const f = new SimFlash({ pageSize: 16, pageCount: 2 });
    assert.deepEqual(f.read(0, 0, 4), new Uint8Array([255, 255, 255, 255]));
    f.program(0, 1, new Uint8Array([0xf0, 0x0f]));
    f.program(0, 1, new Uint8Array([0x3c, 0xff]));
    assert.deepEqual(f.read(0, 0, 4), new Uint8Array([0xff, 0x30, 0x0f, 0xff]));
    assert.equal(f.reprogrammedBytes, 2);
    const copy = f.read(0, 0, 4);
    copy[0] = 0;
    assert.equal(f.read(0, 0, 1)[0], 0xff, "reads are copies");
    assert.throws(() => f.program(0, 15, new Uint8Array(2)), RangeError);
    assert.throws(() => f.read(1, 10, 7), RangeError);
    assert.throws(() => f.erase(2), RangeError);
    f.erase(0);
    assert.deepEqual(f.read(0, 0, 16), new Uint8Array(16).fill(0xff));
    assert.equal(f.eraseCount(0), 1);
    assert.equal(f.eraseCount(1), 0);
    assert.equal(f.steps, 5);
  });

  test("a cut in program leaves a prefix, a partial byte, an untouched rest, and no power", () => {
    for (let seed = 1; seed < 40; seed++) {
      const f = new SimFlash({ pageSize: 16, pageCount: 1, seed });
      f.armPowerCut(3);
      assert.throws(() => f.program(0, 2, new Uint8Array([1, 2, 3, 0x00, 5, 6])), PowerCut);
      assert.equal(f.powerLost, true);
      assert.throws(() => f.read(0, 0, 1), PowerCut);
      assert.throws(() => f.erase(0), PowerCut);
      f.restorePower();
      const b = f.read(0, 0, 16);
      assert.deepEqual(b.subarray(2, 5), new Uint8Array([1, 2, 3]));
      assert.equal(b[5] | 0x00, b[5]); // any subset of its bits may be cleared
      assert.deepEqual(b.subarray(6), new Uint8Array(10).fill(0xff));
      assert.equal(f.programmedBytes, 3);
    }
    // Over many seeds the cut byte is sometimes untouched, sometimes fully, sometimes partly written.
    const seen = new Set<number>();
    for (let seed = 1; seed < 200; seed++) {
      const f = new SimFlash({ pageSize: 4, pageCount: 1, seed });
      f.armPowerCut(0);
      assert.throws(() => f.program(0, 0, new Uint8Array([0x00])), PowerCut);
      f.restorePower();
      const v = f.read(0, 0, 1)[0];
      seen.add(v === 0xff ? 0 : v === 0 ? 1 : 2);
    }
    assert.equal(seen.size, 3);
  });

  test("steps count across calls; an erase is one step; a cut erase leaves a mix", () => {
    const f = new SimFlash({ pageSize: 64, pageCount: 2, seed: 9 });
    f.program(1, 0, new Uint8Array(64)); // all zero
    f.armPowerCut(5);
    f.program(0, 0, new Uint8Array([0, 0])); // 2 steps
    f.erase(0); // 1 step
    f.program(0, 0, new Uint8Array([0, 0])); // 2 steps
    assert.throws(() => f.erase(1), PowerCut);
    f.restorePower();
    const b = f.read(1, 0, 64);
    const ff = b.filter((v) => v === 0xff).length;
    const zero = b.filter((v) => v === 0).length;
    assert.ok(ff > 0 && zero > 0 && ff + zero < 64, `mix: ${ff} erased, ${zero} old`);
    assert.equal(f.eraseCount(1), 1);
    assert.equal(f.cuts, 1);
  });

  test("snapshots are independent copies; save and load round-trip", () => {
    const f = new SimFlash({ pageSize: 32, pageCount: 3 });
    f.program(2, 5, new Uint8Array([1, 2, 3]));
    f.erase(1);
    const s = f.snapshot();
    const g = SimFlash.fromSnapshot(s);
    f.program(2, 0, new Uint8Array([0]));
    assert.equal(g.read(2, 0, 1)[0], 0xff);
    assert.deepEqual(g.read(2, 5, 3), new Uint8Array([1, 2, 3]));
    assert.equal(g.eraseCount(1), 1);

    const dir = mkdtempSync(join(tmpdir(), "simflash-"));
    try {
      const path = join(dir, "flash.bin");
      f.saveTo(path);
      const h = SimFlash.loadFrom(path);
      assert.equal(h.pageSize, 32);
      assert.equal(h.pageCount, 3);
      assert.ok(bytesEqual(h.snapshot().data, f.snapshot().data));
      assert.deepEqual(h.eraseCounts(), f.eraseCounts());
      const raw = readFileSync(path);
      raw[0] = 0;
      const bad = join(dir, "bad.bin");
      rmSync(path);
      writeFileSync(bad, raw);
      assert.throws(() => SimFlash.loadFrom(bad), /not a flash image/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- engine subset

test("journal.ts keeps to the engine subset (syntax and library)", () => {
  const path = new URL("./journal.ts", import.meta.url);
  const src = readFileSync(path, "utf8");
  const sf = ts.createSourceFile("journal.ts", src, ts.ScriptTarget.ES2022, true);
  const bad: string[] = [];
  const K = ts.SyntaxKind;
  const forbiddenKinds = new Map<ts.SyntaxKind, string>([
    [K.ObjectBindingPattern, "destructuring"],
    [K.ArrayBindingPattern, "destructuring"],
    [K.SpreadElement, "spread"],
    [K.SpreadAssignment, "object spread"],
    [K.ComputedPropertyName, "computed key"],
    [K.QuestionDotToken, "optional chaining"],
    [K.RegularExpressionLiteral, "regex"],
    [K.PrivateIdentifier, "#private"],
    [K.TaggedTemplateExpression, "tagged template"],
    [K.LabeledStatement, "label"],
    [K.YieldExpression, "generator"],
    [K.AwaitExpression, "await"],
    [K.AsyncKeyword, "async"],
    [K.BigIntLiteral, "BigInt"],
    [K.QuestionQuestionEqualsToken, "??="],
    [K.BarBarEqualsToken, "||="],
    [K.AmpersandAmpersandEqualsToken, "&&="],
    [K.AsteriskAsteriskToken, "**"],
    [K.AsteriskAsteriskEqualsToken, "**="],
    [K.ForInStatement, "for-in"],
  ]);
  const forbiddenNames = new Set(["Map", "Set", "WeakMap", "Symbol", "Proxy", "Reflect", "BigInt", "TextEncoder",
    "TextDecoder", "structuredClone", "queueMicrotask", "setImmediate", "Promise"]);
  const forbiddenMembers = new Set(["Array.from", "Array.of", "Uint8Array.from", "Uint8Array.of", "Math.imul",
    "Math.trunc", "Math.clz32", "Math.log2", "Math.hypot", "Number.isInteger", "Number.isNaN", "Number.EPSILON",
    "Number.MAX_SAFE_INTEGER", "Object.freeze", "Object.seal"]);
  const forbiddenMethods = new Set(["at", "flat", "lastIndexOf", "reduceRight"]);
  const where = (n: ts.Node): string => `line ${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
  const visit = (n: ts.Node): void => {
    const kind = forbiddenKinds.get(n.kind);
    if (kind !== undefined) bad.push(`${kind} at ${where(n)}`);
    if (ts.isParameter(n) && (n.initializer !== undefined || n.dotDotDotToken !== undefined)) {
      bad.push(`default/rest parameter at ${where(n)}`);
    }
    if ((ts.isFunctionDeclaration(n) || ts.isFunctionExpression(n) || ts.isMethodDeclaration(n)) && n.asteriskToken) {
      bad.push(`generator at ${where(n)}`);
    }
    if (ts.isHeritageClause(n)) bad.push(`extends/implements at ${where(n)}`);
    const isMemberName = n.parent !== undefined && ts.isPropertyAccessExpression(n.parent) && n.parent.name === n;
    if (ts.isIdentifier(n) && forbiddenNames.has(n.text) && !isMemberName) {
      bad.push(`${n.text} at ${where(n)}`);
    }
    if (ts.isPropertyAccessExpression(n)) {
      const text = `${n.expression.getText(sf)}.${n.name.text}`;
      if (forbiddenMembers.has(text)) bad.push(`${text} at ${where(n)}`);
      if (forbiddenMethods.has(n.name.text)) bad.push(`.${n.name.text}() at ${where(n)}`);
    }
    if (ts.isForOfStatement(n)) bad.push(`for-of (arrays only; avoided here) at ${where(n)}`);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  // Function declarations come before any top-level statement that could call them.
  let lastFunction = -1;
  let firstCall = Number.MAX_SAFE_INTEGER;
  sf.statements.forEach((s, i) => {
    if (ts.isFunctionDeclaration(s)) lastFunction = i;
    else if (!ts.isImportDeclaration(s) && !ts.isInterfaceDeclaration(s) && !ts.isTypeAliasDeclaration(s)) {
      let calls = false;
      const find = (n: ts.Node): void => {
        if (ts.isCallExpression(n) && !ts.isFunctionLike(n.parent)) calls = true;
        if (!ts.isFunctionLike(n) && !ts.isClassDeclaration(n)) ts.forEachChild(n, find);
      };
      find(s);
      if (calls && i < firstCall) firstCall = i;
    }
  });
  assert.ok(firstCall > lastFunction || firstCall === Number.MAX_SAFE_INTEGER, "a top-level call before a function it may use");
  assert.deepEqual(bad, []);
});
