// Test rig for the verification service (no tests of its own): one simulated verification
// device built from real parts: one NOR flash chip (SimFlash, power cuts) shared by the firmware
// journal and the data flash, the real Journal and Recorder, the ATECC608 model and driver for
// signatures, the PN532 model and driver with commission cards, the fingerprint module model and
// driver, the real matcher, and real FVC2002 minutiae. Boots, power cuts and reboots on a virtual
// clock.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ButtonId, Flash, Platform, Screen } from "../../platform/platform.ts";
import { partitionFlash } from "../../platform/flash_partition.ts";
import { Journal } from "../journal.ts";
import { Recorder, lastRecordSeq } from "../recorder.ts";
import { SecureElement } from "../../drivers/secure_element.ts";
import { Pn532 } from "../../drivers/pn532.ts";
import { FingerprintModule } from "../../drivers/fingerprint_module.ts";
import { parseTemplate, parseCompactCard, encodeCompactCard } from "../../biometrics/iso19794.ts";
import { Matcher, prepare, type Prepared } from "../../biometrics/matcher.ts";
import { VirtualClock, type SimTimers } from "../../../simulator/clock/timers.ts";
import { SimFlash, PowerCut, type FlashSnapshot } from "../../../simulator/models/flash.ts";
import { SimI2cBus } from "../../../simulator/models/i2c_bus.ts";
import { Atecc608Model } from "../../../simulator/models/atecc608.ts";
import { Pn532Model } from "../../../simulator/models/pn532.ts";
import { VoterCardModel } from "../../../simulator/models/voter_card.ts";
import { FingerprintModuleModel } from "../../../simulator/models/fingerprint_module.ts";
import {
  ArtifactKind,
  decodeRecord,
  encodeStationRegister,
  type Record as JournalRecord,
  type SignedArtifact,
} from "../../../protocol/generated/device_codec.ts";
import { VerificationService, type VerificationServiceOptions } from "./service.ts";
import { FVC2002_DIR } from "../../../simulator/data/fingerprints.ts";

export const FVC = FVC2002_DIR;
export const STATION = "ST-0417-03";
export const ELECTION = "GE-2027";
export const SUPERVISOR_ID = "SUP-55-ALPHA";
export const T0 = Date.UTC(2027, 3, 11, 6, 40, 0); // 06:40 UTC on election day

export function iso(db: string, finger: number, impression: number): Uint8Array {
  return new Uint8Array(readFileSync(join(FVC, db, `${finger}_${impression}.iso`)));
}

export const matcher = new Matcher({});

function prep(bytes: Uint8Array): Prepared {
  const t = parseTemplate(bytes);
  if (!t.template) throw new Error("test data: " + t.detail);
  return prepare(t.template);
}

/** A voter of the test register: id, register template, card template and a genuine live print. */
export interface TestVoter {
  id: string;
  register: Uint8Array;
  card: Uint8Array;
  live: Uint8Array;
  /** A print of another finger that matches neither the register nor the card template. */
  impostor: Uint8Array;
}

/**
 * Voters from real FVC2002 prints: per finger, impression 1 on the register, impression 2 on the
 * card, and a later impression that the matcher accepts against both as the live print.
 */
export function makeVoters(count: number): TestVoter[] {
  const out: TestVoter[] = [];
  const dbs = ["DB1_B", "DB2_B", "DB3_B", "DB4_B"];
  for (let d = 0; d < dbs.length && out.length < count; d++) {
    for (let f = 101; f <= 110 && out.length < count; f++) {
      const reg = iso(dbs[d], f, 1);
      const cardIso = iso(dbs[d], f, 2);
      const cardT = parseTemplate(cardIso).template;
      if (!cardT) continue;
      const card = encodeCompactCard(cardT);
      const pr = prep(reg);
      // The card's template as the device reads it (compact card format, see flow.ts).
      const pc = prepare(parseCompactCard(card, 503, 503).template!);
      let live: Uint8Array | null = null;
      for (let k = 3; k <= 8 && live === null; k++) {
        const l = iso(dbs[d], f, k);
        const pl = prep(l);
        if (matcher.matches(pr, pl) && matcher.matches(pc, pl)) live = l;
      }
      if (live === null) continue;
      let impostor: Uint8Array | null = null;
      for (let g = 101; g <= 110 && impostor === null; g++) {
        if (g === f) continue;
        const l = iso(dbs[(d + 1) % dbs.length], g, 3);
        const pl = prep(l);
        if (!matcher.matches(pr, pl) && !matcher.matches(pc, pl)) impostor = l;
      }
      if (impostor === null) continue;
      const n = out.length + 1;
      out.push({ id: `IQ-${String(19700000 + n * 7919)}-${String.fromCharCode(65 + (n % 26))}${n}`, register: reg, card, live, impostor });
    }
  }
  if (out.length < count) throw new Error(`test data: only ${out.length} usable voters`);
  return out;
}

export function registerArtifact(
  voters: { id: string; register: Uint8Array }[],
  opts: { station?: string; capPermille?: number; supervisors?: string[]; version?: number } = {},
): SignedArtifact {
  const station = opts.station ?? STATION;
  const body = encodeStationRegister({
    stationId: station,
    electionId: ELECTION,
    voters: voters.map((v) => ({ voterId: v.id, template: v.register })),
    exemptionCapPermille: opts.capPermille ?? 0,
    supervisorCards: opts.supervisors ?? [SUPERVISOR_ID],
  });
  return {
    kind: ArtifactKind.STATION_REGISTER,
    stationId: station,
    electionId: ELECTION,
    version: opts.version ?? 1,
    issuedMs: T0 - 86400000,
    body,
    signature: new Uint8Array(64), // verified upstream (device/services/authority.ts)
  };
}

export function voterCard(v: TestVoter): VoterCardModel {
  return new VoterCardModel({ kind: "voter", id: v.id, template: v.card });
}

export function supervisorCard(id = SUPERVISOR_ID): VoterCardModel {
  return new VoterCardModel({ kind: "supervisor", id });
}

export interface RigOptions {
  pageSize?: number;
  journalPages?: number;
  dataPages?: number;
  /** Start from this flash content (same geometry). */
  snapshot?: FlashSnapshot;
  service?: Partial<VerificationServiceOptions>;
}

/** One verification device; its flash, secure element, reader and sensor outlive reboots. */
export class Rig {
  readonly clock = new VirtualClock();
  readonly chip: SimFlash;
  readonly mainFlash: Flash;
  readonly roleLog: Flash;
  readonly bus = new SimI2cBus();
  readonly se: Atecc608Model;
  readonly pn: Pn532Model;
  readonly fp: FingerprintModuleModel;
  readonly hw: SimTimers;
  readonly opts: RigOptions;
  /** Everything the display showed, every boot. */
  readonly screens: Screen[] = [];
  readonly logs: string[] = [];
  boots = 0;
  timers!: SimTimers;
  journal!: Journal;
  recorder!: Recorder;
  svc!: VerificationService;
  private button: ((b: ButtonId) => void) | null = null;

  constructor(opts: RigOptions = {}) {
    this.opts = opts;
    const ps = opts.pageSize ?? 4096;
    const jp = opts.journalPages ?? 8;
    const dp = opts.dataPages ?? 40;
    this.chip = opts.snapshot ? SimFlash.fromSnapshot(opts.snapshot, 7) : new SimFlash({ pageSize: ps, pageCount: jp + dp, seed: 7 });
    this.mainFlash = partitionFlash(this.chip, 0, jp);
    this.roleLog = partitionFlash(this.chip, jp, dp);
    this.hw = this.clock.timers();
    this.se = new Atecc608Model({ now: () => this.clock.now() });
    this.bus.attach(0x60, this.se);
    this.pn = new Pn532Model({ now: () => this.clock.now() });
    this.bus.attach(0x24, this.pn);
    this.fp = new FingerprintModuleModel({ timers: this.hw });
    // The device key, made once at "manufacture".
    const se = new SecureElement({ bus: this.bus, timers: this.hw });
    let made = false;
    se.genKey(0, (err) => {
      if (err) throw new Error("genKey: " + err.message);
      made = true;
    });
    this.clock.advance(2000);
    if (!made) throw new Error("genKey did not finish");
  }

  wallMs(): number {
    return T0 + this.clock.now();
  }

  /** Powers the device on: fresh firmware objects over the same hardware. */
  boot(): void {
    this.boots++;
    this.timers = this.clock.timers();
    const timers = this.timers;
    const platform: Platform = {
      identity: { serial: "VVD-000417", hardwareModel: "pollkit-vvd-sim", role: 1 },
      timers,
      clock: { wallMs: () => this.wallMs(), setWallMs: () => {} },
      hostLink: { write: () => {}, onData: () => {}, onConnection: () => {} },
      i2c: this.bus,
      flash: this.mainFlash,
      dataFlash: this.roleLog,
      uarts: { fingerprint: this.fp.uart },
      display: { show: (s: Screen) => this.screens.push(s) },
      buttons: {
        onPress: (cb) => {
          this.button = cb;
        },
      },
      system: {
        resetCause: () => 1,
        reboot: () => {},
        enableWatchdog: () => {},
        kickWatchdog: () => {},
        freeMemory: () => 65536,
        random32: () => 4,
      },
      log: (t: string) => this.logs.push(t),
    };
    this.journal = new Journal({ flash: this.mainFlash });
    this.journal.open();
    const se = new SecureElement({ bus: this.bus, timers });
    this.recorder = new Recorder({
      journal: this.journal,
      clock: platform.clock,
      signer: (m, cb) => se.signMessage(0, m, cb),
      onAppended: () => {},
      prevSeq: lastRecordSeq(this.journal),
    });
    const recorder = this.recorder;
    this.svc = new VerificationService({
      platform,
      record: (kind, payload, cb) => recorder.record(kind, payload, cb),
      reader: new Pn532({ bus: this.bus, timers }),
      fingerprint: new FingerprintModule({ uart: this.fp.uart, timers, scanSeconds: 5 }),
      matcher,
      roleLog: this.roleLog,
      journal: this.journal,
      ...(this.opts.service ?? {}),
    });
    this.svc.start();
  }

  /** The power goes: every timer of this boot dies, volatile chip state is lost. */
  powerCut(): void {
    this.timers.cancelAll();
    this.button = null;
    this.chip.restorePower();
    this.se.powerCycle();
    this.fp.setConnected(false);
    this.fp.setConnected(true);
  }

  reboot(): void {
    this.powerCut();
    this.boot();
  }

  /** Advances time; a PowerCut thrown by the flash is returned instead of thrown. */
  run(ms: number): PowerCut | null {
    try {
      this.clock.advance(ms);
      return null;
    } catch (e) {
      if (e instanceof PowerCut) return e;
      throw e;
    }
  }

  press(b: ButtonId): void {
    if (!this.button) throw new Error("no button handler installed");
    this.button(b);
  }

  place(card: VoterCardModel | null): void {
    this.pn.place(card);
  }

  finger(isoRecord: Uint8Array): void {
    this.fp.present({ iso: isoRecord });
  }

  fault(f: "no-finger" | "poor-image" | "timeout"): void {
    this.fp.present({ fault: f });
  }

  screen(): Screen {
    const s = this.screens[this.screens.length - 1];
    if (!s) throw new Error("nothing shown yet");
    return s;
  }

  /** Every record in the firmware journal, decoded. */
  records(): JournalRecord[] {
    const out: JournalRecord[] = [];
    this.journal.forEachUnacked(0, (_seq, data) => {
      out.push(decodeRecord(data));
    });
    return out;
  }

  recordsOf(kind: number): JournalRecord[] {
    return this.records().filter((r) => r.kind === kind);
  }

  /** Loads the register and opens the polls (as the technician and the supervisor would). */
  loadAndOpen(artifact: SignedArtifact): void {
    const err = this.svc.loadRegister(artifact);
    if (err !== null) throw new Error("loadRegister: " + err);
    const e2 = this.svc.openPolls("host");
    if (e2 !== null) throw new Error("openPolls: " + e2);
    this.run(500);
  }

  /**
   * One voter at the table: card placed, finger(s) given, the card taken away once the verdict
   * shows. Returns the key of the last screen.
   */
  voter(card: VoterCardModel, prints: Uint8Array[]): string {
    this.place(card);
    this.run(1500);
    for (const p of prints) {
      this.finger(p);
      this.run(3000);
    }
    const key = this.screen().key;
    this.place(null);
    this.run(5000);
    return key;
  }
}
