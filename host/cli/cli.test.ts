// The real `pollkit` executable as a technician runs it (a child process): offline decoding,
// errors in English and Arabic with their exit codes, help, and, end to end, every agent command
// (uploads with their progress among them) against a simulated device on a pseudo-terminal, the
// agent, and an embedded MQTT broker.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFrame } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";
import type { TestContext } from "node:test";
import type { DeviceSummary } from "../control/api.ts";
import type { RunningDevice } from "../../simulator/cli/device_runner.ts";
import type { CountingSink } from "../../device/services/transfer.ts";
import { crc32 } from "../../device/services/journal.ts";
import { EXIT } from "./messages.ts";

const root = new URL("../../", import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  /** Once stdout matches `until`: runs `then` (if any), then sends `signal` (if any). */
  signalWhen?: { until: RegExp; signal?: NodeJS.Signals; then?: (stdout: string) => Promise<void> };
  timeoutMs?: number;
}

/** Runs `pollkit <args>` in English (unless env says otherwise) and collects what it printed. */
function pollkit(args: string[], o: RunOptions = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "", LC_MESSAGES: "", LANG: "C.UTF-8", ...o.env };
  delete env.POLLKIT_AGENT;
  if (o.env?.POLLKIT_AGENT) env.POLLKIT_AGENT = o.env.POLLKIT_AGENT;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "host/cli/bin.ts", ...args], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`pollkit ${args.join(" ")} did not finish; stdout: ${stdout}; stderr: ${stderr}`));
    }, o.timeoutMs ?? 30000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      const w = o.signalWhen;
      if (w && !signalled && w.until.test(stdout)) {
        signalled = true;
        void (w.then ?? (async () => {}))(stdout)
          .catch((e: unknown) => (stderr += `\n[test] ${String(e)}`))
          .finally(() => {
            if (w.signal !== undefined) child.kill(w.signal);
          });
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(o.input ?? "");
  });
}

function frameText(obj: Record<string, unknown>): string {
  return Buffer.from(encodeFrame(Envelope.encode(Envelope.fromObject(obj)).finish())).toString("latin1");
}

/** A loopback URL where nothing listens. */
async function deadAgentUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const HEALTH = { health: { batteryMv: 3912, stateOfChargePermille: 875, temperatureDecic: 245, chargeState: 3, journalBacklog: 4, clockMs: 1700000000000 } };

test("decode: a valid frame prints its Envelope as JSON", async () => {
  const line = frameText(HEALTH).trim();
  const r = await pollkit(["decode", line]);
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    health: { batteryMv: 3912, stateOfChargePermille: 875, temperatureDecic: 245, chargeState: "CHARGE_STATE_FAST_CHARGE", journalBacklog: 4, clockMs: 1700000000000 },
  });
});

test("decode: frames from standard input, console text skipped; --hex", async () => {
  const hello = { hello: { deviceId: "VVD-000123", role: 1, hardwareModel: "vvd-h1", firmwareVersion: "1.2.3", publicKey: Buffer.alloc(64, 7).toString("base64") } };
  const capture = `booted VVD-000123\n${frameText(hello)}some console text\n${frameText(HEALTH)}`;
  const r = await pollkit(["decode", "-", "--json"], { input: capture });
  assert.equal(r.code, EXIT.ok, r.stderr);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
  assert.equal(lines.length, 2);
  assert.equal(lines[0].hello.deviceId, "VVD-000123");
  assert.equal(lines[1].health.batteryMv, 3912);

  const hex = Buffer.from(Envelope.encode(Envelope.fromObject(HEALTH)).finish()).toString("hex");
  const h = await pollkit(["decode", "--hex", hex]);
  assert.equal(h.code, EXIT.ok, h.stderr);
  assert.equal((JSON.parse(h.stdout) as { health: { batteryMv: number } }).health.batteryMv, 3912);
});

test("decode: a corrupted frame fails with exit 1 and names the CRC", async () => {
  const line = frameText(HEALTH).trim();
  const i = 8; // a character inside the payload, not in the padding bits
  const corrupted = line.slice(0, i) + (line[i] === "A" ? "B" : "A") + line.slice(i + 1);
  const r = await pollkit(["decode", corrupted]);
  assert.equal(r.code, EXIT.error);
  assert.match(r.stderr, /CRC/);
  assert.equal(r.stdout, "");
  const cut = await pollkit(["decode", line.slice(0, 12)]);
  assert.equal(cut.code, EXIT.error);
  assert.match(cut.stderr, /truncated/);
  const notFrame = await pollkit(["decode", "hello"]);
  assert.equal(notFrame.code, EXIT.error);
  assert.match(notFrame.stderr, /not a frame line/);
});

test("no agent running: exit 3 and how to start it; --json errors for scripts", async () => {
  const url = await deadAgentUrl();
  const r = await pollkit(["--agent", url, "devices"]);
  assert.equal(r.code, EXIT.agentUnreachable);
  assert.match(r.stderr, /not reachable/);
  assert.match(r.stderr, /Start it with: pollkit agent --config <file>/);
  const j = await pollkit(["devices", "--json"], { env: { POLLKIT_AGENT: url } });
  assert.equal(j.code, EXIT.agentUnreachable);
  const err = JSON.parse(j.stderr) as { error: string; hint: string; exitCode: number };
  assert.equal(err.exitCode, 3);
  assert.match(err.error, new RegExp(url.replace(/[.:/]/g, "\\$&")));
});

test("Arabic: --lang ar and LANG=ar_* give Arabic errors", async () => {
  const url = await deadAgentUrl();
  const r = await pollkit(["--lang", "ar", "--agent", url, "devices"]);
  assert.equal(r.code, EXIT.agentUnreachable);
  assert.match(r.stderr, /تعذّر الوصول إلى الوكيل/);
  assert.match(r.stderr, /شغّله بالأمر: pollkit agent --config <file>/);
  const env = await pollkit(["decode", "hello"], { env: { LANG: "ar_EG.UTF-8" } });
  assert.equal(env.code, EXIT.error);
  assert.match(env.stderr, /ليس سطر إطار/);
  const en = await pollkit(["--lang", "en", "decode", "hello"], { env: { LANG: "ar_EG.UTF-8" } });
  assert.match(en.stderr, /not a frame line/, "--lang wins over the environment");
});

test("--help lists every command and the exit codes; usage errors exit 2", async () => {
  const r = await pollkit(["--help"]);
  assert.equal(r.code, EXIT.ok);
  for (const cmd of ["agent", "devices", "status", "logs", "time <sync>", "diag", "reboot", "charge-mode", "upload", "decode", "dfu"]) {
    assert.match(r.stdout, new RegExp(`^  ${cmd.replace(/[<>|]/g, "\\$&")}[ \\n]`, "m"), `${cmd} in help`);
  }
  assert.match(r.stdout, /Exit codes:[\s\S]*3 {2}agent not reachable[\s\S]*7 {2}the device did not answer/);
  const ar = await pollkit(["--lang", "ar", "--help"]);
  assert.match(ar.stdout, /الأوامر:/);

  const unknown = await pollkit(["frobnicate"]);
  assert.equal(unknown.code, EXIT.usage);
  assert.match(unknown.stderr, /Unknown command: frobnicate/);
  const bad = await pollkit(["logs", "VVD-1", "--lines", "0"]);
  assert.equal(bad.code, EXIT.usage);
  assert.match(bad.stderr, /See: pollkit logs --help/);
  const lang = await pollkit(["--lang", "fr", "devices"]);
  assert.equal(lang.code, EXIT.usage);
});

test("dfu on this machine: not available or no device, said clearly", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-cli-"));
  writeFileSync(join(dir, "fw.bin"), Buffer.alloc(100));
  const r = await pollkit(["dfu", "--image", join(dir, "fw.bin")]);
  // No USB bus here: 6 (not available); a machine with USB but no bootloader plugged in: 4.
  assert.ok(r.code === EXIT.notAvailable || r.code === EXIT.unknownDevice, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, /DFU|USB/);
});

interface Rig {
  device: RunningDevice;
  dir: string;
  /** The agent's control API. */
  url: string;
}

/** A simulated device on a pseudo-terminal, an embedded broker and the agent (in this process), the device ready. */
async function agentWithDevice(t: TestContext, serial: string): Promise<Rig> {
  const { runDevice } = await import("../../simulator/cli/device_runner.ts");
  const { startEmbeddedBroker } = await import("../broker/embedded.ts");
  const { startAgent, loadAgentConfig } = await import("../agent/agent.ts");
  const { ControlClient } = await import("./client.ts");

  const dir = mkdtempSync(join(tmpdir(), "pollkit-cli-e2e-"));
  const link = join(dir, "vvd.tty");
  // A bare rig without data flash (no commission key, no authority checks): the CLI verbs are under
  // test here; test/e2e/authority_e2e.test.ts runs them with a technician token.
  const device = await runDevice({ serial, role: "verification", link, healthIntervalMs: 500, device: { dataFlashPages: 0 } });
  const broker = await startEmbeddedBroker({ port: 0 });
  let stopAgent = async (): Promise<void> => {};
  // Agent first (it holds the port open), then the device and the broker.
  t.after(async () => {
    await stopAgent();
    await device.stop();
    await broker.close();
  });
  const config = {
    site: "warehouse-1",
    agentId: "agent-cli-test",
    serial: { paths: [link], scanIntervalMs: 200 },
    outbox: { path: join(dir, "outbox.db") },
    mqtt: { url: broker.url },
    control: { host: "127.0.0.1", port: 0 },
  };
  const configPath = join(dir, "agent.json");
  writeFileSync(configPath, JSON.stringify(config));
  const agent = await startAgent(loadAgentConfig(configPath));
  stopAgent = () => agent.stop();
  const url = agent.controlUrl;

  // Wait until the device has said hello and sent a health report.
  const client = new ControlClient(url);
  const deadline = Date.now() + 15000;
  let listed: DeviceSummary | undefined;
  while (Date.now() < deadline) {
    listed = (await client.devices()).find((d) => d.deviceId === serial && d.state === "ready" && d.health !== null);
    if (listed) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(listed, "the agent sees the device");
  return { device, dir, url };
}

test("end to end: a simulated device, the agent, and every agent command", async (t) => {
  const { ControlClient } = await import("./client.ts");
  const { url } = await agentWithDevice(t, "VVD-000777");
  const client = new ControlClient(url);
  const env = { POLLKIT_AGENT: url };

  const devices = await pollkit(["devices", "--json"], { env });
  assert.equal(devices.code, EXIT.ok, devices.stderr);
  const list = JSON.parse(devices.stdout) as DeviceSummary[];
  assert.deepEqual(
    list.map((d) => [d.deviceId, d.role, d.transport]),
    [["VVD-000777", "verification", "serial"]],
  );
  const table = await pollkit(["devices"], { env });
  assert.equal(table.code, EXIT.ok, table.stderr);
  assert.match(table.stdout, /\| VVD-000777 +\| verification \(VVD\) +\| serial +\|.*\| ready +\|.*\d+ s ago +\|/);

  const detail = await client.device("VVD-000777");
  const fingerprint = createHash("sha256").update(Buffer.from(detail.publicKeyHex, "hex")).digest("hex").slice(0, 16);
  const status = await pollkit(["status", "VVD-000777"], { env });
  assert.equal(status.code, EXIT.ok, status.stderr);
  assert.match(status.stdout, new RegExp(`public key \\(SHA-256, first 16 hex\\) +\\| ${fingerprint}`));
  assert.match(status.stdout, /battery voltage +\| \d+ mV/);
  assert.match(status.stdout, /temperature +\| -?\d+\.\d °C/);
  assert.match(status.stdout, /last reboot +\| power on/);
  const statusAr = await pollkit(["--lang", "ar", "status", "VVD-000777"], { env });
  assert.match(statusAr.stdout, /الحالة الصحية/);

  const diag = await pollkit(["diag", "VVD-000777"], { env });
  assert.equal(diag.code, EXIT.ok, diag.stderr);
  assert.match(diag.stdout, /\| part +\| verdict +\| detail +\|/);
  assert.match(diag.stdout, /\| secure element +\| pass +\|/);
  assert.match(diag.stdout, /\| flash +\| pass +\|/);

  const logs = await pollkit(["logs", "VVD-000777", "--lines", "20"], { env });
  assert.equal(logs.code, EXIT.ok, logs.stderr);
  assert.match(logs.stdout, /booted VVD-000777/);

  const follow = await pollkit(["logs", "VVD-000777", "--follow"], { env, signalWhen: { until: /booted/, signal: "SIGINT" } });
  assert.equal(follow.code, EXIT.ok, "Ctrl-C ends --follow cleanly");
  assert.match(follow.stdout, /booted VVD-000777/);

  const sync = await pollkit(["time", "sync"], { env });
  assert.equal(sync.code, EXIT.ok, sync.stderr);
  assert.match(sync.stdout, /\| VVD-000777 +\| ok +\|/);
  const syncOne = await pollkit(["time", "sync", "--device", "VVD-000777", "--json"], { env });
  assert.equal(syncOne.code, EXIT.ok, syncOne.stderr);
  assert.deepEqual((JSON.parse(syncOne.stdout) as Array<{ deviceId: string; ok: boolean }>).map((r) => [r.deviceId, r.ok]), [["VVD-000777", true]]);

  const unknown = await pollkit(["status", "VVD-404"], { env });
  assert.equal(unknown.code, EXIT.unknownDevice);
  assert.match(unknown.stderr, /No device VVD-404 is connected[\s\S]*pollkit devices/);
  const unknownDiag = await pollkit(["diag", "VVD-404"], { env });
  assert.equal(unknownDiag.code, EXIT.unknownDevice);

  const reboot = await pollkit(["reboot", "VVD-000777"], { env });
  assert.equal(reboot.code, EXIT.ok, reboot.stderr);
  assert.match(reboot.stdout, /VVD-000777 is restarting/);
});

/** The simulated device's default transfer sink: what it received, and a CRC-32 of it. */
function sinkOf(device: RunningDevice): CountingSink {
  const sink = device.device.firmware?.transfer._fallback as CountingSink | undefined;
  assert.ok(sink, "the device runs");
  return sink;
}

interface JsonEvent {
  event: string;
  sent?: number;
  total?: number;
  bytes?: number;
  chunks?: number;
  kind?: string;
  name?: string;
}

const jsonLines = (stdout: string): JsonEvent[] =>
  stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as JsonEvent);

test("upload: a 50 KB file reaches the device whole, with progress to 100 %; --json; Arabic; Ctrl-C and resume", { timeout: 120000 }, async (t) => {
  const { device, dir, url } = await agentWithDevice(t, "VVD-000778");
  const env = { POLLKIT_AGENT: url };
  const data = randomBytes(50 * 1024);
  const file = join(dir, "station.bin");
  writeFileSync(file, data);

  const r = await pollkit(["upload", "VVD-000778", file, "--kind", "station-data"], { env });
  assert.equal(r.code, EXIT.ok, r.stderr);
  // stderr is not a terminal here: a plain line per 10 %, from 0 % to 100 %.
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines[0], "VVD-000778: 0% (0 B of 50.0 KiB)");
  assert.equal(lines.at(-1), "VVD-000778: 100% (50.0 KiB of 50.0 KiB)");
  const percents = lines.map((l) => Number(/: (\d+)%/.exec(l)?.[1]));
  assert.ok(percents.every((p, i) => i === 0 || p > percents[i - 1]), `percentages rise: ${percents.join(" ")}`);
  assert.match(r.stdout, /^VVD-000778 received station\.bin \(50\.0 KiB, station data\) in \d+\.\d s: 50 chunks, 0 resumed\.\n$/);
  assert.equal(sinkOf(device).bytes, data.length);
  assert.equal(sinkOf(device).digest(), crc32(data, 0, data.length), "the device received exactly the file's bytes");

  // --json: a line per progress event, then the outcome; nothing on stderr.
  const cfg = randomBytes(20 * 1024 + 7);
  const cfgFile = join(dir, "c.bin");
  writeFileSync(cfgFile, cfg);
  const j = await pollkit(["upload", "VVD-000778", cfgFile, "--kind", "configuration", "--name", "site.cfg", "--json"], { env });
  assert.equal(j.code, EXIT.ok, j.stderr);
  assert.equal(j.stderr, "");
  const events = jsonLines(j.stdout);
  const progress = events.filter((e) => e.event === "progress");
  assert.ok(progress.length >= 2);
  assert.ok(progress.every((e, i) => e.total === cfg.length && (i === 0 || (e.sent ?? 0) > (progress[i - 1].sent ?? 0))), "progress only rises");
  assert.equal(progress.at(-1)?.sent, cfg.length, "progress reached 100 %");
  const done = events.at(-1);
  assert.deepEqual([done?.event, done?.bytes, done?.kind, done?.name], ["done", cfg.length, "configuration", "site.cfg"]);
  assert.equal(sinkOf(device).digest(), crc32(cfg, 0, cfg.length));

  const ar = await pollkit(["--lang", "ar", "upload", "VVD-000778", cfgFile, "--kind", "election-definition"], { env });
  assert.equal(ar.code, EXIT.ok, ar.stderr);
  assert.match(ar.stdout, /^استلم VVD-000778 الملف c\.bin \(20\.0 KiB، تعريف الانتخابات\)/);
  assert.match(ar.stderr, /VVD-000778: 100% \(20\.0 KiB من 20\.0 KiB\)/);

  // Ctrl-C mid-upload: the agent stops sending; the same command again continues where the
  // device stopped and the device ends up with the whole file, once.
  const big = randomBytes(1024 * 1024);
  const bigFile = join(dir, "big.bin");
  writeFileSync(bigFile, big);
  const cancelled = await pollkit(["upload", "VVD-000778", bigFile, "--kind", "station-data", "--json"], {
    env,
    signalWhen: { until: /"sent":[1-9]/, signal: "SIGINT" },
  });
  assert.equal(cancelled.code, EXIT.error, cancelled.stderr);
  assert.match(cancelled.stderr, /Upload to VVD-000778 cancelled; the device keeps what it received/);
  await new Promise((res) => setTimeout(res, 500));
  const held = sinkOf(device).bytes;
  assert.ok(held > 0 && held < big.length, `the device holds part of the file (${held} bytes)`);
  await new Promise((res) => setTimeout(res, 500));
  assert.equal(sinkOf(device).bytes, held, "nothing more is sent after Ctrl-C");
  const resumed = await pollkit(["upload", "VVD-000778", bigFile, "--kind", "station-data", "--json"], { env });
  assert.equal(resumed.code, EXIT.ok, resumed.stderr);
  const again = jsonLines(resumed.stdout);
  assert.equal(again[0].sent, held, "the second run starts where the device is");
  assert.ok((again.at(-1)?.chunks ?? 0) < 1024, "only the rest was sent");
  assert.equal(sinkOf(device).bytes, big.length);
  assert.equal(sinkOf(device).digest(), crc32(big, 0, big.length));
});

test("upload failures: bad kind 2, unknown device 4, the device refuses 5, the cable pulled 7", { timeout: 120000 }, async (t) => {
  const { device, dir, url } = await agentWithDevice(t, "VVD-000779");
  const env = { POLLKIT_AGENT: url };
  const file = join(dir, "d.bin");
  writeFileSync(file, randomBytes(1000));

  const kind = await pollkit(["upload", "VVD-000779", file, "--kind", "ballots"], { env });
  assert.equal(kind.code, EXIT.usage);
  assert.match(kind.stderr, /--kind must be one of firmware, station-data, election-definition, configuration, not ballots\.\nSee: pollkit upload --help/);
  const kindAr = await pollkit(["--lang", "ar", "upload", "VVD-000779", file, "--kind", "ballots"], { env });
  assert.equal(kindAr.code, EXIT.usage);
  assert.match(kindAr.stderr, /يجب أن تكون قيمة --kind واحدة من/);
  const noKind = await pollkit(["upload", "VVD-000779", file], { env });
  assert.equal(noKind.code, EXIT.usage);

  const unknown = await pollkit(["upload", "VVD-404", file, "--kind", "station-data"], { env });
  assert.equal(unknown.code, EXIT.unknownDevice);
  assert.match(unknown.stderr, /No device VVD-404 is connected/);

  const missing = await pollkit(["upload", "VVD-000779", join(dir, "nope.bin"), "--kind", "station-data"], { env });
  assert.equal(missing.code, EXIT.error);
  assert.match(missing.stderr, /Cannot read .*nope\.bin/);

  // Over the firmware's 4 MiB limit: the device answers the transfer's begin with BAD_ARGUMENT.
  const huge = join(dir, "huge.bin");
  writeFileSync(huge, Buffer.alloc(4 * 1024 * 1024 + 1));
  const refused = await pollkit(["upload", "VVD-000779", huge, "--kind", "station-data"], { env });
  assert.equal(refused.code, EXIT.deviceFailure, refused.stderr);
  assert.match(refused.stderr, /VVD-000779 reported a failure: device refused the transfer: size out of range/);

  // The cable is pulled mid-upload: the session closes, the upload fails with "did not answer".
  // (The serial transport notices the port gone on its next write: at worst the command's resend,
  // 15 s later.)
  const big = join(dir, "big.bin");
  writeFileSync(big, randomBytes(1024 * 1024));
  const pulled = await pollkit(["upload", "VVD-000779", big, "--kind", "station-data", "--json"], {
    env,
    timeoutMs: 60000,
    signalWhen: { until: /"sent":[1-9]/, then: () => device.unplug() },
  });
  assert.equal(pulled.code, EXIT.noAnswer, pulled.stderr);
  assert.match(pulled.stderr, /"error":"VVD-000779 did not answer/);
  assert.equal(JSON.parse(pulled.stderr.trim()).exitCode, EXIT.noAnswer);
});

test("pollkit agent: runs the daemon, says where the control API listens, stops on SIGTERM", async (t) => {
  const { startEmbeddedBroker } = await import("../broker/embedded.ts");
  const broker = await startEmbeddedBroker({ port: 0 });
  t.after(() => broker.close());
  const dir = mkdtempSync(join(tmpdir(), "pollkit-cli-agent-"));
  const configPath = join(dir, "agent.json");
  writeFileSync(
    configPath,
    JSON.stringify({ site: "warehouse-1", agentId: "agent-cli-daemon", outbox: { path: join(dir, "outbox.db") }, mqtt: { url: broker.url }, control: { host: "127.0.0.1", port: 0 } }),
  );
  let devices: Run | null = null;
  const r = await pollkit(["agent", "--config", configPath], {
    signalWhen: {
      until: /Control API listening on http:\/\/127\.0\.0\.1:\d+/,
      signal: "SIGTERM",
      // The printed address is the one the other commands use.
      then: async (stdout) => {
        const url = /listening on (\S+)/.exec(stdout)?.[1] ?? "";
        devices = await pollkit(["--agent", url, "devices"]);
      },
    },
  });
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.match(r.stderr, /pollkit --agent http:\/\/127\.0\.0\.1:\d+ devices/, "a non-default port is spelled out");
  assert.match(r.stderr, /Agent stopped/);
  const d = devices as Run | null;
  assert.ok(d);
  assert.equal(d.code, EXIT.ok, d.stderr);
  assert.match(d.stdout, /No devices are connected to the agent/);

  const bad = await pollkit(["agent", "--config", join(dir, "missing.json")]);
  assert.equal(bad.code, EXIT.error);
  assert.match(bad.stderr, /missing\.json/);
  const none = await pollkit(["agent"]);
  assert.equal(none.code, EXIT.usage);
  assert.match(none.stderr, /--config <file> is required|Option --config <file> is required/);
});
