// The behaviour every OpsStore must have, as node:test tests that each store's test file registers
// with its own way of making stores: sqlite_store.test.ts (":memory:" and a file) and
// pg_store.test.ts (a database on a throwaway PostgreSQL server). Not a test file itself.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { OpsStore, RegisteredDevice, StoredRecord } from "./store.ts";

export interface StoreMaker {
  /** Name in the test titles, e.g. "SQLite". */
  name: string;
  /**
   * A new, empty store, and `reopen()`: after the store's close(), the same data through a new
   * store (a restart; only called when `reopenable` was asked). `dispose` (optional) removes what
   * the store left behind.
   */
  fresh(options: { reopenable: boolean }): Promise<{ store: OpsStore; reopen(): OpsStore; dispose?(): Promise<void> | void }>;
  /** Time allowed for 15,000 records in batches of 500 (default 3 s). */
  bulkBudgetMs?: number;
  /** Skip every test with this reason (e.g. no PostgreSQL server binaries). */
  skip?: false | string;
}

export const dev = (id: string): RegisteredDevice => ({
  deviceId: id,
  publicKeyHex: "ab".repeat(64),
  role: "verification",
  governorate: "G1",
  office: "O1",
  stationId: "S1",
  site: "site-a",
});

export const rec = (deviceId: string, seq: number, prevSeq: number, receivedMs = 1000 + seq, fill = seq): StoredRecord => ({
  deviceId,
  seq,
  prevSeq,
  timeMs: 5000 + seq,
  kind: 2,
  bytes: new Uint8Array([8, seq, fill]),
  receivedMs,
  site: "site-a",
});

/** Registers the contract's tests for one kind of store. */
export function storeContract(maker: StoreMaker): void {
  const opts = { skip: maker.skip ?? false };
  const t = (title: string, body: (s: OpsStore, reopen: () => OpsStore) => void | Promise<void>): void => {
    test(`${maker.name}: ${title}`, opts, async () => {
      const made = await maker.fresh({ reopenable: body.length >= 2 });
      let current = made.store;
      try {
        await body(current, () => {
          current = made.reopen();
          return current;
        });
      } finally {
        current.close();
        await made.dispose?.();
      }
    });
  };

  t("records are stored once per (device, seq); duplicates are counted", (s) => {
    s.upsertDevices([dev("D1"), dev("D2")]);
    assert.deepEqual(s.putRecords([rec("D1", 1, 0), rec("D1", 2, 1), rec("D2", 1, 0)]), { inserted: 3, duplicates: 0 });
    assert.deepEqual(s.putRecords([rec("D1", 2, 1, 9999, 77), rec("D1", 3, 2)]), { inserted: 1, duplicates: 1 });
    assert.deepEqual([...s.recordBytes("D1", 2)!], [8, 2, 2], "the first copy stays");
    assert.equal(s.recordBytes("D1", 9), null);
    assert.deepEqual(s.records({ deviceId: "D1" }).map((r) => r.seq), [1, 2, 3]);
    assert.deepEqual(s.records({ sinceMs: 1002 }).map((r) => `${r.deviceId}:${r.seq}`), ["D1:2", "D1:3"]);
    assert.equal(s.records({ kind: 2, limit: 2 }).length, 2);
    const st = s.deviceStates().find((d) => d.deviceId === "D1")!;
    assert.equal(st.records, 3);
    assert.equal(st.chainTop, 3);
    // Twice in one call: the first copy is stored, the second counted as a duplicate.
    assert.deepEqual(s.putRecords([rec("D2", 2, 1, 2000, 5), rec("D2", 2, 1, 2001, 6)]), { inserted: 1, duplicates: 1 });
    assert.deepEqual([...s.recordBytes("D2", 2)!], [8, 2, 5]);
    assert.deepEqual(s.putRecords([]), { inserted: 0, duplicates: 0 });
    const r = s.records({ deviceId: "D2" })[1];
    assert.deepEqual({ ...r, bytes: [...r.bytes] }, { ...rec("D2", 2, 1, 2000, 5), bytes: [8, 2, 5] }, "every field comes back as stored");
  });

  t("the chain top follows prev_seq: a skipped number does not stop it, a missing record does until it arrives", (s) => {
    s.upsertDevices([dev("D1")]);
    s.putRecords([rec("D1", 1, 0), rec("D1", 2, 1), rec("D1", 4, 2)]); // 3 skipped by the journal
    assert.equal(s.deviceStates()[0].chainTop, 4);
    s.putRecords([rec("D1", 6, 5), rec("D1", 7, 6)]); // 5 lost in transit
    assert.equal(s.deviceStates()[0].chainTop, 4);
    s.putRecords([rec("D1", 5, 4)]);
    assert.equal(s.deviceStates()[0].chainTop, 7, "the late record joins the stored ones after it");
    s.putRecords([rec("D1", 9, 8), rec("D1", 10, 9)]); // 8 missing
    s.putRecords([rec("D1", 8, 7, 1), rec("D1", 11, 10)]);
    const st = s.deviceStates()[0];
    assert.equal(st.chainTop, 11);
    assert.equal(st.records, 10);
    assert.equal(st.lastSeenMs, 1011, "last seen: the latest receive time, not the last stored");
  });

  t("health history, latest health, online state, quarantine; everything survives a restart", (first, reopen) => {
    let s = first;
    s.upsertDevices([dev("D1"), dev("D2")]);
    s.putHealth([
      { deviceId: "D1", receivedMs: 100, site: "site-a", health: { batteryMv: 4000 } },
      { deviceId: "D1", receivedMs: 300, site: "site-a", health: { batteryMv: 3900 } },
      { deviceId: "D1", receivedMs: 200, site: "site-a", health: { batteryMv: 3950 } },
      { deviceId: "D2", receivedMs: 150, site: "site-a", health: { batteryMv: 3000 } },
    ]);
    s.putHealth([{ deviceId: "D2", receivedMs: 120, site: "site-a", health: { batteryMv: 3100 } }]); // older: history only
    s.setOnline("D1", true, 310, "1.0.0");
    s.setOnline("D2", false, 320);
    s.putRecords([rec("D1", 1, 0)]);
    s.quarantine([
      { receivedMs: 1, topic: "t", deviceId: "X", reason: "unknown-device", detail: "d", payload: new Uint8Array([1, 2]) },
      { receivedMs: 2, topic: "t", deviceId: "D1", reason: "bad-signature", detail: "d", payload: new Uint8Array([3]) },
      { receivedMs: 3, topic: "t", deviceId: "X", reason: "unknown-device", detail: "d2", payload: new Uint8Array([]) },
    ]);
    s.close();

    s = reopen();
    assert.deepEqual(s.devices().map((d) => d.deviceId), ["D1", "D2"]);
    assert.deepEqual(s.device("D1"), dev("D1"));
    assert.equal(s.device("D9"), null);
    assert.deepEqual(s.healthHistory("D1", 0, 10).map((h) => h.health.batteryMv), [4000, 3950, 3900]);
    assert.deepEqual(s.healthHistory("D1", 150, 1).map((h) => h.receivedMs), [200]);
    assert.deepEqual(s.healthHistory("D1", 0, 10)[0], { deviceId: "D1", receivedMs: 100, site: "site-a", health: { batteryMv: 4000 } });
    const states = s.deviceStates();
    const d1 = states.find((d) => d.deviceId === "D1")!;
    assert.equal(d1.online, true);
    assert.equal(d1.firmwareVersion, "1.0.0");
    assert.equal(d1.lastHealth?.health.batteryMv, 3900, "latest by receive time, not by arrival");
    assert.equal(d1.lastSeenMs, 1001);
    assert.equal(d1.records, 1);
    const d2 = states.find((d) => d.deviceId === "D2")!;
    assert.equal(d2.online, false);
    assert.equal(d2.firmwareVersion, "", "no firmware version given");
    assert.equal(d2.lastHealth?.health.batteryMv, 3000, "an older sample does not replace the latest");
    assert.equal(d2.lastSeenMs, 320);
    assert.deepEqual(s.quarantineCounts(), { "unknown-device": 2, "bad-signature": 1 });
    assert.deepEqual(s.quarantined({ reason: "unknown-device" }).map((q) => q.detail), ["d", "d2"]);
    assert.deepEqual([...s.quarantined({ limit: 1 })[0].payload], [1, 2]);
    assert.deepEqual(s.quarantined({}).map((q) => q.receivedMs), [1, 2, 3], "in arrival order");
    assert.equal(s.records({}).length, 1);
  });

  t("15,000 records in batches of 500 store within the time budget", (s) => {
    const budget = maker.bulkBudgetMs ?? 3000;
    const devices = Array.from({ length: 50 }, (_, i) => dev(`D${i}`));
    s.upsertDevices(devices);
    const payload = new Uint8Array(120).fill(7);
    const t0 = performance.now();
    for (let b = 0; b < 30; b++) {
      const batch: StoredRecord[] = [];
      for (let i = 0; i < 500; i++) {
        const n = b * 500 + i;
        const seq = Math.floor(n / 50) + 1;
        batch.push({ deviceId: `D${n % 50}`, seq, prevSeq: seq - 1, timeMs: n, kind: 2, bytes: payload, receivedMs: n, site: "s" });
      }
      assert.equal(s.putRecords(batch).inserted, 500);
    }
    const ms = performance.now() - t0;
    console.log(`${maker.name}: 15,000 records in batches of 500: ${ms.toFixed(0)} ms`);
    assert.ok(ms < budget, `15,000 records took ${ms.toFixed(0)} ms (budget ${budget} ms)`);
    assert.equal(s.deviceStates()[0].chainTop, 300);
    assert.equal(s.records({}).length, 15000);
  });

  t("latestRecordPerDevice and recordsAfter: each device's highest seq among the kinds asked, and what follows a seq", (s) => {
    const r = (deviceId: string, seq: number, kind: number): StoredRecord => ({ ...rec(deviceId, seq, seq - 1), kind });
    s.putRecords([r("D1", 1, 3), r("D1", 2, 4), r("D1", 3, 7), r("D2", 1, 3), r("D2", 5, 3), r("D3", 1, 9)]);
    assert.deepEqual(s.latestRecordPerDevice([3, 4]).map((x) => `${x.deviceId}:${x.seq}`), ["D1:2", "D2:5"]);
    assert.deepEqual(s.latestRecordPerDevice([9]).map((x) => `${x.deviceId}:${x.seq}:${x.kind}`), ["D3:1:9"]);
    assert.deepEqual(s.latestRecordPerDevice([]), []);
    assert.deepEqual(s.latestRecordPerDevice([3, 4], ["D2", "D1", "D9"]).map((x) => `${x.deviceId}:${x.seq}`), ["D2:5", "D1:2"], "per device, newest first");
    assert.deepEqual(s.latestRecordPerDevice([3], new Set(["D1"])).map((x) => x.seq), [1], "any iterable of ids");
    assert.deepEqual(s.recordsAfter("D1", 1, [4, 7]).map((x) => x.seq), [2, 3]);
    assert.deepEqual(s.recordsAfter("D1", 2, [3]), []);
    assert.deepEqual(s.recordsAfter("D1", 0, []), []);
    const states = new Map(s.deviceStates().map((d) => [d.deviceId, d]));
    assert.equal(states.get("D2")!.records, 2, "records of unregistered devices get a state row too");
    assert.equal(states.get("D2")!.chainTop, 1);
  });

  t("election definitions are stored per (election, station) and replaced by a new import", (s) => {
    const e = (station: string, version: number, artifact: Uint8Array | null) => ({
      electionId: "E1",
      stationId: station,
      sha256: "ab".repeat(32),
      definition: new Uint8Array([10, 2, 69, 49]),
      artifact,
      signatureChecked: artifact !== null,
      version,
      importedMs: 5,
      source: "f",
    });
    s.putElections([e("", 0, null), e("S1", 1, new Uint8Array([1, 2]))]);
    s.putElections([e("S1", 2, new Uint8Array([3]))]);
    const all = s.elections();
    assert.deepEqual(all.map((x) => [x.stationId, x.version, x.signatureChecked, x.artifact ? [...x.artifact] : null]), [["", 0, false, null], ["S1", 2, true, [3]]]);
    assert.deepEqual([...all[0].definition], [10, 2, 69, 49]);
    s.putElections([e("S2", 1, null), e("S2", 3, null)]);
    assert.equal(s.elections().find((x) => x.stationId === "S2")!.version, 3, "the last of one call wins");
  });

  t("a registry upsert updates a device in place; ids sort by bytes", (s) => {
    s.upsertDevices([dev("b-2"), dev("B-1"), dev("a-3")]);
    s.upsertDevices([{ ...dev("b-2"), role: "result", stationId: "S9" }]);
    assert.deepEqual(s.devices().map((d) => d.deviceId), ["B-1", "a-3", "b-2"]);
    assert.deepEqual(s.device("b-2"), { ...dev("b-2"), role: "result", stationId: "S9" });
    assert.deepEqual(s.deviceStates().map((d) => [d.deviceId, d.online, d.records, d.chainTop, d.lastHealth]), [
      ["B-1", false, 0, 0, null],
      ["a-3", false, 0, 0, null],
      ["b-2", false, 0, 0, null],
    ]);
  });

  t("transaction: the calls inside commit together or not at all", (s) => {
    assert.ok(s.transaction, "this store has transactions");
    const tx = s.transaction.bind(s);
    const out = tx(() => {
      s.putRecords([rec("D1", 1, 0)]);
      s.setOnline("D1", true, 50, "2.0.0");
      s.quarantine([{ receivedMs: 1, topic: "t", deviceId: "D1", reason: "malformed", detail: "x", payload: new Uint8Array([1]) }]);
      const inside = s.deviceStates()[0];
      assert.deepEqual([inside.records, inside.chainTop, inside.online, inside.lastSeenMs], [1, 1, true, 1001], "a transaction reads its own changes");
      s.setOnline("D1", true, 60);
      return 42;
    });
    assert.equal(out, 42);
    assert.throws(
      () =>
        tx(() => {
          s.putRecords([rec("D1", 2, 1)]);
          s.putHealth([{ deviceId: "D1", receivedMs: 60, site: "s", health: { batteryMv: 1 } }]);
          throw new Error("batch failed");
        }),
      /batch failed/,
    );
    assert.equal(s.recordBytes("D1", 2), null, "rolled back");
    assert.equal(s.healthHistory("D1", 0, 10).length, 0);
    const st = s.deviceStates()[0];
    assert.deepEqual([st.records, st.chainTop, st.online, st.firmwareVersion], [1, 1, true, "2.0.0"]);
    // Nested: the inner one rolls back alone.
    tx(() => {
      s.putRecords([rec("D1", 2, 1)]);
      assert.throws(() =>
        tx(() => {
          s.putRecords([rec("D1", 3, 2)]);
          throw new Error("inner");
        }),
      );
    });
    assert.deepEqual(s.records({ deviceId: "D1" }).map((r) => r.seq), [1, 2]);
    assert.equal(s.deviceStates()[0].chainTop, 2);
    assert.deepEqual(s.quarantineCounts(), { malformed: 1 });
  });
}
