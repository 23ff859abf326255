// Operations console ingest throughput: N signed records (pre-signed with a few registered
// node:crypto P-256 keys, AUDIT kind, ~100-byte payloads) published with QoS 1 through the embedded
// broker (aedes), into
//   - brokerOnly: a plain mqtt.js subscriber that only counts;
//   - ingest:     Ingest (verify pool of one worker per core) + SqliteOpsStore (WAL file).
// and the verify pool alone. Publisher, broker and consumer share this process (as on a single
// laptop install); the pool's workers are extra threads. Median of ROUNDS rounds after a warm-up.
// Prints a table and, last, one JSON line.
//
//   npm run bench:ops [-- --records 30000 --rounds 3 --keys 8]

import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
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

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const N = arg("records", 30000);
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

async function brokerOnly(broker: EmbeddedBroker, messages: Msg[]): Promise<number> {
  const sub = await client(broker.url);
  let got = 0;
  sub.on("message", () => got++);
  await sub.subscribeAsync("pollkit/v1/#", { qos: 1 });
  const t0 = performance.now();
  const pub = publishAll(broker.url, messages);
  await until(() => got >= messages.length, 120000);
  const ms = performance.now() - t0;
  await pub;
  await sub.endAsync();
  return (got * 1000) / ms;
}

interface IngestRound {
  perSec: number;
  stored: number;
  quarantined: number;
  duplicates: number;
  lost: number;
}

async function ingestRound(broker: EmbeddedBroker, pool: VerifyPool, devices: RegisteredDevice[], messages: Msg[], dir: string, round: number): Promise<IngestRound> {
  const store = new SqliteOpsStore(join(dir, `ops-${round}.db`));
  store.upsertDevices(devices);
  const ingest = new Ingest({ url: broker.url, store, pool });
  await ingest.start();
  const t0 = performance.now();
  const pub = publishAll(broker.url, messages);
  await until(() => {
    const s = ingest.stats();
    return s.stored + s.quarantinedTotal + s.duplicates >= messages.length;
  }, 120000);
  await ingest.drain();
  const ms = performance.now() - t0;
  await pub;
  const s = ingest.stats();
  await ingest.close();
  const inDb = store.records({}).length;
  store.close();
  return { perSec: (s.stored * 1000) / ms, stored: inDb, quarantined: s.quarantinedTotal, duplicates: s.duplicates, lost: messages.length - inDb - s.quarantinedTotal - s.duplicates };
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
  const broker = await startEmbeddedBroker();
  const pool = new VerifyPool({ size: workers });
  const broker_: number[] = [];
  const ingest_: number[] = [];
  const verify_: number[] = [];
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
      const b = await brokerOnly(broker, messages);
      const ing = await ingestRound(broker, pool, devices, messages, dir, round);
      const v = await poolRound(pool, items);
      const warm = round === 0;
      console.error(
        `${warm ? "warm-up" : `round ${round}`}: brokerOnly ${b.toFixed(0)}/s, ingest ${ing.perSec.toFixed(0)}/s (stored ${ing.stored}, quarantined ${ing.quarantined}, lost ${ing.lost}), pool ${v.toFixed(0)}/s`,
      );
      if (warm) continue;
      broker_.push(b);
      ingest_.push(ing.perSec);
      verify_.push(v / workers);
      quarantined += ing.quarantined;
      lost += ing.lost;
    }
  } finally {
    await pool.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    records: N,
    rounds: ROUNDS,
    keys: KEYS,
    workers,
    ingestPerSec: Math.round(median(ingest_)),
    verifyPerSecPerCore: Math.round(median(verify_)),
    brokerOnlyPerSec: Math.round(median(broker_)),
    ingestVsBroker: Math.round((median(ingest_) / median(broker_)) * 100) / 100,
    quarantined,
    lost,
    // Measured by the dashboard's own bench (host/ops/web is not part of this one).
    dashboardLoadMs: 0,
    machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}, Node ${process.version}`,
  };
  const t = new Table({ head: ["figure", "value"] });
  t.push(
    ["ingestPerSec (verified + stored)", result.ingestPerSec],
    ["verifyPerSecPerCore (pool alone / workers)", result.verifyPerSecPerCore],
    ["brokerOnlyPerSec", result.brokerOnlyPerSec],
    ["ingest / brokerOnly", result.ingestVsBroker],
    ["quarantined", quarantined],
    ["lost", lost],
    ["dashboardLoadMs", "0 (dashboard bench)"],
    ["records per round x rounds", `${N} x ${ROUNDS} (+ warm-up), ${KEYS} keys, ${workers} workers`],
  );
  console.log(t.toString());
  console.log(JSON.stringify(result));
}

await main();
