// An election day end to end with real parts (simulator/scenario/station_kit.ts): one station's
// verification device (VVD) and result device (RAD) on the simulator, running the real firmware
// against their chip models (card reader, fingerprint module with FVC2002 prints, ballot scanner,
// printer, secure element, flash), plugged into the real host agent (in-process links), the
// embedded MQTT broker and the real operations console with the commission's key and the signed
// election definition. The devices run on a virtual clock ticking at twice real time in the
// background (tickingPacer: a stalled host slows them down instead of making their time jump),
// the host parts in real time.
//
// The technician provisions both devices through the agent's control API with a commission
// token; the supervisor opens the polls; a queue of voters is verified (genuine voters, an
// impostor, a voter of another station, a second attempt after a reboot); ballots are counted
// (a duplicate serial, a power cut mid-tally, a ballot after close); the polls close; the signed
// turnout report and result reach the console, which shows the result, the turnout and the
// reconciliation "match". Then the attacks: a tampered result, a result replayed on another
// device's topic, an unsigned upload and an expired token; and a privacy scan of every byte the
// VVD sent to the host.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { startAgent, parseAgentConfig, type RunningAgent } from "../../host/agent/agent.ts";
import { startOps, parseOpsConfig, type RunningOps } from "../../host/ops/ops.ts";
import { registryEntry } from "../../host/ops/registry/registry.ts";
import { ControlClient } from "../../host/cli/client.ts";
import { type as pbType } from "../../protocol/node/schema.ts";
import { PollsState, RecordKind, Status } from "../../protocol/generated/device_codec.ts";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { SCANNER_NAK, type SimBallot } from "../../simulator/models/ballot_scanner.ts";
import { StationDevice, buildStation, createCommission, scanForSecrets, tickingPacer, until, uploadThroughAgent } from "../../simulator/scenario/station_kit.ts";

const STATION = "ST-0417-03";
const ELECTION = "GE-2027";
const SITE = "SITE-0417";
const HOUR = 3600000;
/** Result flags tolerated (none: a contest with several marks adds up against its max_marks). */
const TOLERATED_FLAGS: string[] = [];
const flagsOf = (flags: string[]): string[] => flags.filter((f) => !TOLERATED_FLAGS.includes(f));

interface ResultRow {
  stationId: string;
  deviceId: string;
  seq: number;
  ballotsCounted: number;
  ballotsRejected: number;
  contests: { contestId: string; name: string; options: { index: number; name: string; votes: number }[]; blank: number; invalid: number }[];
  flags: string[];
  versions: number;
}
interface TurnoutRow {
  stationId: string;
  registerSize: number | null;
  verified: number;
  exempted: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  final: boolean;
}
interface ReconRow {
  stationId: string;
  admitted: number | null;
  ballotsCounted: number | null;
  difference: number | null;
  status: string;
  flags: string[];
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return (await res.json()) as T;
}

test("election day: verify, count, close, transmit, reconcile; attacks refused; nothing private leaves the VVD", { timeout: 150000 }, async (t) => {
  const t0 = performance.now();
  const lap = (what: string): void => t.diagnostic(`${what}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const dir = mkdtempSync(join(tmpdir(), "pollkit-election-day-"));
  const clock = new VirtualClock();
  const pacer = tickingPacer(clock, { speed: 2 });
  const now = Date.now();
  const commission = createCommission({ nowMs: now });
  const tech = commission.technician;
  const station = buildStation({
    commission,
    stationId: STATION,
    electionId: ELECTION,
    voters: 6,
    site: SITE,
    electionName: "General election 2027",
    pollsOpenMs: now - HOUR,
    pollsCloseMs: now + 10 * HOUR,
  });
  const electionFile = join(dir, "election.bin");
  writeFileSync(electionFile, station.electionArtifact);

  const broker = await startEmbeddedBroker({ port: 0 });
  const vvd = new StationDevice({ serial: "VVD-0417-03", role: "verification", commissionKey: commission.publicKey, healthIntervalMs: 1000, clock, pacer });
  const rad = new StationDevice({ serial: "RAD-0417-03", role: "result", commissionKey: commission.publicKey, healthIntervalMs: 1000, clock, pacer });
  let ops: RunningOps | null = null;
  let agent: RunningAgent | null = null;
  let pub: MqttClient | null = null;
  try {
    await vvd.start();
    await rad.start();
    ops = await startOps(
      parseOpsConfig(
        {
          mqtt: { url: broker.url },
          store: { path: "ops.db" },
          election: electionFile,
          commissionKey: commission.publicKeyHex,
          web: { port: 0 },
          reports: { everyMs: 600000 },
          healthIntervalMs: 1000,
        },
        dir,
      ),
    );
    ops.store.upsertDevices([
      registryEntry(vvd.serial, vvd.fw.publicKey, { role: "verification", governorate: "Baghdad", office: "Karkh", stationId: STATION, site: SITE }),
      registryEntry(rad.serial, rad.fw.publicKey, { role: "result", governorate: "Baghdad", office: "Karkh", stationId: STATION, site: SITE }),
    ]);
    ops.ingest.reloadRegistry();
    agent = await startAgent(
      parseAgentConfig(
        { site: SITE, agentId: "agent-0417", serial: { paths: [], scanIntervalMs: 60000 }, outbox: { path: "outbox.db" }, mqtt: { url: broker.url }, control: { port: 0 } },
        dir,
      ),
    );
    pub = await mqtt.connectAsync(broker.url, { clientId: "election-day-attacker" });
    const client = new ControlClient(agent.controlUrl);
    vvd.plug(agent.agent);
    rad.plug(agent.agent);
    await vvd.waitOnline(agent.agent);
    await rad.waitOnline(agent.agent);
    lap("devices online");

    // ---- provisioning through the agent ----
    // Without a token: the device refuses the transfer (DENIED) and holds nothing.
    const unsigned = await uploadThroughAgent({ controlUrl: agent.controlUrl }, vvd.serial, "station-data", station.registerArtifact, { technician: null });
    assert.equal(unsigned.ok, false, "an unsigned upload is refused");
    assert.match(unsigned.error ?? "", /authority|denied/i, unsigned.error);
    const begin = await client.command(vvd.serial, { transferBegin: { kind: 2, totalBytes: station.registerArtifact.length, name: "register.bin" } });
    assert.equal(begin.status, Status.DENIED, `unsigned TransferBegin: ${String(begin.message)}`);
    assert.equal(vvd.pollsState(), PollsState.NOT_LOADED);
    // An expired token: DENIED, the device does not reboot.
    const expired = commission.issueTechnician({ technicianId: "tech-old", notBefore: now - 40 * 86400000, expires: now - 10 * 86400000 });
    const bootsBefore = vvd.sd.boots;
    const stale = await client.command(vvd.serial, expired.commandJson({ reboot: { delayMs: 100 } }, vvd.serial));
    assert.equal(stale.status, Status.DENIED, `expired token: ${String(stale.message)}`);
    assert.match(String(stale.message), /expired/);

    // The technician: configuration, register, election definition, each signed for its device.
    // (A fresh device learns its station from the configuration; the RAD's goes over the agent's
    // session, the rest over its control API as `pollkit upload` sends them.)
    for (const [dev, kind, bytes] of [
      [vvd, "configuration", station.configurationArtifact],
      [rad, "configuration", station.configurationArtifact],
      [vvd, "station-data", station.registerArtifact],
      [rad, "election-definition", station.electionArtifact],
    ] as const) {
      const via = dev === rad && kind === "configuration" ? { agent: agent.agent } : { controlUrl: agent.controlUrl };
      const up = await uploadThroughAgent(via, dev.serial, kind, bytes, { technician: tech });
      assert.equal(up.ok, true, `${kind} to ${dev.serial}: ${up.error}`);
    }
    assert.equal(vvd.pollsState(), PollsState.READY);
    assert.equal(rad.pollsState(), PollsState.READY);
    assert.equal(vvd.sd.boots, bootsBefore, "the expired token's reboot did not happen");
    lap("provisioned");

    // ---- polls open ----
    await vvd.openPollsVvd(station.supervisorCard);
    await rad.openPollsRad();
    assert.equal(vvd.pollsState(), PollsState.OPEN);
    assert.equal(rad.pollsState(), PollsState.OPEN);

    // ---- the queue at the VVD ----
    const [v0, v1, v2, v3, v4, v5] = station.voters;
    for (const v of [v0, v1, v2, v3]) {
      const r = await vvd.presentVoter(v.card, [v.live]);
      assert.equal(r.verdict, "verify.verified", `voter ${station.voters.indexOf(v)}`);
      assert.equal(r.attempts, 1);
    }
    const impostor = await vvd.presentVoter(v4.card, [v4.impostor]);
    assert.equal(impostor.verdict, "verify.rejected.finger_mismatch");
    assert.equal(impostor.attempts, 3, "three captures before the rejection");
    assert.equal(impostor.screens.filter((s) => s.key === "verify.fail.no_match").length, 2, "the reason of each failed attempt is shown");
    const outsider = await vvd.presentVoter(station.outsider.card, [station.outsider.live]);
    assert.equal(outsider.verdict, "verify.rejected.not_in_register");
    assert.equal(outsider.attempts, 0, "no finger asked of a voter not on the register");
    lap("first voters");

    // The technician reboots the VVD (signed command); voter 0 tries again: refused.
    const boots = vvd.sd.boots;
    const shown = vvd.screens.length;
    const rb = await client.command(vvd.serial, tech.commandJson({ reboot: { delayMs: 100 } }, vvd.serial));
    assert.equal(rb.status ?? 0, Status.OK, String(rb.message));
    await vvd.waitRebooted(boots);
    await vvd.waitScreen("verify.present_card", { after: shown });
    assert.equal(vvd.pollsState(), PollsState.OPEN, "the polls stay open across the reboot");
    const again = await vvd.presentVoter(v0.card, [v0.live]);
    assert.equal(again.verdict, "verify.rejected.already_voted");
    assert.equal((await vvd.presentVoter(v5.card, [v5.live])).verdict, "verify.verified");
    const verified = 5;
    lap("voters done");

    // ---- ballots at the RAD ----
    const ballots: SimBallot[] = [
      station.ballot([0, [1, 3]]),
      station.ballot([1, [0]]),
      station.ballot([0, [0, 1, 2]]), // council over-voted: invalid
      station.ballot([null, [4]]), // parliament blank
      station.ballot([2, [1, 4]]),
    ];
    const first = await rad.feed(ballots.slice(0, 2));
    assert.deepEqual(first.accepted, [ballots[0].serial, ballots[1].serial]);
    // Power cut between ballots: nothing lost, the polls still open.
    rad.powerCut();
    await pacer.sleep(200);
    await rad.start();
    assert.equal(rad.pollsState(), PollsState.OPEN);
    assert.deepEqual(rad.tallyCounts(), { counted: 2, rejected: 0 }, "both ballots survive the power cut");
    // A power cut while a ballot is on its way: counted and journalled on the RAD, its ACK lost on
    // the line, the power goes before the scanner's resend. The resend (same SEQ, same serial) is
    // answered from the ballot log after the reboot: accepted once, counted once, no duplicate.
    const scanner = rad.sd.scanner!;
    scanner.dropReplies(1);
    scanner.feed([ballots[2]]);
    await until(pacer, () => rad.tallyCounts().counted === 3, 5000, "the third ballot in the ballot log");
    assert.equal(scanner.accepted.some((a) => a.serial === ballots[2].serial), false, "the scanner did not get its ACK");
    rad.powerCut();
    await pacer.sleep(400);
    await rad.start();
    await until(pacer, () => scanner.idle(), 20000, "the scanner's resend answered");
    assert.equal(scanner.accepted.filter((a) => a.serial === ballots[2].serial).length, 1);
    assert.ok(scanner.resends >= 1, "the scanner sent it again");
    assert.equal(scanner.diverted.length, 0, "the resend is not taken for a duplicate");
    assert.deepEqual(rad.tallyCounts(), { counted: 3, rejected: 0 });
    // The rest, and ballot 1 again (same serial): the duplicate goes to the reject bin.
    const rest = await rad.feed([ballots[3], { ...ballots[1] }, ballots[4]]);
    assert.deepEqual(rest.accepted, [ballots[3].serial, ballots[4].serial]);
    assert.deepEqual(rest.diverted, [{ serial: ballots[1].serial, reason: SCANNER_NAK.DUPLICATE }]);
    assert.deepEqual(rad.tallyCounts(), { counted: 5, rejected: 1 });
    lap("ballots counted");

    // ---- close ----
    const turnout = await vvd.closePollsVvd(station.supervisorCard);
    assert.equal(turnout.final, true);
    assert.equal(turnout.verified, verified);
    assert.equal(turnout.rejected, 3);
    const result = await rad.closePollsRad();
    assert.equal(result.ballotsCounted, 5);
    const expected = station.expectedTally(ballots);
    assert.deepEqual(
      (result.contests ?? []).map((c) => ({ contestId: c.contestId, votes: c.votes, blank: c.blank ?? 0, invalid: c.invalid ?? 0 })),
      expected,
      "the signed result counts what was marked",
    );
    const late = await rad.feed([station.ballot([1, [2]])]);
    assert.deepEqual(late.accepted, []);
    assert.equal(late.diverted[0]?.reason, SCANNER_NAK.NOT_OPEN, "a ballot after close is refused");
    assert.equal(rad.tallyCounts().counted, 5);
    const vouchers = await rad.waitVoucher();
    assert.ok(vouchers.some((lines) => lines.join("\n").includes(STATION)), `the voucher names the station: ${JSON.stringify(vouchers)}`);
    lap("polls closed");

    // ---- at the operations console ----
    const base = ops.url;
    const resultRow = await waitFor(async () => {
      const body = await getJson<{ rows: ResultRow[] }>(`${base}/api/results?q=${STATION}`);
      return body.rows.find((r) => r.stationId === STATION) ?? null;
    }, 20000, "the result at the console");
    assert.equal(resultRow.deviceId, rad.serial);
    assert.equal(resultRow.ballotsCounted, 5);
    assert.deepEqual(flagsOf(resultRow.flags), [], `result flags: ${resultRow.flags.join(", ")}`);
    assert.deepEqual(
      resultRow.contests.map((c) => ({ contestId: c.contestId, votes: c.options.map((o) => o.votes), blank: c.blank, invalid: c.invalid })),
      expected,
    );
    assert.deepEqual(resultRow.contests[0].options.map((o) => o.name), ["List A", "List B", "List C"], "names from the signed definition");
    const turnoutRow = await waitFor(async () => {
      const body = await getJson<{ rows: TurnoutRow[] }>(`${base}/api/turnout?q=${STATION}`);
      const row = body.rows.find((r) => r.stationId === STATION);
      return row && row.final ? row : null;
    }, 20000, "the final turnout at the console");
    assert.equal(turnoutRow.verified, verified);
    assert.equal(turnoutRow.registerSize, 6);
    assert.equal(turnoutRow.rejected, 3);
    assert.deepEqual(turnoutRow.rejectedByReason, { "finger-mismatch": 1, "not-in-register": 1, "already-voted": 1 });
    const recon = await waitFor(async () => {
      const body = await getJson<{ rows: ReconRow[] }>(`${base}/api/reconciliation?q=${STATION}`);
      return body.rows.find((r) => r.stationId === STATION) ?? null;
    }, 10000, "the reconciliation");
    assert.equal(recon.status, "match", JSON.stringify(recon));
    assert.equal(recon.admitted, verified);
    assert.equal(recon.ballotsCounted, 5);
    assert.equal(recon.difference, 0);
    lap("console shows result, turnout, match");

    // ---- attacks on the transmitted result ----
    const RecordT = pbType("Record");
    const stored = ops.store.recordBytes(rad.serial, resultRow.seq);
    assert.ok(stored, "the RESULT record is stored at the console");
    const rec = RecordT.toObject(RecordT.decode(stored), { longs: Number, bytes: Array }) as { kind: number; payload: number[] } & Record<string, unknown>;
    assert.equal(rec.kind, RecordKind.RESULT);
    const quarantined = async (): Promise<Record<string, number>> => (await getJson<{ counts: Record<string, number> }>(`${base}/api/quarantine`)).counts;
    const q0 = await quarantined();
    // One bit of the payload flipped, published on the RAD's own topic.
    const payload = Uint8Array.from(rec.payload);
    payload[payload.length - 1] ^= 0x01;
    const tampered = RecordT.encode(RecordT.fromObject({ ...rec, payload })).finish();
    await pub.publishAsync(`pollkit/v1/${SITE}/${rad.serial}/record`, Buffer.from(tampered), { qos: 1 });
    await waitFor(async () => ((await quarantined())["bad-signature"] ?? 0) > (q0["bad-signature"] ?? 0) ? true : null, 10000, "the tampered result quarantined");
    // The genuine result replayed as if the VVD had sent it.
    const q1 = await quarantined();
    await pub.publishAsync(`pollkit/v1/${SITE}/${vvd.serial}/record`, Buffer.from(stored), { qos: 1 });
    await waitFor(async () => ((await quarantined())["bad-signature"] ?? 0) > (q1["bad-signature"] ?? 0) ? true : null, 10000, "the replayed result quarantined");
    const after = (await getJson<{ rows: ResultRow[] }>(`${base}/api/results?q=${STATION}`)).rows.find((r) => r.stationId === STATION);
    assert.ok(after);
    assert.equal(after.versions, 1, "no second version of the result");
    assert.equal(after.ballotsCounted, 5);
    assert.deepEqual(flagsOf(after.flags), []);
    assert.equal((await getJson<{ rows: ReconRow[] }>(`${base}/api/reconciliation?q=${STATION}`)).rows[0]?.status, "match");
    lap("attacks quarantined");

    // ---- privacy: every byte the VVD sent to the host ----
    const secrets = station.secrets();
    const scan = scanForSecrets(vvd.wire, secrets);
    assert.ok(scan.frames > 30, `frames scanned: ${scan.frames}`);
    assert.deepEqual(scan.findings, [], "no voter id or template bytes left the VVD");
    // The scan does see what the frames carry (the station id is in every turnout record).
    assert.ok(scanForSecrets(vvd.wire, { ids: [STATION], templates: [] }).findings.length > 0, "the scan reads the frames");
    t.diagnostic(`privacy scan: ${scan.bytes} bytes, ${scan.frames} frames, ${scan.consoleLines} console lines, ${secrets.ids.length} ids, ${secrets.templates.length} templates`);
  } finally {
    await pub?.endAsync().catch(() => {});
    vvd.unplug();
    rad.unplug();
    vvd.powerCut();
    rad.powerCut();
    await agent?.stop();
    await ops?.stop();
    await broker.close();
    pacer.stop();
    rmSync(dir, { recursive: true, force: true });
    lap("done");
  }
});

async function waitFor<T>(probe: () => Promise<T | null>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
