import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { Outbox, type OutboxItem } from "./outbox.ts";

const dir = mkdtempSync(join(tmpdir(), "pollkit-outbox-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const freshPath = (): string => join(dir, `outbox-${++fileNo}.db`);

function rec(deviceId: string, seq: number, channel = "record", size = 16): OutboxItem {
  const payload = new Uint8Array(size);
  payload[0] = seq & 0xff;
  return { deviceId, channel, seq, payload, receivedMs: 1_700_000_000_000 + seq };
}

describe("Outbox", () => {
  test("put, pending in order, markSent, stats", () => {
    const ob = new Outbox({ path: freshPath() });
    try {
      assert.equal(ob.put([rec("A", 1), rec("B", 1), rec("A", 2)]), 3);
      assert.equal(
        ob.put([{ deviceId: "A", channel: "health", seq: null, payload: Uint8Array.of(9), receivedMs: 5 }]),
        1,
      );
      assert.equal(ob.count(), 4);
      const rows = ob.pending(10);
      assert.deepEqual(
        rows.map((r) => [r.deviceId, r.channel, r.seq]),
        [["A", "record", 1], ["B", "record", 1], ["A", "record", 2], ["A", "health", null]],
      );
      assert.equal(rows[0].attempts, 0);
      assert.equal(rows[0].receivedMs, 1_700_000_000_001);
      assert.deepEqual([...rows[3].payload], [9]);
      // limit and exclude (in flight)
      assert.deepEqual(ob.pending(2).map((r) => r.id), [rows[0].id, rows[1].id]);
      assert.deepEqual(
        ob.pending(2, new Set([rows[0].id, rows[2].id])).map((r) => r.id),
        [rows[1].id, rows[3].id],
      );
      ob.recordAttempts([rows[0].id, rows[0].id]);
      assert.equal(ob.pending(1)[0].attempts, 2);
      ob.markSent([rows[0].id, rows[1].id, 999_999]);
      assert.equal(ob.count(), 2);
      assert.deepEqual(ob.stats(), { pending: 2, sent: 2, duplicatesDropped: 0 });
      assert.equal(ob.highestSeq("A"), 2);
      assert.equal(ob.highestSeq("B"), 1);
      assert.equal(ob.highestSeq("nobody"), 0);
    } finally {
      ob.close();
    }
  });

  test("WAL mode and synchronous FULL by default, NORMAL on request", () => {
    const p = freshPath();
    const ob = new Outbox({ path: p });
    assert.equal(ob.pragma("journal_mode"), "wal");
    assert.equal(ob.pragma("synchronous"), 2); // FULL
    ob.close();
    const db = new Database(p, { readonly: true });
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal"); // persistent in the file
    db.close();
    const ob2 = new Outbox({ path: p, synchronous: "NORMAL" });
    assert.equal(ob2.pragma("synchronous"), 1);
    ob2.close();
  });

  test("duplicates are dropped: in a batch, while pending, after markSent, after reopening", () => {
    const p = freshPath();
    let ob = new Outbox({ path: p });
    assert.equal(ob.put([rec("A", 1), rec("A", 2), rec("A", 2), rec("A", 3)]), 3);
    assert.equal(ob.put([rec("A", 2)]), 0); // pending duplicate
    // same seq on another channel or device is not a duplicate; null seq never is
    assert.equal(ob.put([rec("A", 2, "turnout"), rec("B", 2)]), 2);
    const health = { deviceId: "A", channel: "health", seq: null, payload: Uint8Array.of(1), receivedMs: 1 };
    assert.equal(ob.put([health, health]), 2);
    ob.markSent(ob.pending(100).map((r) => r.id));
    assert.equal(ob.count(), 0);
    assert.equal(ob.put([rec("A", 1), rec("A", 3), rec("B", 2), rec("A", 2, "turnout")]), 0); // sent duplicates
    assert.equal(ob.highestSeq("A"), 3); // kept after deletion
    assert.equal(ob.stats().duplicatesDropped, 6);
    ob.close();

    ob = new Outbox({ path: p });
    try {
      assert.equal(ob.put([rec("A", 3), rec("A", 4)]), 1);
      assert.equal(ob.highestSeq("A"), 4);
      assert.deepEqual(ob.stats(), { pending: 1, sent: 7, duplicatesDropped: 7 });
      assert.equal(ob.rangeCount(), 3); // A/record [1,4], A/turnout [2,2], B/record [2,2]
    } finally {
      ob.close();
    }
  });

  test("out-of-order seqs: exact set, intervals merge, storedThrough stops at a gap", () => {
    const ob = new Outbox({ path: freshPath() });
    try {
      // the device was acknowledged by another agent up to 4999: first seen at 5000
      assert.equal(ob.put([rec("D", 5000), rec("D", 5001), rec("D", 5003)]), 3);
      assert.equal(ob.highestSeq("D"), 5003);
      assert.equal(ob.storedThrough("D", 5000), 5001); // 5002 is missing: do not ack 5003
      assert.equal(ob.rangeCount(), 2);
      assert.equal(ob.put([rec("D", 4999)]), 1); // never seen: not a duplicate
      assert.equal(ob.put([rec("D", 5002), rec("D", 5002)]), 1); // fills the gap
      assert.equal(ob.rangeCount(), 1);
      assert.equal(ob.storedThrough("D", 5000), 5003);
      assert.equal(ob.storedThrough("D", 6000), 5999);
      // descending batch, then a random permutation: each seq accepted exactly once
      assert.equal(ob.put([rec("E", 3), rec("E", 2), rec("E", 1)]), 3);
      const perm = Array.from({ length: 200 }, (_, i) => i + 10);
      for (let i = perm.length - 1; i > 0; i--) {
        const j = (i * 7919 + 13) % (i + 1);
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      let added = 0;
      for (const s of perm) added += ob.put([rec("E", s), rec("E", s)]);
      assert.equal(added, 200);
      assert.equal(ob.put(perm.map((s) => rec("E", s))), 0);
      assert.equal(ob.storedThrough("E", 1), 3);
      assert.equal(ob.storedThrough("E", 10), 209);
      assert.equal(ob.rangeCount(), 3); // D [4999,5003], E [1,3], E [10,209]
    } finally {
      ob.close();
    }
  });

  test("a bad item rejects the whole batch with a clear error and stores nothing", () => {
    const ob = new Outbox({ path: freshPath() });
    try {
      ob.put([rec("A", 1)]);
      const cases: [OutboxItem, RegExp][] = [
        [{ ...rec("A", 3), payload: new Uint8Array(64 * 1024 + 1) }, /payload of 65537 bytes is over the 65536-byte limit/],
        [{ ...rec("A", 3), deviceId: "" }, /deviceId must be a non-empty string/],
        [{ ...rec("A", 3), channel: "" }, /channel must be a non-empty string/],
        [{ ...rec("A", 3), deviceId: "a/b" }, /contains '\/', '\+', '#'/],
        [{ ...rec("A", 3), channel: "#" }, /contains/],
        [{ ...rec("A", 3), seq: 0 }, /seq must be null or a positive safe integer/],
        [{ ...rec("A", 3), seq: 1.5 }, /seq must be/],
        [{ ...rec("A", 3), payload: [1, 2] as unknown as Uint8Array }, /payload must be a Uint8Array/],
        [{ ...rec("A", 3), receivedMs: Number.NaN }, /receivedMs/],
      ];
      for (const [bad, msg] of cases) {
        assert.throws(() => ob.put([rec("A", 2), rec("B", 1), bad]), msg);
      }
      assert.equal(ob.count(), 1);
      assert.equal(ob.highestSeq("A"), 1);
      assert.equal(ob.highestSeq("B"), 0);
      // exactly 64 KiB is fine, and the seqs rejected above are still accepted
      assert.equal(ob.put([rec("A", 2), { ...rec("B", 1), payload: new Uint8Array(64 * 1024) }]), 2);
      assert.equal(ob.stats().duplicatesDropped, 0);
    } finally {
      ob.close();
    }
  });

  test("a committed put survives SIGKILL of the process (FULL and NORMAL)", async (t) => {
    for (const sync of ["FULL", "NORMAL"] as const) {
      const p = freshPath();
      const child = spawn(
        process.execPath,
        ["--import", "tsx", new URL("./testing/put_child.ts", import.meta.url).pathname, p, "1000000", sync],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let lastCommitted = 0;
      let buf = "";
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
      await new Promise<void>((resolve) => {
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (chunk: string) => {
          buf += chunk;
          const lines = buf.split("\n");
          buf = lines.pop() ?? "";
          for (const line of lines) {
            const m = /^committed (\d+)$/.exec(line);
            if (m) lastCommitted = Number(m[1]);
          }
          if (lastCommitted >= 300 && !child.killed) {
            child.kill("SIGKILL");
            resolve();
          }
        });
      });
      assert.equal(await exited, "SIGKILL");
      const ob = new Outbox({ path: p });
      try {
        const stored = ob.highestSeq("VVD-KILL");
        t.diagnostic(`${sync}: killed after "committed ${lastCommitted}", ${stored} rows in the file`);
        assert.ok(stored >= lastCommitted, `${sync}: committed ${lastCommitted} but only ${stored} stored`);
        assert.equal(ob.storedThrough("VVD-KILL", 1), stored); // no holes
        const rows = ob.pending(lastCommitted);
        assert.equal(rows.length, lastCommitted);
        assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: lastCommitted }, (_, i) => i + 1));
        assert.equal(ob.count(), stored);
      } finally {
        ob.close();
      }
    }
  });
});
