// The broker and the operations console of bench:fleet on their own thread: the real embedded
// broker and startOps() in a worker, so that the broker's and the console's work do not queue
// behind the simulated fleet on one event loop (deployed, they run on machines of their own). The bench sees what it needs
// through messages: counts of stored health and records (with the burst's latencies), device and
// agent status events, and at the end the store's (device, seq) pairs and quarantine.

import { EventEmitter } from "node:events";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import type { RegisteredDevice } from "../host/ops/store/store.ts";

export interface ConsoleEvents {
  health: [count: number];
  /** Newly stored records: kind, device time and console store time. */
  records: [items: { kind: number; timeMs: number; receivedMs: number }[]];
  device: [event: { deviceId: string; online: boolean }];
  agent: [status: { site: string; agentId: string; state: string }];
  connected: [];
}

export interface ConsoleFinal {
  records: [deviceId: string, seq: number][];
  quarantineCounts: Record<string, number>;
  quarantineSample: string[];
  duplicates: number;
}

type ToWorker = { op: "register"; devices: RegisteredDevice[] } | { op: "restart-broker"; downMs: number } | { op: "final" } | { op: "stop" };
type FromWorker =
  | { ev: "ready"; brokerPort: number }
  | { ev: "done"; op: string; final?: ConsoleFinal }
  | { ev: "health"; count: number }
  | { ev: "records"; items: { kind: number; timeMs: number; receivedMs: number }[] }
  | { ev: "device"; deviceId: string; online: boolean }
  | { ev: "agent"; site: string; agentId: string; state: string }
  | { ev: "connected" }
  | { ev: "error"; message: string };

/** Broker and console in a worker thread; `config` is what parseOpsConfig takes (its mqtt.url is replaced by the worker's broker), `dir` its base. */
export class WorkerConsole extends EventEmitter<ConsoleEvents> {
  private readonly worker: Worker;
  private readonly agentStates = new Map<string, { site: string; agentId: string; state: string }>();
  private waiting: ((m: FromWorker) => void)[] = [];
  /** The embedded broker's port (the worker's). */
  brokerPort = 0;

  private constructor(config: unknown, dir: string) {
    super();
    // The worker runs this module too, through an entry that registers tsx's loader first.
    this.worker = new Worker(new URL("./fleet_console_worker.mjs", import.meta.url), { workerData: { config, dir } });
    this.worker.on("message", (m: FromWorker) => this.onMessage(m));
    this.worker.on("error", (e) => {
      console.error(`[bench:fleet] console worker: ${String(e)}`);
      process.exit(1);
    });
  }

  static async start(config: unknown, dir: string): Promise<WorkerConsole> {
    const c = new WorkerConsole(config, dir);
    const ready = await c.reply();
    if (ready.ev !== "ready") throw new Error("console worker: did not start");
    c.brokerPort = ready.brokerPort;
    return c;
  }

  private onMessage(m: FromWorker): void {
    switch (m.ev) {
      case "health":
        this.emit("health", m.count);
        break;
      case "records":
        this.emit("records", m.items);
        break;
      case "device":
        this.emit("device", { deviceId: m.deviceId, online: m.online });
        break;
      case "agent":
        this.agentStates.set(`${m.site}/${m.agentId}`, m);
        this.emit("agent", m);
        break;
      case "connected":
        this.emit("connected");
        break;
      case "error":
        throw new Error(`console worker: ${m.message}`);
      default:
        this.waiting.shift()?.(m);
    }
  }

  private reply(): Promise<FromWorker> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async call(m: ToWorker): Promise<FromWorker> {
    const r = this.reply();
    this.worker.postMessage(m);
    return r;
  }

  agents(): { site: string; agentId: string; state: string }[] {
    return [...this.agentStates.values()];
  }

  async register(devices: RegisteredDevice[]): Promise<void> {
    await this.call({ op: "register", devices });
  }

  /** Stops the broker, waits downMs, starts it again on the same port. */
  async restartBroker(downMs: number): Promise<void> {
    await this.call({ op: "restart-broker", downMs });
  }

  async final(): Promise<ConsoleFinal> {
    const r = await this.call({ op: "final" });
    if (r.ev !== "done" || !r.final) throw new Error("console worker: no final figures");
    return r.final;
  }

  async stop(): Promise<void> {
    await this.call({ op: "stop" });
    await this.worker.terminate();
  }
}

async function workerMain(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const { parseOpsConfig, startOps } = await import("../host/ops/ops.ts");
  const { startEmbeddedBroker } = await import("../host/broker/embedded.ts");
  const { config, dir } = workerData as { config: { mqtt: { url: string } }; dir: string };
  const post = (m: FromWorker): void => port.postMessage(m);
  let broker = await startEmbeddedBroker({ port: 0 });
  let ops: Awaited<ReturnType<typeof startOps>>;
  try {
    ops = await startOps(parseOpsConfig({ ...config, mqtt: { ...config.mqtt, url: broker.url } }, dir));
  } catch (e) {
    post({ ev: "error", message: String(e) });
    return;
  }
  ops.ingest.on("health", (s) => post({ ev: "health", count: s.length }));
  ops.ingest.on("records", (rs) => post({ ev: "records", items: rs.map((r) => ({ kind: r.kind, timeMs: r.timeMs, receivedMs: r.receivedMs })) }));
  ops.ingest.on("device", (e) => post({ ev: "device", deviceId: e.deviceId, online: e.online }));
  ops.ingest.on("agent", (a) => post({ ev: "agent", site: a.site, agentId: a.agentId, state: a.state }));
  ops.ingest.on("connected", () => post({ ev: "connected" }));
  port.on("message", (m: ToWorker) => {
    void (async () => {
      switch (m.op) {
        case "register":
          ops.store.upsertDevices(m.devices);
          ops.ingest.reloadRegistry();
          post({ ev: "done", op: m.op });
          break;
        case "restart-broker": {
          const brokerPort = broker.port;
          await broker.close();
          await new Promise((r) => setTimeout(r, m.downMs));
          broker = await startEmbeddedBroker({ port: brokerPort });
          post({ ev: "done", op: m.op });
          break;
        }
        case "final":
          await ops.ingest.drain();
          post({
            ev: "done",
            op: m.op,
            final: {
              records: ops.store.records({ limit: 10_000_000 }).map((r) => [r.deviceId, r.seq]),
              quarantineCounts: ops.store.quarantineCounts(),
              quarantineSample: ops.store.quarantined({ limit: 3 }).map((q) => `${q.deviceId} ${q.reason}: ${q.detail}`),
              duplicates: ops.ingest.stats().duplicates,
            },
          });
          break;
        case "stop":
          await ops.stop();
          await broker.close();
          post({ ev: "done", op: m.op });
          break;
      }
    })();
  });
  post({ ev: "ready", brokerPort: broker.port });
}

if (!isMainThread && (workerData as { config?: unknown } | null)?.config !== undefined) await workerMain();
