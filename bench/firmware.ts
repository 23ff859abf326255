// Firmware figures: bundle sizes per engine, XS compute for boot, a health report and a journal
// append (deterministic meter), XS heap slots after boot, and journal appends per second on Node.
// Prints a table, then one JSON line.
//
// Memory estimate for Espruino: code runs from flash there, so what must fit in the ~12,000
// variables of an nRF52840 is the live heap. XS counts heap slots (16 bytes each on 64-bit)
// the way Espruino counts variables (12-16 bytes each), so the slots the firmware adds over an
// empty XS worker, after boot and idle and a garbage collection, stand for the variables it would
// hold on Espruino.

import os from "node:os";
import { buildAll } from "../device/build/build.ts";
import { BridgeHardware, bridgeMsg, xsEngine } from "../test/engines/bridge_host.ts";
import { startXs } from "../test/helpers/xs_harness.ts";
import { Journal } from "../device/services/journal.ts";
import { SimFlash } from "../simulator/models/flash.ts";
import { RebootReason, RecordKind } from "../protocol/generated/device_codec.ts";
import { encodeFrame } from "../protocol/framing.ts";
import { Envelope } from "../protocol/node/schema.ts";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const bundles = await buildAll();
  const size = (n: string): number => bundles.find((b) => b.target === n)?.bytes ?? -1;
  const xsBundle = bundles.find((b) => b.target === "xs");
  if (!xsBundle) throw new Error("no xs bundle");

  // Heap of an empty worker, for the baseline.
  const empty = await startXs();
  await empty.evaluate("globalThis.handleCommand = function (m) { return m; };");
  // gc() first: currentHeapCount counts garbage not yet collected.
  const baseline = await empty.evaluate("gc()");
  await empty.close();

  const hw = new BridgeHardware({ seed: 3, pages: 16, pageSize: 4096 });
  const xs = await xsEngine(xsBundle.code, hw);
  let boot = 0;
  const m0 = await xs.send(bridgeMsg.boot({ reset: RebootReason.POWER_ON, wallMs: 1795000000000, pages: 16, pageSize: 4096, role: 1, serial: "VVD-BENCH-1" }));
  boot += m0.compute;
  for (let t = 0; t < 600; t += 10) boot += (await xs.send(bridgeMsg.advance(10))).compute;
  const hello = encodeFrame(Envelope.encode(Envelope.fromObject({ hello: { protocolVersion: 1, role: 3 } })).finish());
  await xs.send(bridgeMsg.deliver(hello));
  await xs.send(bridgeMsg.advance(10));
  const afterBoot = await xs.worker.evaluate("gc()");
  const health: number[] = [];
  for (let i = 0; i < 5; i++) health.push((await xs.send(bridgeMsg.health())).compute);
  const append: number[] = [];
  for (let i = 0; i < 20; i++) append.push((await xs.send(bridgeMsg.record(RecordKind.TEST, new Uint8Array(32).fill(i)))).compute);
  await xs.close();

  // Journal appends per second on Node: 64-byte records, acknowledged as a host would, so pages
  // fill, get compacted and are reused.
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const j = new Journal({ flash: new SimFlash({ pageSize: 4096, pageCount: 16 }) });
    j.open();
    const payload = new Uint8Array(64);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 300) {
      for (let k = 0; k < 100; k++) {
        const seq = j.append(() => payload);
        if (seq < 0) throw new Error(`append failed ${seq}`);
        if (seq % 50 === 0) j.ack(seq);
        n++;
      }
    }
    rounds.push((n / (performance.now() - t0)) * 1000);
  }

  const heapSlots = afterBoot.currentHeapCount;
  const result = {
    espruinoBundleBytes: size("espruino"),
    moddableBundleBytes: size("moddable"),
    xsBridgeBundleBytes: size("xs"),
    xsComputeBoot: boot,
    xsComputeHealthReport: median(health),
    xsComputeJournalAppend: median(append),
    xsHeapSlotsAfterBoot: heapSlots,
    xsHeapSlotsEmptyWorker: baseline.currentHeapCount,
    espruinoVariablesEstimate: heapSlots - baseline.currentHeapCount,
    journalAppendsPerSecNode: Math.round(median(rounds)),
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, node: process.version },
  };
  console.log("firmware benchmark (medians)");
  for (const [k, v] of Object.entries(result)) if (typeof v === "number") console.log(`  ${k.padEnd(28)} ${v}`);
  console.log(JSON.stringify(result));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
