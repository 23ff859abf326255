// Host agent bench: N simulated devices (real firmware, chip models, each on its own socat
// pseudo-terminal) stream Health reports and journal records to a host agent running in its own
// process; the agent stores them in its SQLite outbox and forwards them over MQTT to the embedded
// aedes broker; a subscriber (in this process, not the agent's) counts every record by
// (device, seq) and takes its latency from the device's clock in the payload to its receipt.
// Then one bulk transfer over a link paced like a 115200-baud UART.
//
//   devices (worker process[es]) ── socat ptys ── agent (own process) ── aedes + subscriber (here)
//
// Usage: npm run bench:agent -- [--devices 64,128,256] [--seconds 10] [--journal-rate 1]
//          [--workers 1] [--profile] [--no-bulk] [--bulk-only] [--quiet]
// Prints a table per N and bulk configuration, then, last, one JSON line.
//
// What is counted as a record: every Health report (the device's telemetry, 10 a second per
// device, not journalled, not resent) and every journal record (RecordKind.TEST, journalled,
// acknowledged by the agent after its outbox commit, resent by the device until then). Both
// travel device -> pty -> agent session -> outbox -> MQTT -> subscriber.
//
// The devices run in one worker process by default (256 of them take about a third of a core
// there; `--workers 2` splits them). They stay quiet until the agent says hello, and the window
// starts 2 s after every device is online, or later once the connect-time backlog has drained.
//
// Figures per run (after the devices are connected and a warm-up):
// - offered: health reports sent + journal records made by the devices during the window, per s;
// - recordsPerSec: health + record messages the subscriber received during the window, per s;
// - p50/p99: subscriber receipt (Date.now()) minus the device's wall clock when it made the
//   message (the 8-byte float64 in the TEST record's payload; Health.clock_ms), over everything
//   made in the window; same machine, same clock (the simulated device's wall clock is Date.now()
//   at power-on plus performance.now() since);
// - agent CPU: utime + stime from /proc/<pid>/stat over the window, % of one core;
// - agent RSS: max of /proc/<pid>/status VmRSS, sampled every 200 ms from the agent's start to
//   the end of the drain;
// - lost: journalled records (every seq from 1 to the device's last, the boot record included)
//   the subscriber never saw after the drain; duplicated: receipts beyond the first, per
//   (device, seq); health is checked the same way by (device, clock_ms) over the window.

import os from "node:os";
import { execSync, fork, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

const ROOT = new URL("../", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;
/** 115200 baud, 8N1: 10 bits a byte. */
const UART_BYTES_PER_S = 11520;
const HEALTH_INTERVAL_MS = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Messages between this process and the device workers.

interface WorkerDeviceSpec {
  serial: string;
  link: string;
}
type ToWorker =
  | { type: "create"; devices: WorkerDeviceSpec[]; healthIntervalMs: number }
  | { type: "start"; perDeviceRate: number }
  | { type: "stop" }
  | { type: "close" };

interface DeviceReport {
  serial: string;
  /** The journal's last seq (every seq from 1 up to it was journalled). */
  lastSeq: number;
  journalMade: number;
  refused: number;
  healthSent: number;
  /** clock_ms (floored) of the first and last health report sent in the window, -1 if none. */
  healthFirst: number;
  healthLast: number;
  resends: number;
}
type FromWorker =
  | { type: "created"; devices: { serial: string; hostPath: string; socatPid: number }[] }
  | { type: "started" }
  | { type: "stopped"; devices: DeviceReport[] }
  | { type: "closed" }
  | { type: "error"; message: string };

// ---------------------------------------------------------------------------------------------
// Device worker: runs its share of the devices, makes records on command.

async function worker(): Promise<void> {
  const { runDevice } = await import("../simulator/cli/device_runner.ts");
  const { RecordKind } = await import("../protocol/generated/device_codec.ts");
  type Running = Awaited<ReturnType<typeof runDevice>>;
  interface Dev {
    serial: string;
    run: Running;
    counting: boolean;
    journalMade: number;
    refused: number;
    healthSent: number;
    healthFirst: number;
    healthLast: number;
  }
  const devs: Dev[] = [];
  let timer: NodeJS.Timeout | null = null;
  const send = (m: FromWorker): void => {
    process.send?.(m);
  };

  const hookHealth = (d: Dev): void => {
    const fw = d.run.device.firmware;
    if (fw === null) return;
    const t = fw.telemetry;
    const orig = t._o.send;
    t._o.send = (h) => {
      if (d.counting) {
        const c = Math.floor(h.clockMs ?? 0);
        d.healthSent++;
        if (d.healthFirst < 0) d.healthFirst = c;
        d.healthLast = c;
      }
      orig(h);
    };
  };

  const handle = async (m: ToWorker): Promise<void> => {
    if (m.type === "create") {
      const out: { serial: string; hostPath: string; socatPid: number }[] = [];
      // A few at a time: each one starts a socat and boots (secure element key, boot record).
      for (let i = 0; i < m.devices.length; i += 16) {
        const batch = m.devices.slice(i, i + 16);
        const runs = await Promise.all(
          batch.map((s) => runDevice({ serial: s.serial, role: "verification", link: s.link, healthIntervalMs: m.healthIntervalMs })),
        );
        runs.forEach((run, k) => {
          const d: Dev = { serial: batch[k]!.serial, run, counting: false, journalMade: 0, refused: 0, healthSent: 0, healthFirst: -1, healthLast: -1 };
          hookHealth(d);
          // Quiet until a host says hello (the firmware then reports and restarts the schedule):
          // reports made before the agent opens the port would wait in the pty and be a backlog
          // of seconds when it does, which is not what the window should measure.
          run.device.firmware?.telemetry.stop();
          devs.push(d);
          out.push({ serial: d.serial, hostPath: run.hostPath, socatPid: run.pty.pid });
        });
      }
      send({ type: "created", devices: out });
    } else if (m.type === "start") {
      for (const d of devs) d.counting = true;
      // Records spread evenly: every tick, the records owed since the last one, round-robin.
      const total = m.perDeviceRate * devs.length;
      let owed = 0;
      let next = 0;
      let last = performance.now();
      if (total > 0) {
        timer = setInterval(() => {
          const now = performance.now();
          owed += ((now - last) / 1000) * total;
          last = now;
          while (owed >= 1) {
            owed -= 1;
            const d = devs[next]!;
            next = (next + 1) % devs.length;
            const fw = d.run.device.firmware;
            if (fw === null) continue;
            const payload = new Uint8Array(8);
            new DataView(payload.buffer).setFloat64(0, d.run.device.wallMs());
            d.journalMade++;
            fw.record(RecordKind.TEST, payload, (seq) => {
              if (seq < 0) d.refused++;
            });
          }
        }, 10);
      }
      send({ type: "started" });
    } else if (m.type === "stop") {
      if (timer !== null) clearInterval(timer);
      timer = null;
      const reports: DeviceReport[] = [];
      for (const d of devs) {
        d.counting = false;
        const fw = d.run.device.firmware;
        fw?.telemetry.stop();
        reports.push({
          serial: d.serial,
          lastSeq: (fw?.journal.nextSeq() ?? 1) - 1,
          journalMade: d.journalMade,
          refused: d.refused,
          healthSent: d.healthSent,
          healthFirst: d.healthFirst,
          healthLast: d.healthLast,
          resends: fw?.link?.resends ?? 0,
        });
      }
      send({ type: "stopped", devices: reports });
    } else if (m.type === "close") {
      await Promise.all(devs.map((d) => d.run.stop().catch(() => {})));
      send({ type: "closed" });
      setTimeout(() => process.exit(0), 50);
    }
  };
  process.on("message", (m: ToWorker) => {
    handle(m).catch((e: unknown) => send({ type: "error", message: e instanceof Error ? (e.stack ?? e.message) : String(e) }));
  });
  process.on("disconnect", () => process.exit(0));
}

class WorkerHandle {
  readonly child: ChildProcess;
  private readonly waiting = new Map<string, (m: FromWorker) => void>();
  constructor() {
    this.child = fork(SELF, ["--worker"], { cwd: ROOT, execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (m: FromWorker) => {
      if (m.type === "error") {
        console.error(`device worker ${this.child.pid}: ${m.message}`);
        return;
      }
      const w = this.waiting.get(m.type);
      if (w) {
        this.waiting.delete(m.type);
        w(m);
      }
    });
  }
  request<T extends FromWorker["type"]>(m: ToWorker, reply: T, timeoutMs = 120000): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`device worker: no ${reply} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(reply, (r) => {
        clearTimeout(t);
        resolve(r as Extract<FromWorker, { type: T }>);
      });
      this.child.send(m);
    });
  }
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once("exit", () => r()));
    await this.request({ type: "close" }, "closed", 30000).catch(() => this.child.kill("SIGKILL"));
    await Promise.race([exited, sleep(3000)]);
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

// ---------------------------------------------------------------------------------------------
// /proc readings.

const CLK_TCK = (() => {
  try {
    return Number(execSync("getconf CLK_TCK").toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user, system) of a process, or NaN when it is gone. */
function cpuSplit(pid: number): { user: number; system: number } {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { user: Number(rest[11]) / CLK_TCK, system: Number(rest[12]) / CLK_TCK };
  } catch {
    return { user: NaN, system: NaN };
  }
}

/** CPU seconds (user + system) of a process, or NaN when it is gone. */
function cpuSeconds(pid: number): number {
  const c = cpuSplit(pid);
  return c.user + c.system;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole machine (all cores). */
function machineJiffies(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function round(x: number, digits = 1): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}

// ---------------------------------------------------------------------------------------------
// One run with N devices.

interface RunOptions {
  devices: number;
  seconds: number;
  journalRate: number;
  workers: number;
  profile: boolean;
  quiet: boolean;
}

export interface RunResult {
  devices: number;
  seconds: number;
  journalRatePerDevice: number;
  healthRatePerDevice: number;
  offeredPerSec: number;
  recordsPerSec: number;
  journalPerSec: number;
  healthPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  journalP50Ms: number;
  journalP99Ms: number;
  healthP50Ms: number;
  healthP99Ms: number;
  agentCpuPct: number;
  /** The part of agentCpuPct spent in the kernel (syscalls: serial reads and writes, fsync, sockets). */
  agentSystemCpuPct: number;
  agentRssMb: number;
  workersCpuPct: number;
  socatCpuPct: number;
  brokerAndSubscriberCpuPct: number;
  machineBusyPct: number;
  otherCpuPct: number;
  lost: number;
  duplicated: number;
  healthLost: number;
  healthDuplicated: number;
  journalRecords: number;
  refused: number;
  deviceResends: number;
  drainMs: number;
  connectMs: number;
  /** From all online to the window: 2 s, or longer until the connect-time backlog drained. */
  warmupMs: number;
  /** The agent's outbox rows not yet acknowledged by the broker, sampled every 500 ms (control API). */
  outboxPendingMax: number;
  outboxPendingMedian: number;
  /** Its MQTT publishes in flight (PUBACK not yet back), median of the samples. */
  mqttInFlightMedian: number;
  profile?: string;
  /** The window, in ms after the agent process was started (to cut its profile). */
  profileWindowMs?: [number, number];
}

class Subscriber {
  /** device -> seq -> receipts */
  readonly records = new Map<string, Map<number, number>>();
  /** device -> health clock_ms -> receipts */
  readonly health = new Map<string, Map<number, number>>();
  readonly online = new Set<string>();
  journalLatency: number[] = [];
  healthLatency: number[] = [];
  windowFrom = Infinity;
  windowTo = Infinity;
  inWindow = { record: 0, health: 0 };
  measuring = false;
  /** Latency of the last health reports received (any time): shows a backlog draining. */
  readonly recent = new Float64Array(512);
  recentCount = 0;
  /** BENCH_TRACE=1: the largest health latency in each 100 ms of the window. */
  readonly trace = new Map<number, number>();
  private client: import("mqtt").MqttClient | null = null;
  private decodeRecord!: (b: Uint8Array) => { seq?: number; kind?: number; payload?: Uint8Array };
  private decodeHealth!: (b: Uint8Array) => { clockMs?: number };

  async connect(url: string, site: string): Promise<void> {
    const codec = await import("../protocol/generated/device_codec.ts");
    this.decodeRecord = codec.decodeRecord;
    this.decodeHealth = codec.decodeHealth;
    const TEST = codec.RecordKind.TEST;
    const mqtt = (await import("mqtt")).default;
    const client = mqtt.connect(url, { clientId: `bench-subscriber-${site}`, clean: true, reconnectPeriod: 200 });
    this.client = client;
    client.on("message", (topic, payload) => {
      const now = Date.now();
      const parts = topic.split("/");
      const device = parts[3]!;
      const channel = parts[4];
      if (channel === "record") {
        const r = this.decodeRecord(payload);
        const seq = r.seq ?? 0;
        let m = this.records.get(device);
        if (m === undefined) this.records.set(device, (m = new Map()));
        const n = m.get(seq) ?? 0;
        m.set(seq, n + 1);
        if (this.measuring) this.inWindow.record++;
        if (n === 0 && r.kind === TEST && r.payload !== undefined && r.payload.length >= 8) {
          const t = Buffer.from(r.payload.buffer, r.payload.byteOffset, 8).readDoubleBE(0);
          if (t >= this.windowFrom && t <= this.windowTo) this.journalLatency.push(now - t);
        }
      } else if (channel === "health") {
        const h = this.decodeHealth(payload);
        const c = Math.floor(h.clockMs ?? 0);
        let m = this.health.get(device);
        if (m === undefined) this.health.set(device, (m = new Map()));
        const n = m.get(c) ?? 0;
        m.set(c, n + 1);
        if (this.measuring) this.inWindow.health++;
        this.recent[this.recentCount++ % this.recent.length] = now - c;
        if (this.measuring && process.env.BENCH_TRACE) {
          const b = Math.floor(now / 100);
          this.trace.set(b, Math.max(this.trace.get(b) ?? 0, now - c));
        }
        if (n === 0 && c >= this.windowFrom && c <= this.windowTo) this.healthLatency.push(now - c);
      } else if (channel === "status") {
        try {
          const s = JSON.parse(payload.toString()) as { state?: string };
          if (s.state === "online") this.online.add(device);
          else this.online.delete(device);
        } catch {
          // not ours
        }
      }
    });
    await new Promise<void>((resolve, reject) => {
      client.once("error", reject);
      client.once("connect", () => {
        client.off("error", reject);
        client.subscribe(`pollkit/v1/${site}/#`, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      });
    });
  }

  /** Median latency of the last health reports (Infinity until enough have come). */
  recentMedian(): number {
    if (this.recentCount < this.recent.length) return Infinity;
    return percentile(Float64Array.from(this.recent).sort(), 50);
  }

  /** Seqs 1..lastSeq never received. */
  missing(device: string, lastSeq: number): number {
    const m = this.records.get(device);
    let n = 0;
    for (let s = 1; s <= lastSeq; s++) if (!m?.has(s)) n++;
    return n;
  }

  healthSeen(device: string, from: number, to: number): { distinct: number; extra: number } {
    const m = this.health.get(device);
    let distinct = 0;
    let extra = 0;
    if (m !== undefined && from >= 0) {
      for (const [c, n] of m) {
        if (c >= from && c <= to) {
          distinct++;
          extra += n - 1;
        }
      }
    }
    return { distinct, extra };
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }
}

function startAgentProcess(configPath: string, profileDir: string | null): Promise<{ child: ChildProcess; controlUrl: string }> {
  return new Promise((resolve, reject) => {
    const flags = profileDir === null ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
    const child = spawn(process.execPath, [...flags, "--import", "tsx", join(ROOT, "test/e2e/agent_child.ts"), configPath], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let done = false;
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m && !done) {
        done = true;
        resolve({ child, controlUrl: m[1]! });
      }
    });
    child.stderr?.on("data", (d: Buffer) => {
      if (out.length < 20000) out += d.toString();
    });
    child.once("exit", (code) => {
      if (!done) reject(new Error(`agent exited early (${code}): ${out}`));
    });
    process.once("exit", () => child.kill("SIGKILL"));
  });
}

async function stopAgent(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(graceMs)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await exited;
  }
}

async function runWithDevices(o: RunOptions): Promise<RunResult> {
  const { startEmbeddedBroker } = await import("../host/broker/embedded.ts");
  const dir = mkdtempSync(join(os.tmpdir(), `pollkit-bench-agent-${o.devices}-`));
  const log = (s: string): void => {
    if (!o.quiet) console.error(`[n=${o.devices}] ${s}`);
  };
  const site = `bench-n${o.devices}`;
  const broker = await startEmbeddedBroker();
  const sub = new Subscriber();
  await sub.connect(broker.url, site);
  const workers: WorkerHandle[] = [];
  let agent: ChildProcess | null = null;
  let rssTimer: NodeJS.Timeout | null = null;
  try {
    // Devices, split over the workers.
    const t0 = performance.now();
    const specs: WorkerDeviceSpec[][] = Array.from({ length: o.workers }, () => []);
    for (let i = 0; i < o.devices; i++) {
      specs[i % o.workers]!.push({ serial: `VVD-N${o.devices}-${String(i).padStart(3, "0")}`, link: join(dir, `d${i}.tty`) });
    }
    for (let w = 0; w < o.workers; w++) workers.push(new WorkerHandle());
    const created = await Promise.all(workers.map((w, k) => w.request({ type: "create", devices: specs[k]!, healthIntervalMs: HEALTH_INTERVAL_MS }, "created")));
    const hostPaths = created.flatMap((c) => c.devices.map((d) => d.hostPath));
    const socatPids = created.flatMap((c) => c.devices.map((d) => d.socatPid));
    log(`${hostPaths.length} devices up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // The agent, in its own process.
    const configPath = join(dir, "agent.json");
    writeFileSync(
      configPath,
      JSON.stringify({
        site,
        agentId: `bench-agent-${o.devices}`,
        serial: { paths: hostPaths, scanIntervalMs: 1000 },
        outbox: { path: join(dir, "outbox.db") },
        mqtt: { url: broker.url },
        control: { port: 0 },
      }),
    );
    const profileDir = o.profile ? join(dir, "prof") : null;
    if (profileDir !== null) mkdirSync(profileDir, { recursive: true });
    const tAgent = performance.now();
    const started = await startAgentProcess(configPath, profileDir);
    agent = started.child;
    const pid = agent.pid!;
    let rssMax = 0;
    rssTimer = setInterval(() => {
      const r = rssMb(pid);
      if (r > rssMax) rssMax = r;
    }, 200);

    // Every device connected (its retained "online" status), then a warm-up.
    const deadline = Date.now() + 90000;
    while (sub.online.size < o.devices) {
      if (Date.now() > deadline) throw new Error(`only ${sub.online.size} of ${o.devices} devices came online`);
      await sleep(100);
    }
    const connectMs = performance.now() - tAgent;
    log(`all online ${(connectMs / 1000).toFixed(1)} s after the agent started`);
    // Warm-up: at least 2 s, then until the connect-time backlog has drained (the last 512
    // health reports arrived within 50 ms at the median), at most 30 s.
    const tWarm = performance.now();
    await sleep(2000);
    while (sub.recentMedian() > 50 && performance.now() - tWarm < 30000) await sleep(250);
    const warmupMs = performance.now() - tWarm;
    log(`warm-up ${(warmupMs / 1000).toFixed(1)} s (recent median latency ${round(sub.recentMedian())} ms)`);

    // The measured window.
    const cpuOf = (pids: number[]): number => pids.reduce((a, p) => a + (cpuSeconds(p) || 0), 0);
    const wallFrom = Date.now();
    sub.windowFrom = wallFrom;
    await Promise.all(workers.map((w) => w.request({ type: "start", perDeviceRate: o.journalRate }, "started")));
    const m0 = machineJiffies();
    const a0 = cpuSplit(pid);
    const w0 = cpuOf(workers.map((w) => w.child.pid!));
    const s0 = cpuOf(socatPids);
    const b0 = process.cpuUsage();
    const tw0 = performance.now();
    sub.measuring = true;
    // The agent's own view every 500 ms: rows waiting in its outbox and publishes in flight.
    const outboxSamples: { pending: number; inFlight: number }[] = [];
    const windowEnd = performance.now() + o.seconds * 1000;
    while (performance.now() < windowEnd) {
      const t = performance.now();
      try {
        const st = (await (await fetch(`${started.controlUrl}/v1/status`)).json()) as { outbox: { pending: number }; mqtt: { inFlight: number } };
        outboxSamples.push({ pending: st.outbox.pending, inFlight: st.mqtt.inFlight });
      } catch {
        // a sample missed
      }
      await sleep(Math.max(0, Math.min(500 - (performance.now() - t), windowEnd - performance.now())));
    }
    sub.measuring = false;
    const tw1 = performance.now();
    const a1 = cpuSplit(pid);
    const w1 = cpuOf(workers.map((w) => w.child.pid!));
    const s1 = cpuOf(socatPids);
    const b1 = process.cpuUsage(b0);
    const m1 = machineJiffies();
    const stopped = (await Promise.all(workers.map((w) => w.request({ type: "stop" }, "stopped")))).flatMap((s) => s.devices);
    if (process.env.BENCH_TRACE) console.error(`trace (max health latency per 100 ms): ${[...sub.trace.values()].map((v) => Math.round(v)).join(" ")}`);
    sub.windowTo = Date.now();
    const windowS = (tw1 - tw0) / 1000;
    log(`window ${windowS.toFixed(1)} s; draining`);

    // Drain: every journalled record and every window health report downstream, or a timeout.
    const tDrain = performance.now();
    const pendingCount = (): number => {
      let n = 0;
      for (const d of stopped) {
        n += sub.missing(d.serial, d.lastSeq);
        n += Math.max(0, d.healthSent - sub.healthSeen(d.serial, d.healthFirst, d.healthLast).distinct);
      }
      return n;
    };
    const drainDeadline = performance.now() + 30000;
    while (pendingCount() > 0 && performance.now() < drainDeadline) await sleep(100);
    await sleep(500); // late duplicates, if any
    const drainMs = performance.now() - tDrain;

    // Counts.
    let lost = 0;
    let duplicated = 0;
    let healthLost = 0;
    let healthDuplicated = 0;
    let journalRecords = 0;
    let journalMade = 0;
    let healthSent = 0;
    let refused = 0;
    let resends = 0;
    for (const d of stopped) {
      lost += sub.missing(d.serial, d.lastSeq);
      const m = sub.records.get(d.serial);
      if (m) for (const n of m.values()) duplicated += n - 1;
      const h = sub.healthSeen(d.serial, d.healthFirst, d.healthLast);
      healthLost += Math.max(0, d.healthSent - h.distinct);
      healthDuplicated += h.extra;
      journalRecords += d.lastSeq;
      journalMade += d.journalMade;
      healthSent += d.healthSent;
      refused += d.refused;
      resends += d.resends;
    }
    const all = Float64Array.from([...sub.journalLatency, ...sub.healthLatency]).sort();
    const jl = Float64Array.from(sub.journalLatency).sort();
    const hl = Float64Array.from(sub.healthLatency).sort();
    const machineBusyPct = ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 * os.cpus().length;
    const pct = (sec: number): number => (sec / windowS) * 100;
    const agentCpuPct = pct(a1.user + a1.system - a0.user - a0.system);
    const agentSysPct = pct(a1.system - a0.system);
    const workersCpuPct = pct(w1 - w0);
    const socatCpuPct = pct(s1 - s0);
    const mainCpuPct = pct((b1.user + b1.system) / 1e6);

    // Agent's own view, then stop it (a profile is written at exit).
    try {
      const st = (await (await fetch(`${started.controlUrl}/v1/status`)).json()) as { outbox: { pending: number }; mqtt: { published: number } };
      log(`agent: outbox pending ${st.outbox.pending}, published ${st.mqtt.published}`);
    } catch {
      // the figures above do not depend on it
    }
    if (rssTimer !== null) clearInterval(rssTimer);
    rssTimer = null;
    await stopAgent(agent, 15000);
    let profile: string | undefined;
    if (profileDir !== null) {
      const f = readdirSync(profileDir).find((n) => n.endsWith(".cpuprofile"));
      if (f !== undefined) {
        profile = join(os.tmpdir(), `pollkit-agent-n${o.devices}-${Date.now()}.cpuprofile`);
        writeFileSync(profile, readFileSync(join(profileDir, f)));
      }
    }
    return {
      devices: o.devices,
      seconds: round(windowS, 2),
      journalRatePerDevice: o.journalRate,
      healthRatePerDevice: 1000 / HEALTH_INTERVAL_MS,
      offeredPerSec: Math.round((journalMade + healthSent) / windowS),
      recordsPerSec: Math.round((sub.inWindow.record + sub.inWindow.health) / windowS),
      journalPerSec: Math.round(sub.inWindow.record / windowS),
      healthPerSec: Math.round(sub.inWindow.health / windowS),
      p50Ms: round(percentile(all, 50)),
      p99Ms: round(percentile(all, 99)),
      maxMs: round(all.length > 0 ? all[all.length - 1]! : NaN),
      journalP50Ms: round(percentile(jl, 50)),
      journalP99Ms: round(percentile(jl, 99)),
      healthP50Ms: round(percentile(hl, 50)),
      healthP99Ms: round(percentile(hl, 99)),
      agentCpuPct: round(agentCpuPct),
      agentSystemCpuPct: round(agentSysPct),
      agentRssMb: round(rssMax),
      workersCpuPct: round(workersCpuPct),
      socatCpuPct: round(socatCpuPct),
      brokerAndSubscriberCpuPct: round(mainCpuPct),
      machineBusyPct: round(machineBusyPct),
      otherCpuPct: round(Math.max(0, machineBusyPct - agentCpuPct - workersCpuPct - socatCpuPct - mainCpuPct)),
      lost,
      duplicated,
      healthLost,
      healthDuplicated,
      journalRecords,
      refused,
      deviceResends: resends,
      drainMs: Math.round(drainMs),
      connectMs: Math.round(connectMs),
      warmupMs: Math.round(warmupMs),
      outboxPendingMax: Math.max(0, ...outboxSamples.map((x) => x.pending)),
      outboxPendingMedian: percentile(Float64Array.from(outboxSamples.map((x) => x.pending)).sort(), 50),
      mqttInFlightMedian: percentile(Float64Array.from(outboxSamples.map((x) => x.inFlight)).sort(), 50),
      profile,
      profileWindowMs: [tw0 - tAgent, tw1 - tAgent],
    };
  } finally {
    if (rssTimer !== null) clearInterval(rssTimer);
    if (agent !== null) await stopAgent(agent, 5000);
    await Promise.all(workers.map((w) => w.close()));
    await sub.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// CPU profile summary (--profile): self time by function and by area.

function summarizeProfile(path: string, top = 25, fromMs = 0, toMs = Infinity): string {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }
  const p = JSON.parse(readFileSync(path, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const self = new Map<number, number>();
  // Only samples inside [fromMs, toMs] after the profile started (the measured window).
  let at = 0;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (at / 1000 < fromMs || at / 1000 > toMs) continue;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  const area = (url: string, fn: string): string => {
    if (fn === "(idle)") return "(idle)";
    if (fn === "(garbage collector)") return "(gc)";
    if (fn === "(program)") return "(program: native, libuv, syscalls)";
    const m = /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(url);
    if (m) return m[1]!;
    if (url.startsWith("node:")) return url.split("/")[0]!;
    if (url.includes("/work/") || url.startsWith("file:")) return url.replace(/^file:\/\//, "").replace(ROOT, "").split("/").slice(0, 2).join("/");
    return url === "" ? "(native)" : url;
  };
  for (const n of p.nodes) {
    const t = self.get(n.id) ?? 0;
    if (t === 0) continue;
    total += t;
    const cf = n.callFrame;
    const file = cf.url.replace(/^file:\/\//, "").replace(ROOT, "");
    const key = `${cf.functionName || "(anonymous)"}  ${file}:${cf.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + t);
    const a = area(cf.url, cf.functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + t);
  }
  const busy = total - (byArea.get("(idle)") ?? 0);
  const span = Number.isFinite(toMs) ? ` (the window: ${(fromMs / 1000).toFixed(1)}-${(toMs / 1000).toFixed(1)} s after the agent started)` : "";
  const lines: string[] = [`profile ${path}${span}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy`];
  lines.push("  by area (self time, % of busy):");
  for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 16)) {
    if (k !== "(idle)") lines.push(`    ${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  }
  lines.push(`  top ${top} functions (self time, % of busy):`);
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top + 1)) {
    if (!k.startsWith("(idle)")) lines.push(`    ${((v / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Bulk transfer over a UART-paced link.

export interface BulkResult {
  chunkSize: number;
  window: number;
  bytes: number;
  ms: number;
  payloadBytesPerSec: number;
  /** Payload bytes / wire bytes of the chunk frames (framedSize of Envelope{Command{id, TransferChunk}}). */
  framingEfficiency: number;
  idealBytesPerSec: number;
  utilization: number;
  /** Bytes the host wrote during the transfer (begin, chunks, end, acks) / (11,520 B/s x time). */
  wireBusy: number;
  chunks: number;
}

async function bulk(configs: { chunkSize: number; window: number }[], quiet: boolean): Promise<BulkResult[]> {
  const { runDevice } = await import("../simulator/cli/device_runner.ts");
  const { SerialTransport } = await import("../host/transport/serial/serial_transport.ts");
  const { DeviceSession } = await import("../host/session/device_session.ts");
  const { sendTransfer, MAX_CHUNK } = await import("../host/session/transfer.ts");
  const { Envelope } = await import("../protocol/node/schema.ts");
  const { framedSize } = await import("../protocol/framing.ts");
  type Session = InstanceType<typeof DeviceSession>;
  const dir = mkdtempSync(join(os.tmpdir(), "pollkit-bench-bulk-"));
  const dev = await runDevice({
    serial: "VVD-BULK-1",
    role: "verification",
    link: join(dir, "bulk.tty"),
    // Both directions of the UART at 115200 baud: the firmware gets bytes no faster than this.
    linkOptions: { bytesPerSecond: UART_BYTES_PER_S, receiveBytesPerSecond: UART_BYTES_PER_S },
  });
  const transport = new SerialTransport({ paths: [dev.hostPath], scanIntervalMs: 100 });
  const store = { put: (items: unknown[]) => items.length, highestSeq: () => 0 };
  const session = await new Promise<Session>((resolve) => {
    transport.onLink((link) => {
      const s = new DeviceSession({ link, agentId: "bench", site: "bench", store, timeSync: false });
      s.on("hello", () => resolve(s));
    });
    transport.start();
  });
  await sleep(500); // the boot record and its ack out of the way
  const out: BulkResult[] = [];
  try {
    for (const c of configs) {
      const chunkSize = Math.min(c.chunkSize, MAX_CHUNK);
      const data = new Uint8Array(randomBytes(64 * 1024));
      // Wire bytes of every chunk frame exactly as the session encodes it. Command ids are 31-bit
      // random starts counting up: 5 bytes as a varint from 2^28 (7 in 8 sessions), 4 below.
      const id = 0x7fff0000;
      let wire = 0;
      for (let off = 0; off < data.length; off += chunkSize) {
        const env = Envelope.encode(Envelope.fromObject({ command: { id, transferChunk: { offset: off, data: data.subarray(off, Math.min(data.length, off + chunkSize)) } } })).finish();
        wire += framedSize(env.length);
      }
      const efficiency = data.length / wire;
      const before = session.info().counters.bytesOut;
      const r = await sendTransfer(session, { kind: 2, data, name: "bench.bin", chunkSize, window: c.window });
      const written = session.info().counters.bytesOut - before;
      const rate = (r.bytes / r.ms) * 1000;
      const ideal = UART_BYTES_PER_S * efficiency;
      const res: BulkResult = {
        chunkSize,
        window: c.window,
        bytes: r.bytes,
        ms: Math.round(r.ms),
        payloadBytesPerSec: Math.round(rate),
        framingEfficiency: round(efficiency, 4),
        idealBytesPerSec: Math.round(ideal),
        utilization: round(rate / ideal, 3),
        wireBusy: round(written / ((r.ms / 1000) * UART_BYTES_PER_S), 3),
        chunks: r.chunks,
      };
      if (!quiet) console.error(`[bulk] chunk ${chunkSize} window ${c.window}: ${res.payloadBytesPerSec} B/s of ${res.idealBytesPerSec} ideal = ${(res.utilization * 100).toFixed(1)} %`);
      out.push(res);
      await sleep(300);
    }
  } finally {
    await transport.close();
    await session.close().catch(() => {});
    await dev.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const started = performance.now();
  const ns = (arg("devices") ?? "64,128,256").split(",").map((s) => Number(s.trim())).filter((n) => n > 0);
  const seconds = Number(arg("seconds") ?? 10);
  const journalRate = Number(arg("journal-rate") ?? 1);
  const workers = Math.max(1, Number(arg("workers") ?? 1));
  const profile = process.argv.includes("--profile");
  const quiet = process.argv.includes("--quiet");
  const bulkOnly = process.argv.includes("--bulk-only");
  const noBulk = process.argv.includes("--no-bulk");
  const bulkConfigs = [
    { chunkSize: 1024, window: 4 },
    { chunkSize: 1800, window: 4 },
  ];

  const runs: RunResult[] = [];
  if (!bulkOnly) {
    for (const n of ns) {
      const r = await runWithDevices({ devices: n, seconds, journalRate, workers, profile, quiet });
      runs.push(r);
      if (r.profile !== undefined) console.log(summarizeProfile(r.profile, 25, r.profileWindowMs?.[0], r.profileWindowMs?.[1]));
    }
  }
  const bulkResults = noBulk ? [] : await bulk(bulkConfigs, quiet);

  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAvg1m: Number(os.loadavg()[0].toFixed(2)),
    memGb: Math.round(os.totalmem() / 2 ** 30),
  };
  const version = (p: string): string => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, "node_modules", p, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      return "?";
    }
  };

  const line = "-".repeat(118);
  console.log(`Agent bench: devices on socat ptys in ${workers} worker process${workers === 1 ? "" : "es"}, agent in its own process, embedded aedes + subscriber in the bench process`);
  console.log(`${machine.cpu}, ${machine.cores} cores (load ${machine.loadAvg1m}), Node ${machine.node}; aedes ${version("aedes")}, mqtt ${version("mqtt")}, better-sqlite3 ${version("better-sqlite3")}`);
  console.log(`per device: Health every ${HEALTH_INTERVAL_MS} ms + ${journalRate} journal records/s (8-byte payload); window ${seconds} s; outbox synchronous=FULL`);
  console.log(line);
  const head = ["devices", "offered/s", "recv/s", "p50 ms", "p99 ms", "max ms", "agent CPU", "agent RSS", "lost", "dup", "h.lost", "h.dup", "resends", "drain s", "devs CPU", "socat", "bench", "other"];
  const widths = [7, 10, 8, 7, 7, 8, 10, 10, 5, 5, 7, 6, 8, 8, 9, 7, 7, 7];
  console.log(head.map((h, i) => h.padStart(widths[i]!)).join(" "));
  for (const r of runs) {
    const cells = [
      r.devices,
      r.offeredPerSec,
      r.recordsPerSec,
      r.p50Ms,
      r.p99Ms,
      r.maxMs,
      `${r.agentCpuPct} %`,
      `${r.agentRssMb} MB`,
      r.lost,
      r.duplicated,
      r.healthLost,
      r.healthDuplicated,
      r.deviceResends,
      (r.drainMs / 1000).toFixed(1),
      `${r.workersCpuPct} %`,
      `${r.socatCpuPct} %`,
      `${r.brokerAndSubscriberCpuPct} %`,
      `${r.otherCpuPct} %`,
    ];
    console.log(cells.map((c, i) => String(c).padStart(widths[i]!)).join(" "));
  }
  if (runs.length > 0) {
    console.log("(CPU as % of one core over the window; latency p50/p99 journal | health:");
    for (const r of runs) console.log(`   n=${r.devices}: agent CPU ${r.agentCpuPct} % of which kernel ${r.agentSystemCpuPct} %; journal ${r.journalP50Ms} / ${r.journalP99Ms} ms, health ${r.healthP50Ms} / ${r.healthP99Ms} ms; ${r.journalPerSec} records/s + ${r.healthPerSec} health/s received; ${r.refused} refused (journal full); all online in ${(r.connectMs / 1000).toFixed(1)} s, warm-up ${(r.warmupMs / 1000).toFixed(1)} s; outbox pending median ${r.outboxPendingMedian} max ${r.outboxPendingMax}, MQTT in flight median ${r.mqttInFlightMedian})`);
  }
  console.log(line);
  for (const b of bulkResults) {
    console.log(
      `bulk 64 KiB, chunk ${b.chunkSize} B, window ${b.window}: ${b.payloadBytesPerSec} payload B/s in ${(b.ms / 1000).toFixed(2)} s; ` +
        `framing ${(b.framingEfficiency * 100).toFixed(1)} % -> ideal ${b.idealBytesPerSec} B/s at 115200 baud; utilization ${(b.utilization * 100).toFixed(1)} % (wire busy ${(b.wireBusy * 100).toFixed(1)} %)`,
    );
  }
  const big = runs.length > 0 ? runs.reduce((a, b) => (b.devices > a.devices ? b : a)) : null;
  const bulkMain = bulkResults[0];
  const goals = big === null
    ? {}
    : {
        devices256: big.devices >= 256,
        recordsPerSec2500: big.recordsPerSec >= 2500,
        p99Under100Ms: big.p99Ms < 100,
        rssUnder250Mb: big.agentRssMb < 250,
        zeroLostOrDuplicated: big.lost === 0 && big.duplicated === 0,
        bulk85Pct: bulkMain === undefined ? null : bulkMain.utilization >= 0.85,
      };
  console.log(`goals: ${Object.entries(goals).map(([k, v]) => `${k} ${v === null ? "n/a" : v ? "met" : "NOT met"}`).join("; ")}`);
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  const result = {
    bench: "agent",
    devices: big?.devices ?? 0,
    recordsPerSec: big?.recordsPerSec ?? 0,
    offeredPerSec: big?.offeredPerSec ?? 0,
    p50Ms: big?.p50Ms ?? null,
    p99Ms: big?.p99Ms ?? null,
    agentCpuPct: big?.agentCpuPct ?? null,
    agentRssMb: big?.agentRssMb ?? null,
    lost: big?.lost ?? null,
    duplicated: big?.duplicated ?? null,
    bulkLinkUtilization: bulkMain?.utilization ?? null,
    bulk: bulkResults,
    goals,
    runs: runs.map((r) => {
      const out: Partial<RunResult> = { ...r };
      delete out.profile;
      delete out.profileWindowMs;
      return out;
    }),
    seconds,
    journalRatePerDevice: journalRate,
    healthIntervalMs: HEALTH_INTERVAL_MS,
    workers,
    machine,
  };
  console.log(JSON.stringify(result));
}

if (process.argv.includes("--worker")) {
  await worker();
} else {
  main()
    .then(() => process.exit(0))
    .catch((e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      process.exit(1);
    });
}

