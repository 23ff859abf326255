// Turnout, results and reconciliation per polling station, computed from the verified journal
// records in the store and kept up to date from ingest's "records" events. Node only.
//
// Sources (protocol/pollkit.proto):
//   VOTER_VERIFIED / VOTER_EXEMPTED / VERIFICATION_REJECTED (VerificationEvent): live counts; the
//     verified and exempted counters are cumulative per device, so the highest seen is the count.
//   TURNOUT_HOURLY / TURNOUT_REPORT (TurnoutCounts): hourly series, register size, rejections by
//     reason; the report (final = true) is the VVD's count at poll close. Rejections after a
//     device's latest TurnoutCounts (by seq) are added from the rejection events.
//   RESULT (StationResult): the RAD's signed result. The first result stored for a station stays
//     the station's result; a different signed result for the same station does not replace it:
//     the station is flagged "conflict" and every version is kept (and exported).
// A record's station is the one its payload names, else the registry's station of its device.
//
// Reconciliation per station: the VVDs' final reports (verified, which counts exempted voters too) against the RAD's
// ballots counted, and against StationResult.verified_voters when the RAD knew it.
//
// Result overdue: a station whose close time is known (its election definition's polls_close_ms,
// else the election-wide definition's, else, without any definition for it, its VVD's final
// TURNOUT_REPORT period_end_ms) and whose result has not arrived by close + 6 h (configurable):
// at exactly close + 6 h the alert is raised.
//
// Reading: rows and totals are derived lazily, at most once per `viewMinMs` while records keep
// arriving; per-station rows are recomputed only for stations that changed.

import { createHash } from "node:crypto";
import type { Alert } from "../alerts/alerts.ts";
import { ElectionIndex, type ElectionDef } from "../election/election.ts";
import type { OpsStore, RegisteredDevice, StoredRecord } from "../store/store.ts";
import { formatTime } from "../web/i18n.ts";
import {
  decodeResult,
  decodeTurnout,
  decodeVerification,
  recordPayload,
  RecordKind,
  rejectReasonName,
  sumVotes,
  type ContestResultV,
  type StationResultV,
  type TurnoutCountsV,
} from "./payloads.ts";

export const RESULT_DEADLINE_MS = 6 * 3_600_000;

export const STATION_KINDS: readonly number[] = [
  RecordKind.VOTER_VERIFIED,
  RecordKind.VOTER_EXEMPTED,
  RecordKind.VERIFICATION_REJECTED,
  RecordKind.TURNOUT_HOURLY,
  RecordKind.TURNOUT_REPORT,
  RecordKind.RESULT,
];

export interface StationViewsOptions {
  /** Time after close by which a result must have arrived (default 6 h). */
  resultDeadlineMs?: number;
  /** Rebuild rows and totals at most this often while records arrive (default 0: on every read after a change). */
  viewMinMs?: number;
}

// --- rows ----------------------------------------------------------------------------------------

export interface TurnoutRow {
  stationId: string;
  governorate: string;
  office: string;
  electionId: string;
  /** VVDs that reported for this station. */
  devices: string[];
  registerSize: number | null;
  verified: number;
  exempted: number;
  /** Voters admitted to vote: the device's `verified` count, which includes the exempted ones. */
  admitted: number;
  rejected: number;
  /** Reason name (rejectReasonName) → count. */
  rejectedByReason: Record<string, number>;
  /** admitted / register size, percent with one decimal; null without a register size. */
  turnoutPercent: number | null;
  /** Every VVD of the station that reported has sent its final report. */
  final: boolean;
  /** period_end_ms of the latest TurnoutCounts (final or hourly); 0 without one. */
  periodEndMs: number;
  /** Device time of the latest turnout record or event, and when the console received it. */
  lastEventMs: number;
  lastReceivedMs: number;
  undecodable: number;
}

export interface HourlyPoint {
  periodEndMs: number;
  verified: number;
  exempted: number;
  rejected: number;
  final: boolean;
}

export interface ContestView {
  contestId: string;
  /** From the election definition; "" without one. */
  name: string;
  options: Array<{ index: number; name: string; votes: number }>;
  blank: number;
  invalid: number;
}

export type ResultFlag = "conflict" | "inconsistent" | "late" | "station-mismatch" | "role-mismatch" | "definition-mismatch" | "undecodable";

export interface ResultRow {
  stationId: string;
  governorate: string;
  office: string;
  deviceId: string;
  seq: number;
  electionId: string;
  electionName: string;
  ballotsCounted: number;
  ballotsRejected: number;
  /** StationResult.verified_voters when the RAD knew it, else null. */
  verifiedVoters: number | null;
  contests: ContestView[];
  openedMs: number;
  closedMs: number;
  /** The Record's device time (signed) and when the console received it. */
  signedMs: number;
  receivedMs: number;
  electionSha256: string;
  /** Distinct signed results received for this station (1 normally). */
  versions: number;
  flags: ResultFlag[];
  error: string | null;
}

export interface ResultVersion {
  deviceId: string;
  seq: number;
  signedMs: number;
  receivedMs: number;
  /** SHA-256 (hex) of the StationResult payload: equal payloads are the same result. */
  payloadSha256: string;
  /** The station's result in the totals (the first received). */
  current: boolean;
  ballotsCounted: number | null;
  contests: ContestView[];
  error: string | null;
}

export type ReconStatus = "match" | "mismatch" | "missing-result" | "missing-turnout" | "open";
export const RECON_STATUSES: readonly ReconStatus[] = ["match", "mismatch", "missing-result", "missing-turnout", "open"];

export interface ReconRow {
  stationId: string;
  governorate: string;
  office: string;
  /** From the VVDs' final reports; null until every reporting VVD has sent one. */
  verified: number | null;
  exempted: number | null;
  admitted: number | null;
  /** StationResult.verified_voters (the RAD's copy of the VVD count), when known. */
  resultVerifiedVoters: number | null;
  ballotsCounted: number | null;
  /** ballots counted − voters admitted (the VVD report's, else the RAD's copy); null without both. */
  difference: number | null;
  status: ReconStatus;
  /** Details: "paired-count-differs", "result-conflict", "partial-turnout-report". */
  flags: string[];
  flagged: boolean;
}

export type AreaLevel = "office" | "governorate" | "total";

interface AreaRow {
  level: AreaLevel;
  governorate: string;
  office: string;
}

/** Totals lists: each governorate's subtotal, then its offices; the grand total last. */
export interface TurnoutTotal {
  level: AreaLevel;
  governorate: string;
  office: string;
  stations: number;
  reporting: number;
  final: number;
  registerSize: number;
  verified: number;
  exempted: number;
  admitted: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  turnoutPercent: number | null;
}

export interface ResultTotal {
  level: AreaLevel;
  governorate: string;
  office: string;
  stations: number;
  reported: number;
  conflicts: number;
  flagged: number;
  ballotsCounted: number;
  ballotsRejected: number;
  contests: ContestView[];
}

export interface StationFilter {
  governorate?: string;
  office?: string;
  /** Substring of the station id. */
  q?: string;
}

// --- state ---------------------------------------------------------------------------------------

interface DeviceTurnout {
  deviceId: string;
  verified: number;
  exempted: number;
  electionId: string;
  registerSize: number;
  latestSeq: number;
  latest: TurnoutCountsV | null;
  finalSeq: number;
  final: TurnoutCountsV | null;
  finalTimeMs: number;
  /** Rejection events after the latest TurnoutCounts: seq → reason. */
  rejectionsAfter: Map<number, number>;
  lastTimeMs: number;
  lastReceivedMs: number;
}

interface ResultEntry {
  deviceId: string;
  seq: number;
  timeMs: number;
  receivedMs: number;
  bytes: Uint8Array;
  payloadSha256: string;
  result: StationResultV | null;
  error: string | null;
}

interface Station {
  stationId: string;
  turnout: Map<string, DeviceTurnout>;
  /** In arrival order (receivedMs, device, seq). */
  results: ResultEntry[];
  undecodable: number;
}

interface Place {
  governorate: string;
  office: string;
  /** Registered devices at this station, by role. */
  vvd: string[];
  rad: string[];
}

interface Layout {
  /** Every known station, by governorate, office, id. */
  order: string[];
  /** Station → its index in `order`; the rows by that index (dense, so a rebuild reads no map). */
  pos: Map<string, number>;
  turnoutAt: Array<TurnoutRow | undefined>;
  resultAt: Array<ResultRow | undefined>;
  reconAt: Array<ReconRow | undefined>;
  areas: Array<{ level: AreaLevel; governorate: string; office: string; stations: number }>;
  /** Station → indexes of its office, governorate and total in `areas`. */
  targets: Map<string, [number, number, number]>;
}

interface Views {
  turnout: TurnoutRow[];
  results: ResultRow[];
  recon: ReconRow[];
  turnoutTotals: TurnoutTotal[];
  resultTotals: ResultTotal[];
  reconCounts: Record<ReconStatus, number>;
  builtMs: number;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A contest's counts fit its ballots: every ballot is blank, invalid or marked. With one mark a
 * ballot, votes + blank + invalid = ballots exactly; with up to k marks the marked ballots (n)
 * give between n and k x n votes. Without the definition only the lower bound is known.
 */
export function contestAddsUp(c: ContestResultV, ballots: number, maxMarks: number | undefined): boolean {
  const k = maxMarks !== undefined && maxMarks > 0 ? maxMarks : undefined;
  if (k === 1) return sumVotes(c) === ballots;
  const marked = ballots - c.blank - c.invalid;
  if (marked < 0) return false;
  let votes = 0;
  for (const v of c.votes) votes += v;
  return votes >= marked && (k === undefined || votes <= k * marked);
}

export class StationViews {
  private readonly deadlineMs: number;
  private readonly viewMinMs: number;
  private registry = new Map<string, RegisteredDevice>();
  private places = new Map<string, Place>();
  private elections = new ElectionIndex([]);
  private stations = new Map<string, Station>();
  private readonly dirty = new Set<string>();
  private turnoutRows = new Map<string, TurnoutRow>();
  private resultRows = new Map<string, ResultRow | null>();
  private reconRows = new Map<string, ReconRow | null>();
  private cached: Views | null = null;
  private layout: Layout | null = null;
  /** Totals per area, kept by difference as station rows change; null: sum again. */
  private totals: { turnout: TurnoutTotal[]; results: ResultTotal[] } | null = null;
  private changed = true;
  private version = 0;
  /** Records whose station could not be told (no station in the payload or the registry). */
  unassigned = 0;

  constructor(
    private readonly store: OpsStore,
    options: StationViewsOptions = {},
  ) {
    this.deadlineMs = options.resultDeadlineMs ?? RESULT_DEADLINE_MS;
    this.viewMinMs = options.viewMinMs ?? 0;
  }

  /** Reads the registry, the election definitions and every relevant record from the store. */
  reload(): void {
    this.stations = new Map();
    this.turnoutRows = new Map();
    this.resultRows = new Map();
    this.reconRows = new Map();
    this.unassigned = 0;
    this.reloadRegistry();
    this.reloadElections();
    // Per VVD: its latest TurnoutCounts and its latest report (hourly series are read on demand,
    // stationDetail), every result, then the verification events that matter: the latest verified
    // or exempted event (the counters are cumulative) and the rejections after the latest
    // TurnoutCounts. What is read does not grow with the number of voters.
    const turnout = [RecordKind.TURNOUT_HOURLY, RecordKind.TURNOUT_REPORT];
    this.apply(this.store.latestRecordPerDevice(turnout));
    this.apply(this.store.latestRecordPerDevice([RecordKind.TURNOUT_REPORT]));
    this.apply(this.store.records({ kind: RecordKind.RESULT }));
    const vvds = new Set<string>();
    for (const d of this.registry.values()) if (d.role !== "result") vvds.add(d.deviceId);
    for (const s of this.stations.values()) for (const id of s.turnout.keys()) vvds.add(id);
    this.apply(this.store.latestRecordPerDevice([RecordKind.VOTER_VERIFIED, RecordKind.VOTER_EXEMPTED], vvds));
    const latestSeq = new Map<string, number>();
    for (const s of this.stations.values()) for (const d of s.turnout.values()) latestSeq.set(d.deviceId, Math.max(latestSeq.get(d.deviceId) ?? 0, d.latestSeq));
    for (const id of vvds) this.apply(this.store.recordsAfter(id, latestSeq.get(id) ?? 0, [RecordKind.VERIFICATION_REJECTED]));
    for (const id of this.stations.keys()) this.dirty.add(id);
    this.touch();
  }

  reloadRegistry(): void {
    this.registry = new Map(this.store.devices().map((d) => [d.deviceId, d]));
    this.places = new Map();
    for (const d of this.registry.values()) {
      if (!d.stationId) continue;
      let p = this.places.get(d.stationId);
      if (!p) this.places.set(d.stationId, (p = { governorate: d.governorate, office: d.office, vvd: [], rad: [] }));
      if (d.role === "verification") p.vvd.push(d.deviceId);
      else if (d.role === "result") p.rad.push(d.deviceId);
    }
    for (const id of this.stations.keys()) this.dirty.add(id);
    for (const id of this.places.keys()) this.dirty.add(id);
    this.layout = null;
    this.touch();
  }

  reloadElections(): void {
    this.elections = new ElectionIndex(this.store.elections());
    // Names in the totals come from the definitions: sum again.
    this.totals = null;
    for (const id of this.stations.keys()) this.dirty.add(id);
    this.touch();
  }

  get electionIndex(): ElectionIndex {
    return this.elections;
  }

  /** A counter that grows with every change (for caches of callers). */
  get changeCount(): number {
    return this.version;
  }

  /** Applies newly stored records; returns the stations they changed. */
  apply(records: ReadonlyArray<Pick<StoredRecord, "deviceId" | "seq" | "kind" | "bytes" | "timeMs" | "receivedMs">>): string[] {
    const changed = new Set<string>();
    for (const r of records) {
      if (!STATION_KINDS.includes(r.kind)) continue;
      const id = this.applyOne(r);
      if (id !== null) changed.add(id);
    }
    for (const id of changed) this.dirty.add(id);
    if (changed.size) this.touch();
    return [...changed];
  }

  private touch(): void {
    this.changed = true;
    this.version++;
  }

  private stationOf(payloadStation: string, deviceId: string): string | null {
    if (payloadStation !== "") return payloadStation;
    const s = this.registry.get(deviceId)?.stationId ?? "";
    return s === "" ? null : s;
  }

  private station(id: string): Station {
    let s = this.stations.get(id);
    if (!s) {
      this.stations.set(id, (s = { stationId: id, turnout: new Map(), results: [], undecodable: 0 }));
      // A registered station is already in the layout; one only the records name is not.
      if (!this.places.has(id)) this.layout = null;
    }
    return s;
  }

  private deviceTurnout(s: Station, deviceId: string): DeviceTurnout {
    let d = s.turnout.get(deviceId);
    if (!d) {
      d = {
        deviceId,
        verified: 0,
        exempted: 0,
        electionId: "",
        registerSize: 0,
        latestSeq: 0,
        latest: null,
        finalSeq: 0,
        final: null,
        finalTimeMs: 0,
        rejectionsAfter: new Map(),
        lastTimeMs: 0,
        lastReceivedMs: 0,
      };
      s.turnout.set(deviceId, d);
    }
    return d;
  }

  private applyOne(r: Pick<StoredRecord, "deviceId" | "seq" | "kind" | "bytes" | "timeMs" | "receivedMs">): string | null {
    const p = recordPayload(r.bytes);
    const fallback = this.stationOf("", r.deviceId);
    if (!p.ok) {
      if (fallback !== null) this.station(fallback).undecodable++;
      return fallback;
    }
    if (r.kind === RecordKind.RESULT) return this.applyResult(r, p.value);
    if (r.kind === RecordKind.TURNOUT_HOURLY || r.kind === RecordKind.TURNOUT_REPORT) {
      const t = decodeTurnout(p.value);
      if (!t.ok) {
        if (fallback !== null) this.station(fallback).undecodable++;
        return fallback;
      }
      const id = this.stationOf(t.value.stationId, r.deviceId);
      if (id === null) {
        this.unassigned++;
        return null;
      }
      const d = this.deviceTurnout(this.station(id), r.deviceId);
      const c = t.value;
      const isFinal = c.final || r.kind === RecordKind.TURNOUT_REPORT;
      d.verified = Math.max(d.verified, c.verified);
      d.exempted = Math.max(d.exempted, c.exempted);
      if (c.electionId) d.electionId = c.electionId;
      if (r.seq > d.latestSeq) {
        d.latestSeq = r.seq;
        d.latest = c;
        if (c.registerSize) d.registerSize = c.registerSize;
        for (const seq of [...d.rejectionsAfter.keys()]) if (seq <= r.seq) d.rejectionsAfter.delete(seq);
      }
      if (isFinal && r.seq > d.finalSeq) {
        d.finalSeq = r.seq;
        d.final = c;
        d.finalTimeMs = r.timeMs;
      }
      d.lastTimeMs = Math.max(d.lastTimeMs, r.timeMs);
      d.lastReceivedMs = Math.max(d.lastReceivedMs, r.receivedMs);
      return id;
    }
    // Verification events.
    const e = decodeVerification(p.value);
    if (!e.ok) {
      if (fallback !== null) this.station(fallback).undecodable++;
      return fallback;
    }
    const id = this.stationOf(e.value.stationId, r.deviceId);
    if (id === null) {
      this.unassigned++;
      return null;
    }
    const d = this.deviceTurnout(this.station(id), r.deviceId);
    d.verified = Math.max(d.verified, e.value.verified);
    d.exempted = Math.max(d.exempted, e.value.exempted);
    if (r.kind === RecordKind.VERIFICATION_REJECTED && r.seq > d.latestSeq) d.rejectionsAfter.set(r.seq, e.value.reason);
    d.lastTimeMs = Math.max(d.lastTimeMs, r.timeMs);
    d.lastReceivedMs = Math.max(d.lastReceivedMs, r.receivedMs);
    return id;
  }

  private applyResult(r: Pick<StoredRecord, "deviceId" | "seq" | "bytes" | "timeMs" | "receivedMs">, payload: Uint8Array): string | null {
    const res = decodeResult(payload);
    const id = this.stationOf(res.ok ? res.value.stationId : "", r.deviceId);
    if (id === null) {
      this.unassigned++;
      return null;
    }
    const s = this.station(id);
    if (s.results.some((x) => x.deviceId === r.deviceId && x.seq === r.seq)) return id;
    const entry: ResultEntry = {
      deviceId: r.deviceId,
      seq: r.seq,
      timeMs: r.timeMs,
      receivedMs: r.receivedMs,
      bytes: r.bytes,
      payloadSha256: createHash("sha256").update(payload).digest("hex"),
      result: res.ok ? res.value : null,
      error: res.ok ? null : res.error,
    };
    s.results.push(entry);
    s.results.sort((a, b) => a.receivedMs - b.receivedMs || cmp(a.deviceId, b.deviceId) || a.seq - b.seq);
    return id;
  }

  // --- derived rows ----------------------------------------------------------------------------

  private place(stationId: string, st?: Station): { governorate: string; office: string } {
    const p = this.places.get(stationId);
    if (p) return { governorate: p.governorate, office: p.office };
    // A station only the records name: where its reporting devices are registered.
    const s = st ?? this.stations.get(stationId);
    const dev = s ? ([...s.turnout.keys()][0] ?? s.results[0]?.deviceId) : undefined;
    const d = dev ? this.registry.get(dev) : undefined;
    return { governorate: d?.governorate ?? "", office: d?.office ?? "" };
  }

  private computeTurnout(s: Station): TurnoutRow | null {
    if (s.turnout.size === 0) return null;
    const { governorate, office } = this.place(s.stationId, s);
    let verified = 0;
    let exempted = 0;
    let rejected = 0;
    let registerSize = 0;
    let periodEndMs = 0;
    let lastEventMs = 0;
    let lastReceivedMs = 0;
    let allFinal = true;
    let electionId = "";
    const byReason: Record<string, number> = {};
    const add = (reason: number, n: number): void => {
      const k = rejectReasonName(reason);
      byReason[k] = (byReason[k] ?? 0) + n;
    };
    for (const d of s.turnout.values()) {
      verified += d.verified;
      exempted += d.exempted;
      rejected += (d.latest?.rejected ?? 0) + d.rejectionsAfter.size;
      for (const x of d.latest?.rejectedByReason ?? []) if (x.count) add(x.reason, x.count);
      for (const reason of d.rejectionsAfter.values()) add(reason, 1);
      registerSize += d.registerSize;
      if (d.latest) periodEndMs = Math.max(periodEndMs, d.latest.periodEndMs);
      lastEventMs = Math.max(lastEventMs, d.lastTimeMs);
      lastReceivedMs = Math.max(lastReceivedMs, d.lastReceivedMs);
      if (!d.final) allFinal = false;
      if (d.electionId) electionId = d.electionId;
    }
    if (registerSize === 0) registerSize = this.elections.forStation(s.stationId, electionId || undefined)?.registerSize ?? 0;
    const admitted = verified; // TurnoutCounts.verified counts every voter marked as voted, exempted included
    return {
      stationId: s.stationId,
      governorate,
      office,
      electionId,
      devices: [...s.turnout.keys()].sort(cmp),
      registerSize: registerSize || null,
      verified,
      exempted,
      admitted,
      rejected,
      rejectedByReason: byReason,
      turnoutPercent: registerSize ? Math.round((admitted * 1000) / registerSize) / 10 : null,
      final: allFinal,
      periodEndMs,
      lastEventMs,
      lastReceivedMs,
      undecodable: s.undecodable,
    };
  }

  /** The contests of a result with names from the definition; options beyond the definition are "#n". */
  private contestViews(r: StationResultV, def: ElectionDef | null): ContestView[] {
    return r.contests.map((c) => {
      const cd = def?.contests.find((x) => x.id === c.contestId) ?? this.elections.contest(c.contestId, r.electionId);
      const n = Math.max(c.votes.length, cd?.options.length ?? 0);
      const options = [];
      for (let i = 0; i < n; i++) options.push({ index: i, name: cd?.options[i] ?? "", votes: c.votes[i] ?? 0 });
      return { contestId: c.contestId, name: cd?.name ?? "", options, blank: c.blank, invalid: c.invalid };
    });
  }

  /** Close time of a station: its definition's, else (no definition at all for it) its VVD final report's. */
  closeOf(stationId: string): { ms: number; source: "definition" | "turnout-report"; electionId: string } | null {
    const def = this.elections.forStation(stationId);
    if (def && def.pollsCloseMs) return { ms: def.pollsCloseMs, source: "definition", electionId: def.electionId };
    if (def) return null;
    const s = this.stations.get(stationId);
    if (!s) return null;
    let ms = 0;
    let electionId = "";
    for (const d of s.turnout.values()) {
      if (!d.final) continue;
      ms = Math.max(ms, d.final.periodEndMs || d.finalTimeMs);
      electionId = d.final.electionId || electionId;
    }
    return ms ? { ms, source: "turnout-report", electionId } : null;
  }

  private computeResult(s: Station): ResultRow | null {
    if (s.results.length === 0) return null;
    const { governorate, office } = this.place(s.stationId, s);
    const good = s.results.filter((e) => e.result !== null);
    const distinct = new Set(good.map((e) => e.payloadSha256));
    const first = good[0] ?? s.results[0];
    const flags: ResultFlag[] = [];
    if (distinct.size > 1) flags.push("conflict");
    const r = first.result;
    if (r === null) {
      flags.push("undecodable");
      return {
        stationId: s.stationId, governorate, office, deviceId: first.deviceId, seq: first.seq, electionId: "", electionName: "",
        ballotsCounted: 0, ballotsRejected: 0, verifiedVoters: null, contests: [], openedMs: 0, closedMs: 0, signedMs: first.timeMs,
        receivedMs: first.receivedMs, electionSha256: "", versions: s.results.length, flags, error: first.error,
      };
    }
    const def = this.elections.forStation(s.stationId, r.electionId);
    if (r.contests.some((c) => !contestAddsUp(c, r.ballotsCounted, def?.contests.find((x) => x.id === c.contestId)?.maxMarks))) flags.push("inconsistent");
    const close = this.closeOf(s.stationId)?.ms || r.closedMs;
    if (close && first.receivedMs > close + this.deadlineMs) flags.push("late");
    const dev = this.registry.get(first.deviceId);
    if (dev && dev.stationId && dev.stationId !== s.stationId) flags.push("station-mismatch");
    if (dev && dev.role === "verification") flags.push("role-mismatch");
    if (def) {
      const hashOk = r.electionSha256 === "" || r.electionSha256 === def.sha256 || r.electionSha256 === def.artifactSha256;
      const shapeOk = r.contests.every((c) => {
        const cd = def.contests.find((x) => x.id === c.contestId);
        return cd !== undefined && c.votes.length <= cd.options.length;
      });
      if (!hashOk || !shapeOk) flags.push("definition-mismatch");
    }
    return {
      stationId: s.stationId,
      governorate,
      office,
      deviceId: first.deviceId,
      seq: first.seq,
      electionId: r.electionId,
      electionName: def?.name ?? "",
      ballotsCounted: r.ballotsCounted,
      ballotsRejected: r.ballotsRejected,
      verifiedVoters: r.verifiedVotersKnown ? r.verifiedVoters : null,
      contests: this.contestViews(r, def),
      openedMs: r.openedMs,
      closedMs: r.closedMs,
      signedMs: first.timeMs,
      receivedMs: first.receivedMs,
      electionSha256: r.electionSha256,
      versions: distinct.size || 1,
      flags,
      error: null,
    };
  }

  private computeRecon(s: Station, result: ResultRow | null): ReconRow | null {
    if (s.turnout.size === 0 && !result) return null;
    const { governorate, office } = this.place(s.stationId, s);
    const flags: string[] = [];
    let verified: number | null = null;
    let exempted: number | null = null;
    let finals = 0;
    for (const d of s.turnout.values()) {
      if (!d.final) continue;
      finals++;
      verified = (verified ?? 0) + d.final.verified;
      exempted = (exempted ?? 0) + d.final.exempted;
    }
    if (finals > 0 && finals < s.turnout.size) {
      flags.push("partial-turnout-report");
      verified = null;
      exempted = null;
    }
    const admitted = verified; // exempted voters are part of `verified`
    const usable = result && result.error === null ? result : null;
    const rv = usable ? usable.verifiedVoters : null;
    const ballots = usable ? usable.ballotsCounted : null;
    if (result?.flags.includes("conflict")) flags.push("result-conflict");
    let status: ReconStatus;
    let difference: number | null = null;
    if (ballots === null) status = admitted === null ? "open" : "missing-result";
    else {
      const verifiedSide = admitted ?? rv;
      if (verifiedSide !== null) difference = ballots - verifiedSide;
      if (admitted === null) status = "missing-turnout";
      else {
        if (rv !== null && rv !== admitted) flags.push("paired-count-differs");
        status = difference === 0 && (rv === null || rv === admitted) ? "match" : "mismatch";
      }
    }
    return {
      stationId: s.stationId,
      governorate,
      office,
      verified,
      exempted,
      admitted,
      resultVerifiedVoters: rv,
      ballotsCounted: ballots,
      difference,
      status,
      flags,
      flagged: status !== "match" && status !== "open" ? true : flags.length > 0,
    };
  }

  /** Recomputes the rows of changed stations; the totals follow by difference (old row out, new row in). */
  private refreshDirty(): void {
    const layout = this.layout;
    const totals = layout ? this.totals : null;
    for (const id of this.dirty) {
      const s = this.stations.get(id);
      const oldT = this.turnoutRows.get(id) ?? null;
      const oldR = this.resultRows.get(id) ?? null;
      let t: TurnoutRow | null = null;
      let r: ResultRow | null = null;
      if (!s) {
        this.turnoutRows.delete(id);
        this.resultRows.delete(id);
        this.reconRows.delete(id);
      } else {
        t = this.computeTurnout(s);
        if (t) this.turnoutRows.set(id, t);
        else this.turnoutRows.delete(id);
        r = this.computeResult(s);
        this.resultRows.set(id, r);
        this.reconRows.set(id, this.computeRecon(s, r));
      }
      if (layout) {
        const at = layout.pos.get(id);
        if (at === undefined) {
          // A station the layout does not know: lay out and sum everything again.
          this.layout = null;
          this.totals = null;
          continue;
        }
        layout.turnoutAt[at] = t ?? undefined;
        layout.resultAt[at] = r ?? undefined;
        layout.reconAt[at] = (s && this.reconRows.get(id)) || undefined;
      }
      if (totals && layout) {
        const idx = layout.targets.get(id);
        if (!idx) {
          // A station the layout does not know: lay out and sum everything again.
          this.layout = null;
          this.totals = null;
          continue;
        }
        if (oldT) addTurnout(totals.turnout, idx, oldT, -1);
        if (t) addTurnout(totals.turnout, idx, t, 1);
        if (oldR) addResult(totals.results, idx, oldR, -1);
        if (r) addResult(totals.results, idx, r, 1);
      }
    }
    this.dirty.clear();
  }

  /** Rows and totals, rebuilt when something changed (at most once per viewMinMs): O(stations), no sorting. */
  private views(): Views {
    if (this.cached && (!this.changed || Date.now() - this.cached.builtMs < this.viewMinMs)) return this.cached;
    this.refreshDirty();
    if (!this.layout) {
      this.layout = this.buildLayout();
      this.totals = null;
    }
    const layout = this.layout;
    const turnout: TurnoutRow[] = [];
    const results: ResultRow[] = [];
    const recon: ReconRow[] = [];
    const n = layout.order.length;
    for (let i = 0; i < n; i++) {
      const t = layout.turnoutAt[i];
      if (t) turnout.push(t);
      const r = layout.resultAt[i];
      if (r) results.push(r);
      const c = layout.reconAt[i];
      if (c) recon.push(c);
    }
    if (!this.totals) {
      const tt = emptyTurnoutTotals(layout);
      const rt = emptyResultTotals(layout);
      for (const r of turnout) {
        const idx = layout.targets.get(r.stationId);
        if (idx) addTurnout(tt, idx, r, 1);
      }
      for (const r of results) {
        const idx = layout.targets.get(r.stationId);
        if (idx) addResult(rt, idx, r, 1);
      }
      this.totals = { turnout: tt, results: rt };
    }
    for (const t of this.totals.turnout) t.turnoutPercent = t.registerSize ? Math.round((t.admitted * 1000) / t.registerSize) / 10 : null;
    for (const t of this.totals.results) if (t.contests.length > 1) t.contests.sort((a, b) => cmp(a.contestId, b.contestId));
    const reconCounts = { match: 0, mismatch: 0, "missing-result": 0, "missing-turnout": 0, open: 0 } as Record<ReconStatus, number>;
    for (const r of recon) reconCounts[r.status]++;
    this.changed = false;
    this.cached = {
      turnout,
      results,
      recon,
      turnoutTotals: this.totals.turnout,
      resultTotals: this.totals.results,
      reconCounts,
      builtMs: Date.now(),
    };
    return this.cached;
  }

  /** Every known station (registry or records) with its place. */
  private allStations(): Array<{ stationId: string; governorate: string; office: string }> {
    const out: Array<{ stationId: string; governorate: string; office: string }> = [];
    for (const [id, p] of this.places) out.push({ stationId: id, governorate: p.governorate, office: p.office });
    for (const id of this.stations.keys()) if (!this.places.has(id)) out.push({ stationId: id, ...this.place(id) });
    return out;
  }

  /**
   * Stations in place order and the areas: one per office, a subtotal per governorate (before its
   * offices) and the grand total (last), with each station's three areas. Rebuilt only when a
   * station appears or the registry changes.
   */
  private buildLayout(): Layout {
    const all = this.allStations().sort((a, b) => cmp(a.governorate, b.governorate) || cmp(a.office, b.office) || cmp(a.stationId, b.stationId));
    const areas: Layout["areas"] = [];
    const targets = new Map<string, [number, number, number]>();
    const govIndex = new Map<string, number>();
    const officeIndex = new Map<string, number>();
    // Sorted by governorate then office: areas come out in list order as they are met.
    for (const st of all) {
      let g = govIndex.get(st.governorate);
      if (g === undefined) {
        g = areas.length;
        govIndex.set(st.governorate, g);
        areas.push({ level: "governorate", governorate: st.governorate, office: "", stations: 0 });
      }
      const key = `${st.governorate}\u0000${st.office}`;
      let o = officeIndex.get(key);
      if (o === undefined) {
        o = areas.length;
        officeIndex.set(key, o);
        areas.push({ level: "office", governorate: st.governorate, office: st.office, stations: 0 });
      }
      targets.set(st.stationId, [o, g, -1]);
    }
    const total = areas.length;
    areas.push({ level: "total", governorate: "", office: "", stations: 0 });
    for (const t of targets.values()) {
      t[2] = total;
      for (const i of t) areas[i].stations++;
    }
    const order = all.map((s) => s.stationId);
    const pos = new Map<string, number>();
    const turnoutAt: Array<TurnoutRow | undefined> = [];
    const resultAt: Array<ResultRow | undefined> = [];
    const reconAt: Array<ReconRow | undefined> = [];
    order.forEach((id, i) => {
      pos.set(id, i);
      turnoutAt.push(this.turnoutRows.get(id));
      resultAt.push(this.resultRows.get(id) ?? undefined);
      reconAt.push(this.reconRows.get(id) ?? undefined);
    });
    return { order, pos, turnoutAt, resultAt, reconAt, areas, targets };
  }

  // --- public reads ------------------------------------------------------------------------------

  turnout(f: StationFilter & { final?: boolean } = {}): TurnoutRow[] {
    const rows = filterStations(this.views().turnout, f);
    return f.final === undefined ? rows : rows.filter((r) => r.final === f.final);
  }

  results(f: StationFilter & { flagged?: boolean } = {}): ResultRow[] {
    const rows = filterStations(this.views().results, f);
    return f.flagged === undefined ? rows : rows.filter((r) => (r.flags.length > 0 || r.error !== null) === f.flagged);
  }

  reconciliation(f: StationFilter & { status?: string; flagged?: boolean } = {}): ReconRow[] {
    let rows = filterStations(this.views().recon, f);
    if (f.status) rows = rows.filter((r) => r.status === f.status);
    if (f.flagged !== undefined) rows = rows.filter((r) => r.flagged === f.flagged);
    return rows;
  }

  reconCounts(f: StationFilter = {}): Record<ReconStatus, number> {
    if (!f.governorate && !f.office && !f.q) return { ...this.views().reconCounts };
    const c = { match: 0, mismatch: 0, "missing-result": 0, "missing-turnout": 0, open: 0 } as Record<ReconStatus, number>;
    for (const r of this.reconciliation(f)) c[r.status]++;
    return c;
  }

  turnoutTotalsList(): TurnoutTotal[] {
    return this.views().turnoutTotals;
  }

  resultTotalsList(): ResultTotal[] {
    return this.views().resultTotals;
  }

  /** The totals row of one area: governorate and office, governorate only, or the whole country. */
  turnoutTotal(governorate = "", office = ""): TurnoutTotal | null {
    return findTotal(this.views().turnoutTotals, governorate, office);
  }

  resultTotal(governorate = "", office = ""): ResultTotal | null {
    return findTotal(this.views().resultTotals, governorate, office);
  }

  /** One station: its rows, the hourly series, every result version. */
  stationDetail(stationId: string): {
    stationId: string;
    governorate: string;
    office: string;
    devices: { verification: string[]; result: string[] };
    turnout: TurnoutRow | null;
    hourly: HourlyPoint[];
    result: ResultRow | null;
    versions: ResultVersion[];
    reconciliation: ReconRow | null;
    close: { ms: number; source: string; electionId: string } | null;
    deadlineMs: number | null;
  } | null {
    this.views();
    const s = this.stations.get(stationId);
    const p = this.places.get(stationId);
    if (!s && !p) return null;
    const place = this.place(stationId, s);
    const close = this.closeOf(stationId);
    return {
      stationId,
      ...place,
      devices: { verification: p?.vvd ?? [], result: p?.rad ?? [] },
      turnout: this.turnoutRows.get(stationId) ?? null,
      hourly: s ? this.hourlySeries(s) : [],
      result: this.resultRows.get(stationId) ?? null,
      versions: s ? this.versions(s) : [],
      reconciliation: this.reconRows.get(stationId) ?? null,
      close,
      deadlineMs: close ? close.ms + this.deadlineMs : null,
    };
  }

  /**
   * The station's hourly series, read from the store: at each reported period end, the sum over
   * its VVDs of their latest TurnoutCounts at that time (hourly records and the final report).
   */
  private hourlySeries(s: Station): HourlyPoint[] {
    const devs: Array<Array<[number, { verified: number; exempted: number; rejected: number; final: boolean }]>> = [];
    const times = new Set<number>();
    for (const d of s.turnout.values()) {
      const points = new Map<number, { verified: number; exempted: number; rejected: number; final: boolean }>();
      for (const r of this.store.recordsAfter(d.deviceId, 0, [RecordKind.TURNOUT_HOURLY, RecordKind.TURNOUT_REPORT])) {
        const p = recordPayload(r.bytes);
        const c = p.ok ? decodeTurnout(p.value) : p;
        if (!c.ok) continue;
        if (this.stationOf(c.value.stationId, d.deviceId) !== s.stationId) continue;
        const at = c.value.periodEndMs || r.timeMs;
        points.set(at, { verified: c.value.verified, exempted: c.value.exempted, rejected: c.value.rejected, final: c.value.final || r.kind === RecordKind.TURNOUT_REPORT });
        times.add(at);
      }
      devs.push([...points.entries()].sort((a, b) => a[0] - b[0]));
    }
    return [...times].sort((a, b) => a - b).map((t) => {
      const p: HourlyPoint = { periodEndMs: t, verified: 0, exempted: 0, rejected: 0, final: false };
      let allFinal = true;
      for (const list of devs) {
        let last: { verified: number; exempted: number; rejected: number; final: boolean } | null = null;
        for (const [at, c] of list) {
          if (at > t) break;
          last = c;
        }
        if (last) {
          p.verified += last.verified;
          p.exempted += last.exempted;
          p.rejected += last.rejected;
        }
        if (!last?.final) allFinal = false;
      }
      p.final = allFinal;
      return p;
    });
  }

  private versions(s: Station): ResultVersion[] {
    const current = s.results.find((e) => e.result !== null) ?? s.results[0];
    return s.results.map((e) => ({
      deviceId: e.deviceId,
      seq: e.seq,
      signedMs: e.timeMs,
      receivedMs: e.receivedMs,
      payloadSha256: e.payloadSha256,
      current: e === current,
      ballotsCounted: e.result?.ballotsCounted ?? null,
      contests: e.result ? this.contestViews(e.result, this.elections.forStation(s.stationId, e.result.electionId)) : [],
      error: e.error,
    }));
  }

  /** Every stored RESULT record (each version), with its station, in station order: for the signed export. */
  resultRecords(f: StationFilter = {}): Array<{ stationId: string; governorate: string; office: string; deviceId: string; seq: number; receivedMs: number; bytes: Uint8Array }> {
    const out: Array<{ stationId: string; governorate: string; office: string; deviceId: string; seq: number; receivedMs: number; bytes: Uint8Array }> = [];
    const ids = [...this.stations.keys()].sort(cmp);
    for (const id of ids) {
      const s = this.stations.get(id);
      if (!s || s.results.length === 0) continue;
      const place = this.place(id, s);
      if (f.governorate && place.governorate !== f.governorate) continue;
      if (f.office && place.office !== f.office) continue;
      if (f.q && !id.toLowerCase().includes(f.q.toLowerCase())) continue;
      for (const e of s.results) out.push({ stationId: id, ...place, deviceId: e.deviceId, seq: e.seq, receivedMs: e.receivedMs, bytes: e.bytes });
    }
    return out;
  }

  /**
   * Result-overdue alerts at `nowMs`: stations with a known close time and no (readable) result
   * of that election, once close + deadline is reached.
   */
  overdueAlerts(nowMs: number): Alert[] {
    const candidates = new Set<string>(this.elections.stations());
    if (this.elections.hasWide()) {
      for (const id of this.places.keys()) candidates.add(id);
      for (const id of this.stations.keys()) candidates.add(id);
    }
    for (const [id, s] of this.stations) for (const d of s.turnout.values()) if (d.final) candidates.add(id);
    const out: Alert[] = [];
    const hours = this.deadlineMs / 3_600_000;
    for (const id of candidates) {
      const close = this.closeOf(id);
      if (!close) continue;
      const due = close.ms + this.deadlineMs;
      if (nowMs < due) continue;
      const s = this.stations.get(id);
      const arrived = s?.results.some((e) => e.result !== null && (close.electionId === "" || e.result.electionId === "" || e.result.electionId === close.electionId));
      if (arrived) continue;
      const p = this.places.get(id);
      const rad = p?.rad[0] ?? "";
      out.push({
        id: `station:${id}:result-overdue`,
        deviceId: rad,
        stationId: id,
        severity: "critical",
        kind: "result-overdue",
        messageKey: "alert.resultOverdue",
        params: {
          station: id,
          hours: fmt1((nowMs - close.ms) / 3_600_000),
          deadline: fmt1(hours),
          close: formatTime(close.ms),
          source: close.source,
        },
        sinceMs: due,
      });
    }
    return out;
  }

  /** Places of stations for callers (alerts list). */
  stationPlace(stationId: string): { governorate: string; office: string } {
    return this.place(stationId);
  }
}

function fmt1(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function findTotal<T extends AreaRow>(list: T[], governorate: string, office: string): T | null {
  if (!governorate && !office) return list[list.length - 1] ?? null;
  if (!office) return list.find((t) => t.level === "governorate" && t.governorate === governorate) ?? null;
  return list.find((t) => t.level === "office" && t.office === office && (!governorate || t.governorate === governorate)) ?? null;
}

export function filterStations<T extends { stationId: string; governorate: string; office: string }>(rows: T[], f: StationFilter): T[] {
  const q = f.q?.toLowerCase();
  if (!f.governorate && !f.office && !q) return rows;
  return rows.filter(
    (r) => (!f.governorate || r.governorate === f.governorate) && (!f.office || r.office === f.office) && (!q || r.stationId.toLowerCase().includes(q)),
  );
}

function emptyTurnoutTotals(layout: Layout): TurnoutTotal[] {
  return layout.areas.map((a) => ({
    level: a.level, governorate: a.governorate, office: a.office, stations: a.stations, reporting: 0, final: 0, registerSize: 0, verified: 0, exempted: 0, admitted: 0, rejected: 0, rejectedByReason: {}, turnoutPercent: null,
  }));
}

function emptyResultTotals(layout: Layout): ResultTotal[] {
  return layout.areas.map((a) => ({
    level: a.level, governorate: a.governorate, office: a.office, stations: a.stations, reported: 0, conflicts: 0, flagged: 0, ballotsCounted: 0, ballotsRejected: 0, contests: [],
  }));
}

/** Adds (sign 1) or removes (sign -1) a station's turnout row in its three areas. */
function addTurnout(list: TurnoutTotal[], idx: readonly number[], r: TurnoutRow, sign: 1 | -1): void {
  for (const i of idx) {
    const t = list[i];
    t.reporting += sign;
    if (r.final) t.final += sign;
    t.registerSize += sign * (r.registerSize ?? 0);
    t.verified += sign * r.verified;
    t.exempted += sign * r.exempted;
    t.admitted += sign * r.admitted;
    t.rejected += sign * r.rejected;
    for (const k in r.rejectedByReason) {
      const n = (t.rejectedByReason[k] ?? 0) + sign * r.rejectedByReason[k];
      if (n === 0) delete t.rejectedByReason[k];
      else t.rejectedByReason[k] = n;
    }
  }
}

/** Adds or removes a station's result (unreadable ones count for nothing). */
function addResult(list: ResultTotal[], idx: readonly number[], r: ResultRow, sign: 1 | -1): void {
  if (r.error !== null) return;
  for (const i of idx) {
    const t = list[i];
    t.reported += sign;
    if (r.flags.includes("conflict")) t.conflicts += sign;
    if (r.flags.length) t.flagged += sign;
    t.ballotsCounted += sign * r.ballotsCounted;
    t.ballotsRejected += sign * r.ballotsRejected;
    addContests(t.contests, r.contests, sign);
  }
}

function addContests(into: ContestView[], add: ContestView[], sign: 1 | -1 = 1): void {
  for (const c of add) {
    let t = into.find((x) => x.contestId === c.contestId);
    if (!t) into.push((t = { contestId: c.contestId, name: c.name, options: [], blank: 0, invalid: 0 }));
    if (!t.name && c.name) t.name = c.name;
    for (const o of c.options) {
      let to = t.options[o.index];
      if (!to) {
        for (let i = t.options.length; i <= o.index; i++) t.options.push({ index: i, name: "", votes: 0 });
        to = t.options[o.index];
      }
      if (!to.name && o.name) to.name = o.name;
      to.votes += sign * o.votes;
    }
    t.blank += sign * c.blank;
    t.invalid += sign * c.invalid;
  }
}
