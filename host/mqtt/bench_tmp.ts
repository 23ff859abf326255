import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "mqtt";
import { startEmbeddedBroker } from "../broker/embedded.ts";
import { startMosquitto } from "../../test/helpers/mosquitto.ts";
import { Outbox, type OutboxItem } from "../outbox/outbox.ts";
import { MqttBridge } from "./bridge.ts";

const dir = mkdtempSync(join(tmpdir(), "bench-"));
let k = 0;
async function run(url: string, sync: "FULL" | "NORMAL", maxInFlight: number, N: number): Promise<number> {
  const site = `b${++k}`;
  const outbox = new Outbox({ path: join(dir, `${k}.db`), synchronous: sync });
  const items: OutboxItem[] = [];
  for (let s = 1; s <= N / 4; s++) for (const d of ["A", "B", "C", "D"]) items.push({ deviceId: d, channel: "record", seq: s, payload: new Uint8Array(150), receivedMs: 0 });
  outbox.put(items);
  let calls = 0;
  const orig = outbox.markSent.bind(outbox);
  outbox.markSent = (ids: number[]) => { calls++; orig(ids); };
  const sub = connect(url, { reconnectPeriod: 0 });
  let got = 0;
  sub.on("message", () => got++);
  await new Promise<void>((r) => sub.once("connect", () => sub.subscribe(`pollkit/v1/${site}/#`, { qos: 1 }, () => r())));
  const bridge = new MqttBridge({ url, site, agentId: "x", outbox, maxInFlight });
  const t0 = performance.now();
  bridge.start();
  while (!(got >= N + 1 && outbox.count() === 0)) await new Promise((r) => setTimeout(r, 2));
  const rate = N / ((performance.now() - t0) / 1000);
  await bridge.close(); sub.end(true); outbox.close();
  console.log("  markSent calls", calls, "avg batch", (N / calls).toFixed(1));
  return Math.round(rate);
}
const a = await startEmbeddedBroker();
const m = await startMosquitto();
for (const [name, url] of [["aedes", a.url], ["mosquitto", m.url]] as const) {
  for (const sync of ["FULL", "NORMAL"] as const) for (const mif of [64, 256]) {
    console.log(name, sync, mif, await run(url, sync, mif, 4000), "rec/s");
  }
}
await a.close(); await m.stop();
