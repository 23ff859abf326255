// The firmware core shared by both device roles: boots the journal and the secure element, owns
// the device identity, and wires the link, recorder, telemetry and command services together.
// It receives one Platform and touches no engine global. Engine subset.

import type { Platform } from "../platform/platform.ts";
import { Journal, JOURNAL_FULL } from "../services/journal.ts";
import { SecureElement } from "../drivers/secure_element.ts";
import { LinkService } from "../services/link.ts";
import { Recorder, lastRecordSeq } from "../services/recorder.ts";
import { Telemetry } from "../services/telemetry.ts";
import { CommandService, ALL_PARTS } from "../services/commands.ts";
import { TransferReceiver, CountingSink } from "../services/transfer.ts";
import { Bq2589x } from "../drivers/charger_bq2589x.ts";
import { Max1704x } from "../drivers/fuel_gauge_max1704x.ts";
import { PowerService } from "../services/power.ts";
import { DeviceSettings } from "../services/settings.ts";
import { dataRegions } from "../platform/flash_partition.ts";
import { ArtifactStore } from "../services/artifact_store.ts";
import { sha256 } from "../crypto/sha256.ts";
import { Authority } from "../services/authority.ts";
import { FirmwareUpdate } from "../services/firmware_update.ts";
import { installArtifactSinks } from "../services/transfer.ts";
import type { TallyService } from "../services/tally/service.ts";
import type { VerificationService } from "../services/verification/service.ts";
import type { RoleContext, RoleSet } from "../roles/roles.ts";
import {
  Capability,
  ErrorCode,
  Peripheral,
  RecordKind,
  Verdict,
  encodeBootInfo,
  encodePowerAlarm,
  ArtifactKind,
  PollsState,
  type SignedArtifact,
  type CommandResult,
  type DeviceInfo,
  type Health,
  type Hello,
  type PartVerdict,
} from "../../protocol/generated/device_codec.ts";

export const PROTOCOL_VERSION = 1;
/** The secure element slot holding the device's P-256 identity key. */
export const KEY_SLOT = 0;
/** Attempts at signing one record before it is refused (RECORD_ERR_SIGN). */
export const SIGN_TRIES = 3;
const LOG_LINES = 32;

export interface FirmwareOptions {
  platform: Platform;
  firmwareVersion: string;
  healthIntervalMs?: number;
  linkWindow?: number;
  linkResendMs?: number;
  /** The role services this build links in (device/roles); none: a core-only device. */
  roles?: RoleSet;
}

export class Firmware {
  p: Platform;
  version: string;
  journal: Journal;
  se: SecureElement;
  recorder: Recorder;
  telemetry: Telemetry;
  commands: CommandService;
  transfer: TransferReceiver;
  /** Charging and battery state; null when no charger or gauge answers. */
  power: PowerService | null;
  /** Technician settings kept across reboots (charge mode); null without a settings flash. */
  settings: DeviceSettings | null;
  /** Commission-signed artifacts held, and the authority that checks them (null: no data flash). */
  artifacts: ArtifactStore | null;
  authority: Authority | null;
  firmwareUpdate: FirmwareUpdate | null;
  /** Result acceleration device: the tally (null on other devices). */
  tally: TallyService | null;
  /** Verification device: register, card, finger, turnout (null on other devices). */
  verification: VerificationService | null;
  link: LinkService | null;
  publicKey: Uint8Array;
  bootId: number;
  rebootReason: number;
  /** Bit (1 << Peripheral) set for each part that failed. */
  peripheralFaults: number;
  journalOk: boolean;
  started: boolean;
  _o: FirmwareOptions;
  _log: string[];

  constructor(options: FirmwareOptions) {
    const self = this;
    const p = options.platform;
    this._o = options;
    this.p = p;
    this.version = options.firmwareVersion;
    this.link = null;
    this.publicKey = new Uint8Array(0);
    this.bootId = 0;
    this.rebootReason = p.system.resetCause();
    this.peripheralFaults = 0;
    this.journalOk = false;
    this.started = false;
    this._log = [];
    this.journal = new Journal({ flash: p.flash });
    this.se = new SecureElement({ bus: p.i2c, timers: p.timers });
    this.telemetry = new Telemetry({
      timers: p.timers,
      intervalMs: options.healthIntervalMs,
      sample: function () {
        return self.health();
      },
      send: function (h: Health) {
        if (self.link !== null) self.link.send({ health: h });
      },
    });
    this.recorder = new Recorder({
      journal: this.journal,
      clock: p.clock,
      signer: function (message, cb) {
        // A transient failure (the chip asleep, a garbled answer) is tried again before the record
        // is refused: a refused signed record is a result or a verdict the host never gets.
        let tries = 0;
        const attempt = function (): void {
          tries++;
          self.se.signMessage(KEY_SLOT, message, function (err, sig) {
            if (err !== null && tries < SIGN_TRIES) {
              self.log("signing failed (" + err.message + "), trying again");
              p.timers.setTimeout(attempt, 20 * tries);
              return;
            }
            if (err !== null) self.log("signing failed " + tries + " times (" + err.message + "): record refused");
            cb(err, sig);
          });
        };
        attempt();
      },
      prevSeq: 0,
      onAppended: function () {
        if (self.link !== null) self.link.pump();
        if (self.journal.isNearFull()) self.telemetry.changed();
      },
    });
    this.transfer = new TransferReceiver(new CountingSink());
    this.settings = p.settingsFlash !== undefined ? new DeviceSettings({ flash: p.settingsFlash }) : null;
    this.power = null;
    const charger = new Bq2589x({ bus: p.i2c });
    const gauge = new Max1704x({ bus: p.i2c });
    if (charger.probe() || gauge.probe()) {
      this.power = new PowerService({
        charger: charger,
        gauge: gauge,
        timers: p.timers,
        clock: p.clock,
        onAlarm: function (a) {
          self.record(RecordKind.POWER_ALARM, encodePowerAlarm(a));
          self.telemetry.changed();
        },
        onCritical: function (done) {
          self.log("battery critical: sealing the journal");
          self.whenFlushed(done);
        },
        shutdown: function () {
          p.system.reboot(7); // RebootReason.LOW_BATTERY: off until the charger brings it back
        },
      });
    }
    this.artifacts = null;
    this.authority = null;
    this.firmwareUpdate = null;
    this.tally = null;
    this.verification = null;
    if (p.dataFlash !== undefined) {
      const regions = dataRegions(p.dataFlash);
      const store = new ArtifactStore({ flash: regions.artifacts });
      this.artifacts = store;
      this.authority = new Authority({
        se: this.se,
        commissionKey: p.identity.commissionKey ?? null,
        store: store,
        clock: p.clock,
        deviceId: p.identity.serial,
        site: function () {
          return store.site();
        },
      });
      this.firmwareUpdate = new FirmwareUpdate({ flash: regions.firmware, timers: p.timers });
      const roles = options.roles;
      const ctx: RoleContext = {
        platform: p,
        regions: regions,
        journal: this.journal,
        record: function (kind: number, payload: Uint8Array, cb: (seq: number) => void) {
          self.record(kind, payload, cb);
        },
        changed: function () {
          self.telemetry.changed();
        },
        fault: function (part: number, text: string) {
          self._fault(part, text);
        },
        stationId: function () {
          return store.stationId();
        },
        sha256: sha256,
      };
      if (p.identity.role === 1 && roles !== undefined && roles.verification !== undefined) this.verification = roles.verification(ctx);
      if (p.identity.role === 2 && roles !== undefined && roles.result !== undefined) this.tally = roles.result(ctx);
    }
    if (this.authority !== null && this.artifacts !== null && this.firmwareUpdate !== null) {
      installArtifactSinks(this.transfer, {
        authority: this.authority,
        store: this.artifacts,
        firmware: this.firmwareUpdate.staging(),
        deliver: function (kind: number, a: SignedArtifact, cb: (err: string | null) => void) {
          self._deliver(kind, a, cb);
        },
        committed: function (kind: number) {
          if (kind === ArtifactKind.FIRMWARE) {
            self.log("firmware update staged: rebooting into its trial");
            self.rebootWhenFlushed(5, 500); // RebootReason.FIRMWARE_UPDATE
          }
        },
      });
    }
    const power = this.power;
    const store = this.artifacts;
    this.commands = new CommandService({
      transfer: this.transfer,
      authority: this.authority !== null ? this.authority : undefined,
      setChargeMode:
        power !== null
          ? function (mode: number) {
              // Saved first: a mode that a reboot would undo is refused, not half taken.
              const saved = self.settings !== null ? self.settings.setChargeMode(mode) : null;
              if (saved !== null) return saved;
              if (self.settings === null) self.log("charge mode " + mode + " lasts until the next reboot: no settings flash");
              return power.setMode(mode) ? null : "not a charge mode: " + mode;
            }
          : undefined,
      backlog: function () {
        return self.journal.backlog();
      },
      clearElection:
        store !== null
          ? function (cb: (err: string | null) => void) {
              if (self.verification !== null) {
                const ve = self.verification.clear();
                if (typeof ve === "string") {
                  cb(ve);
                  return;
                }
              }
              if (self.tally !== null) {
                const e = self.tally.clear();
                if (e !== null) {
                  cb(e);
                  return;
                }
              }
              cb(store.drop([ArtifactKind.STATION_REGISTER, ArtifactKind.ELECTION_DEFINITION]));
            }
          : undefined,
      log: function (text: string) {
        self.log(text);
      },
      info: function () {
        return self.info();
      },
      selfTest: function (parts, cb) {
        self.selfTest(parts, cb);
      },
      setTime: function (ms) {
        p.clock.setWallMs(ms);
      },
      reboot: function (delayMs) {
        self.log("reboot requested");
        self.rebootWhenFlushed(4, delayMs); // RebootReason.SOFTWARE
      },
      logLines: function (max) {
        return self._log.slice(self._log.length > max ? self._log.length - max : 0);
      },
      record: function (kind, payload) {
        self.record(kind, payload);
      },
      send: function (r: CommandResult) {
        if (self.link !== null) self.link.send({ commandResult: r });
      },
    });
  }

  /** Boots: journal recovery, identity from the secure element, boot record, then the link. */
  start(cb?: () => void): void {
    const self = this;
    const p = this.p;
    // After a low-battery shutdown a target's reboot may be a plain reset: stay down (no flash
    // writes, no link) until input power comes or the cell has recovered (PowerService RESTART).
    const resume = function (): void {
      self.log("power back: starting");
      self.start(cb);
    };
    if (this.rebootReason === 7 && this.power !== null && this.power.holdAfterShutdown(resume)) {
      this.log("battery flat after a low-battery shutdown: waiting for input power");
      return;
    }
    const st = this.journal.open();
    this.journalOk = st.code === 0;
    if (!this.journalOk) this._fault(Peripheral.FLASH, "journal could not open: code " + st.code);
    else if (st.tornTail) this.log("journal: a record torn by power loss was dropped");
    this.recorder.setPrevSeq(lastRecordSeq(this.journal));
    if (this.settings !== null) {
      const problem = this.settings.open();
      if (problem !== "") this.log("settings: " + problem);
      if (this.power !== null) this.power.setMode(this.settings.chargeMode());
    }
    // Before any host can acknowledge (and compact) the journal: the verification service repairs
    // a voter interrupted by a power cut against it.
    if (this.verification !== null) this.verification.start();
    this._openData();
    this._identity(function () {
      self.record(
        RecordKind.BOOT,
        encodeBootInfo({ reason: self.rebootReason, bootId: self.bootId, firmwareVersion: self.version }),
      );
      self._startLink();
      if (self.power !== null) self.power.start();
      if (self.tally !== null) self._tallyButtons(self.tally);
      self.telemetry.start();
      self.started = true;
      self.log("booted " + p.identity.serial + " fw " + self.version + " reason " + self.rebootReason);
      if (cb) cb();
    });
  }

  /** Opens the data flash: held artifacts back into the role services, a firmware trial. */
  _openData(): void {
    const self = this;
    const store = this.artifacts;
    if (store === null) return;
    const err = store.open();
    if (err !== null) this._fault(Peripheral.FLASH, "artifact store: " + err);
    const fw = this.firmwareUpdate;
    if (fw !== null) {
      fw.open();
      if (fw.inTrial()) {
        this.log("firmware " + this.version + " on trial: confirms after its self-test and a host");
        fw.startTrial(function () {
          self.log("firmware trial expired: back to the previous firmware");
          self.rebootWhenFlushed(5, 0);
        });
      }
    }
    this._reload(ArtifactKind.ELECTION_DEFINITION, "election definition");
    this._reload(ArtifactKind.STATION_REGISTER, "station register");
  }

  /** Hands a held artifact back to its service after a reboot. */
  _reload(kind: number, what: string): void {
    const self = this;
    const a = this.artifacts !== null ? this.artifacts.artifact(kind) : null;
    if (a === null) return;
    this._deliver(kind, a, function (e) {
      if (e !== null) self.log("held " + what + " not loaded: " + e);
    });
  }

  /** Hands a verified artifact to the service that uses it; cb(null) accepts it. */
  _deliver(kind: number, a: SignedArtifact, cb: (err: string | null) => void): void {
    if (kind === ArtifactKind.ELECTION_DEFINITION) {
      if (this.tally !== null) {
        const e = this.tally.loadElection(a, function (err) {
          cb(err);
        });
        if (e !== null) cb(e);
        return;
      }
      cb(null);
      return;
    }
    if (kind === ArtifactKind.STATION_REGISTER) {
      cb(this.verification !== null ? this.verification.loadRegister(a) : null);
      return;
    }
    cb(null);
  }

  /**
   * The result device's staff controls: the supervisor key opens the polls when the election is
   * loaded, and closes them when they are open (the result is signed, journalled and printed).
   */
  _tallyButtons(tally: TallyService): void {
    const self = this;
    const p = this.p;
    p.buttons.onPress(function (b) {
      if (b !== "supervisor") return;
      const st = tally.state();
      if (st === PollsState.READY) {
        const e = tally.openPolls();
        if (e !== null) p.display.show({ key: "tally.error", params: { reason: e } });
        else {
          self.log("polls opened");
          p.display.show({ key: "tally.polls_open", params: { station: self.stationId() } });
        }
      } else if (st === PollsState.OPEN) {
        tally.closePolls(function (result, err) {
          if (result === null) {
            p.display.show({ key: "tally.error", params: { reason: err !== null ? err : "result not made" } });
            return;
          }
          self.log("polls closed: " + (result.ballotsCounted ?? 0) + " ballots counted");
          p.display.show({ key: "tally.polls_closed", params: { ballots: result.ballotsCounted ?? 0 } });
        });
      } else p.display.show({ key: "tally.not_ready", params: { state: st } });
    });
  }

  /** After a host has talked to this firmware and its self-test passed: keep it. */
  _confirmFirmware(): void {
    const fw = this.firmwareUpdate;
    if (fw === null || !fw.inTrial()) return;
    const self = this;
    this.selfTest([], function (verdicts) {
      for (let i = 0; i < verdicts.length; i++) {
        if (verdicts[i].verdict === Verdict.FAIL) {
          self.log("firmware trial: self-test failed, not confirmed");
          return;
        }
      }
      if (fw.confirm()) self.log("firmware " + self.version + " confirmed");
    });
  }

  _identity(done: () => void): void {
    this._identityAttempt(done, 3);
  }

  /** One try at waking the secure element; a transient failure is tried again before faulting. */
  _identityAttempt(done: () => void, triesLeft: number): void {
    const self = this;
    const se = this.se;
    se.wake(function (err) {
      if (err !== null) {
        if (triesLeft > 1) {
          self.log("secure element: " + err.message + "; trying again");
          self.p.timers.setTimeout(function () {
            self._identityAttempt(done, triesLeft - 1);
          }, 200);
          return;
        }
        self._fault(Peripheral.SECURE_ELEMENT, "secure element: " + err.message);
        self.bootId = self.p.system.random32() >>> 0;
        done();
        return;
      }
      se.random(function (rerr, rnd) {
        if (rerr === null && rnd !== undefined) {
          self.bootId = ((rnd[0] << 24) | (rnd[1] << 16) | (rnd[2] << 8) | rnd[3]) >>> 0;
        } else self.bootId = self.p.system.random32() >>> 0;
        se.publicKey(KEY_SLOT, function (kerr, key) {
          if (kerr === null && key !== undefined) {
            self.publicKey = key;
            done();
            return;
          }
          // First boot: the identity key is created inside the chip and never leaves it.
          se.genKey(KEY_SLOT, function (gerr, gkey) {
            if ((gerr !== null || gkey === undefined) && triesLeft > 1) {
              self.log("identity key not created (" + (gerr !== null ? gerr.message : "no key") + "); trying again");
              self.p.timers.setTimeout(function () {
                self._identityAttempt(done, triesLeft - 1);
              }, 200);
              return;
            }
            if (gerr !== null || gkey === undefined) self._fault(Peripheral.SECURE_ELEMENT, "no identity key");
            else {
              self.publicKey = gkey;
              self.log("identity key created");
            }
            done();
          });
        });
      });
    });
  }

  _startLink(): void {
    const self = this;
    this.link = new LinkService({
      link: this.p.hostLink,
      timers: this.p.timers,
      records: this.journal,
      window: this._o.linkWindow,
      resendMs: this._o.linkResendMs,
      handlers: {
        hello: function () {
          return self.hello();
        },
        onHostHello: function () {
          self.telemetry.report();
          self._confirmFirmware();
        },
        onCommand: function (cmd) {
          self.commands.handle(cmd);
        },
        onTimeSync: function (t) {
          const before = self.p.clock.wallMs();
          // A host may set a clock that was never set; changing a running clock takes SetTime.
          const floor = self.artifacts !== null ? self.artifacts.lastIssuedMs() : 0;
          if (before === 0 && (t.hostTimeMs ?? 0) > floor) self.p.clock.setWallMs(t.hostTimeMs ?? 0);
          else if (before === 0 && (t.hostTimeMs ?? 0) > 0) self.log("time sync refused: earlier than the last technician command");
          if (self.link !== null) self.link.send({ timeSync: { hostTimeMs: t.hostTimeMs, deviceTimeMs: before } });
        },
        onError: function (code) {
          if (code === ErrorCode.DECODE_FAILED) self.telemetry.decodeErrors++;
          else self.telemetry.linkErrors++;
        },
      },
    });
    // The target reports the link's state as soon as onConnection is installed: a host already
    // listening gets the hello then.
  }

  /** Journals a record (signed when its kind requires); cb gets the seq or a negative code. */
  record(kind: number, payload: Uint8Array, cb?: (seq: number) => void): void {
    const self = this;
    this.recorder.record(kind, payload, function (seq: number) {
      if (seq === JOURNAL_FULL) {
        self.telemetry.storageErrors++;
        self.log("journal full: record of kind " + kind + " refused");
        if (self.link !== null) self.link.send({ error: { code: ErrorCode.JOURNAL_FULL, detail: "journal full" } });
        self.telemetry.changed();
      } else if (seq < 0) {
        self.telemetry.storageErrors++;
        self.log("record of kind " + kind + " failed: " + seq);
      }
      if (cb) cb(seq);
    });
  }

  /** Reboots once every queued record is in the journal (an audit record must not be lost). */
  rebootWhenFlushed(reason: number, delayMs: number): void {
    const p = this.p;
    const self = this;
    p.timers.setTimeout(function () {
      self.whenFlushed(function () {
        p.system.reboot(reason);
      });
    }, delayMs);
  }

  /** Calls done once no record is waiting to be signed or written. */
  whenFlushed(done: () => void): void {
    const self = this;
    if (!this.recorder.busy()) {
      done();
      return;
    }
    this.p.timers.setTimeout(function () {
      self.whenFlushed(done);
    }, 50);
  }

  log(text: string): void {
    this._log.push(text);
    if (this._log.length > LOG_LINES) this._log.shift();
    this.p.log(text);
    if (this.link !== null) this.link.sendConsole(text);
  }

  _fault(part: number, text: string): void {
    this.peripheralFaults = this.peripheralFaults | (1 << part);
    this.telemetry.peripheralErrors++;
    this.log("fault: " + text);
  }

  hello(): Hello {
    return {
      protocolVersion: PROTOCOL_VERSION,
      deviceId: this.p.identity.serial,
      role: this.p.identity.role,
      hardwareModel: this.p.identity.hardwareModel,
      firmwareVersion: this.version,
      bootId: this.bootId,
      capabilities: this.capabilities(),
      publicKey: this.publicKey,
      journalNextSeq: this.journal.nextSeq(),
      journalAckedSeq: this.journal.ackedSeq(),
    };
  }

  capabilities(): number[] {
    const c = [Capability.JOURNAL, Capability.SECURE_ELEMENT, Capability.DATA_TRANSFER];
    if (this.power !== null) {
      c.push(Capability.CHARGER);
      c.push(Capability.FUEL_GAUGE);
    }
    if (this.verification !== null) {
      c.push(Capability.FINGERPRINT);
      c.push(Capability.CARD_READER);
    }
    if (this.tally !== null) {
      c.push(Capability.BALLOT_FEED);
      if (this.p.uarts.printer !== undefined) c.push(Capability.PRINTER);
    }
    return c;
  }

  /** The station whose signed data the device holds ("" when none). */
  stationId(): string {
    return this.artifacts !== null ? this.artifacts.stationId() : "";
  }

  /** Faults of the parts the role services drive (card reader, fingerprint module). */
  roleFaults(): number {
    return this.verification !== null ? this.verification.peripheralFaults() : 0;
  }

  electionId(): string {
    if (this.artifacts === null) return "";
    const a = this.artifacts.artifact(ArtifactKind.ELECTION_DEFINITION);
    if (a !== null) return a.electionId ?? "";
    const r = this.artifacts.artifact(ArtifactKind.STATION_REGISTER);
    return r !== null ? (r.electionId ?? "") : "";
  }

  pollsState(): number {
    if (this.tally !== null) return this.tally.state();
    if (this.verification !== null) return this.verification.state();
    return this.artifacts !== null ? PollsState.NOT_LOADED : PollsState.UNSPECIFIED;
  }

  health(): Health {
    const h: Health = {
      uptimeS: Math.floor(this.p.timers.now() / 1000),
      rebootReason: this.rebootReason,
      freeMemoryBytes: this.p.system.freeMemory(),
      freeStorageBytes: this.journal.freeBytes(),
      journalBacklog: this.journal.backlog(),
      peripheralFaults: this.peripheralFaults | this.roleFaults(),
      clockMs: this.p.clock.wallMs(),
      errorCount: this.telemetry.errorCount(),
    };
    if (this.power !== null) this.power.fillHealth(h);
    h.stationId = this.stationId();
    h.pollsState = this.pollsState();
    return h;
  }

  info(): DeviceInfo {
    return {
      deviceId: this.p.identity.serial,
      role: this.p.identity.role,
      hardwareModel: this.p.identity.hardwareModel,
      firmwareVersion: this.version,
      bootId: this.bootId,
      rebootReason: this.rebootReason,
      uptimeS: Math.floor(this.p.timers.now() / 1000),
      journalFirstSeq: this.journal.firstSeq(),
      journalNextSeq: this.journal.nextSeq(),
      journalFreeBytes: this.journal.freeBytes(),
      clockMs: this.p.clock.wallMs(),
      stationId: this.stationId(),
      electionId: this.electionId(),
      pollsState: this.pollsState(),
      technicianId: this.authority !== null ? this.authority.technicianId() : "",
    };
  }

  /**
   * Self-test of each part: the secure element answers Info; the journal opened cleanly; the role
   * service probes its own parts (the verification device's card reader and fingerprint module).
   */
  selfTest(parts: number[], cb: (verdicts: PartVerdict[]) => void): void {
    const self = this;
    const want = parts.length > 0 ? parts : ALL_PARTS;
    if (this.verification !== null) {
      this.verification.selfTest(want, function (rv: PartVerdict[]) {
        self._selfTest(want, rv, cb);
      });
    } else this._selfTest(want, [], cb);
  }

  _selfTest(want: number[], roleVerdicts: PartVerdict[], cb: (verdicts: PartVerdict[]) => void): void {
    const self = this;
    const power = this.power !== null ? this.power.selfTest() : null;
    this.se.info(function (err) {
      const out: PartVerdict[] = [];
      for (let i = 0; i < want.length; i++) {
        const part = want[i];
        if (part === Peripheral.SECURE_ELEMENT) {
          out.push({
            part: part,
            verdict: err === null ? Verdict.PASS : Verdict.FAIL,
            detail: err === null ? "answers" : err.message,
          });
          if (err !== null) self.peripheralFaults = self.peripheralFaults | (1 << part);
        } else if (part === Peripheral.FLASH) {
          out.push({ part: part, verdict: self.journalOk ? Verdict.PASS : Verdict.FAIL, detail: self.journal.freeBytes() + " bytes free" });
        } else if ((part === Peripheral.CHARGER || part === Peripheral.FUEL_GAUGE) && power !== null) {
          const v = part === Peripheral.CHARGER ? power.charger : power.gauge;
          out.push({ part: part, verdict: v, detail: v === Verdict.PASS ? "answers" : v === Verdict.ABSENT ? "not fitted" : "does not answer" });
          if (v === Verdict.FAIL) self.peripheralFaults = self.peripheralFaults | (1 << part);
        } else if (part === Peripheral.DISPLAY) {
          out.push({ part: part, verdict: Verdict.PASS, detail: "" });
        } else {
          let rv: PartVerdict | null = null;
          for (let k = 0; k < roleVerdicts.length; k++) if (roleVerdicts[k].part === part) rv = roleVerdicts[k];
          out.push(rv !== null ? rv : { part: part, verdict: Verdict.ABSENT, detail: "not fitted" });
        }
      }
      cb(out);
    });
  }
}
