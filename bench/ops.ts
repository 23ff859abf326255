// Operations console ingest throughput: N signed records (pre-signed with a few registered
// node:crypto P-256 keys, AUDIT kind, ~100-byte payloads) published with QoS 1 through the embedded
// broker (aedes), into
//   - brokerOnly: a plain mqtt.js subscriber that only counts;
//   - ingest:     Ingest (verify pool of one worker per core) + SqliteOpsStore (WAL file).
// and the verify pool alone. Median of ROUNDS rounds after a warm-up. Prints a table and, last,
// one JSON line.
//
// Where the publisher and the broker run (--broker):
//   mosquitto (default when /usr/sbin/mosquitto exists): Mosquitto as its own process, the
//             publisher in a child process (this file with --publisher-child); this process is the
//             console alone (subscriber or Ingest + its verify workers), as deployed: the broker and
//             the agents are not on the console's machine. Here they still share the same cores.
//   aedes:    the embedded broker and the publisher together in the child process.
//   inprocess: publisher, aedes and consumer all in this process (the original setup).
// Each round also records the CPU time (user + system, every thread) of the console process, of
// the publisher child and of Mosquitto: consoleCpuUsPerRecord is the console's cost per record,
// so 2 cores / that cost is what the console alone could take on this 2-core machine
// (consoleCapacityPerSec) with the publisher and broker elsewhere.
//
//   npm run bench:ops [-- --records 30000 --rounds 3 --keys 8 --broker mosquitto|aedes|inprocess]

import { fork, type ChildProcess } from "node:child_process";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import Table from "cli-table3";
import { connect, type MqttClient } from "mqtt";
import { startEmbeddedBroker, type EmbeddedBroker } from "../host/broker/embedded.ts";
import { Ingest } from "../host/ops/ingest/ingest.ts";
import { VerifyPool, type VerifyItem } from "../host/ops/ingest/verify_pool.ts";
import { readRecord } from "../host/ops/ingest/record_wire.ts";
import { registryEntry } from "../host/ops/registry/registry.ts";
import { SqliteOpsStore } from "../host/ops/store/sqlite_store.ts";
import type { RegisteredDevice } from "../host/ops/store/store.ts";
import { type } from "../protocol/node/schema.ts";
import { encodeAuditEvent, RecordKind } from "../protocol/generated/device_codec.ts";
import { startMosquitto, type Mosquitto } from "../test/helpers/mosquitto.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function sarg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const N = arg("records", 30000);
const BROKER = sarg("broker", existsSync("/usr/sbin/mosquitto") ? "mosquitto" : "aedes");
if (!["mosquitto", "aedes", "inprocess"].includes(BROKER)) throw new Error(`--broker ${BROKER}: mosquitto, aedes or inprocess`);
const ROUNDS = arg("rounds", 3);
const KEYS = arg("keys", 8);
const IN_FLIGHT = 1000;

const RecordType = type("Record");

interface Msg {
  topic: string;
  payload: Buffer;
}

function prepare(round: number): { devices: RegisteredDevice[]; messages: Msg[] } {
  const devices: RegisteredDevice[] = [];
  const keys = [];
  for (let k = 0; k < KEYS; k++) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = publicKey.export({ format: "jwk" });
    const xy = Buffer.concat([Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
    const id = `BENCH-${round}-${k}`;
    devices.push(registryEntry(id, xy, { role: "verification", site: "bench" }));
    keys.push(createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" })));
  }
  const messages: Msg[] = [];
  for (let i = 0; i < N; i++) {
    const k = i % KEYS;
    const seq = Math.floor(i / KEYS) + 1;
    const body = {
      seq,
      timeMs: 1795000000000 + i,
      kind: RecordKind.VOTER_VERIFIED,
      payload: encodeAuditEvent({ event: "voter.verified", actor: "device", detail: `station S${k} voter event ${i} `.padEnd(80, ".") }),
      prevSeq: seq - 1,
    };
    const unsigned = RecordType.encode(RecordType.fromObject(body)).finish();
    const signature = sign("sha256", unsigned, { key: keys[k], dsaEncoding: "ieee-p1363" });
    const bytes = RecordType.encode(RecordType.fromObject({ ...body, signature })).finish();
    messages.push({ topic: `pollkit/v1/bench/${devices[k].deviceId}/record`, payload: Buffer.from(bytes) });
  }
  return { devices, messages };
}

async function client(url: string): Promise<MqttClient> {
  const c = connect(url, { protocolVersion: 4, clean: true, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  return c;
}

/** Publishes every message with QoS 1, at most IN_FLIGHT unacknowledged. */
async function publishAll(url: string, messages: Msg[]): Promise<void> {
  const pub = await client(url);
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const pump = (): void => {
      while (next < messages.length && next - acked < IN_FLIGHT) {
        const m = messages[next++];
        pub.publish(m.topic, m.payload, { qos: 1 }, (err) => {
          if (err) return reject(err);
          acked++;
          if (acked === messages.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  await pub.endAsync();
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  return true;
}

// --- where the messages come from -------------------------------------------------------------

function encodeMessages(messages: Msg[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of messages) {
    const t = Buffer.from(m.topic);
    const h = Buffer.alloc(6);
    h.writeUInt16LE(t.length, 0);
    h.writeUInt32LE(m.payload.length, 2);
    parts.push(h, t, m.payload);
  }
  return Buffer.concat(parts);
}

function decodeMessages(b: Buffer): Msg[] {
  const out: Msg[] = [];
  let at = 0;
  while (at < b.length) {
    const tl = b.readUInt16LE(at);
    const pl = b.readUInt32LE(at + 2);
    at += 6;
    const topic = b.toString("utf8", at, at + tl);
    at += tl;
    out.push({ topic, payload: b.subarray(at, at + pl) });
    at += pl;
  }
  return out;
}

/** CPU seconds (user + system) of a process from /proc, in microseconds; 0 if unreadable. */
function procCpuUs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return ((Number(rest[11]) + Number(rest[12])) * 1e6) / 100; // utime, stime in clock ticks (100 Hz)
  } catch {
    return 0;
  }
}

function cpuNowUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

interface Source {
  url: string;
  load(messages: Msg[]): Promise<void>;
  /** Publishes the loaded messages (QoS 1); resolves when all are acknowledged. */
  publish(): Promise<void>;
  /** CPU time of the publisher and broker outside this process so far (µs). */
  outsideCpuUs(): Promise<number>;
  close(): Promise<void>;
}

async function inProcessSource(): Promise<Source> {
  const broker: EmbeddedBroker = await startEmbeddedBroker();
  let msgs: Msg[] = [];
  return {
    url: broker.url,
    load: async (m) => void (msgs = m),
    publish: () => publishAll(broker.url, msgs),
    outsideCpuUs: async () => 0,
    close: () => broker.close(),
  };
}

async function childSource(kind: "mosquitto" | "aedes", dir: string): Promise<Source> {
  let mosq: Mosquitto | null = null;
  if (kind === "mosquitto") {
    // QoS 1 towards the subscriber: as many in flight and queued as the publisher may have.
    mosq = await startMosquitto({ extraConfig: ["max_inflight_messages 1000", "max_queued_messages 1000000", "max_queued_bytes 0"] });
  }
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ["--publisher-child", mosq ? mosq.url : "aedes"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const waiting: ((m: { t: string; url?: string; cpu?: number; error?: string }) => void)[] = [];
  child.on("message", (m: { t: string }) => waiting.shift()?.(m));
  const ask = (msg: object): Promise<{ t: string; url?: string; cpu?: number; error?: string }> =>
    new Promise((resolve, reject) => {
      waiting.push((m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
      if (Object.keys(msg).length) child.send(msg);
    });
  const ready = await ask({});
  const file = join(dir, "messages.bin");
  return {
    url: ready.url!,
    async load(messages) {
      writeFileSync(file, encodeMessages(messages));
      await ask({ t: "load", file });
    },
    async publish() {
      await ask({ t: "publish" });
    },
    async outsideCpuUs() {
      const c = await ask({ t: "cpu" });
      return c.cpu! + (mosq ? procCpuUs(mosq.pid) : 0);
    },
    async close() {
      child.kill();
      if (mosq) await mosq.stop();
    },
  };
}

/** The child: (aedes and) the publisher. Answers the parent's requests in order. */
async function publisherChild(brokerArg: string): Promise<void> {
  const broker = brokerArg === "aedes" ? await startEmbeddedBroker() : null;
  const url = broker ? broker.url : brokerArg;
  let msgs: Msg[] = [];
  process.on("message", (m: { t: string; file?: string }) => {
    const reply = (r: object): void => void process.send!(r);
    if (m.t === "load") {
      msgs = decodeMessages(readFileSync(m.file!));
      reply({ t: "loaded" });
    } else if (m.t === "publish") {
      publishAll(url, msgs).then(
        () => reply({ t: "published" }),
        (e: Error) => reply({ t: "error", error: e.message }),
      );
    } else if (m.t === "cpu") reply({ t: "cpu", cpu: cpuNowUs() });
  });
  process.send!({ t: "ready", url });
}

interface Round {
  perSec: number;
  /** CPU time of this process (every thread) per record, µs. */
  consoleCpuUs: number;
  /** CPU time of the publisher and broker outside this process per record, µs. */
  outsideCpuUs: number;
}

async function brokerOnly(source: Source, messages: Msg[]): Promise<Round> {
  const sub = await client(source.url);
  let got = 0;
  sub.on("message", () => got++);
  await sub.subscribeAsync("pollkit/v1/#", { qos: 1 });
  const o0 = await source.outsideCpuUs();
  const c0 = cpuNowUs();
  const t0 = performance.now();
  const pub = source.publish();
  await until(() => got >= messages.length, 120000);
  const ms = performance.now() - t0;
  const c1 = cpuNowUs();
  await pub;
  const o1 = await source.outsideCpuUs();
  await sub.endAsync();
  return { perSec: (got * 1000) / ms, consoleCpuUs: (c1 - c0) / got, outsideCpuUs: (o1 - o0) / got };
}

interface IngestRound extends Round {
  stored: number;
  quarantined: number;
  duplicates: number;
  lost: number;
  batches: number;
}

async function ingestRound(source: Source, pool: VerifyPool, devices: RegisteredDevice[], messages: Msg[], dir: string, round: number): Promise<IngestRound> {
  const store = new SqliteOpsStore(join(dir, `ops-${round}.db`));
  store.upsertDevices(devices);
  const ingest = new Ingest({ url: source.url, store, pool });
  await ingest.start();
  const o0 = await source.outsideCpuUs();
  const c0 = cpuNowUs();
  const t0 = performance.now();
  const pub = source.publish();
  await until(() => {
    const s = ingest.stats();
    return s.stored + s.quarantinedTotal + s.duplicates >= messages.length;
  }, 120000);
  await ingest.drain();
  const ms = performance.now() - t0;
  const c1 = cpuNowUs();
  await pub;
  const o1 = await source.outsideCpuUs();
  const s = ingest.stats();
  await ingest.close();
  const inDb = store.records({}).length;
  store.close();
  return {
    perSec: (s.stored * 1000) / ms,
    consoleCpuUs: (c1 - c0) / Math.max(1, s.stored),
    outsideCpuUs: (o1 - o0) / Math.max(1, s.stored),
    stored: inDb,
    quarantined: s.quarantinedTotal,
    duplicates: s.duplicates,
    lost: messages.length - inDb - s.quarantinedTotal - s.duplicates,
    batches: s.batches,
  };
}

async function poolRound(pool: VerifyPool, items: VerifyItem[]): Promise<number> {
  const t0 = performance.now();
  const runs: Promise<boolean[]>[] = [];
  for (let i = 0; i < items.length; i += 512) runs.push(pool.verify(items.slice(i, i + 512)));
  const res = await Promise.all(runs);
  const ms = performance.now() - t0;
  const bad = res.flat().filter((ok) => !ok).length;
  if (bad) throw new Error(`${bad} signatures failed in the pool bench`);
  return (items.length * 1000) / ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const workers = availableParallelism();
  const dir = mkdtempSync(join(tmpdir(), "pollkit-bench-ops-"));
  const source = BROKER === "inprocess" ? await inProcessSource() : await childSource(BROKER as "mosquitto" | "aedes", dir);
  const pool = new VerifyPool({ size: workers });
  const broker_: number[] = [];
  const ingest_: number[] = [];
  const ratio_: number[] = [];
  const verify_: number[] = [];
  const consoleCpu_: number[] = [];
  const outsideCpu_: number[] = [];
  const load0 = loadavg()[0];
  let quarantined = 0;
  let lost = 0;
  try {
    for (let round = 0; round <= ROUNDS; round++) {
      const { devices, messages } = prepare(round);
      const keyOf = new Map(devices.map((d) => [d.deviceId, d.publicKeyHex]));
      const items: VerifyItem[] = messages.map((m) => {
        const f = readRecord(m.payload);
        return { publicKeyHex: keyOf.get(m.topic.split("/")[3])!, data: f.signingBytes, signature: f.signature! };
      });
      await source.load(messages);
      const b = await brokerOnly(source, messages);
      const ing = await ingestRound(source, pool, devices, messages, dir, round);
      const v = await poolRound(pool, items);
      const warm = round === 0;
      console.error(
        `${warm ? "warm-up" : `round ${round}`}: brokerOnly ${b.perSec.toFixed(0)}/s (console ${b.consoleCpuUs.toFixed(0)} µs CPU/record, publisher+broker ${b.outsideCpuUs.toFixed(0)}), ` +
          `ingest ${ing.perSec.toFixed(0)}/s (console ${ing.consoleCpuUs.toFixed(0)} µs CPU/record, publisher+broker ${ing.outsideCpuUs.toFixed(0)}; stored ${ing.stored}, quarantined ${ing.quarantined}, lost ${ing.lost}, ${ing.batches} batches), ` +
          `pool ${v.toFixed(0)}/s, load ${loadavg()[0].toFixed(1)}`,
      );
      if (warm) continue;
      broker_.push(b.perSec);
      ingest_.push(ing.perSec);
      ratio_.push(ing.perSec / b.perSec);
      verify_.push(v / workers);
      consoleCpu_.push(ing.consoleCpuUs);
      outsideCpu_.push(ing.outsideCpuUs);
      quarantined += ing.quarantined;
      lost += ing.lost;
    }
  } finally {
    await pool.close();
    await source.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const consoleCpuUs = median(consoleCpu_);
  const result = {
    records: N,
    rounds: ROUNDS,
    keys: KEYS,
    workers,
    broker: BROKER,
    ingestPerSec: Math.round(median(ingest_)),
    verifyPerSecPerCore: Math.round(median(verify_)),
    brokerOnlyPerSec: Math.round(median(broker_)),
    // Median of the per-round ratios (each round's two figures taken a few seconds apart).
    ingestVsBroker: Math.round(median(ratio_) * 100) / 100,
    consoleCpuUsPerRecord: Math.round(consoleCpuUs),
    publisherBrokerCpuUsPerRecord: Math.round(median(outsideCpu_)),
    consoleCapacityPerSec: Math.round((workers * 1e6) / consoleCpuUs),
    quarantined,
    lost,
    // Measured by the dashboard's own bench (host/ops/web is not part of this one).
    dashboardLoadMs: 0,
    machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, load ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}, Node ${process.version}`,
  };
  const t = new Table({ head: ["figure", "value"] });
  t.push(
    ["ingestPerSec (verified + stored)", result.ingestPerSec],
    ["verifyPerSecPerCore (pool alone / workers)", result.verifyPerSecPerCore],
    ["brokerOnlyPerSec", result.brokerOnlyPerSec],
    ["ingest / brokerOnly (median of rounds)", result.ingestVsBroker],
    ["console CPU per record (µs, all threads)", result.consoleCpuUsPerRecord],
    ["publisher + broker CPU per record (µs)", result.publisherBrokerCpuUsPerRecord],
    [`console alone on ${workers} cores (records/s)`, result.consoleCapacityPerSec],
    ["quarantined", quarantined],
    ["lost", lost],
    ["dashboardLoadMs", "0 (dashboard bench)"],
    ["records per round x rounds", `${N} x ${ROUNDS} (+ warm-up), ${KEYS} keys, ${workers} workers, broker ${BROKER}`],
  );
  console.log(t.toString());
  console.log(JSON.stringify(result));
}

if (process.argv.includes("--publisher-child")) await publisherChild(process.argv[process.argv.indexOf("--publisher-child") + 1]);
else await main();
