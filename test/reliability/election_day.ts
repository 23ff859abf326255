// Scenario 3, election day under faults: one polling station (simulator/scenario/station_kit.ts:
// signed station data, voters with real fingerprints and cards, ballots) whose verification device
// and result device talk to an agent through in-process links, the broker and the real operations
// console (with the commission's key and the election definition). While voters are verified and
// ballots counted: line noise on both links, a cable pulled mid-transfer, and the result device's
// power cut in the middle of the count (the staff put the ballots the scanner did not take back in
// the feeder once it is up again). Counting: the result and the turnout the console shows equal what
// was cast and what the devices decided, every journalled record is stored once, and every fault
// was reported.
//
// The FleetHarness runs it (two slots: VVD-000001 and RAD-000002, one agent), with station devices
// in the slots and both device clocks at `speed`.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { injectFault } from "../../simulator/faults/catalogue.ts";
import { StationDevice, buildStation, createCommission, uploadThroughAgent, type Pacer, type Station } from "../../simulator/scenario/station_kit.ts";
import type { SimBallot } from "../../simulator/models/ballot_scanner.ts";
import { PollsState, RecordKind, decodeBallotEffect, decodeVerificationEvent } from "../../protocol/generated/device_codec.ts";
import { recordPayload } from "../../host/ops/views/payloads.ts";
import { FleetHarness, sleep, until, type AuditCounts, type Dev } from "./fleet_harness.ts";
import type { FastClock } from "./fast_clock.ts";

export interface ElectionDayProfile {
  voters: number;
  /** Voters who present someone else's finger (rejected: finger mismatch). */
  impostors: number;
  /** Device time per real time. */
  speed: number;
  /** Ballots fed per batch to the scanner. */
  batch: number;
  /**
   * Noise on the RAD's link while it reboots from its power cut: the hellos of the new boot may be
   * lost (found by this suite: the agent used to take the device's greeting for the end of the
   * exchange and never say hello again; now both sides repeat until the device answers).
   */
  noiseAcrossPowerCut: boolean;
  seed: number;
}

export const ELECTION_DAY: Record<"short" | "long", ElectionDayProfile> = {
  short: { voters: 8, impostors: 1, speed: 10, batch: 4, noiseAcrossPowerCut: true, seed: 31 },
  long: { voters: 30, impostors: 3, speed: 10, batch: 6, noiseAcrossPowerCut: true, seed: 1031 },
};

export interface ElectionDayCounts extends AuditCounts {
  scenario: "election-day";
  profile: string;
  voters: number;
  verified: number;
  rejected: Record<string, number>;
  recordsByKind: Record<string, number>;
  ballotsCast: number;
  ballotRecordsAtConsole: number;
  voterVerifiedRecordsAtConsole: number;
  ballotsRefedAfterPowerCut: number;
  ballotsDivertedAsDuplicates: number;
  deviceResult: { ballotsCounted: number; contests: { votes: number[]; blank: number; invalid: number }[] };
  console: {
    result: { ballotsCounted: number; contests: { votes: number[]; blank: number; invalid: number }[]; flags: string[]; versions: number } | null;
    turnout: { verified: number; exempted: number; rejected: number; rejectedByReason: Record<string, number>; final: boolean } | null;
    reconciliation: string | null;
  };
  seconds: number;
  ok: boolean;
  problems: string[];
}

/** Pacing for the kit's waits on the harness's FastClock. */
function fastPacer(clock: FastClock): Pacer {
  return {
    virtual: true,
    now: () => {
      clock.sync();
      return clock.now();
    },
    sleep: async (ms) => {
      clock.sync();
      const end = clock.now() + Math.max(0, ms);
      while (clock.now() < end) {
        await sleep(5);
        clock.sync();
      }
    },
  };
}

interface ConsoleContest {
  options: { votes: number }[];
  blank: number;
  invalid: number;
}

export async function runElectionDay(profileName: "short" | "long", log?: (s: string) => void): Promise<ElectionDayCounts> {
  const p = ELECTION_DAY[profileName];
  const t0 = performance.now();
  const commission = createCommission();
  const station: Station = buildStation({ commission, stationId: "ST-REL-0001", electionId: "GE-REL", voters: p.voters });
  const electionDir = mkdtempSync(join(tmpdir(), "pollkit-reliability-election-"));
  const electionFile = join(electionDir, "election.bin");
  writeFileSync(electionFile, station.electionArtifact);
  const kits = new Map<string, StationDevice>();
  let h: FleetHarness | null = null;
  h = new FleetHarness({
    devices: 2,
    agents: 1,
    seed: p.seed,
    speed: p.speed,
    vvdSpeed: p.speed,
    healthEveryRealMs: 1000,
    resendRealMs: 1000,
    maintainShare: 0,
    trafficRealMs: [3_600_000, 3_600_000],
    agedCells: 0,
    tinyJournals: 0,
    chargerFaultRealMs: 5000,
    sitePrefix: "ST",
    commission: commission.key,
    stationOf: () => station.stationId,
    setChargeModes: false,
    opsConfig: { commissionKey: commission.publicKeyHex, election: electionFile },
    makeDevice: (o) => {
      const hh = h as FleetHarness;
      const kit = new StationDevice({
        serial: o.serial,
        role: o.role,
        commissionKey: commission.publicKey,
        clock: o.clock,
        pacer: fastPacer(o.clock as FastClock),
        wallMs: o.wallMs,
        hostLink: o.hostLink,
        healthIntervalMs: o.healthIntervalMs,
        sim: { linkResendMs: o.linkResendMs, onLog: hh.o.log ? (l) => hh.o.log?.(`${o.serial}: ${l}`) : undefined },
      });
      kits.set(o.serial, kit);
      return kit.sd;
    },
    log,
  });
  try {
    await h.build();
    await h.start();
    const harness = h;
    const vvdDev = h.devs.find((d) => d.fd.role === "verification") as Dev;
    const radDev = h.devs.find((d) => d.fd.role === "result") as Dev;
    const vvd = kits.get(vvdDev.serial) as StationDevice;
    const rad = kits.get(radDev.serial) as StationDevice;
    const agent = vvdDev.fd.agent;
    const tech = commission.technician;

    // The technician loads the signed station data through the agent.
    const upload = async (d: Dev, kind: "station-data" | "configuration" | "election-definition", bytes: Uint8Array): Promise<void> => {
      const r = await uploadThroughAgent({ agent }, d.serial, kind, bytes, { technician: tech, now: d.fd.device.wallMs() });
      if (!r.ok) throw new Error(`${d.serial}: ${kind} upload: ${r.error ?? "failed"}`);
    };
    await upload(vvdDev, "station-data", station.registerArtifact);
    await upload(radDev, "configuration", station.configurationArtifact);
    await upload(radDev, "election-definition", station.electionArtifact);
    if (vvd.pollsState() !== PollsState.READY || rad.pollsState() !== PollsState.READY) throw new Error("station data loaded but the devices are not ready");
    await vvd.openPollsVvd(station.supervisorCard);
    await rad.openPollsRad();
    log?.("polls open");

    // Voting, with noise on the VVD's link and its cable pulled along the way.
    const rnd = h.rnd;
    const faultTasks: Promise<unknown>[] = [];
    const outcomes: { voter: string; verdict: string; verified: boolean }[] = [];
    const ballots: SimBallot[] = [];
    const impostors = new Set(station.voters.slice(0, p.impostors).map((v) => v.id));
    for (let i = 0; i < station.voters.length; i++) {
      const v = station.voters[i];
      if (i === 1) faultTasks.push(injectFault(harness, "line-noise", { device: vvdDev.serial }, rnd));
      if (i === Math.floor(station.voters.length / 2)) {
        // Possibly while the noise lasts: the reconnect's hellos may be lost too.
        faultTasks.push(injectFault(harness, "unplug-mid-transfer", { device: vvdDev.serial }, rnd));
      }
      const o = await vvd.presentVoter(v.card, [impostors.has(v.id) ? v.impostor : v.live]);
      outcomes.push({ voter: v.id, verdict: o.verdict, verified: o.verified });
      if (o.verified) {
        const contests = station.definition.contests ?? [];
        ballots.push(station.ballot(contests.map((c) => (rnd() < 0.08 ? null : Math.floor(rnd() * (c.options ?? []).length)))));
      }
    }
    // The outsider (not on the register) and a voter who comes back.
    const outsider = await vvd.presentVoter(station.outsider.card, [station.outsider.live]);
    outcomes.push({ voter: "outsider", verdict: outsider.verdict, verified: outsider.verified });
    const again = station.voters[station.voters.length - 1];
    const repeat = await vvd.presentVoter(again.card, [again.live]);
    outcomes.push({ voter: "repeat", verdict: repeat.verdict, verified: repeat.verified });
    await Promise.all(faultTasks);
    log?.(`${outcomes.filter((o) => o.verified).length} voters verified; counting ${ballots.length} ballots`);

    // The count, with noise on the RAD's link and its power cut in the middle.
    const accepted = new Set<string>();
    let diverted = 0;
    let refed = 0;
    const cutAt = Math.max(1, Math.floor(ballots.length / 2 / p.batch));
    const countTasks: Promise<unknown>[] = [];
    const noise = (): void => void countTasks.push(injectFault(harness, "dropped-bytes", { device: radDev.serial }, rnd));
    if (p.noiseAcrossPowerCut) noise();
    for (let b = 0, batchNo = 0; b < ballots.length; b += p.batch, batchNo++) {
      const batch = ballots.slice(b, b + p.batch);
      if (batchNo === cutAt) {
        // Mid-count: the next flash write of the journal is cut part-way.
        await injectFault(harness, "device-power-cut", { device: radDev.serial }, rnd);
        const boots = rad.sd.boots;
        try {
          const r = await rad.feed(batch, { timeoutMs: 30_000 });
          for (const s of r.accepted) accepted.add(s);
          diverted += r.diverted.length;
        } catch (e) {
          log?.(`feeding through the power cut: ${String(e)}`);
        }
        // Up again (BROWN_OUT boot): the staff feed what the scanner did not take.
        await until(() => radDev.cuts > 0 && rad.sd.boots > boots && rad.sd.firmware?.started === true, 30_000, () => "the RAD back from its power cut");
        await until(() => rad.pollsState() === PollsState.OPEN, 10_000, () => `the RAD's polls open again (state ${rad.pollsState()})`);
        const left = batch.filter((x) => !accepted.has(x.serial));
        refed += left.length;
        if (left.length > 0) {
          const r = await rad.feed(left, { timeoutMs: 30_000 });
          for (const s of r.accepted) accepted.add(s);
          diverted += r.diverted.length;
        }
        if (!p.noiseAcrossPowerCut) noise();
        continue;
      }
      const r = await rad.feed(batch, { timeoutMs: 30_000 });
      for (const s of r.accepted) accepted.add(s);
      diverted += r.diverted.length;
    }
    await Promise.all(countTasks);

    const turnout = await vvd.closePollsVvd(station.supervisorCard);
    const result = await rad.closePollsRad();
    log?.(`polls closed: turnout ${turnout.verified} verified, result ${result.ballotsCounted} ballots`);

    await h.drain(60_000);
    const counts = await h.audit();

    // What the console shows.
    const api = async <T>(path: string): Promise<T> => (await (await fetch(`${harness.ops.url}${path}`)).json()) as T;
    const results = await api<{ rows: { stationId: string; ballotsCounted: number; contests: ConsoleContest[]; flags: string[]; versions: number }[] }>(`/api/results?q=${station.stationId}`);
    const turnoutRows = await api<{ rows: { stationId: string; verified: number; exempted: number; rejected: number; rejectedByReason: Record<string, number>; final: boolean }[] }>(`/api/turnout?q=${station.stationId}`);
    const recon = await api<{ rows: { stationId: string; status: string }[] }>(`/api/reconciliation?q=${station.stationId}`);
    // Each ballot and each voter once among the console's records.
    const payloads = (d: Dev, kind: number): Uint8Array[] =>
      harness.storedRecords(d, kind).map((r) => {
        const x = recordPayload(r.bytes);
        if (!x.ok) throw new Error(`${d.serial} record ${r.seq}: ${x.error}`);
        return x.value;
      });
    const recordsByKind: Record<string, number> = {};
    for (const d of [vvdDev, radDev]) {
      for (const r of harness.storedRecords(d)) {
        const k = `${d.fd.role === "result" ? "RAD" : "VVD"}:${kindName(r.kind)}`;
        recordsByKind[k] = (recordsByKind[k] ?? 0) + 1;
      }
    }
    const ballotRecords = payloads(radDev, RecordKind.BALLOT).map((b) => decodeBallotEffect(b));
    const serials = new Map<string, number>();
    for (const b of ballotRecords) serials.set(b.serial ?? "", (serials.get(b.serial ?? "") ?? 0) + 1);
    const ordinals = ballotRecords.map((b) => b.ordinal ?? 0).sort((a, b) => a - b);
    const verifiedRecords = payloads(vvdDev, RecordKind.VOTER_VERIFIED).map((b) => decodeVerificationEvent(b).verified ?? 0).sort((a, b) => a - b);
    const rr = results.rows.find((r) => r.stationId === station.stationId) ?? null;
    const tr = turnoutRows.rows.find((r) => r.stationId === station.stationId) ?? null;
    const rc = recon.rows.find((r) => r.stationId === station.stationId) ?? null;

    // What was cast and decided.
    const verified = outcomes.filter((o) => o.verified).length;
    const rejected: Record<string, number> = {};
    for (const o of outcomes) {
      if (o.verified) continue;
      const reason = o.verdict.replace(/^verify\.rejected\./, "").replace(/_/g, "-");
      rejected[reason] = (rejected[reason] ?? 0) + 1;
    }
    const expected = station.expectedTally(ballots).map((c) => ({ votes: c.votes, blank: c.blank, invalid: c.invalid }));
    const deviceContests = (result.contests ?? []).map((c) => ({ votes: c.votes ?? [], blank: c.blank ?? 0, invalid: c.invalid ?? 0 }));
    const consoleContests = rr ? rr.contests.map((c) => ({ votes: c.options.map((o) => o.votes), blank: c.blank, invalid: c.invalid })) : [];

    const problems: string[] = [];
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    if (accepted.size !== ballots.length) problems.push(`the scanner took ${accepted.size} of ${ballots.length} ballots`);
    if ((result.ballotsCounted ?? 0) !== ballots.length) problems.push(`the RAD counted ${result.ballotsCounted} ballots, ${ballots.length} were cast`);
    if (!same(deviceContests, expected)) problems.push(`the RAD's result ${JSON.stringify(deviceContests)} is not what was cast ${JSON.stringify(expected)}`);
    if (!rr) problems.push("no result at the console");
    else {
      if (rr.ballotsCounted !== ballots.length) problems.push(`the console shows ${rr.ballotsCounted} ballots counted, ${ballots.length} were cast`);
      if (!same(consoleContests, expected)) problems.push(`the console's result ${JSON.stringify(consoleContests)} is not what was cast ${JSON.stringify(expected)}`);
      if (rr.flags.length > 0) problems.push(`result flagged: ${rr.flags.join(", ")}`);
      if (rr.versions !== 1) problems.push(`${rr.versions} signed result versions`);
    }
    if (!tr) problems.push("no turnout at the console");
    else {
      if (tr.verified !== verified || (turnout.verified ?? 0) !== verified) problems.push(`verified: console ${tr.verified}, VVD ${turnout.verified}, at the table ${verified}`);
      if (!same(sortKeys(tr.rejectedByReason), sortKeys(rejected))) problems.push(`rejections: console ${JSON.stringify(tr.rejectedByReason)}, at the table ${JSON.stringify(rejected)}`);
      if (!tr.final) problems.push("the console has no final turnout report");
    }
    if (rc?.status !== "match") problems.push(`reconciliation ${rc?.status ?? "missing"}`);
    const missingBallots = ballots.filter((b) => serials.get(b.serial) !== 1).map((b) => `${b.serial}x${serials.get(b.serial) ?? 0}`);
    if (missingBallots.length > 0 || ballotRecords.length !== ballots.length) {
      const some = missingBallots.slice(0, 5).join(", ") + (missingBallots.length > 5 ? `, ... (${missingBallots.length})` : "");
      problems.push(`BALLOT records at the console: ${ballotRecords.length} for ${ballots.length} ballots cast (not once: ${some})`);
    }
    if (!same(ordinals, ballots.map((_, i) => i + 1))) problems.push(`BALLOT ordinals at the console ${ordinals.join(",")}`);
    if (!same(verifiedRecords, Array.from({ length: verified }, (_, i) => i + 1))) problems.push(`VOTER_VERIFIED records at the console ${verifiedRecords.join(",")} for ${verified} voters verified`);
    if (counts.lost > 0) problems.push(`${counts.lost} journalled records not at the console (${counts.lostSample.join(", ")})`);
    if (counts.unexpected > 0) problems.push(`${counts.unexpected} stored records the devices never journalled`);
    if (counts.chainBreaks > 0) problems.push(`${counts.chainBreaks} stored records whose prev_seq is not stored`);
    if (counts.quarantined > 0) problems.push(`quarantined: ${JSON.stringify(counts.quarantineReasons)}`);
    if (counts.faultsReported !== counts.faultsExercised) problems.push(`faults not reported: ${counts.unreported.join(" | ")}`);
    if ((counts.faults["device-power-cut"]?.exercised ?? 0) === 0) problems.push("the RAD's power cut did not happen");
    if (harness.deviceErrors.length > 0) problems.push(`device code threw: ${harness.deviceErrors.slice(0, 3).join(" | ")}`);
    return {
      scenario: "election-day",
      profile: profileName,
      ...counts,
      voters: p.voters,
      verified,
      rejected,
      recordsByKind,
      ballotsCast: ballots.length,
      ballotRecordsAtConsole: ballotRecords.length,
      voterVerifiedRecordsAtConsole: verifiedRecords.length,
      ballotsRefedAfterPowerCut: refed,
      ballotsDivertedAsDuplicates: diverted,
      deviceResult: { ballotsCounted: result.ballotsCounted ?? 0, contests: deviceContests },
      console: {
        result: rr ? { ballotsCounted: rr.ballotsCounted, contests: consoleContests, flags: rr.flags, versions: rr.versions } : null,
        turnout: tr ? { verified: tr.verified, exempted: tr.exempted, rejected: tr.rejected, rejectedByReason: tr.rejectedByReason, final: tr.final } : null,
        reconciliation: rc?.status ?? null,
      },
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      ok: problems.length === 0,
      problems,
    };
  } finally {
    await h.stop();
    rmSync(electionDir, { recursive: true, force: true });
  }
}

function kindName(kind: number): string {
  for (const [name, v] of Object.entries(RecordKind)) if (v === kind) return name;
  return String(kind);
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0).sort(([a], [b]) => a.localeCompare(b)));
}
