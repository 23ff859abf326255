// The demo (README quick start): simulated devices, each on its own pseudo-terminal, and a host
// session on each port opened with the real serialport bindings: hello, health, journal records
// acknowledged, a diagnostics command, and a cable pulled and put back. Until the host agent
// (MQTT, outbox, operations console) lands, this small host prints what arrives.

import { tmpdir } from "node:os";
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { SerialPortStream } from "@serialport/stream";
import { autoDetect } from "@serialport/bindings-cpp";
import { ReadlineParser } from "@serialport/parser-readline";
import { runDevice, type RunningDevice } from "./device_runner.ts";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope, root } from "../../protocol/node/schema.ts";

const RecordKindEnum = root.lookupEnum("pollkit.v1.RecordKind");
const PeripheralEnum = root.lookupEnum("pollkit.v1.Peripheral");
const VerdictEnum = root.lookupEnum("pollkit.v1.Verdict");

type Obj = Record<string, unknown>;

/** A host session on one serial port: prints what the device says, acknowledges records. */
class DemoSession {
  private port: SerialPortStream | null = null;
  private acked = 0;
  records = 0;
  constructor(
    private readonly path: string,
    private readonly say: (s: string) => void,
  ) {}

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const port = new SerialPortStream({ binding: autoDetect(), path: this.path, baudRate: 115200 });
      port.on("error", (e: Error) => this.say(`port error: ${e.message}`));
      port.on("close", () => this.say("port closed (cable out)"));
      const decoder = new FrameDecoder({
        onFrame: (p) => this.frame(Envelope.toObject(Envelope.decode(p), { longs: Number, bytes: Array }) as Obj),
        onConsole: (t) => this.say(`log: ${t}`),
        onError: (c, m) => this.say(`bad frame (${c}): ${m}`),
      });
      port.pipe(new ReadlineParser({ delimiter: "\n", encoding: "latin1" })).on("data", (l: string) => decoder.pushLine(l));
      port.on("open", () => {
        this.port = port;
        this.send({ hello: { protocolVersion: 1, deviceId: "demo-host", role: 3 } });
        resolve();
      });
      port.once("error", reject);
    });
  }

  send(env: Obj): void {
    this.port?.write(Buffer.from(encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish())));
  }

  async close(): Promise<void> {
    const p = this.port;
    this.port = null;
    if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
  }

  private frame(e: Obj): void {
    const m = (k: string): Obj | undefined => e[k] as Obj | undefined;
    const hello = m("hello");
    const health = m("health");
    const record = m("record");
    const result = m("commandResult");
    const error = m("error");
    if (hello) this.say(`hello: ${String(hello.deviceId)} firmware ${String(hello.firmwareVersion)}, next record ${String(hello.journalNextSeq ?? 0)}`);
    else if (health)
      this.say(`health: up ${String(health.uptimeS ?? 0)} s, backlog ${String(health.journalBacklog ?? 0)}, free storage ${String(health.freeStorageBytes ?? 0)} B, errors ${String(health.errorCount ?? 0)}`);
    else if (record) {
      const seq = Number(record.seq);
      this.records++;
      const signed = Array.isArray(record.signature) && record.signature.length === 64 ? ", signed" : "";
      this.say(`record ${seq}: ${RecordKindEnum.valuesById[Number(record.kind)] ?? record.kind}${signed}`);
      if (seq > this.acked) {
        this.acked = seq;
        this.send({ ack: { seq } });
      }
    } else if (result) {
      const diag = result.diagnostics as { parts?: Obj[] } | undefined;
      const parts = (diag?.parts ?? []).map((p) => `${PeripheralEnum.valuesById[Number(p.part)]}=${VerdictEnum.valuesById[Number(p.verdict ?? 0)]}`);
      this.say(`command ${String(result.id)}: ${String(result.message ?? "ok")} ${parts.join(" ")}`);
    } else if (error) this.say(`device error ${String(error.code)}: ${String(error.detail ?? "")}`);
  }
}

export async function runDemo(o: { devices: number; seconds?: number }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-demo-"));
  const running: RunningDevice[] = [];
  const sessions: DemoSession[] = [];
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const s of sessions) await s.close();
    for (const d of running) await d.stop();
    const total = sessions.reduce((n, s) => n + s.records, 0);
    console.log(`demo: stopped; ${total} journal records received and acknowledged`);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  for (let i = 0; i < o.devices; i++) {
    const role = i % 2 === 0 ? "verification" : "result";
    const serial = `${role === "verification" ? "VVD" : "RAD"}-${String(i + 1).padStart(6, "0")}`;
    const dev = await runDevice({ serial, role, link: join(dir, `${serial}.tty`), stateDir: join(dir, serial), healthIntervalMs: 5000 });
    running.push(dev);
    console.log(`demo: ${serial} (${role} device) on ${dev.hostPath}`);
    const session = new DemoSession(dev.hostPath, (s) => console.log(`  ${serial}  ${s}`));
    sessions.push(session);
    await session.open();
  }
  console.log("demo: devices report health every 5 s; Ctrl-C stops");

  setTimeout(() => sessions.forEach((s, i) => s.send({ command: { id: 100 + i, diagnostics: {} } })), 2000);
  setTimeout(async () => {
    if (running.length === 0 || stopping) return;
    console.log(`demo: pulling the cable of ${running[0].device.options.serial}`);
    await sessions[0].close();
    await running[0].unplug();
    running[0].device.firmware?.record(12, new Uint8Array([1])); // recorded while unplugged
    await new Promise((r) => setTimeout(r, 1500));
    await running[0].replug();
    console.log("demo: cable back in; the host opens the port again and the device resends");
    await sessions[0].open();
  }, 6000);
  if (o.seconds !== undefined) setTimeout(() => void stop(), o.seconds * 1000);
}
