// A technician puts a rack of devices into storage charging with one command: three simulated
// devices on pseudo-terminals (commission key provisioned, batteries on a rack charger), the real
// agent, the embedded broker and the operations console. `pollkit charge-mode --all storage`
// signed with the technician's token sets every device; the same command without a token is
// refused by the devices; the agent (`pollkit status`) and the console (/api/fleet) then show the
// new mode and the battery state.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDevice, type RunningDevice } from "../../simulator/cli/device_runner.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { startAgent, parseAgentConfig } from "../../host/agent/agent.ts";
import { startOps, parseOpsConfig } from "../../host/ops/ops.ts";
import { registryEntry } from "../../host/ops/registry/registry.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { technicianRig } from "../../host/commission/testing.ts";
import { useToken } from "../../host/commission/credentials.ts";
import { ChargeMode } from "../../protocol/generated/device_codec.ts";

const root = new URL("../../", import.meta.url).pathname;
const DAY = 86_400_000;

function pollkit(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "host/cli/bin.ts", ...args], {
      cwd: root,
      env: { ...process.env, LC_ALL: "", LC_MESSAGES: "", LANG: "C.UTF-8", ...env },
    });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pollkit ${args.join(" ")} did not finish: ${stdout} ${stderr}`));
    }, 60_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("pollkit charge-mode --all storage: a rack set with one signed command, seen at the agent and the console", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-charge-e2e-"));
  const commission = createCommissionKey();
  const tech = technicianRig(commission, { notBefore: Date.now() - DAY, site: "*" });
  const home = join(dir, "tech-home");
  useToken(home, tech.token, tech.key);
  const broker = await startEmbeddedBroker({ port: 0 });
  const devices: RunningDevice[] = [];
  const serials = ["VVD-RACK-01", "VVD-RACK-02", "RAD-RACK-03"];
  for (const [i, serial] of serials.entries()) {
    devices.push(
      await runDevice({
        serial,
        role: serial.startsWith("RAD") ? "result" : "verification",
        link: join(dir, `${serial}.tty`),
        healthIntervalMs: 500,
        device: { commissionKey: commission.publicKey, power: { battery: { socPercent: 70 + i * 10 }, vbus: true }, dataFlashPages: 64 },
      }),
    );
  }
  const registry = devices.map((d, i) =>
    registryEntry(serials[i], d.device.firmware!.publicKey, { role: serials[i].startsWith("RAD") ? "result" : "verification", governorate: "Baghdad", office: "Karkh", stationId: "", site: "warehouse-1" }),
  );
  const ops = await startOps(parseOpsConfig({ mqtt: { url: broker.url }, store: { path: "ops.db" }, web: { port: 0 }, reports: { everyMs: 60000 }, healthIntervalMs: 500 }, dir));
  ops.store.upsertDevices(registry);
  ops.ingest.reloadRegistry();
  const agent = await startAgent(
    parseAgentConfig(
      { site: "warehouse-1", agentId: "agent-rack", serial: { paths: devices.map((d) => d.hostPath), scanIntervalMs: 100 }, outbox: { path: join(dir, "outbox.db") }, mqtt: { url: broker.url }, control: { port: 0 } },
      dir,
    ),
  );
  const env = { POLLKIT_AGENT: agent.controlUrl, POLLKIT_HOME: home };
  try {
    await until("every device ready at the agent", 30_000, async () => {
      const res = await fetch(`${agent.controlUrl}/v1/devices`);
      const list = (await res.json()) as { deviceId: string; state: string; health: unknown }[];
      return list.filter((d) => d.state === "ready" && d.health !== null).length === serials.length ? true : null;
    });

    // Without a token (an empty home), the devices refuse: exit 5, DENIED named.
    const unsigned = await pollkit(["charge-mode", "--all", "storage"], { POLLKIT_AGENT: agent.controlUrl, POLLKIT_HOME: join(dir, "nobody") });
    assert.equal(unsigned.code, 5, unsigned.stderr);
    assert.match(unsigned.stdout, /denied/);
    assert.match(unsigned.stderr, /technician/);
    for (const d of devices) assert.equal(d.device.firmware?.power?.mode, ChargeMode.NORMAL, "nothing changed");

    // With the technician's token: one command for the rack.
    const run = await pollkit(["charge-mode", "--all", "storage", "--json"], env);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { mode: string; results: { deviceId: string; ok: boolean }[] };
    assert.deepEqual(out.results.map((r) => r.deviceId).sort(), [...serials].sort());
    assert.ok(out.results.every((r) => r.ok));
    for (const d of devices) assert.equal(d.device.firmware?.power?.mode, ChargeMode.STORAGE);

    // The agent shows it (pollkit status), and the console's fleet view after the next health.
    const status = await pollkit(["status", "VVD-RACK-01"], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /charge mode +\| .*storage/i);
    assert.match(status.stdout, /battery health/);
    const rows = await until("storage mode at the console", 20_000, async () => {
      const res = await fetch(`${ops.url}/api/fleet`);
      const body = (await res.json()) as { rows: { deviceId: string; chargeMode: number | string; socPercent: number | null; batteryMv: number | null }[] };
      const mine = body.rows.filter((r) => serials.includes(r.deviceId));
      return mine.length === serials.length && mine.every((r) => r.chargeMode === ChargeMode.STORAGE || r.chargeMode === "storage") ? mine : null;
    });
    for (const r of rows) {
      assert.ok((r.batteryMv ?? 0) > 3000, `${r.deviceId} battery voltage reported`);
      assert.ok((r.socPercent ?? 0) > 50, `${r.deviceId} state of charge reported`);
    }
    // Who did it is journalled on each device as a signed command record naming the technician.
    assert.equal(devices[0].device.firmware?.info().technicianId, tech.technicianId);
  } finally {
    await agent.stop();
    for (const d of devices) await d.stop();
    await ops.stop();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
