// Results bench: polls close on many polling stations at once and their signed results race to
// the operations console. Each station is a result acceleration device (RAD): the real firmware
// on its chip models (secure element, flash, ballot scanner, printer, power), provisioned with the
// commission's key, on an in-process link to one of several real host agents (SQLite outbox,
// MQTT), through the embedded broker, into the real operations console (signature verified in
// its worker pool, stored in SQLite, shown in the results view). Real time throughout.
//
// Usage: npm run bench:results -- [--stations 1000] [--agents 20] [--spread-seconds 30]
//          [--ballots 5] [--health-interval 10000] [--drain-seconds 120] [--quiet]
// Ends with one JSON line (stations, p50Ms, p99Ms, lost, rejected, agents, wallSeconds, ...).
//
// Per station, before the measured burst:
// - a signed configuration (station, site) and a signed ElectionDefinition for its station
//   (commission key, version 1) are loaded through the device's own transfer receiver with a
//   technician's authority: each TransferBegin carries an Authority (host/commission/authorize)
//   that the device's Authority checks (token signed by the commission, command signature checked
//   by the secure element), then the chunks and the end, and the artifact sink verifies the
//   commission's signature and hands the definition to the tally. This is the path of
//   device/services/commands.ts for TransferBegin/Chunk/End, called in process instead of over the
//   agent's session (no agent upload; the COMMAND audit record "transfer.accepted" is therefore
//   not journalled);
// - the supervisor key opens the polls; a few ballots go through the ballot scanner model and are
//   counted (each journalled);
// - every device's key (and its station, office, governorate) is registered at the console, the
//   signed definitions are imported there (checked against the commission key), then the links
//   are plugged in and the bench waits until every journal is acknowledged (backlog 0).
// The burst: the supervisor key closes the polls on every station, spread evenly over
// --spread-seconds (default 30 s, all within one minute; 0: all in the same instant).
//
// Figures:
// - p50Ms/p90Ms/p99Ms/maxMs: from the press that closes the polls (closePolls runs inside it;
//   Date.now() taken just before) to the moment the console has verified the RESULT record's
//   signature and stored it (its "records" event). receivedP50Ms/receivedP99Ms: to the console's
//   receipt of the message (StoredRecord.receivedMs), before verification and storage;
// - lost: stations whose RESULT record is not in the console's store after the drain;
//   recordsLost: journal records of any kind (seq 1..last) missing from the store;
// - rejected: items the console quarantined (by reason in quarantineReasons);
// - wrongCounts: stations whose result row at the console differs from the ballots fed (ballots
//   counted, votes per option, blank, invalid), or carries a flag;
// - loopDelayP99Ms/loopDelayMaxMs: the event loop's delay during the burst (devices, agents,
//   broker and console share one Node process: this is the simulator's own load);
// - setupSeconds, wallSeconds (whole run), rssMb/heapMb (peak seen), machine info.

import { createHash } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { startEmbeddedBroker } from "../host/broker/embedded.ts";
import { parseOpsConfig, startOps, type RunningOps } from "../host/ops/ops.ts";
import { registryEntry } from "../host/ops/registry/registry.ts";
import { Agent } from "../host/agent/agent.ts";
import { fleetAgentConfig } from "../simulator/fleet/fleet.ts";
import { memoryHostLink } from "../host/link/memory_host_link.ts";
import type { HostLink } from "../host/link/host_link.ts";
import { createCommissionKey, technicianKey, type P256Key } from "../host/commission/keys.ts";
import { issueToken, signArtifact } from "../host/commission/artifacts.ts";
import { authorize, signedCommandId } from "../host/commission/authorize.ts";
import { TRANSFER_KINDS, type TransferKindName } from "../host/control/api.ts";
import { createMemoryLink, type HostEnd } from "../simulator/links/memory_link.ts";
import { SimDevice } from "../simulator/device/sim_device.ts";
import type { SimBallot } from "../simulator/models/ballot_scanner.ts";
import type { Firmware } from "../device/core/firmware.ts";
import {
  ArtifactKind,
  PollsState,
  RecordKind,
  Status,
  encodeElectionDefinition,
  type CommandResult,
  type Contest,
  type ElectionDefinition,
} from "../protocol/generated/device_codec.ts";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
export const ELECTION_ID = "GE-BENCH";
/** Two single-mark contests: votes + blank + invalid = ballots counted in each. */
export const CONTESTS: Contest[] = [
  { id: "parliament", name: "Council of Representatives", options: ["List A", "List B", "List C", "List D"], maxMarks: 1 },
  { id: "council", name: "Governorate Council", options: ["Ann", "Bob", "Cid", "Dee", "Eve"], maxMarks: 1 },
];

export interface ResultsBurstOptions {
  stations: number;
  /** In-process agents (one site each); the stations share them round-robin. Default stations / 50, 1..20. */
  agents?: number;
  /** Closes spread evenly over this time (ms); 0: all at once. Default 30000. */
  spreadMs?: number;
  ballotsPerStation?: number;
  healthIntervalMs?: number;
  /** After the last close, wait at most this long for the results (ms). Default 120000. */
  drainMs?: number;
  /** Stations set up at the same time. Default 10 (more lags the event loop past the secure element's timeouts). */
  setupConcurrency?: number;
  /** Progress lines (stderr in the bench). */
  log?: (line: string) => void;
  /** Called before teardown with the running console (tests inspect it through its API). */
  inspect?: (ctx: InspectContext) => Promise<void> | void;
  seed?: number;
}

export interface StationExpectation {
  stationId: string;
  deviceId: string;
  ballots: number;
  contests: { contestId: string; votes: number[]; blank: number; invalid: number }[];
}

export interface InspectContext {
  ops: RunningOps;
  expected: StationExpectation[];
}

export interface ResultsBurstReport {
  bench: "results";
  stations: number;
  agents: number;
  spreadSeconds: number;
  ballotsPerStation: number;
  closed: number;
  resultsStored: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  receivedP50Ms: number;
  receivedP99Ms: number;
  lost: number;
  recordsLost: number;
  rejected: number;
  quarantineReasons: Record<string, number>;
  wrongCounts: number;
  wrongSample: string[];
  closeErrors: number;
  /** Artifact loads retried during setup (secure element timeouts under the simulator's load). */
  setupRetries: number;
  duplicateDeliveriesDropped: number;
  setupSeconds: number;
  burstSeconds: number;
  /** Event-loop delay during the burst (everything shares one Node process): p99 and max, ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  wallSeconds: number;
  rssMb: number;
  heapMb: number;
  cores: number;
  cpu: string;
  memoryGb: number;
  node: string;
}

interface Station {
  index: number;
  serial: string;
  stationId: string;
  site: string;
  agent: Agent;
  device: SimDevice;
  host: HostEnd;
  link: (HostLink & { unplug(): void }) | null;
  ballots: SimBallot[];
  electionArtifact: Uint8Array;
  configurationArtifact: Uint8Array;
  closeMs: number;
  closeError: string | null;
  lastIssuedMs: number;
  setupRetries: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** xorshift32: the same ballots on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

async function until(cond: () => boolean, timeoutMs: number, what: string, stepMs = 25): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(stepMs);
  }
}

function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return -1;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** What the tally must show for these ballots (all serials distinct). */
export function expectedTally(ballots: SimBallot[]): StationExpectation["contests"] {
  const out = CONTESTS.map((c) => ({ contestId: c.id ?? "", votes: (c.options ?? []).map(() => 0), blank: 0, invalid: 0 }));
  for (const b of ballots) {
    CONTESTS.forEach((c, i) => {
      const marks = [...new Set(b.marks[i] ?? [])];
      const max = c.maxMarks && c.maxMarks > 0 ? c.maxMarks : 1;
      if (marks.length === 0) out[i].blank++;
      else if (marks.length > max) out[i].invalid++;
      else for (const m of marks) out[i].votes[m]++;
    });
  }
  return out;
}

function fw(s: Station): Firmware {
  const f = s.device.firmware;
  if (f === null) throw new Error(`${s.serial} is not running`);
  return f;
}

/** One signed artifact into the device: authorized TransferBegin, chunks, end (see the header). */
function loadArtifact(s: Station, kind: TransferKindName, data: Uint8Array, tech: { key: P256Key; token: Uint8Array }, issuedMs: number): Promise<void> {
  const f = fw(s);
  const authority = f.authority;
  if (authority === null) return Promise.reject(new Error(`${s.serial} has no authority (no data flash)`));
  const sha256 = new Uint8Array(createHash("sha256").update(data).digest());
  const begin = { kind: TRANSFER_KINDS[kind], totalBytes: data.length, sha256, name: `${kind}.bin` };
  const cmd = authorize({ id: signedCommandId(), transferBegin: begin }, s.serial, tech.token, tech.key, issuedMs);
  return new Promise((resolve, reject) => {
    const fail = (what: string, r: CommandResult | string): void => {
      reject(new Error(`${s.serial} ${kind}: ${what}: ${typeof r === "string" ? r : `status ${r.status ?? 0} ${r.message ?? ""}`}`));
    };
    authority.checkCommand(cmd, (err, technicianId) => {
      if (err !== null || technicianId === undefined) return fail("authority refused", err !== null ? err.message : "no technician");
      const rx = f.transfer;
      const b = rx.begin(begin, technicianId);
      if ((b.status ?? 0) !== Status.OK) return fail("begin", b);
      for (let off = 0; off < data.length; off += 512) {
        const c = rx.chunk({ offset: off, data: data.subarray(off, Math.min(data.length, off + 512)) });
        if ((c.status ?? 0) !== Status.OK) return fail("chunk", c);
      }
      rx.finish(new Uint8Array(0), (r) => ((r.status ?? 0) === Status.OK ? resolve() : fail("end", r)));
    });
  });
}

async function setupStation(s: Station, tech: { key: P256Key; token: Uint8Array }): Promise<void> {
  await new Promise<void>((r) => s.device.powerOn(undefined, r));
  // A technician retries a refused load; here the only expected refusal is the secure element
  // timing out when the simulator's event loop is saturated (all devices share one process).
  const load = async (kind: TransferKindName, data: Uint8Array): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await loadArtifact(s, kind, data, tech, Math.max(Date.now(), s.lastIssuedMs + 1));
        return;
      } catch (e) {
        s.setupRetries++;
        if (attempt >= 4 || !/secure element/.test(String(e))) throw e;
        await sleep(500 * attempt);
      } finally {
        s.lastIssuedMs = Math.max(Date.now(), s.lastIssuedMs + 1);
      }
    }
  };
  await load("configuration", s.configurationArtifact);
  await load("election-definition", s.electionArtifact);
  const tally = fw(s).tally;
  if (tally === null) throw new Error(`${s.serial} has no tally service`);
  if (tally.state() !== PollsState.READY) throw new Error(`${s.serial}: election loaded but polls state ${tally.state()}`);
  const platform = s.device.platform;
  if (platform === null) throw new Error(`${s.serial} is not running`);
  platform.press("supervisor");
  if (tally.state() !== PollsState.OPEN) throw new Error(`${s.serial}: polls did not open (state ${tally.state()})`);
  const scanner = s.device.scanner;
  if (scanner === null) throw new Error(`${s.serial} has no scanner`);
  scanner.feed(s.ballots);
  await until(() => scanner.idle(), 60_000, `${s.serial} counts its ballots`, 50);
  if (scanner.accepted.length !== s.ballots.length) {
    throw new Error(`${s.serial}: ${scanner.accepted.length} of ${s.ballots.length} ballots accepted (diverted ${JSON.stringify(scanner.diverted)}, failed ${scanner.failed.length})`);
  }
}

async function inBatches<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export async function runResultsBurst(o: ResultsBurstOptions): Promise<ResultsBurstReport> {
  const wall0 = performance.now();
  const N = o.stations;
  const AGENTS = o.agents ?? Math.max(1, Math.min(20, Math.round(N / 50)));
  const spreadMs = o.spreadMs ?? 30_000;
  const nBallots = o.ballotsPerStation ?? 5;
  const healthMs = o.healthIntervalMs ?? 10_000;
  const drainMs = o.drainMs ?? 120_000;
  const log = o.log ?? (() => {});
  const rnd = rng(o.seed ?? 2027);
  let peakRss = 0;
  let peakHeap = 0;
  const sampleMem = (): void => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const memTimer = setInterval(sampleMem, 1000);
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });

  const dir = mkdtempSync(join(tmpdir(), "pollkit-bench-results-"));
  const commission = createCommissionKey();
  const now = Date.now();
  const techKey = technicianKey();
  const tech = {
    key: techKey,
    token: issueToken({ technicianId: "tech-bench", site: "*", notBefore: now - DAY_MS, expires: now + 30 * DAY_MS, technicianPublicKey: techKey.publicKey }, commission),
  };

  const broker = await startEmbeddedBroker({ port: 0 });
  const agents: Agent[] = [];
  const stations: Station[] = [];
  let ops: RunningOps | null = null;
  try {
    for (let a = 0; a < AGENTS; a++) {
      agents.push(new Agent(fleetAgentConfig(`SITE-${String(a + 1).padStart(4, "0")}`, dir, broker.url)));
    }

    // The stations: definitions signed by the commission, ballots, devices.
    const definitions: string[] = [];
    for (let i = 0; i < N; i++) {
      const serial = `RAD-${String(i + 1).padStart(6, "0")}`;
      const stationId = `ST-${String(i + 1).padStart(6, "0")}`;
      const agent = agents[i % AGENTS];
      const site = agent.config.site;
      const definition: ElectionDefinition = {
        electionId: ELECTION_ID,
        name: "Bench general election",
        stationId,
        contests: CONTESTS,
        registerSize: 400,
        pollsOpenMs: now - 10 * HOUR_MS,
        pollsCloseMs: now + HOUR_MS,
      };
      const electionArtifact = signArtifact(
        { kind: ArtifactKind.ELECTION_DEFINITION, stationId, electionId: ELECTION_ID, version: 1, issuedMs: now - DAY_MS, body: encodeElectionDefinition(definition) },
        commission,
      );
      definitions.push(Buffer.from(electionArtifact).toString("base64"));
      const configurationArtifact = signArtifact(
        {
          kind: ArtifactKind.CONFIGURATION,
          stationId,
          version: 1,
          issuedMs: now - DAY_MS,
          body: new Uint8Array(Buffer.from(`# pollkit device configuration\nstation=${stationId}\nsite=${site}\n`, "utf8")),
        },
        commission,
      );
      const ballots: SimBallot[] = [];
      for (let b = 0; b < nBallots; b++) {
        const marks = CONTESTS.map((c) => {
          const r = rnd();
          const n = (c.options ?? []).length;
          if (r < 0.06) return []; // blank
          if (r < 0.1) return [0, 1 + Math.floor(rnd() * (n - 1))]; // over-voted: invalid
          return [Math.floor(rnd() * n)];
        });
        ballots.push({ serial: `${stationId}-B${String(b + 1).padStart(4, "0")}`, marks });
      }
      const { device: deviceEnd, host } = createMemoryLink({ deferred: true });
      const device = new SimDevice({
        serial,
        role: "result",
        hostLink: deviceEnd,
        healthIntervalMs: healthMs,
        wallMs: Date.now(),
        flashPages: 8,
        flashPageSize: 4096,
        // Artifacts 16 KB, ballot log 8 KB (a ballot entry is ~40 bytes), firmware slots 8 KB.
        dataFlashPages: 32,
        dataFlashPageSize: 1024,
        linkResendMs: 5000,
        commissionKey: commission.publicKey,
      });
      stations.push({ index: i, serial, stationId, site, agent, device, host, link: null, ballots, electionArtifact, configurationArtifact, closeMs: 0, closeError: null, lastIssuedMs: 0, setupRetries: 0 });
    }

    // The console, with the signed definitions (checked against the commission's key).
    const electionFile = join(dir, "elections.json");
    writeFileSync(electionFile, JSON.stringify({ definitions }));
    mkdirSync(join(dir, "ops"), { recursive: true });
    ops = await startOps(
      parseOpsConfig(
        {
          mqtt: { url: broker.url },
          store: { path: join(dir, "ops", "ops.sqlite") },
          election: electionFile,
          commissionKey: Buffer.from(commission.publicKey).toString("hex"),
          web: { host: "127.0.0.1", port: 0 },
          reports: { everyMs: 3_600_000, outDir: join(dir, "ops", "reports") },
          healthIntervalMs: healthMs,
        },
        dir,
      ),
    );
    const console_ = ops;
    log(`${N} stations, ${AGENTS} agents, ${nBallots} ballots each, closes over ${spreadMs / 1000} s, ${cpus().length} cores`);

    // Setup: boot, provision, open, count.
    let done = 0;
    await inBatches(stations, o.setupConcurrency ?? 10, async (s) => {
      await setupStation(s, tech);
      if (++done % 250 === 0 || done === N) log(`set up ${done}/${N} (${((performance.now() - wall0) / 1000).toFixed(1)} s)`);
    });

    // Provisioning at the console, then plug in.
    console_.store.upsertDevices(
      stations.map((s) =>
        registryEntry(s.serial, fw(s).publicKey, {
          role: "result",
          governorate: `G${(s.index % 18) + 1}`,
          office: `O${s.index % 90}`,
          stationId: s.stationId,
          site: s.site,
        }),
      ),
    );
    console_.ingest.reloadRegistry();
    console_.web.stations.reload();

    const storedAt = new Map<string, number>();
    const receivedAt = new Map<string, number>();
    const expectedResults = new Set(stations.map((s) => s.serial));
    console_.ingest.on("records", (rs) => {
      const t = Date.now();
      for (const r of rs) {
        if (r.kind !== RecordKind.RESULT || !expectedResults.has(r.deviceId) || storedAt.has(r.deviceId)) continue;
        storedAt.set(r.deviceId, t);
        receivedAt.set(r.deviceId, r.receivedMs);
      }
    });

    for (const a of agents) a.start();
    for (const s of stations) {
      s.host.setConnected(true);
      s.link = memoryHostLink(s.host, `mem:${s.serial}`);
      s.agent.attach(s.link);
    }
    await until(() => stations.every((s) => fw(s).journal.backlog() === 0), 180_000, "every journal acknowledged by its agent", 200);
    const storedCount = (): number => console_.ingest.stats().stored;
    const expectedRecords = (): number => stations.reduce((n, s) => n + fw(s).journal.nextSeq() - 1, 0);
    await until(() => storedCount() >= expectedRecords(), 120_000, "every record at the console", 200);
    const setupSeconds = (performance.now() - wall0) / 1000;
    log(`online, ${storedCount()} records at the console, setup ${setupSeconds.toFixed(1)} s`);
    sampleMem();

    // The burst.
    loopDelay.enable();
    const b0 = performance.now();
    let closed = 0;
    const closeOne = (s: Station): void => {
      const platform = s.device.platform;
      const tally = s.device.firmware?.tally ?? null;
      if (platform === null || tally === null) {
        s.closeError = "not running";
        return;
      }
      s.closeMs = Date.now();
      platform.press("supervisor");
      if (tally.state() !== PollsState.CLOSED) s.closeError = `state ${tally.state()} after the close`;
      closed++;
    };
    if (spreadMs <= 0) for (const s of stations) closeOne(s);
    else {
      const step = spreadMs / N;
      for (let i = 0; i < N; i++) {
        const due = b0 + i * step;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        closeOne(stations[i]);
      }
    }
    const closedAt = performance.now();
    log(`${closed} closed in ${((closedAt - b0) / 1000).toFixed(1)} s; draining`);
    await until(() => storedAt.size >= N || performance.now() - closedAt > drainMs, drainMs + 1000, "drain", 100).catch(() => undefined);
    // Let anything else in flight land (and be counted as stored or quarantined).
    await until(() => stations.every((s) => s.device.firmware === null || s.device.firmware.journal.backlog() === 0), 15_000, "backlogs empty", 200).catch(() => undefined);
    const burstSeconds = (performance.now() - b0) / 1000;
    loopDelay.disable();
    sampleMem();

    // Figures.
    const lat: number[] = [];
    const rlat: number[] = [];
    for (const s of stations) {
      const t = storedAt.get(s.serial);
      if (t !== undefined && s.closeMs > 0) {
        lat.push(t - s.closeMs);
        rlat.push((receivedAt.get(s.serial) ?? t) - s.closeMs);
      }
    }
    lat.sort((a, b) => a - b);
    rlat.sort((a, b) => a - b);
    const storedResults = new Set(console_.store.records({ kind: RecordKind.RESULT, limit: 10_000_000 }).map((r) => r.deviceId));
    const lost = stations.filter((s) => !storedResults.has(s.serial)).length;
    let recordsLost = 0;
    const seqs = new Map<string, Set<number>>();
    for (const r of console_.store.records({ limit: 100_000_000 })) {
      let set = seqs.get(r.deviceId);
      if (!set) seqs.set(r.deviceId, (set = new Set()));
      set.add(r.seq);
    }
    for (const s of stations) {
      const last = (s.device.firmware?.journal.nextSeq() ?? 1) - 1;
      const set = seqs.get(s.serial) ?? new Set<number>();
      for (let q = 1; q <= last; q++) if (!set.has(q)) recordsLost++;
    }
    const expected: StationExpectation[] = stations.map((s) => ({ stationId: s.stationId, deviceId: s.serial, ballots: s.ballots.length, contests: expectedTally(s.ballots) }));
    const rows = new Map(console_.web.stations.results().map((r) => [r.stationId, r]));
    const wrong: string[] = [];
    for (const e of expected) {
      const r = rows.get(e.stationId);
      if (!r) continue; // counted in lost
      const got = r.contests.map((c) => ({ contestId: c.contestId, votes: c.options.map((x) => x.votes), blank: c.blank, invalid: c.invalid }));
      if (r.deviceId !== e.deviceId || r.ballotsCounted !== e.ballots || JSON.stringify(got) !== JSON.stringify(e.contests) || r.flags.length > 0) {
        wrong.push(`${e.stationId}: counted ${r.ballotsCounted}/${e.ballots}, flags [${r.flags.join(",")}], ${JSON.stringify(got)} vs ${JSON.stringify(e.contests)}`);
      }
    }
    const quarantineReasons = console_.store.quarantineCounts();
    if (o.inspect) await o.inspect({ ops: console_, expected });
    const report: ResultsBurstReport = {
      bench: "results",
      stations: N,
      agents: AGENTS,
      spreadSeconds: spreadMs / 1000,
      ballotsPerStation: nBallots,
      closed,
      resultsStored: storedResults.size,
      p50Ms: quantile(lat, 0.5),
      p90Ms: quantile(lat, 0.9),
      p99Ms: quantile(lat, 0.99),
      maxMs: lat.length ? lat[lat.length - 1] : -1,
      receivedP50Ms: quantile(rlat, 0.5),
      receivedP99Ms: quantile(rlat, 0.99),
      lost,
      recordsLost,
      rejected: Object.values(quarantineReasons).reduce((a, b) => a + b, 0),
      quarantineReasons,
      wrongCounts: wrong.length,
      wrongSample: wrong.slice(0, 3),
      closeErrors: stations.filter((s) => s.closeError !== null).length,
      setupRetries: stations.reduce((n, s) => n + s.setupRetries, 0),
      duplicateDeliveriesDropped: console_.ingest.stats().duplicates,
      setupSeconds: Math.round(setupSeconds * 10) / 10,
      burstSeconds: Math.round(burstSeconds * 10) / 10,
      loopDelayP99Ms: Math.round(loopDelay.percentile(99) / 1e6),
      loopDelayMaxMs: Math.round(loopDelay.max / 1e6),
      wallSeconds: 0,
      rssMb: Math.round(peakRss / 1e6),
      heapMb: Math.round(peakHeap / 1e6),
      cores: cpus().length,
      cpu: cpus()[0]?.model ?? "",
      memoryGb: Math.round(totalmem() / 1e8) / 10,
      node: process.version,
    };
    report.wallSeconds = Math.round((performance.now() - wall0) / 100) / 10;
    return report;
  } finally {
    clearInterval(memTimer);
    for (const s of stations) {
      s.link?.unplug();
      s.link = null;
      if (s.device.running) s.device.powerOff();
    }
    for (const a of agents) await a.stop().catch(() => undefined);
    if (ops) await ops.stop().catch(() => undefined);
    await broker.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, fallback: number): number => {
    const i = args.indexOf(`--${name}`);
    if (i < 0) return fallback;
    const v = Number(args[i + 1]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number, not ${JSON.stringify(args[i + 1])}`);
    return v;
  };
  const quiet = args.includes("--quiet");
  const stations = opt("stations", 1000);
  if (stations < 1) throw new Error("--stations must be at least 1");
  const report = await runResultsBurst({
    stations,
    agents: args.includes("--agents") ? opt("agents", 20) : undefined,
    spreadMs: opt("spread-seconds", 30) * 1000,
    ballotsPerStation: opt("ballots", 5),
    healthIntervalMs: opt("health-interval", 10_000),
    drainMs: opt("drain-seconds", 120) * 1000,
    log: quiet ? undefined : (l) => console.error(`[bench:results] ${l}`),
  });
  console.log(JSON.stringify(report));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
