import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Outbox } from "./outbox.ts";
const dir = mkdtempSync(join(tmpdir(), "obench-"));
for (const sync of ["FULL", "NORMAL"] as const) {
  const ob = new Outbox({ path: join(dir, sync + ".db"), synchronous: sync });
  const p = new Uint8Array(150);
  let t0 = performance.now();
  for (let s = 1; s <= 300; s++) ob.put([{ deviceId: "A", channel: "record", seq: s, payload: p, receivedMs: 0 }]);
  const single = (performance.now() - t0) / 300;
  t0 = performance.now();
  for (let b = 0; b < 50; b++) {
    const items = [];
    for (let i = 0; i < 100; i++) items.push({ deviceId: "B", channel: "record", seq: b * 100 + i + 1, payload: p, receivedMs: 0 });
    ob.put(items);
  }
  const batch = (performance.now() - t0) / 50;
  t0 = performance.now();
  for (let b = 0; b < 50; b++) ob.markSent(ob.pending(100).map((r) => r.id));
  const sent = (performance.now() - t0) / 50;
  console.log(`${sync}: put 1 row ${single.toFixed(2)} ms/commit (${Math.round(1000 / single)}/s); put 100 rows ${batch.toFixed(2)} ms (${Math.round(100000 / batch)} rows/s); pending+markSent 100 ${sent.toFixed(2)} ms`);
  ob.close();
}
