// Scenario 2, the agent killed: simulated devices on real pseudo-terminals, the host agent in its
// own process (test/e2e/agent_child.ts) serving them through the real serialport bindings, the
// embedded broker and the real operations console. While the devices journal records, the agent
// is killed with SIGKILL mid-stream and started again, several times. Counting: every record each
// device journalled is stored once at the console (the outbox kept what the devices had been told
// was stored), and each kill was reported (the agent's will: offline, then online again).

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDevice, type RunningDevice } from "../../simulator/cli/device_runner.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { parseOpsConfig, startOps } from "../../host/ops/ops.ts";
import { Outbox } from "../../host/outbox/outbox.ts";
import { seededRandom } from "../../simulator/faults/line_noise.ts";
import { faultSpec } from "../../simulator/faults/catalogue.ts";
import { RecordKind } from "../../protocol/generated/device_codec.ts";
import { sleep, until } from "./fleet_harness.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface AgentKillProfile {
  devices: number;
  kills: number;
  /** Real ms between kills (records flow meanwhile). */
  everyMs: number;
  /** How long the agent stays dead. */
  deadMs: number;
  /** Each device journals a record every this many ms. */
  recordEveryMs: number;
  drainMs: number;
}

export const AGENT_KILL: Record<"short" | "long", AgentKillProfile> = {
  short: { devices: 3, kills: 2, everyMs: 1500, deadMs: 600, recordEveryMs: 30, drainMs: 30_000 },
  long: { devices: 8, kills: 6, everyMs: 3000, deadMs: 1500, recordEveryMs: 25, drainMs: 60_000 },
};

export interface AgentKillCounts {
  scenario: "agent-kill";
  profile: string;
  devices: number;
  kills: number;
  killsReported: number;
  /** Rows found in the dead agent's outbox, per kill (what it had stored and not yet published). */
  outboxRowsAtKill: number[];
  journalled: number;
  stored: number;
  lost: number;
  duplicatedStored: number;
  duplicateDeliveriesDropped: number;
  quarantined: number;
  drainSeconds: number;
  ok: boolean;
  problems: string[];
}

function startAgentProcess(configPath: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/e2e/agent_child.ts"), configPath], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready ")) resolve(child);
    });
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (code) => reject(new Error(`agent exited early (${code}): ${out}`)));
    // However this process ends, the agent does not outlive it.
    const reap = (): void => void child.kill("SIGKILL");
    process.once("exit", reap);
    child.once("exit", () => process.off("exit", reap));
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

export async function runAgentKill(profileName: "short" | "long", log?: (s: string) => void): Promise<AgentKillCounts> {
  const p = AGENT_KILL[profileName];
  const dir = mkdtempSync(join(tmpdir(), "pollkit-reliability-kill-"));
  const broker = await startEmbeddedBroker({ port: 0 });
  const ops = await startOps(
    parseOpsConfig({ mqtt: { url: broker.url }, store: { path: join(dir, "ops.sqlite") }, web: { host: "127.0.0.1", port: 0 }, reports: { everyMs: 3_600_000, outDir: join(dir, "reports") } }, dir),
  );
  const agentEvents: { state: string; at: number }[] = [];
  ops.ingest.on("agent", (a) => agentEvents.push({ state: a.state, at: Date.now() }));
  const stored = new Map<string, Set<number>>();
  ops.ingest.on("records", (rs) => {
    for (const r of rs) {
      let s = stored.get(r.deviceId);
      if (!s) stored.set(r.deviceId, (s = new Set()));
      s.add(r.seq);
    }
  });
  const devices: RunningDevice[] = [];
  let agent: ChildProcess | null = null;
  let producing = false;
  const producers: Promise<void>[] = [];
  const rnd = seededRandom(77);
  try {
    for (let i = 0; i < p.devices; i++) {
      const role = i % 2 === 0 ? "verification" : "result";
      devices.push(
        await runDevice({
          serial: `${role === "verification" ? "VVD" : "RAD"}-K${String(i + 1).padStart(3, "0")}`,
          role,
          link: join(dir, `d${i}.tty`),
          healthIntervalMs: 500,
          device: { dataFlashPages: 16, dataFlashPageSize: 1024 },
        }),
      );
    }
    const serial = (d: RunningDevice): string => d.device.options.serial;
    ops.store.upsertDevices(
      devices.map((d) => ({
        deviceId: serial(d),
        publicKeyHex: Buffer.from(d.device.firmware!.publicKey).toString("hex"),
        role: d.device.options.role,
        governorate: "G1",
        office: "O1",
        stationId: "",
        site: "kill-site",
      })),
    );
    ops.ingest.reloadRegistry();
    const outboxPath = join(dir, "outbox.db");
    const configPath = join(dir, "agent.json");
    writeFileSync(
      configPath,
      JSON.stringify({
        site: "kill-site",
        agentId: "agent-kill",
        serial: { paths: devices.map((d) => d.hostPath), scanIntervalMs: 200 },
        outbox: { path: outboxPath },
        mqtt: { url: broker.url },
        control: { port: 0 },
      }),
    );
    agent = await startAgentProcess(configPath);
    producing = true;
    const payload = new TextEncoder().encode("stream record");
    for (const d of devices) {
      producers.push(
        (async () => {
          while (producing) {
            d.device.firmware?.record(RecordKind.TEST, payload);
            await sleep(p.recordEveryMs);
          }
        })(),
      );
    }
    const kills: { at: number; restarted: number }[] = [];
    const outboxRows: number[] = [];
    for (let k = 0; k < p.kills; k++) {
      await sleep(p.everyMs * (0.6 + 0.8 * rnd()));
      const at = Date.now();
      await killHard(agent);
      log?.(`agent SIGKILLed (${k + 1}/${p.kills})`);
      // What the dead agent left in its outbox: stored, acknowledged to the devices, not yet published.
      const ob = new Outbox({ path: outboxPath });
      outboxRows.push(ob.stats().pending);
      ob.close();
      await sleep(p.deadMs);
      agent = await startAgentProcess(configPath);
      kills.push({ at, restarted: Date.now() });
    }
    await sleep(p.everyMs);
    producing = false;
    await Promise.all(producers);

    const t0 = Date.now();
    const last = (d: RunningDevice): number => (d.device.firmware?.journal.nextSeq() ?? 1) - 1;
    const missing = (): number => devices.reduce((n, d) => n + Math.max(0, last(d) - (stored.get(serial(d))?.size ?? 0)), 0);
    try {
      await until(() => missing() === 0, p.drainMs, () => `every record at the console (${missing()} missing)`);
    } catch (e) {
      log?.(String(e));
    }
    await ops.ingest.drain();
    const drainSeconds = (Date.now() - t0) / 1000;

    let journalled = 0;
    let storedN = 0;
    let lost = 0;
    let dup = 0;
    for (const d of devices) {
      const rows = ops.store.records({ deviceId: serial(d), limit: 10_000_000 });
      const seqs = new Set(rows.map((r) => r.seq));
      const top = last(d);
      journalled += top;
      storedN += rows.length;
      dup += rows.length - seqs.size;
      for (let s = 1; s <= top; s++) if (!seqs.has(s)) lost++;
    }
    // The catalogue: "agent status offline through its MQTT will, then online".
    let killsReported = 0;
    for (const k of kills) {
      const off = agentEvents.find((e) => e.state === "offline" && e.at >= k.at);
      const on = off ? agentEvents.find((e) => e.state === "online" && e.at >= off.at && e.at >= k.restarted) : undefined;
      if (off && on) killsReported++;
    }
    const q = ops.store.quarantineCounts();
    const quarantined = Object.values(q).reduce((a, b) => a + b, 0);
    const problems: string[] = [];
    if (lost > 0) problems.push(`${lost} journalled records not at the console`);
    if (dup > 0) problems.push(`${dup} records stored twice`);
    if (quarantined > 0) problems.push(`quarantined: ${JSON.stringify(q)}`);
    if (killsReported !== kills.length) problems.push(`${kills.length - killsReported} kills not reported as the catalogue says (${faultSpec("agent-kill").reportedBy})`);
    if (journalled < p.devices * 20) problems.push(`only ${journalled} records journalled: the stream did not run`);
    return {
      scenario: "agent-kill",
      profile: profileName,
      devices: p.devices,
      kills: kills.length,
      killsReported,
      outboxRowsAtKill: outboxRows,
      journalled,
      stored: storedN,
      lost,
      duplicatedStored: dup,
      duplicateDeliveriesDropped: ops.ingest.stats().duplicates,
      quarantined,
      drainSeconds: Math.round(drainSeconds * 10) / 10,
      ok: problems.length === 0,
      problems,
    };
  } finally {
    producing = false;
    if (agent) await killHard(agent);
    for (const d of devices) await d.stop();
    await ops.stop();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
