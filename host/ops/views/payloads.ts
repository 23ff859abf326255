// Decoding the journal payloads the operations views read (turnout, results, power alarms), with
// the device's own generated codec, into plain objects with every field present. A payload that
// does not decode gives an error string, never an exception: the record verified (it is authentic)
// but the console cannot read it, and the views say so.

import { tryDecode } from "../../../protocol/codec_runtime.ts";
import {
  decodePowerAlarm,
  decodeStationResult,
  decodeTurnoutCounts,
  decodeVerificationEvent,
  PowerAlarmKind,
  RecordKind,
  RejectReason,
} from "../../../protocol/generated/device_codec.ts";
import { readRecord } from "../ingest/record_wire.ts";

export { RecordKind, PowerAlarmKind, RejectReason };

export interface VerificationEventV {
  stationId: string;
  verified: number;
  exempted: number;
  reason: number;
  attempts: number;
  actor: string;
}

export interface TurnoutCountsV {
  stationId: string;
  electionId: string;
  registerSize: number;
  verified: number;
  exempted: number;
  rejected: number;
  rejectedByReason: Array<{ reason: number; count: number }>;
  periodEndMs: number;
  final: boolean;
}

export interface ContestResultV {
  contestId: string;
  votes: number[];
  blank: number;
  invalid: number;
}

export interface StationResultV {
  electionId: string;
  stationId: string;
  /** Hex; "" when absent. */
  electionSha256: string;
  openedMs: number;
  closedMs: number;
  ballotsCounted: number;
  ballotsRejected: number;
  contests: ContestResultV[];
  verifiedVoters: number;
  verifiedVotersKnown: boolean;
}

export interface PowerAlarmV {
  kind: number;
  active: boolean;
  batteryMv: number;
  stateOfChargePermille: number;
  temperatureDecic: number;
  chargerFaults: number;
  chargeMode: number;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

const num = (v: number | undefined): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const str = (v: string | undefined): string => (typeof v === "string" ? v : "");

function hex(b: Uint8Array | undefined): string {
  return b && b.length ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex") : "";
}

function decodeWith<T, R>(decode: (b: Uint8Array) => T, bytes: Uint8Array, what: string, map: (v: T) => R): Decoded<R> {
  let r: { value: T | null; error: string | null };
  try {
    r = tryDecode(decode, bytes);
  } catch (e) {
    r = { value: null, error: e instanceof Error ? e.message : String(e) };
  }
  if (r.value === null) return { ok: false, error: `${what} does not decode: ${r.error ?? "unknown error"}` };
  return { ok: true, value: map(r.value) };
}

export function decodeVerification(bytes: Uint8Array): Decoded<VerificationEventV> {
  return decodeWith(decodeVerificationEvent, bytes, "VerificationEvent", (m) => ({
    stationId: str(m.stationId),
    verified: num(m.verified),
    exempted: num(m.exempted),
    reason: num(m.reason),
    attempts: num(m.attempts),
    actor: str(m.actor),
  }));
}

export function decodeTurnout(bytes: Uint8Array): Decoded<TurnoutCountsV> {
  return decodeWith(decodeTurnoutCounts, bytes, "TurnoutCounts", (m) => ({
    stationId: str(m.stationId),
    electionId: str(m.electionId),
    registerSize: num(m.registerSize),
    verified: num(m.verified),
    exempted: num(m.exempted),
    rejected: num(m.rejected),
    rejectedByReason: (m.rejectedByReason ?? []).map((x) => ({ reason: num(x.reason), count: num(x.count) })),
    periodEndMs: num(m.periodEndMs),
    final: m.final === true,
  }));
}

export function decodeResult(bytes: Uint8Array): Decoded<StationResultV> {
  return decodeWith(decodeStationResult, bytes, "StationResult", (m) => ({
    electionId: str(m.electionId),
    stationId: str(m.stationId),
    electionSha256: hex(m.electionSha256),
    openedMs: num(m.openedMs),
    closedMs: num(m.closedMs),
    ballotsCounted: num(m.ballotsCounted),
    ballotsRejected: num(m.ballotsRejected),
    contests: (m.contests ?? []).map((c) => ({ contestId: str(c.contestId), votes: (c.votes ?? []).map(num), blank: num(c.blank), invalid: num(c.invalid) })),
    verifiedVoters: num(m.verifiedVoters),
    verifiedVotersKnown: m.verifiedVotersKnown === true,
  }));
}

export function decodeAlarm(bytes: Uint8Array): Decoded<PowerAlarmV> {
  return decodeWith(decodePowerAlarm, bytes, "PowerAlarm", (m) => ({
    kind: num(m.kind),
    active: m.active === true,
    batteryMv: num(m.batteryMv),
    stateOfChargePermille: num(m.stateOfChargePermille),
    temperatureDecic: num(m.temperatureDecic),
    chargerFaults: num(m.chargerFaults),
    chargeMode: num(m.chargeMode),
  }));
}

/** The payload of a stored Record's bytes (they parsed at ingest; a failure here is reported as such). */
export function recordPayload(bytes: Uint8Array): Decoded<Uint8Array> {
  try {
    return { ok: true, value: readRecord(bytes).payload };
  } catch (e) {
    return { ok: false, error: `Record does not decode: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** "finger-mismatch" for REJECT_REASON_FINGER_MISMATCH (3); "reason-12" for a value this build does not know. */
export function rejectReasonName(reason: number): string {
  for (const [name, v] of Object.entries(RejectReason)) if (v === reason) return name.toLowerCase().replace(/_/g, "-");
  return `reason-${reason}`;
}

export function sumVotes(c: ContestResultV): number {
  let n = c.blank + c.invalid;
  for (const v of c.votes) n += v;
  return n;
}
