// The host agent end to end with real parts: simulated devices on pseudo-terminals, the agent in
// its own process, a real broker (embedded aedes, then Mosquitto as a separate process) and a
// separate subscriber. Faults: the agent SIGKILLed mid-stream and restarted, the broker stopped for
// a while, a device unplugged and replugged mid-transfer, a noisy device. Every record the devices
// journal must arrive downstream; duplicates (a PUBACK lost in a crash) are counted and bounded.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { runDevice, type RunningDevice } from "../../simulator/cli/device_runner.ts";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../host/broker/embedded.ts";
import { startMosquitto } from "../helpers/mosquitto.ts";
import { type as pbType } from "../../protocol/node/schema.ts";
import { RecordKind } from "../../protocol/generated/device_codec.ts";

const RecordT = pbType("Record");
const root = new URL("../../", import.meta.url).pathname;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Downstream {
  /** device -> seq -> times received */
  readonly seen = new Map<string, Map<number, number>>();
  duplicates = 0;
  private client: mqtt.MqttClient | null = null;
  constructor(private readonly url: string) {}
  async connect(): Promise<void> {
    this.client = mqtt.connect(this.url, { clientId: "e2e-downstream", clean: false, reconnectPeriod: 200 });
    this.client.on("message", (topic, payload) => {
      const parts = topic.split("/");
      if (parts[4] !== "record") return;
      const rec = RecordT.toObject(RecordT.decode(payload), { longs: Number }) as { seq: number };
      const m = this.seen.get(parts[3]) ?? new Map<number, number>();
      this.seen.set(parts[3], m);
      const n = m.get(rec.seq) ?? 0;
      if (n > 0) this.duplicates++;
      m.set(rec.seq, n + 1);
    });
    await new Promise<void>((resolve) => {
      this.client?.once("connect", () => {
        this.client?.subscribe("pollkit/v1/#", { qos: 1 }, () => resolve());
      });
    });
  }
  missing(deviceId: string, lastSeq: number): number[] {
    const m = this.seen.get(deviceId) ?? new Map<number, number>();
    const out: number[] = [];
    for (let s = 1; s <= lastSeq; s++) if (!m.has(s)) out.push(s);
    return out;
  }
  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }
}

function startAgentProcess(configPath: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "test/e2e/agent_child.ts"), configPath], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes("ready ")) resolve(child);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (code) => reject(new Error(`agent exited early (${code}): ${out}`)));
    process.once("exit", () => child.kill("SIGKILL"));
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

interface Broker {
  url: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

async function scenario(broker: Broker, label: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `pollkit-e2e-${label}-`));
  const devices: RunningDevice[] = [];
  for (let i = 0; i < 3; i++) {
    devices.push(await runDevice({ serial: `VVD-E2E-${i}`, role: i === 2 ? "result" : "verification", link: join(dir, `d${i}.tty`), healthIntervalMs: 500 }));
  }
  const configPath = join(dir, "agent.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      site: "e2e-site",
      agentId: "agent-e2e",
      serial: { paths: devices.map((d) => d.hostPath), scanIntervalMs: 200 },
      outbox: { path: join(dir, "outbox.db") },
      mqtt: { url: broker.url },
      control: { port: 0 },
    }),
  );
  const down = new Downstream(broker.url);
  await down.connect();
  let agent = await startAgentProcess(configPath);
  let producing = true;
  const payload = new Uint8Array(24).fill(7);
  const producers = devices.map((d) =>
    (async () => {
      while (producing) {
        d.device.firmware?.record(RecordKind.TEST, payload);
        await sleep(30);
      }
    })(),
  );
  try {
    await sleep(1500);
    // The agent dies without warning, mid-stream, and comes back.
    await killHard(agent);
    await sleep(700);
    agent = await startAgentProcess(configPath);
    await sleep(1000);
    // The broker goes away for a while.
    await broker.stop();
    await sleep(1500);
    await broker.restart();
    await sleep(1000);
    // A cable pulled mid-transfer and put back.
    await devices[1].unplug();
    await sleep(800);
    await devices[1].replug();
    // A noisy device: garbage and a frame with a bad CRC on its line.
    const noisy = devices[0].device.options.hostLink;
    noisy.write(new Uint8Array(Buffer.from("\u0000\u00ff garbage line\n!AAECAwQF\n!QUJD", "latin1")));
    await sleep(1000);
  } finally {
    producing = false;
    await Promise.all(producers);
  }
  // Everything journalled must now drain: acknowledged by the agent and seen downstream.
  const deadline = Date.now() + 30000;
  let pending = "";
  while (Date.now() < deadline) {
    pending = devices
      .map((d) => {
        const fw = d.device.firmware;
        const last = (fw?.journal.nextSeq() ?? 1) - 1;
        const miss = down.missing(d.device.options.serial, last);
        return miss.length > 0 ? `${d.device.options.serial} missing ${miss.length} (first ${miss[0]}) of ${last}` : "";
      })
      .filter((s) => s !== "")
      .join("; ");
    if (pending === "") break;
    await sleep(250);
  }
  const totals = devices.map((d) => (d.device.firmware?.journal.nextSeq() ?? 1) - 1);
  console.log(`${label}: records per device ${totals.join(", ")}; duplicates downstream ${down.duplicates}`);
  await killHard(agent);
  await down.close();
  for (const d of devices) await d.stop();
  assert.equal(pending, "", "every journalled record reached the subscriber");
  for (const t of totals) assert.ok(t > 30, `devices produced records during the faults (${t})`);
  // Duplicates can only come from publishes whose PUBACK was lost when the agent was killed.
  assert.ok(down.duplicates <= 256, `duplicates ${down.duplicates} within the agent's in-flight window (maxInFlight 256)`);
}

test("agent end to end through embedded aedes: SIGKILL, broker restart, unplug, noise", { timeout: 120000 }, async () => {
  let current: EmbeddedBroker | null = null;
  // The agent may connect only after the downstream subscriber is back (an in-memory broker keeps
  // no sessions across a restart, so a publish before it resubscribes would reach nobody).
  let subscriberReady = false;
  const start = async (port: number): Promise<EmbeddedBroker> => {
    const b = await startEmbeddedBroker({
      port,
      aedes: {
        authenticate: (client, _u, _p, cb) => cb(null, client.id === "e2e-downstream" || subscriberReady),
      },
    });
    b.aedes.on("subscribe", (_s, client) => {
      if (client?.id === "e2e-downstream") subscriberReady = true;
    });
    return b;
  };
  current = await start(0);
  const port = current.port;
  await scenario(
    {
      url: current.url,
      stop: async () => {
        subscriberReady = false;
        await current?.close();
      },
      restart: async () => {
        current = await start(port);
      },
    },
    "aedes",
  );
  await current?.close();
});

test("agent end to end through Mosquitto as a separate process", { timeout: 120000 }, async () => {
  const m = await startMosquitto({ persistence: true });
  try {
    await scenario({ url: m.url, stop: () => m.stop(), restart: () => m.restart() }, "mosquitto");
  } finally {
    await m.stop().catch(() => {});
  }
});
