// The demo (README quick start): an embedded MQTT broker, simulated devices each on its own
// pseudo-terminal, the real host agent serving them (sessions, outbox, MQTT) and a subscriber
// standing in for the operations department, printing what arrives. Along the way: diagnostics
// through the agent's control API, and a cable pulled and put back.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { runDevice, type RunningDevice } from "./device_runner.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { startAgent, parseAgentConfig } from "../../host/agent/agent.ts";
import { root, type as pbType } from "../../protocol/node/schema.ts";

const RecordT = pbType("Record");
const HealthT = pbType("Health");
const RecordKindEnum = root.lookupEnum("pollkit.v1.RecordKind");

export async function runDemo(o: { devices: number; seconds?: number }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-demo-"));
  const broker = await startEmbeddedBroker({ port: 0 });
  console.log(`demo: MQTT broker (embedded aedes) on ${broker.url}`);

  const devices: RunningDevice[] = [];
  for (let i = 0; i < o.devices; i++) {
    const role = i % 2 === 0 ? "verification" : "result";
    const serial = `${role === "verification" ? "VVD" : "RAD"}-${String(i + 1).padStart(6, "0")}`;
    const dev = await runDevice({ serial, role, link: join(dir, `${serial}.tty`), stateDir: join(dir, serial), healthIntervalMs: 5000 });
    devices.push(dev);
    console.log(`demo: ${serial} (${role} device) on ${dev.hostPath}`);
  }

  // The operations department's view: everything under pollkit/v1/.
  const ops = mqtt.connect(broker.url, { clientId: "demo-operations" });
  let records = 0;
  ops.on("message", (topic, payload) => {
    const [, , site, device, channel] = topic.split("/");
    if (channel === "record") {
      const r = RecordT.toObject(RecordT.decode(payload), { longs: Number }) as { seq: number; kind: number; signature?: Uint8Array };
      records++;
      const signed = r.signature && r.signature.length === 64 ? ", signed" : "";
      console.log(`  ops <- ${site}/${device}: record ${r.seq} ${RecordKindEnum.valuesById[r.kind] ?? r.kind}${signed}`);
    } else if (channel === "health") {
      const h = HealthT.toObject(HealthT.decode(payload), { longs: Number }) as { uptimeS?: number; journalBacklog?: number };
      console.log(`  ops <- ${site}/${device}: health, up ${h.uptimeS ?? 0} s, backlog ${h.journalBacklog ?? 0}`);
    } else if (channel === "status") console.log(`  ops <- ${site}/${device}: ${payload.toString()}`);
  });
  await new Promise<void>((resolve) => ops.once("connect", () => ops.subscribe("pollkit/v1/#", { qos: 1 }, () => resolve())));

  const agent = await startAgent(
    parseAgentConfig(
      {
        site: "demo-site",
        agentId: "demo-agent",
        serial: { paths: devices.map((d) => d.hostPath), scanIntervalMs: 300 },
        outbox: { path: join(dir, "outbox.db") },
        mqtt: { url: broker.url },
        control: { port: 0 },
      },
      dir,
    ),
  );
  console.log(`demo: host agent running; try: npx tsx host/cli/bin.ts devices --agent ${agent.controlUrl}`);
  console.log("demo: devices report health every 5 s; Ctrl-C stops");

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await agent.stop();
    for (const d of devices) await d.stop();
    await ops.endAsync();
    await broker.close();
    console.log(`demo: stopped; the operations subscriber received ${records} journal records`);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  setTimeout(async () => {
    for (const d of devices) {
      const id = d.device.options.serial;
      const res = await fetch(`${agent.controlUrl}/v1/devices/${id}/command`, { method: "POST", body: JSON.stringify({ command: { diagnostics: {} } }) });
      const body = (await res.json()) as { result?: { message?: string } };
      console.log(`demo: diagnostics of ${id}: ${body.result?.message ?? res.status}`);
    }
  }, 2500);
  setTimeout(async () => {
    if (stopping || devices.length === 0) return;
    const d = devices[0];
    console.log(`demo: pulling the cable of ${d.device.options.serial}; it keeps journalling`);
    await d.unplug();
    d.device.firmware?.record(12, new Uint8Array([1]));
    d.device.firmware?.record(12, new Uint8Array([2]));
    await new Promise((r) => setTimeout(r, 2000));
    await d.replug();
    console.log("demo: cable back in; the agent reopens the port and the device resends what is unacknowledged");
  }, 6000);
  if (o.seconds !== undefined) setTimeout(() => void stop(), o.seconds * 1000);
}
