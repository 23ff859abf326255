// Station kit: one polling station's election day on the simulator, as reusable parts (Node only,
// not firmware). Used by the end-to-end election-day test, the demo and the reliability suite.
//
// COMMISSION
//   createCommission({ nowMs?, technicianId?, site?, validDays? }) -> Commission
//     .key (P256Key), .publicKey (X || Y), .publicKeyHex, .technician (a Technician whose token
//     is valid from nowMs - 1 day for validDays, default 30), .issueTechnician({...}) for others
//     (e.g. an expired token: { notBefore, expires } in the past).
//   Technician: .id .key .token .site .notBefore .expires; .issuedMs(now) (strictly increasing,
//     as the device demands); .sign(command, deviceId, now) -> Command with id and authority;
//     .commandJson(command, deviceId, now) -> the control API's JSON form of it;
//     .transferBegin(deviceId, kind, data, name, now) -> { id, authority } (sendTransfer `begin`);
//     .controlBegin(...) -> the same as TransferBeginAuthority (base64, control API).
//
// STATION DATA
//   buildStation({ commission, stationId, electionId, voters, fingerprintsDir?, contests?, ... })
//     -> Station: .voters (KitVoter: id, registerIso, cardTemplate, live, impostor, card), .outsider
//     (a genuine voter with a card who is NOT on the register), .supervisorId/.supervisorCard,
//     .registerArtifact / .electionArtifact / .configurationArtifact (encoded SignedArtifacts
//     signed by the commission; the configuration names the station and site: load it first, a
//     fresh RAD refuses an election definition while it has no station),
//     .register / .definition (their bodies), .ballot(choices, serial?) -> SimBallot,
//     .expectedTally(ballots) -> per-contest votes/blank/invalid, .secrets() -> every voter id
//     and template byte string (for privacy scans).
//   Prints are real FVC2002 minutiae (simulator/data/fingerprints/fvc2002): per
//   voter impression 1 goes on the register, impression 2 on the card (compact format), a later
//   impression that the matcher accepts against both is the live finger; the impostor is another
//   person's finger that matches neither.
//
// DEVICES
//   new StationDevice({ serial, role, commissionKey, clock?, pacer?, wallMs?, hostLink?, sim? })
//     .start() (power on, booted), .powerCut(), .restart(), .fw, .sd (SimDevice), .screens,
//     .lastScreen(), .waitScreen(match, { after?, timeoutMs? }), .press(button), .wire (every byte
//     the device wrote to its host link), .plug(agent) / .unplug() (in-process link to an Agent),
//     .waitOnline(agent), .waitRebooted(boots), .loadDirect(kind, bytes) (through the firmware's
//     transfer receiver),
//     .pollsState().
//   VVD: .openPollsVvd(supervisorCard), .presentVoter(card, prints) -> VoterOutcome,
//     .closePollsVvd(supervisorCard), .turnout().
//   RAD: .openPollsRad(), .feed(ballots) -> { accepted, diverted }, .closePollsRad() -> StationResult,
//     .tallyCounts(), .waitVoucher(), .voucherText().
//   uploadThroughAgent({ agent } | { controlUrl }, deviceId, kind, bytes, { technician?, name?, now? })
//     -> { ok, error?, outcome? }: the technician's upload (signed TransferBegin, or unsigned when
//     technician is null), over the agent's session or its control API.
//
// TIME
//   Pacer: realPacer() (default), virtualPacer(clock) (the scenario advances a VirtualClock in
//   steps, letting the event loop run between them: device-only scenarios), or
//   tickingPacer(clock, { speed }) (a VirtualClock ticking in the background at `speed` x real
//   time without jumps when the host stalls: devices next to real agents, broker, console; robust
//   on a loaded machine). until(pacer, cond, timeoutMs, what).
//
// PRIVACY
//   tapLink(link, onWrite) wraps a device's ByteLink; scanForSecrets(chunks, secrets) decodes the
//   frames in the bytes the device wrote and reports any voter id or any 12-byte window of a
//   template found in them (raw bytes, console text and decoded frame payloads).

import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { P256Key } from "../../host/commission/keys.ts";
import { createCommissionKey, technicianKey } from "../../host/commission/keys.ts";
import { issueToken, signArtifact } from "../../host/commission/artifacts.ts";
import { authorize, commandToJson, signedCommandId } from "../../host/commission/authorize.ts";
import type { Agent } from "../../host/agent/agent.ts";
import { memoryHostLink } from "../../host/link/memory_host_link.ts";
import type { HostLink } from "../../host/link/host_link.ts";
import { sendTransfer, type TransferOutcome } from "../../host/session/transfer.ts";
import { ControlClient } from "../../host/cli/client.ts";
import { TRANSFER_KINDS, type TransferBeginAuthority, type TransferKindName } from "../../host/control/api.ts";
import { parseTemplate, parseCompactCard, encodeCompactCard } from "../../device/biometrics/iso19794.ts";
import { Matcher, prepare, prepareProbe, type Prepared } from "../../device/biometrics/matcher.ts";
import type { Firmware } from "../../device/core/firmware.ts";
import type { ButtonId, ByteLink, Screen } from "../../device/platform/platform.ts";
import { S_RECORDING, S_VERDICT } from "../../device/services/verification/flow.ts";
import { FrameDecoder } from "../../protocol/framing.ts";
import {
  ArtifactKind,
  PollsState,
  encodeElectionDefinition,
  encodeStationRegister,
  type Command,
  type CommandResult,
  type Contest,
  type ElectionDefinition,
  type StationRegister,
  type StationResult,
  type TurnoutCounts,
} from "../../protocol/generated/device_codec.ts";
import { SimDevice, type SimDeviceOptions } from "../device/sim_device.ts";
import { VoterCardModel } from "../models/voter_card.ts";
import type { SimBallot } from "../models/ballot_scanner.ts";
import type { VirtualClock } from "../clock/timers.ts";
import { createMemoryLink, type HostEnd } from "../links/memory_link.ts";
import { FVC2002_DIR } from "../data/fingerprints.ts";

export const DAY_MS = 86400000;
/** The repository's root (this file is simulator/scenario/station_kit.ts). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The FVC2002 minutiae (simulator/data/fingerprints). */
export { FVC2002_DIR };

// ---------------------------------------------------------------------------------------------
// Time

/** How a scenario lets time pass: real time, or a VirtualClock advanced in steps. */
export interface Pacer {
  readonly virtual: boolean;
  /** Monotonic milliseconds of this pacer's time. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export function realPacer(): Pacer {
  return {
    virtual: false,
    now: () => performance.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms))),
  };
}

/**
 * Advances `clock` by `stepMs` at a time, letting the event loop run (setImmediate) between
 * steps so that deferred links, agents and sockets keep up.
 */
export function virtualPacer(clock: VirtualClock, o: { stepMs?: number } = {}): Pacer {
  const step = o.stepMs ?? 10;
  return {
    virtual: true,
    now: () => clock.now(),
    sleep: async (ms) => {
      let left = Math.max(0, ms);
      do {
        const d = Math.min(step, left);
        clock.advance(d);
        left -= d;
        await new Promise<void>((r) => setImmediate(r));
      } while (left > 0);
    },
  };
}

/**
 * A VirtualClock driven in the background at `speed` times real time (default 1): every `tickMs`
 * of real time the clock advances by the real time elapsed times `speed`, but never by more than
 * 4 ticks' worth at once, so a stall of the host (a loaded machine, a slow disk) slows the
 * simulated devices down instead of making their time jump (a jump would expire the secure
 * element's watchdog, the link's resend timers... as no real device sees). For scenarios with real
 * host parts (agent, broker, console) next to simulated devices. stop() ends the ticking.
 */
export function tickingPacer(clock: VirtualClock, o: { speed?: number; tickMs?: number } = {}): Pacer & { stop(): void; readonly error: unknown } {
  const speed = o.speed ?? 1;
  const tick = o.tickMs ?? 5;
  let last = performance.now();
  let error: unknown = null;
  const timer = setInterval(() => {
    const t = performance.now();
    const dt = Math.min(t - last, 4 * tick);
    last = t;
    try {
      clock.advance(Math.max(1, Math.round(dt * speed)));
    } catch (e) {
      error = e;
      clearInterval(timer);
    }
  }, tick);
  timer.unref?.();
  return {
    virtual: true,
    get error() {
      return error;
    },
    now: () => clock.now(),
    sleep: async (ms) => {
      const end = clock.now() + Math.max(0, ms);
      while (clock.now() < end) {
        if (error !== null) throw error;
        await new Promise((r) => setTimeout(r, tick));
      }
    },
    stop: () => clearInterval(timer),
  };
}

/** Waits (in the pacer's time) until `cond` returns a value other than null/false/undefined. */
export async function until<T>(pacer: Pacer, cond: () => T | null | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const end = pacer.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== null && v !== undefined && v !== false) return v;
    if (pacer.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await pacer.sleep(pacer.virtual ? 10 : 15);
  }
}

// ---------------------------------------------------------------------------------------------
// Commission and technicians

export interface Technician {
  id: string;
  key: P256Key;
  token: Uint8Array;
  site: string;
  notBefore: number;
  expires: number;
  /** A fresh issued_ms near `now`, always above the last one given (the device refuses replays). */
  issuedMs(now?: number): number;
  /** The command with a fresh signed-command id and this technician's authority for `deviceId`. */
  sign(command: Command, deviceId: string, now?: number): Command;
  /** The same, in the agent control API's JSON form (ControlClient.command). */
  commandJson(command: Command, deviceId: string, now?: number): Record<string, unknown>;
  /** The authority of the TransferBegin sendTransfer will send for `data` (its `begin` option). */
  transferBegin(deviceId: string, kind: TransferKindName, data: Uint8Array, name: string, now?: number): { id: number; authority: Uint8Array };
  /** The same for the control API (POST /v1/devices/:id/transfer `begin`). */
  controlBegin(deviceId: string, kind: TransferKindName, data: Uint8Array, name: string, now?: number): TransferBeginAuthority;
}

export interface TechnicianSpec {
  technicianId?: string;
  /** A site id or "*" (default). */
  site?: string;
  notBefore?: number;
  expires?: number;
}

export interface Commission {
  key: P256Key;
  publicKey: Uint8Array;
  publicKeyHex: string;
  /** Valid around the wall time createCommission was given. */
  technician: Technician;
  issueTechnician(spec: TechnicianSpec): Technician;
}

function makeTechnician(commission: P256Key, spec: Required<TechnicianSpec>): Technician {
  const key = technicianKey();
  const token = issueToken(
    { technicianId: spec.technicianId, site: spec.site, notBefore: spec.notBefore, expires: spec.expires, technicianPublicKey: key.publicKey },
    commission,
  );
  let last = 0;
  const tech: Technician = {
    id: spec.technicianId,
    key,
    token,
    site: spec.site,
    notBefore: spec.notBefore,
    expires: spec.expires,
    issuedMs(now = Date.now()) {
      last = Math.max(Math.floor(now), last + 1);
      return last;
    },
    sign(command, deviceId, now) {
      const withId: Command = { ...command, id: signedCommandId() };
      return authorize(withId, deviceId, token, key, tech.issuedMs(now));
    },
    commandJson(command, deviceId, now) {
      return commandToJson(tech.sign(command, deviceId, now));
    },
    transferBegin(deviceId, kind, data, name, now) {
      const sha256 = new Uint8Array(createHash("sha256").update(data).digest());
      const c = tech.sign({ transferBegin: { kind: TRANSFER_KINDS[kind], totalBytes: data.length, sha256, name } }, deviceId, now);
      return { id: c.id ?? 0, authority: c.authority ?? new Uint8Array(0) };
    },
    controlBegin(deviceId, kind, data, name, now) {
      const b = tech.transferBegin(deviceId, kind, data, name, now);
      return { id: b.id, authorityBase64: Buffer.from(b.authority).toString("base64") };
    },
  };
  return tech;
}

/** A commission key and a technician whose token is valid around `nowMs` (default: now). */
export function createCommission(o: { nowMs?: number; technicianId?: string; site?: string; validDays?: number } = {}): Commission {
  const key = createCommissionKey();
  const now = o.nowMs ?? Date.now();
  const issueTechnician = (spec: TechnicianSpec): Technician => {
    const notBefore = spec.notBefore ?? now - DAY_MS;
    return makeTechnician(key, {
      technicianId: spec.technicianId ?? "tech-amal",
      site: spec.site ?? "*",
      notBefore,
      expires: spec.expires ?? notBefore + (o.validDays ?? 30) * DAY_MS,
    });
  };
  return {
    key,
    publicKey: key.publicKey,
    publicKeyHex: Buffer.from(key.publicKey).toString("hex"),
    technician: issueTechnician({ technicianId: o.technicianId, site: o.site }),
    issueTechnician,
  };
}

// ---------------------------------------------------------------------------------------------
// Voters, register, election

export interface KitVoter {
  id: string;
  /** ISO/IEC 19794-2 record on the register. */
  registerIso: Uint8Array;
  /** Compact card template (3 bytes per minutia) on the card. */
  cardTemplate: Uint8Array;
  /** The voter's own finger, as the sensor reads it (ISO record). */
  live: Uint8Array;
  /** Another person's finger (matches neither template). */
  impostor: Uint8Array;
  card: VoterCardModel;
}

export interface BuildStationOptions {
  commission: Commission;
  stationId: string;
  electionId: string;
  /** Voters on the register. */
  voters: number;
  /** A directory laid out like fvc2002 (DBn_B/<finger>_<impression>.iso). Default FVC2002_DIR. */
  fingerprintsDir?: string;
  /** Skip this many usable fingers first (several stations get different people). */
  skipFingers?: number;
  contests?: Contest[];
  electionName?: string;
  supervisorId?: string;
  exemptionCapPermille?: number;
  /** The site the configuration artifact names (technicians' tokens must name it or "*"). Default: the station id. */
  site?: string;
  /** Artifact versions (default 1) and issue time (default now - 1 day). */
  version?: number;
  issuedMs?: number;
  pollsOpenMs?: number;
  pollsCloseMs?: number;
}

/** One choice per contest: an option index, several (multi-mark or over-vote), or null (blank). */
export type BallotChoice = number | number[] | null;

export interface ContestTally {
  contestId: string;
  votes: number[];
  blank: number;
  invalid: number;
}

export interface Station {
  stationId: string;
  electionId: string;
  voters: KitVoter[];
  /** Has a genuine card and finger, but is not on this station's register. */
  outsider: KitVoter;
  supervisorId: string;
  supervisorCard: VoterCardModel;
  register: StationRegister;
  definition: ElectionDefinition;
  site: string;
  /** Encoded SignedArtifacts, signed by the commission. */
  registerArtifact: Uint8Array;
  electionArtifact: Uint8Array;
  /** The device configuration (`station=`, `site=`): gives a fresh device its station. */
  configurationArtifact: Uint8Array;
  /** A paper ballot for the scanner; serials run ST-...-B0001, B0002, ... unless given. */
  ballot(choices: BallotChoice[], serial?: string): SimBallot;
  /** What the tally must show for these (accepted, distinct) ballots. */
  expectedTally(ballots: SimBallot[]): ContestTally[];
  /** What must never leave the verification device. */
  secrets(): { ids: string[]; templates: Uint8Array[] };
}

export const DEFAULT_CONTESTS: Contest[] = [
  { id: "parliament", name: "Council of Representatives", options: ["List A", "List B", "List C"] },
  { id: "council", name: "Governorate Council", options: ["Ann", "Bob", "Cid", "Dee", "Eve"], maxMarks: 2 },
];

/** The compact card format's area (0.1 mm units up to 25.5 mm at 197 px/cm), as flow.ts reads it. */
const CARD_AREA_PX = 503;
const kitMatcher = new Matcher({});

function readIso(dir: string, db: string, finger: number, impression: number): Uint8Array | null {
  const f = join(dir, db, `${finger}_${impression}.iso`);
  return existsSync(f) ? new Uint8Array(readFileSync(f)) : null;
}

function prepEnrolled(iso: Uint8Array): Prepared | null {
  const t = parseTemplate(iso).template;
  return t ? prepare(t) : null;
}

function prepLive(iso: Uint8Array): Prepared | null {
  const t = parseTemplate(iso).template;
  return t ? prepareProbe(t) : null;
}

function voterId(n: number): string {
  // Looks like a national id; distinctive enough that finding it in a frame is no accident.
  return `IQ-${String(19700000 + n * 7919)}-${String.fromCharCode(65 + (n % 26))}${String(n).padStart(3, "0")}`;
}

/** `count` voters from real prints (see the header); throws when the data has too few. */
export function pickVoters(count: number, dir: string = FVC2002_DIR, skip = 0): KitVoter[] {
  if (!existsSync(dir)) throw new Error(`fingerprint data not found: ${dir}`);
  const dbs = readdirSync(dir)
    .filter((d) => /^DB\d+_[AB]$/.test(d))
    .sort();
  if (dbs.length === 0) throw new Error(`no FVC databases (DBn_B) in ${dir}`);
  const out: KitVoter[] = [];
  let skipped = 0;
  for (let d = 0; d < dbs.length && out.length < count; d++) {
    for (let f = 101; f <= 110 && out.length < count; f++) {
      const reg = readIso(dir, dbs[d], f, 1);
      const cardIso = readIso(dir, dbs[d], f, 2);
      if (!reg || !cardIso) continue;
      const pr = prepEnrolled(reg);
      const cardT = parseTemplate(cardIso).template;
      if (!pr || !cardT) continue;
      const cardTemplate = encodeCompactCard(cardT);
      const ct = parseCompactCard(cardTemplate, CARD_AREA_PX, CARD_AREA_PX).template;
      if (!ct) continue;
      const pc = prepare(ct);
      let live: Uint8Array | null = null;
      for (let k = 3; k <= 8 && live === null; k++) {
        const l = readIso(dir, dbs[d], f, k);
        const pl = l ? prepLive(l) : null;
        if (l && pl && kitMatcher.matches(pr, pl) && kitMatcher.matches(pc, pl)) live = l;
      }
      if (live === null) continue;
      let impostor: Uint8Array | null = null;
      for (let g = 101; g <= 110 && impostor === null; g++) {
        const odb = dbs[(d + 1) % dbs.length];
        if (g === f && odb === dbs[d]) continue;
        const l = readIso(dir, odb, g, 3);
        const pl = l ? prepLive(l) : null;
        if (l && pl && !kitMatcher.matches(pr, pl) && !kitMatcher.matches(pc, pl)) impostor = l;
      }
      if (impostor === null) continue;
      if (skipped < skip) {
        skipped++;
        continue;
      }
      const id = voterId(skip + out.length + 1);
      out.push({ id, registerIso: reg, cardTemplate, live, impostor, card: new VoterCardModel({ kind: "voter", id, template: cardTemplate }) });
    }
  }
  if (out.length < count) throw new Error(`fingerprint data: only ${out.length} usable voters in ${dir} (wanted ${count})`);
  return out;
}

export function buildStation(o: BuildStationOptions): Station {
  const people = pickVoters(o.voters + 1, o.fingerprintsDir ?? FVC2002_DIR, o.skipFingers ?? 0);
  const voters = people.slice(0, o.voters);
  const outsider = people[o.voters];
  const supervisorId = o.supervisorId ?? `SUP-${o.stationId}-01`;
  const issuedMs = o.issuedMs ?? Date.now() - DAY_MS;
  const version = o.version ?? 1;
  const contests = o.contests ?? DEFAULT_CONTESTS;
  const register: StationRegister = {
    stationId: o.stationId,
    electionId: o.electionId,
    voters: voters.map((v) => ({ voterId: v.id, template: v.registerIso })),
    exemptionCapPermille: o.exemptionCapPermille ?? 50,
    supervisorCards: [supervisorId],
  };
  const definition: ElectionDefinition = {
    electionId: o.electionId,
    name: o.electionName ?? `Election ${o.electionId}`,
    stationId: o.stationId,
    contests,
    registerSize: o.voters,
  };
  if (o.pollsOpenMs !== undefined) definition.pollsOpenMs = o.pollsOpenMs;
  if (o.pollsCloseMs !== undefined) definition.pollsCloseMs = o.pollsCloseMs;
  const registerArtifact = signArtifact(
    { kind: ArtifactKind.STATION_REGISTER, stationId: o.stationId, electionId: o.electionId, version, issuedMs, body: encodeStationRegister(register) },
    o.commission.key,
  );
  const electionArtifact = signArtifact(
    { kind: ArtifactKind.ELECTION_DEFINITION, stationId: o.stationId, electionId: o.electionId, version, issuedMs, body: encodeElectionDefinition(definition) },
    o.commission.key,
  );
  const site = o.site ?? o.stationId;
  const configurationArtifact = signArtifact(
    {
      kind: ArtifactKind.CONFIGURATION,
      stationId: o.stationId,
      version,
      issuedMs,
      body: new Uint8Array(Buffer.from(`# pollkit device configuration\nstation=${o.stationId}\nsite=${site}\n`, "utf8")),
    },
    o.commission.key,
  );
  let serialNo = 0;
  return {
    stationId: o.stationId,
    electionId: o.electionId,
    site,
    configurationArtifact,
    voters,
    outsider,
    supervisorId,
    supervisorCard: new VoterCardModel({ kind: "supervisor", id: supervisorId }),
    register,
    definition,
    registerArtifact,
    electionArtifact,
    ballot(choices, serial) {
      if (choices.length !== contests.length) throw new Error(`a ballot of this election has ${contests.length} contests, not ${choices.length}`);
      const s = serial ?? `${o.stationId}-B${String(++serialNo).padStart(4, "0")}`;
      return { serial: s, marks: choices.map((c) => (c === null ? [] : typeof c === "number" ? [c] : [...c])) };
    },
    expectedTally(ballots) {
      const out: ContestTally[] = contests.map((c) => ({ contestId: c.id ?? "", votes: (c.options ?? []).map(() => 0), blank: 0, invalid: 0 }));
      for (const b of ballots) {
        contests.forEach((c, i) => {
          const marks = [...new Set(b.marks[i] ?? [])];
          const max = c.maxMarks && c.maxMarks > 0 ? c.maxMarks : 1;
          if (marks.length === 0) out[i].blank++;
          else if (marks.length > max || marks.some((m) => m < 0 || m >= (c.options ?? []).length)) out[i].invalid++;
          else for (const m of marks) out[i].votes[m]++;
        });
      }
      return out;
    },
    secrets() {
      const all = [...voters, outsider];
      return { ids: [...all.map((v) => v.id), supervisorId], templates: all.flatMap((v) => [v.registerIso, v.cardTemplate]) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Devices

export type ScreenMatch = string | RegExp | ((s: Screen) => boolean);

function screenMatches(s: Screen, m: ScreenMatch): boolean {
  if (typeof m === "string") return s.key === m;
  if (m instanceof RegExp) return m.test(s.key);
  return m(s);
}

export interface StationDeviceOptions {
  serial: string;
  role: "verification" | "result";
  /** The commission's public key (X || Y) provisioned into the device. */
  commissionKey: Uint8Array;
  /** Virtual time for the device (and a virtualPacer by default); real time when absent. */
  clock?: VirtualClock;
  pacer?: Pacer;
  /** Battery-backed wall clock at power-on (default Date.now()). */
  wallMs?: number;
  /** The device's link to a host; default an in-process link, unplugged until plug(). */
  hostLink?: ByteLink;
  healthIntervalMs?: number;
  /** Any other SimDevice option. */
  sim?: Partial<SimDeviceOptions>;
}

export interface VoterOutcome {
  /** The final screen key: "verify.verified" or "verify.rejected.<reason>" (or another terminal screen). */
  verdict: string;
  verified: boolean;
  /** Finger captures asked for. */
  attempts: number;
  /** Every screen shown for this voter, in order. */
  screens: Screen[];
}

const TERMINAL_VOTER = /^(verify\.verified|verify\.exempted|verify\.rejected\.|verify\.error\.|polls\.not_open|verify\.supervisor_card)/;

export class StationDevice {
  readonly sd: SimDevice;
  readonly pacer: Pacer;
  readonly screens: Screen[] = [];
  readonly logs: string[] = [];
  /** Every chunk the device wrote to its host link (raw frame bytes), across boots. */
  readonly wire: Uint8Array[] = [];
  readonly serial: string;
  readonly role: "verification" | "result";
  /** The host end of the default in-process link (null when a hostLink was given). */
  readonly hostEnd: HostEnd | null;
  link: (HostLink & { unplug(): void }) | null = null;

  constructor(o: StationDeviceOptions) {
    this.serial = o.serial;
    this.role = o.role;
    this.pacer = o.pacer ?? (o.clock ? virtualPacer(o.clock) : realPacer());
    let link = o.hostLink;
    if (link === undefined) {
      const m = createMemoryLink({ deferred: true });
      m.host.setConnected(false);
      this.hostEnd = m.host;
      link = m.device;
    } else this.hostEnd = null;
    const tapped = tapLink(link, (d) => this.wire.push(d.slice()));
    this.sd = new SimDevice({
      serial: o.serial,
      role: o.role,
      hostLink: tapped,
      clock: o.clock,
      wallMs: o.wallMs ?? Date.now(),
      commissionKey: o.commissionKey,
      healthIntervalMs: o.healthIntervalMs,
      ...o.sim,
      onScreen: (s) => {
        this.screens.push(s);
        o.sim?.onScreen?.(s);
      },
      onLog: (l) => {
        this.logs.push(l);
        if (this.logs.length > 2000) this.logs.splice(0, 1000);
        o.sim?.onLog?.(l);
      },
    });
  }

  get fw(): Firmware {
    const f = this.sd.firmware;
    if (f === null) throw new Error(`${this.serial} is not running`);
    return f;
  }

  /** Powers on and waits until the firmware has booted. */
  async start(): Promise<void> {
    let done = false;
    this.sd.powerOn(undefined, () => {
      done = true;
    });
    await until(this.pacer, () => done && this.sd.firmware !== null && this.sd.firmware.started, 20000, `${this.serial} boots`);
    if (this.fw.publicKey.length !== 64) throw new Error(`${this.serial} booted without its identity key: ${this.logs.slice(-5).join(" | ")}`);
  }

  /** The power goes (RAM lost, flash kept). */
  powerCut(): void {
    if (this.sd.running) this.sd.powerOff();
  }

  /** Power cut, then power on. */
  async restart(): Promise<void> {
    this.powerCut();
    await this.start();
  }

  /** Waits until a firmware-initiated reboot (command, update) has brought the device back. */
  async waitRebooted(bootsBefore: number, timeoutMs = 20000): Promise<void> {
    await until(this.pacer, () => this.sd.boots > bootsBefore && this.sd.firmware !== null && this.sd.firmware.started, timeoutMs, `${this.serial} reboots`);
  }

  /** Plugs the default in-process link into an agent (as a USB cable into the agent's PC). */
  plug(agent: Agent): void {
    if (this.hostEnd === null) throw new Error(`${this.serial} has its own host link`);
    if (this.link) return;
    this.hostEnd.setConnected(true);
    this.link = memoryHostLink(this.hostEnd, `mem:${this.serial}`);
    agent.attach(this.link);
  }

  unplug(): void {
    this.link?.unplug();
    this.link = null;
  }

  /** Waits until the agent has a ready session with this device. */
  async waitOnline(agent: Agent, timeoutMs = 15000): Promise<void> {
    await until(this.pacer, () => agent.devices().some((d) => d.deviceId === this.serial && d.state === "ready"), timeoutMs, `${this.serial} online at the agent`);
  }

  lastScreen(): Screen | null {
    return this.screens.length > 0 ? this.screens[this.screens.length - 1] : null;
  }

  /** The first screen at index >= `after` (default: from now on) that matches. */
  async waitScreen(match: ScreenMatch, o: { after?: number; timeoutMs?: number } = {}): Promise<Screen> {
    const from = o.after ?? this.screens.length;
    let found: Screen | null = null;
    await until(
      this.pacer,
      () => {
        for (let i = from; i < this.screens.length; i++) {
          if (screenMatches(this.screens[i], match)) {
            found = this.screens[i];
            return true;
          }
        }
        return false;
      },
      o.timeoutMs ?? 15000,
      `${this.serial} shows ${String(match)} (last: ${this.lastScreen()?.key ?? "none"})`,
    );
    return found as unknown as Screen;
  }

  press(b: ButtonId): void {
    const p = this.sd.platform;
    if (p === null) throw new Error(`${this.serial} is not running`);
    p.press(b);
  }

  pollsState(): number {
    return this.fw.pollsState();
  }

  /**
   * Loads a signed artifact straight through the firmware's transfer receiver (as a bench
   * loader would, without a technician's authority on the begin); the artifact itself is still
   * checked against the commission key. Resolves with the receiver's final CommandResult.
   */
  async loadDirect(kind: "station-data" | "election-definition" | "configuration", bytes: Uint8Array, name = "kit"): Promise<CommandResult> {
    const rx = this.fw.transfer;
    const sha256 = new Uint8Array(createHash("sha256").update(bytes).digest());
    const b = rx.begin({ kind: TRANSFER_KINDS[kind], totalBytes: bytes.length, sha256, name }, "kit");
    if ((b.status ?? 0) !== 0) return b;
    for (let off = 0; off < bytes.length; off += 1024) {
      const c = rx.chunk({ offset: off, data: bytes.subarray(off, Math.min(bytes.length, off + 1024)) });
      if ((c.status ?? 0) !== 0) return c;
    }
    let out: CommandResult | null = null;
    rx.finish(new Uint8Array(0), (r) => {
      out = r;
    });
    await until(this.pacer, () => out !== null, 20000, `${this.serial} checks the ${kind}`);
    return out as unknown as CommandResult;
  }

  // ---- verification device ----

  private vvd(): NonNullable<Firmware["verification"]> {
    const v = this.fw.verification;
    if (v === null) throw new Error(`${this.serial} is not a verification device with its role loaded`);
    return v;
  }

  /** A supervisor action on the VVD: the supervisor button, their card, ok. */
  private async supervisorAction(card: VoterCardModel, confirmKey: string, doneKey: ScreenMatch): Promise<void> {
    const reader = this.sd.cardReader;
    if (reader === null) throw new Error(`${this.serial} has no card reader`);
    const mark = this.screens.length;
    this.press("supervisor");
    await this.waitScreen("supervisor.present_card", { after: mark, timeoutMs: 5000 });
    reader.place(card);
    const shown = await this.waitScreen((s) => s.key === confirmKey || s.key === "supervisor.denied", { after: mark, timeoutMs: 10000 });
    if (shown.key !== confirmKey) {
      reader.place(null);
      throw new Error(`${this.serial}: supervisor card refused (${shown.key})`);
    }
    const m2 = this.screens.length;
    this.press("ok");
    await this.waitScreen(doneKey, { after: m2, timeoutMs: 15000 });
    reader.place(null);
    await this.pacer.sleep(this.pacer.virtual ? 600 : 300);
  }

  /** Opens the polls on the VVD (register loaded: READY). */
  async openPollsVvd(supervisorCard: VoterCardModel): Promise<void> {
    await this.supervisorAction(supervisorCard, "supervisor.confirm_open", "verify.present_card");
    if (this.vvd().state() !== PollsState.OPEN) throw new Error(`${this.serial}: polls did not open`);
  }

  /** Closes the polls on the VVD; resolves once the signed turnout report is journalled. */
  async closePollsVvd(supervisorCard: VoterCardModel): Promise<TurnoutCounts> {
    await this.supervisorAction(supervisorCard, "supervisor.confirm_close", "polls.closed");
    await until(this.pacer, () => this.vvd().state() === PollsState.CLOSED, 10000, `${this.serial} polls closed`);
    return this.vvd().counts();
  }

  /** The VVD's turnout counters now (counts only). */
  turnout(): TurnoutCounts {
    return this.vvd().counts();
  }

  /**
   * One voter at the table: the card is placed, for each capture asked the next print of
   * `prints` is given (the last one again when they run out; none: nobody touches the sensor),
   * the verdict is read, the card taken away and the device brought back to its idle screen.
   */
  async presentVoter(card: VoterCardModel, prints: Uint8Array[], o: { timeoutMs?: number } = {}): Promise<VoterOutcome> {
    const reader = this.sd.cardReader;
    const sensor = this.sd.fingerprint;
    if (reader === null || sensor === null) throw new Error(`${this.serial} is not a verification device`);
    const timeoutMs = o.timeoutMs ?? 30000;
    const start = this.screens.length;
    let at = start;
    let attempts = 0;
    reader.place(card);
    let verdict: Screen | null = null;
    while (verdict === null) {
      const s = await this.waitScreen((x) => x.key === "verify.present_finger" || TERMINAL_VOTER.test(x.key), { after: at, timeoutMs });
      at = this.screens.indexOf(s, at) + 1;
      if (s.key === "verify.present_finger") {
        attempts++;
        if (prints.length > 0) sensor.present({ iso: prints[Math.min(attempts - 1, prints.length - 1)] });
        else sensor.present({ fault: "no-finger" });
        continue;
      }
      verdict = s;
    }
    reader.place(null);
    // The verdict stays up for verdictMs; staff press ok once it is recorded (S_VERDICT).
    const flow = this.vvd().flow;
    await until(this.pacer, () => flow.state === S_VERDICT || flow.state !== S_RECORDING, timeoutMs, `${this.serial} records the voter`);
    const mark = this.screens.length;
    if (flow.state === S_VERDICT) this.press("ok");
    await this.waitScreen((x) => x.key === "verify.present_card" || x.key.startsWith("polls."), { after: mark, timeoutMs });
    const finalKey = (verdict as Screen).key;
    return { verdict: finalKey, verified: finalKey === "verify.verified", attempts, screens: this.screens.slice(start) };
  }

  // ---- result acceleration device ----

  private rad(): NonNullable<Firmware["tally"]> {
    const t = this.fw.tally;
    if (t === null) throw new Error(`${this.serial} is not a result device with its role loaded`);
    return t;
  }

  /** Opens the polls on the RAD (election loaded: READY): the supervisor key. */
  async openPollsRad(): Promise<void> {
    const mark = this.screens.length;
    this.press("supervisor");
    const s = await this.waitScreen(/^tally\./, { after: mark, timeoutMs: 5000 });
    if (s.key !== "tally.polls_open") throw new Error(`${this.serial}: polls did not open (${s.key} ${JSON.stringify(s.params)})`);
  }

  /** Closes the polls on the RAD; resolves with the signed station result once journalled. */
  async closePollsRad(): Promise<StationResult> {
    const mark = this.screens.length;
    this.press("supervisor");
    const s = await this.waitScreen(/^tally\./, { after: mark, timeoutMs: 15000 });
    if (s.key !== "tally.polls_closed") throw new Error(`${this.serial}: polls did not close (${s.key} ${JSON.stringify(s.params)})`);
    const r = this.rad().result();
    if (r === null) throw new Error(`${this.serial}: no result after close`);
    return r;
  }

  /**
   * Puts ballots in the scanner's feeder and waits until each has an answer; returns the serials
   * accepted (ACK) and diverted to the reject bin (NAK reason) by this call.
   */
  async feed(ballots: SimBallot[], o: { timeoutMs?: number } = {}): Promise<{ accepted: string[]; diverted: { serial: string; reason: number }[] }> {
    const sc = this.sd.scanner;
    if (sc === null) throw new Error(`${this.serial} has no ballot scanner`);
    const a0 = sc.accepted.length;
    const d0 = sc.diverted.length;
    const f0 = sc.failed.length;
    sc.feed(ballots);
    await until(this.pacer, () => sc.idle(), o.timeoutMs ?? 30000, `${this.serial} scans ${ballots.length} ballots`);
    if (sc.failed.length > f0) throw new Error(`${this.serial}: the scanner gave up on ${sc.failed.slice(f0).join(", ")}`);
    return {
      accepted: sc.accepted.slice(a0).map((x) => x.serial),
      diverted: sc.diverted.slice(d0).map((x) => ({ serial: x.serial, reason: x.reason })),
    };
  }

  /** Ballots counted and rejected so far. */
  tallyCounts(): { counted: number; rejected: number } {
    return this.rad().counts();
  }

  /** Waits until at least `count` receipts (default 1) have been printed and cut; returns every receipt's text. */
  async waitVoucher(o: { count?: number; timeoutMs?: number } = {}): Promise<string[][]> {
    const p = this.sd.printer;
    if (p === null) throw new Error(`${this.serial} has no printer`);
    await until(this.pacer, () => p.cutReceipts().length >= (o.count ?? 1), o.timeoutMs ?? 20000, `${this.serial} prints the voucher`);
    return this.voucherText();
  }

  /** The printed receipts' text, one array of lines per receipt. */
  voucherText(): string[][] {
    const p = this.sd.printer;
    if (p === null) throw new Error(`${this.serial} has no printer`);
    return p.receipts.map((_r, i) => p.text(i));
  }
}

// ---------------------------------------------------------------------------------------------
// Uploads through the agent, as a technician does them

export type AgentTarget = { agent: Agent } | { controlUrl: string };

export interface UploadResult {
  ok: boolean;
  /** Why it failed (the device's or the agent's words). */
  error?: string;
  outcome?: TransferOutcome;
}

/**
 * Uploads a signed artifact through the agent with the technician's signed TransferBegin (as
 * `pollkit upload` does), or unsigned when `technician` is null. Over the agent's device session
 * ({ agent }) or its control API ({ controlUrl }).
 */
export async function uploadThroughAgent(
  target: AgentTarget,
  deviceId: string,
  kind: TransferKindName,
  data: Uint8Array,
  o: { technician: Technician | null; name?: string; now?: number },
): Promise<UploadResult> {
  const name = o.name ?? `${kind}.bin`;
  try {
    if ("agent" in target) {
      const session = target.agent.session(deviceId);
      if (session === null) return { ok: false, error: `${deviceId} is not connected to the agent` };
      const begin = o.technician ? o.technician.transferBegin(deviceId, kind, data, name, o.now) : undefined;
      const outcome = await sendTransfer(session, { kind: TRANSFER_KINDS[kind], data, name, begin });
      return { ok: true, outcome };
    }
    const client = new ControlClient(target.controlUrl);
    const begin = o.technician ? o.technician.controlBegin(deviceId, kind, data, name, o.now) : undefined;
    const end = await client.transfer(deviceId, { kind, name, data, begin });
    if (!end.ok) return { ok: false, error: "aborted" };
    return { ok: true, outcome: end.outcome };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

// ---------------------------------------------------------------------------------------------
// Privacy

/** A ByteLink whose writes (device -> host) are also handed to `onWrite`. */
export function tapLink(link: ByteLink, onWrite: (data: Uint8Array) => void): ByteLink {
  return {
    write: (d) => {
      onWrite(d);
      link.write(d);
    },
    onData: (cb) => link.onData(cb),
    onConnection: (cb) => link.onConnection(cb),
  };
}

export interface PrivacyFinding {
  what: "voter-id" | "template";
  where: "raw" | "console" | "frame";
  /** Which id, or which template (index in secrets.templates) and window offset. */
  detail: string;
}

export interface PrivacyScan {
  bytes: number;
  frames: number;
  consoleLines: number;
  findings: PrivacyFinding[];
}

/** Every `windowBytes`-byte window of every template, keyed by its hex. */
function templateWindows(templates: Uint8Array[], windowBytes: number): Map<string, string> {
  const m = new Map<string, string>();
  templates.forEach((t, i) => {
    for (let k = 0; k + windowBytes <= t.length; k++) {
      const key = Buffer.from(t.subarray(k, k + windowBytes)).toString("hex");
      if (!m.has(key)) m.set(key, `template ${i} offset ${k}`);
    }
  });
  return m;
}

function scanBytes(bytes: Uint8Array, ids: Buffer[], idNames: string[], windows: Map<string, string>, windowBytes: number, where: PrivacyFinding["where"], out: PrivacyFinding[]): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  ids.forEach((id, i) => {
    if (buf.indexOf(id) >= 0) out.push({ what: "voter-id", where, detail: idNames[i] });
  });
  for (let k = 0; k + windowBytes <= buf.length; k++) {
    const hit = windows.get(buf.toString("hex", k, k + windowBytes));
    if (hit !== undefined) {
      out.push({ what: "template", where, detail: `${hit} at byte ${k}` });
      k += windowBytes - 1;
    }
  }
}

/**
 * Looks for any voter id (as UTF-8) and any `windowBytes`-byte window (default 12) of any
 * template in what a device wrote: the raw stream, its console lines, and every frame's decoded
 * payload (an encoded Envelope: records, health, command results...).
 */
export function scanForSecrets(chunks: Uint8Array[], secrets: { ids: string[]; templates: Uint8Array[] }, o: { windowBytes?: number } = {}): PrivacyScan {
  const windowBytes = o.windowBytes ?? 12;
  const windows = templateWindows(secrets.templates, windowBytes);
  const ids = secrets.ids.map((s) => Buffer.from(s, "utf8"));
  const findings: PrivacyFinding[] = [];
  let total = 0;
  for (const c of chunks) total += c.length;
  const raw = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    raw.set(c, at);
    at += c.length;
  }
  scanBytes(raw, ids, secrets.ids, windows, windowBytes, "raw", findings);
  let frames = 0;
  let consoleLines = 0;
  const dec = new FrameDecoder({
    onFrame: (payload) => {
      frames++;
      scanBytes(payload, ids, secrets.ids, windows, windowBytes, "frame", findings);
    },
    onConsole: (text) => {
      consoleLines++;
      scanBytes(new Uint8Array(Buffer.from(text, "utf8")), ids, secrets.ids, windows, windowBytes, "console", findings);
    },
    onError: () => {},
  });
  dec.pushBytes(raw);
  return { bytes: total, frames, consoleLines, findings };
}
