// Fleet bench: thousands of simulated devices (real firmware and chip models, in-process links)
// served by many real host agents (SQLite outboxes, MQTT), through a TCP proxy that can cut the
// network and the embedded broker, into the real operations console (verify, store); broker and
// console on a worker thread of their own (bench/fleet_console.ts). Health every 10 s per device, then a burst of
// signed station records from every result device (within --burst-seconds, default 10), with
// faults from the catalogue injected along the way.
//
// Usage: npm run bench:fleet -- [--devices 10000] [--agents 100] [--seconds 60]
//          [--health-interval 10000] [--burst-seconds 10] [--no-faults] [--quiet]
// Ends with one JSON line: devices, recordsPerSec, p99Ms, lost, duplicated, faultsInjected,
// faultsReported and more.
//
// Figures:
// - recordsPerSec: journal records and health reports stored by the console, per second of the
//   measured window (health included: it is most of the traffic);
// - p50Ms/p99Ms: console store time (receivedMs) minus the device's wall clock when it made the
//   record (Record.time_ms), over the burst's records; same machine, same clock;
// - lost: journalled records (seq 1 to the device's last) missing from the console's store after
//   the drain; duplicated: (device, seq) stored more than once (the store's key forbids it: the
//   figure proves the count), and the broker's duplicate deliveries the console dropped;
// - faultsInjected / faultsReported: each injected fault and whether the system reported it the
//   way the catalogue says (simulator/faults/catalogue.ts).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { WorkerConsole } from "./fleet_console.ts";
import { Fleet, type FleetDevice } from "../simulator/fleet/fleet.ts";
import { startTcpProxy } from "../simulator/faults/tcp_proxy.ts";
import { LineNoise, seededRandom } from "../simulator/faults/line_noise.ts";
import { RecordKind } from "../protocol/generated/device_codec.ts";
import type { FaultId } from "../simulator/faults/catalogue.ts";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const DEVICES = opt("devices", 10_000);
const AGENTS = opt("agents", Math.max(1, Math.round(DEVICES / 100)));
const SECONDS = opt("seconds", 60);
const HEALTH_MS = opt("health-interval", 10_000);
const FAULTS_ON = !args.includes("--no-faults");
// Result devices journal their station record within this window (polls close at one hour, the
// staff's closing takes each station its own time). 0: all in one turn of the event loop, which
// on 2 cores measures the simulator more than the system (see BENCHMARKS.md).
const BURST_MS = opt("burst-seconds", 10) * 1000;
const QUIET = args.includes("--quiet");
const log = (s: string): void => {
  if (!QUIET) console.error(`[bench:fleet] ${s}`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

interface Fault {
  id: FaultId;
  target: string;
  reported: () => boolean;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-bench-fleet-"));
  // The broker and the console on their own thread (bench/fleet_console.ts), as they would be on
  // machines of their own; the agents reach the broker through the proxy.
  const ops = await WorkerConsole.start(
    {
      mqtt: { url: "mqtt://127.0.0.1:1" }, // replaced by the worker's broker
      store: { path: join(dir, "ops.sqlite") },
      web: { host: "127.0.0.1", port: 0 },
      reports: { everyMs: 3_600_000, outDir: join(dir, "reports") },
      healthIntervalMs: HEALTH_MS,
    },
    dir,
  );
  const proxy = await startTcpProxy({ targetPort: ops.brokerPort });
  const storedHealth = { n: 0 };
  const storedRecords = { n: 0 };
  const latencies: number[] = [];
  let burstStart = Infinity;
  ops.on("health", (n) => (storedHealth.n += n));
  ops.on("records", (rs) => {
    storedRecords.n += rs.length;
    for (const r of rs) if (r.kind === RecordKind.AUDIT && r.timeMs >= burstStart) latencies.push(r.receivedMs - r.timeMs);
  });
  const offline = new Set<string>();
  const seenOffline = new Set<string>();
  ops.on("device", (e) => {
    if (!e.online) {
      offline.add(e.deviceId);
      seenOffline.add(e.deviceId);
    } else offline.delete(e.deviceId);
  });

  log(`${DEVICES} devices, ${AGENTS} agents, health every ${HEALTH_MS} ms, ${cpus().length} cores`);
  const t0 = performance.now();
  const noise = new Map<string, LineNoise>();
  let signRetries = 0;
  const signFailures: string[] = [];
  const fleet = new Fleet({
    devices: DEVICES,
    agents: AGENTS,
    brokerUrl: proxy.url,
    dir,
    healthIntervalMs: HEALTH_MS,
    deviceOptions: { flashPages: 6, flashPageSize: 4096, dataFlashPages: 16, dataFlashPageSize: 1024, linkResendMs: 5000 },
    onLog: (serial, line) => {
      if (line.startsWith("signing failed")) {
        signRetries++;
        if (signFailures.length < 3) signFailures.push(`${serial}: ${line}`);
      }
    },
  });
  // Power on (each creates its identity key), register the keys with the console as provisioning
  // would, then plug everything in.
  for (const d of fleet.devices) d.device.powerOn();
  for (;;) {
    if (fleet.devices.every((d) => d.device.firmware?.started)) break;
    await sleep(100);
  }
  await ops.register(
    fleet.devices.map((d) => ({
      deviceId: d.serial,
      publicKeyHex: hex(d.device.firmware!.publicKey),
      role: d.role,
      governorate: `G${(fleet.agents.indexOf(d.agent) % 5) + 1}`,
      office: `O${fleet.agents.indexOf(d.agent) % 20}`,
      stationId: `ST-${d.site}`,
      site: d.site,
    })),
  );
  log(`booted and registered in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const a of fleet.agents) a.start();
  for (const d of fleet.devices) fleet.plug(d);
  // Wait until every device's boot record is stored.
  const expectedTotal = (): number => fleet.devices.reduce((n, d) => n + ((d.device.firmware?.journal.nextSeq() ?? 1) - 1), 0);
  while (storedRecords.n < DEVICES) await sleep(200);
  log(`every device online after ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // The measured window.
  const rnd = seededRandom(42);
  const faults: Fault[] = [];
  const pick = (): FleetDevice => fleet.devices[Math.floor(rnd() * fleet.devices.length)];
  const w0 = performance.now();
  const h0 = storedHealth.n;
  const r0 = storedRecords.n;
  const injectAt = (frac: number, fn: () => Promise<void> | void): Promise<void> =>
    sleep(SECONDS * 1000 * frac).then(fn);
  const injections: Promise<void>[] = [];
  if (FAULTS_ON) {
    // Cables pulled for 2 s on a few devices.
    injections.push(
      injectAt(0.2, async () => {
        const ds = [pick(), pick(), pick()];
        for (const d of ds) {
          fleet.unplug(d);
          faults.push({ id: "unplug-mid-transfer", target: d.serial, reported: () => seenOffline.has(d.serial) });
        }
        await sleep(2000);
        for (const d of ds) fleet.plug(d);
      }),
    );
    // Line noise on a few devices' links for 3 s.
    injections.push(
      injectAt(0.3, async () => {
        const ds = [pick(), pick()];
        const before = new Map<string, number>();
        for (const d of ds) {
          const s = d.agent.session(d.serial);
          before.set(d.serial, s ? s.info().counters.frameErrors : 0);
          const n = new LineNoise({ bitErrorRate: 2e-4, seed: 9 });
          noise.set(d.serial, n);
          faults.push({
            id: "line-noise",
            target: d.serial,
            reported: () => n.counters.bitsFlipped === 0 || (d.agent.session(d.serial)?.info().counters.frameErrors ?? 0) > (before.get(d.serial) ?? 0),
          });
        }
        await sleep(3000);
        for (const d of ds) noise.delete(d.serial);
      }),
    );
    // The network between agents and the broker cut for 3 s.
    injections.push(
      injectAt(0.45, async () => {
        proxy.partition("refuse");
        const agentsOffline = (): boolean => ops.agents().some((a) => a.state !== "online");
        let seen = false;
        const watch = setInterval(() => (seen = seen || agentsOffline()), 100);
        faults.push({ id: "network-partition", target: "agents", reported: () => seen });
        await sleep(3000);
        proxy.heal();
        await sleep(3000);
        clearInterval(watch);
      }),
    );
    // The broker restarted.
    injections.push(
      injectAt(0.7, async () => {
        let reconnected = false;
        await ops.restartBroker(500);
        ops.once("connected", () => (reconnected = true));
        faults.push({ id: "broker-restart", target: "broker", reported: () => reconnected });
      }),
    );
  }
  // Noise is applied by swapping the device's link impairment in and out.
  for (const d of fleet.devices) {
    const host = d.host as unknown as { write(data: Uint8Array): void };
    const write = host.write.bind(host);
    host.write = (data) => write(noise.get(d.serial)?.apply(data) ?? data);
  }
  await sleep(SECONDS * 1000);
  await Promise.all(injections);
  const w1 = performance.now();
  const windowStored = storedHealth.n - h0 + (storedRecords.n - r0);

  // The burst: every result device journals a signed station record within --burst-seconds.
  log("results burst");
  burstStart = Date.now();
  const rads = fleet.devices.filter((d) => d.role === "result");
  let burstJournalled = 0;
  const burstRefused: Record<string, number> = {};
  const journalResult = (d: FleetDevice): void => {
    const fw = d.device.firmware;
    if (!fw || !d.device.running) {
      burstRefused["not running"] = (burstRefused["not running"] ?? 0) + 1;
      return;
    }
    fw.record(RecordKind.AUDIT, new TextEncoder().encode(`result ${d.serial}`), (seq) => {
      if (seq > 0) burstJournalled++;
      else burstRefused[String(seq)] = (burstRefused[String(seq)] ?? 0) + 1;
    });
  };
  const burstRnd = seededRandom(7);
  for (const d of rads) {
    if (BURST_MS <= 0) journalResult(d);
    else setTimeout(() => journalResult(d), Math.floor(burstRnd() * BURST_MS));
  }
  const drainStart = performance.now();
  while (performance.now() - drainStart < 120_000) {
    if (storedRecords.n >= expectedTotal() && latencies.length >= rads.length) break;
    await sleep(250);
  }
  // Every record: is each device's seq 1..last stored?
  let lost = 0;
  const fin = await ops.final();
  const all = fin.records.map(([deviceId, seq]) => ({ deviceId, seq }));
  const byDevice = new Map<string, Set<number>>();
  for (const r of all) {
    let s = byDevice.get(r.deviceId);
    if (!s) byDevice.set(r.deviceId, (s = new Set()));
    s.add(r.seq);
  }
  for (const d of fleet.devices) {
    const last = (d.device.firmware?.journal.nextSeq() ?? 1) - 1;
    const s = byDevice.get(d.serial) ?? new Set<number>();
    for (let q = 1; q <= last; q++) if (!s.has(q)) lost++;
  }
  const duplicated = all.length - [...byDevice.values()].reduce((n, s) => n + s.size, 0);
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : -1);
  const result = {
    bench: "fleet",
    devices: DEVICES,
    agents: AGENTS,
    healthIntervalMs: HEALTH_MS,
    windowSeconds: Math.round((w1 - w0) / 100) / 10,
    recordsPerSec: Math.round(windowStored / ((w1 - w0) / 1000)),
    burstRecords: rads.length,
    burstSeconds: BURST_MS / 1000,
    burstJournalled,
    burstRefused,
    signRetries,
    signFailures,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    lost,
    duplicated,
    duplicateDeliveriesDropped: fin.duplicates,
    quarantined: Object.values(fin.quarantineCounts).reduce((a, b) => a + b, 0),
    quarantineReasons: fin.quarantineCounts,
    quarantineSample: fin.quarantineSample,
    faultsInjected: faults.length,
    faultsReported: faults.filter((f) => f.reported()).length,
    faults: faults.map((f) => ({ id: f.id, target: f.target, reported: f.reported() })),
    stored: fin.records.length,
    rssMb: Math.round(process.memoryUsage().rss / 1e6),
    cores: cpus().length,
  };
  await fleet.stop();
  await ops.stop();
  await proxy.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
