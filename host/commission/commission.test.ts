// The commission's and the technician's tools produce what the device accepts: keys and their
// files, signed artifacts, tokens, commands signed by the CLI's stored credentials and carried in
// the control API's JSON form; and the `pollkit commission` / `pollkit token` verbs end to end
// (files in, files out) checked on a device rig with the real secure element model.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command as Program } from "commander";
import {
  createCommissionKey,
  parsePrivateKey,
  parsePublicKey,
  privateKeyPem,
  publicKeyHex,
  readPublicKeyFile,
  technicianKey,
  verifyP256,
} from "./keys.ts";
import { artifactSigningBytes, issueToken, openArtifact, readToken, signArtifact } from "./artifacts.ts";
import { CLI_COMMAND_ID_MIN, authorize, commandToJson } from "./authorize.ts";
import { loadCredentials, nextIssuedMs, pollkitHome, signCommand, useToken } from "./credentials.ts";
import { DAY_MS, RIG_NOW, deviceRig, settle, type DeviceRig } from "./testing.ts";
import { registerCommissionCommands } from "../cli/commands/commission.ts";
import { registerTokenCommands } from "../cli/commands/token.ts";
import { signedBegin } from "../cli/commands/upload.ts";
import type { CliContext } from "../cli/context.ts";
import type { ExitCode } from "../cli/messages.ts";
import { Envelope } from "../../protocol/node/schema.ts";
import { ArtifactKind, TransferKind, decodeEnvelope, type Command } from "../../protocol/generated/device_codec.ts";
import type { AuthError } from "../../device/services/authority.ts";
import type { SignedArtifact } from "../../protocol/generated/device_codec.ts";

const tmp = (): string => mkdtempSync(join(tmpdir(), "pollkit-commission-"));

test("keys: PEM and hex files round-trip; bad keys are refused with a reason", () => {
  const k = createCommissionKey();
  assert.equal(k.publicKey.length, 64);
  const again = parsePrivateKey(privateKeyPem(k));
  assert.deepEqual(again.publicKey, k.publicKey);
  assert.deepEqual(parsePublicKey(publicKeyHex(k.publicKey)), k.publicKey);
  assert.deepEqual(parsePublicKey("04" + publicKeyHex(k.publicKey)), k.publicKey);
  assert.throws(() => parsePublicKey("abcd"), /128 hex digits/);
  assert.throws(() => parsePublicKey("00".repeat(64)), /./, "not a point on the curve");
  assert.throws(() => parsePrivateKey("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), /not a private key/);
});

test("a signed artifact verifies on the host and the signature covers every field", () => {
  const k = createCommissionKey();
  const bytes = signArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, stationId: "S1", electionId: "E1", version: 4, issuedMs: 5, body: new Uint8Array([1, 2]) }, k);
  const o = openArtifact(bytes, k.publicKey);
  assert.equal(o.valid, true);
  for (const change of [{ version: 5 }, { stationId: "S2" }, { electionId: "E2" }, { issuedMs: 6 }, { body: new Uint8Array([1, 3]) }, { kind: 2 }] as Partial<SignedArtifact>[]) {
    const a = { ...o.artifact, ...change };
    assert.equal(verifyP256(k.publicKey, artifactSigningBytes(a), a.signature!), false, JSON.stringify(change));
  }
  assert.throws(() => signArtifact({ kind: 2, version: 0, body: new Uint8Array(1) }, k), /version/);
  assert.throws(() => issueToken({ technicianId: "t", site: "*", notBefore: 10, expires: 10, technicianPublicKey: k.publicKey }, k), /expire after/);
  assert.throws(() => readToken(bytes), /not a technician token/);
});

function verifyOn(rig: DeviceRig, bytes: Uint8Array, kind: number): AuthError | null {
  return settle<[AuthError | null]>(rig.clock, (cb) => rig.authority.verifyArtifact(bytes, kind, cb))[0];
}

function checkOn(rig: DeviceRig, cmd: Command): { err: AuthError | null; tech?: string } {
  const [err, tech] = settle<[AuthError | null, string?]>(rig.clock, (cb) => rig.authority.checkCommand(cmd, cb));
  return { err, tech };
}

/** What the device decodes after the command went CLI JSON -> agent (protobufjs) -> link. */
function throughAgent(json: Record<string, unknown>): Command {
  const bytes = Envelope.encode(Envelope.fromObject({ command: json })).finish();
  const env = decodeEnvelope(new Uint8Array(bytes));
  assert.ok(env.command);
  return env.command;
}

test("commands signed with the CLI's stored credentials pass through the agent's JSON and verify on the device", () => {
  const rig = deviceRig({ deviceId: "VVD-000777" });
  const home = tmp();
  const env = { POLLKIT_HOME: home };
  assert.equal(pollkitHome(env), home);
  assert.equal(signCommand(env, rig.deviceId, { reboot: {} }).signed, false, "no token in use: unsigned");
  const tk = technicianKey();
  const token = issueToken({ technicianId: "tech-sara", site: "*", notBefore: RIG_NOW - DAY_MS, expires: RIG_NOW + DAY_MS, technicianPublicKey: tk.publicKey }, rig.commission);
  useToken(home, token, tk);
  assert.equal(loadCredentials(home)?.body.technicianId, "tech-sara");
  assert.throws(() => useToken(home, token, technicianKey()), /issued for another key/);

  const s = signCommand(env, rig.deviceId, { setTime: { unixMs: RIG_NOW + 1234 } }, RIG_NOW);
  assert.equal(s.signed, true);
  assert.ok((s.command.id ?? 0) >= CLI_COMMAND_ID_MIN);
  const json = commandToJson(s.command);
  assert.equal(typeof json.authority, "string", "bytes as base64 in the API's JSON");
  const r = checkOn(rig, throughAgent(json));
  assert.equal(r.err, null, r.err?.message);
  assert.equal(r.tech, "tech-sara");
  // The same device command again: a fresh issued_ms each time, even within one millisecond.
  const a = nextIssuedMs(home, RIG_NOW);
  const b = nextIssuedMs(home, RIG_NOW);
  assert.ok(b > a);
  const again = signCommand(env, rig.deviceId, { reboot: { delayMs: 0 } }, RIG_NOW);
  assert.equal(checkOn(rig, throughAgent(commandToJson(again.command))).err, null);
  // A relay that renumbers a command breaks the signature; the command as signed still goes through.
  const third = signCommand(env, rig.deviceId, { reboot: { delayMs: 0 } }, RIG_NOW);
  const renumbered = throughAgent({ ...commandToJson(third.command), id: 17 });
  assert.match(checkOn(rig, renumbered).err?.message ?? "", /does not match this command/);
  assert.equal(checkOn(rig, throughAgent(commandToJson(third.command))).err, null);
  // The TransferBegin the agent builds for an upload matches the one the CLI signed.
  const data = new Uint8Array(3000).fill(9);
  const begin = signedBegin(env, rig.deviceId, "station-data", "reg.bin", data, RIG_NOW);
  assert.ok(begin);
  const sha = createHash("sha256").update(data).digest();
  const agentBegin = throughAgent({ id: begin.id, authority: begin.authorityBase64, transferBegin: { kind: TransferKind.STATION_DATA, totalBytes: 3000, name: "reg.bin", sha256: Buffer.from(sha).toString("base64") } });
  assert.equal(checkOn(rig, agentBegin).err, null);
});

// ---- the CLI verbs ----

interface Out {
  printed: string[];
  json: unknown[];
}

function cli(env: NodeJS.ProcessEnv): { run: (argv: string[]) => Promise<Out> } {
  return {
    run: async (argv) => {
      const out: Out = { printed: [], json: [] };
      const ctx: CliContext = {
        agentUrl: "http://127.0.0.1:1",
        json: argv.includes("--json"),
        tty: false,
        now: () => RIG_NOW,
        client: () => {
          throw new Error("no agent in these tests");
        },
        print: (t) => out.printed.push(t),
        printJson: (v) => out.json.push(v),
        note: () => {},
      };
      const program = new Program().exitOverride().option("--json");
      const run = async (work: (c: CliContext) => Promise<ExitCode>): Promise<void> => {
        await work(ctx);
      };
      registerCommissionCommands(program, run);
      registerTokenCommands(program, run, env);
      await program.parseAsync(argv.filter((a) => a !== "--json"), { from: "user" });
      return out;
    },
  };
}

test("pollkit commission and token verbs: keys, a signed register, config and firmware, a token, all accepted by a device", async () => {
  const dir = tmp();
  const home = join(dir, "home");
  const { run } = cli({ POLLKIT_HOME: home });
  await run(["commission", "keygen", "--out", join(dir, "keys")]);
  assert.equal(statSync(join(dir, "keys", "commission.key")).mode & 0o777, 0o600);
  await assert.rejects(run(["commission", "keygen", "--out", join(dir, "keys")]), /already exists/);
  const commissionPub = readPublicKeyFile(join(dir, "keys", "commission.pub"));
  const commission = parsePrivateKey(readFileSync(join(dir, "keys", "commission.key"), "utf8"));
  assert.deepEqual(commission.publicKey, commissionPub);
  const rig = deviceRig({ commission, deviceId: "RAD-000031" });
  const key = join(dir, "keys", "commission.key");

  // A station register given as JSON, signed for its station.
  writeFileSync(
    join(dir, "reg.json"),
    JSON.stringify({ stationId: "ST-31", electionId: "E-2026", voters: [{ voterId: "V1", template: Buffer.from([1, 2, 3]).toString("base64") }], exemptionCapPermille: 50 }),
  );
  const signed = await run(["commission", "sign", "--kind", "station-register", "--in", join(dir, "reg.json"), "--station", "ST-31", "--version", "3", "--key", key, "--out", join(dir, "reg.sa"), "--json"]);
  assert.deepEqual((signed.json[0] as { version: number; electionId: string }).version, 3);
  assert.equal((signed.json[0] as { electionId: string }).electionId, "E-2026", "the election id comes from the body");
  assert.equal(verifyOn(rig, new Uint8Array(readFileSync(join(dir, "reg.sa"))), ArtifactKind.STATION_REGISTER), null);
  await assert.rejects(
    run(["commission", "sign", "--kind", "station-register", "--in", join(dir, "reg.json"), "--station", "ST-99", "--version", "3", "--key", key, "--out", join(dir, "x.sa")]),
    /for station ST-31, not --station ST-99/,
  );
  await assert.rejects(run(["commission", "sign", "--kind", "election", "--in", join(dir, "reg.json"), "--version", "1", "--key", key, "--out", join(dir, "x.sa")]), /give --station/);
  await assert.rejects(run(["commission", "sign", "--kind", "ballots", "--in", join(dir, "reg.json"), "--version", "1", "--key", key, "--out", join(dir, "x.sa")]), /--kind must be one of/);
  await assert.rejects(run(["commission", "sign", "--kind", "config", "--in", join(dir, "reg.json"), "--version", "0", "--key", key, "--out", join(dir, "x.sa")]), /--version must be a whole number/);

  writeFileSync(join(dir, "device.cfg"), "site=WH-31\nstation=ST-31\n");
  await run(["commission", "sign", "--kind", "config", "--in", join(dir, "device.cfg"), "--version", "1", "--key", key, "--out", join(dir, "cfg.sa")]);
  assert.equal(verifyOn(rig, new Uint8Array(readFileSync(join(dir, "cfg.sa"))), ArtifactKind.CONFIGURATION), null);
  writeFileSync(join(dir, "fw.mjs"), "export class Firmware {}\n");
  await run(["commission", "sign", "--kind", "firmware", "--in", join(dir, "fw.mjs"), "--version", "12", "--key", key, "--out", join(dir, "fw.sa")]);
  assert.equal(verifyOn(rig, new Uint8Array(readFileSync(join(dir, "fw.sa"))), ArtifactKind.FIRMWARE), null);

  // The technician's key, the commission's token for it, put in use, a command signed with it.
  await run(["token", "keygen"]);
  await run(["commission", "token", "--technician", "tech-omar", "--site", "*", "--days", "7", "--tech-pub", join(home, "technician.pub"), "--key", key, "--out", join(dir, "omar.tok")]);
  await assert.rejects(run(["commission", "token", "--technician", "x", "--site", "*", "--days", "0", "--tech-pub", join(home, "technician.pub"), "--key", key, "--out", join(dir, "x.tok")]), /--days/);
  await assert.rejects(run(["commission", "token", "--technician", "x", "--site", "*", "--days", "1", "--tech-pub", join(dir, "device.cfg"), "--key", key, "--out", join(dir, "x.tok")]), /not a usable key/);
  const used = await run(["token", "use", join(dir, "omar.tok")]);
  assert.match(used.printed[0] ?? "", /tech-omar at site \*/);
  await assert.rejects(run(["token", "use", join(dir, "reg.sa")]), /not a technician token/);
  const shown = await run(["token", "show", "--json"]);
  assert.equal((shown.json[0] as { technician: string; expired: boolean }).technician, "tech-omar");
  const s = signCommand({ POLLKIT_HOME: home }, rig.deviceId, { setChargeMode: { mode: 2 } }, RIG_NOW);
  const r = checkOn(rig, throughAgent(commandToJson(s.command)));
  assert.equal(r.err, null, r.err?.message);
  assert.equal(r.tech, "tech-omar");
  // A token from another commission key is refused by the device.
  const foreign = createCommissionKey();
  const other = authorize({ id: CLI_COMMAND_ID_MIN + 5, reboot: {} }, rig.deviceId, issueToken({ technicianId: "mallory", site: "*", notBefore: 0, expires: RIG_NOW + DAY_MS, technicianPublicKey: technicianKey().publicKey }, foreign), technicianKey(), RIG_NOW + 10);
  assert.match(checkOn(rig, other).err?.message ?? "", /not signed by the commission/);
});
