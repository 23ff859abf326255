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
import {
  Capability,
  ErrorCode,
  Peripheral,
  RecordKind,
  Verdict,
  encodeBootInfo,
  type CommandResult,
  type DeviceInfo,
  type Health,
  type Hello,
  type PartVerdict,
} from "../../protocol/generated/device_codec.ts";

export const PROTOCOL_VERSION = 1;
/** The secure element slot holding the device's P-256 identity key. */
export const KEY_SLOT = 0;
const LOG_LINES = 32;

export interface FirmwareOptions {
  platform: Platform;
  firmwareVersion: string;
  healthIntervalMs?: number;
  linkWindow?: number;
  linkResendMs?: number;
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
        self.se.signMessage(KEY_SLOT, message, cb);
      },
      prevSeq: 0,
      onAppended: function () {
        if (self.link !== null) self.link.pump();
        if (self.journal.isNearFull()) self.telemetry.changed();
      },
    });
    this.transfer = new TransferReceiver(new CountingSink());
    this.commands = new CommandService({
      transfer: this.transfer,
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
    const st = this.journal.open();
    this.journalOk = st.code === 0;
    if (!this.journalOk) this._fault(Peripheral.FLASH, "journal could not open: code " + st.code);
    else if (st.tornTail) this.log("journal: a record torn by power loss was dropped");
    this.recorder.setPrevSeq(lastRecordSeq(this.journal));
    this._identity(function () {
      self.record(
        RecordKind.BOOT,
        encodeBootInfo({ reason: self.rebootReason, bootId: self.bootId, firmwareVersion: self.version }),
      );
      self._startLink();
      self.telemetry.start();
      self.started = true;
      self.log("booted " + p.identity.serial + " fw " + self.version + " reason " + self.rebootReason);
      if (cb) cb();
    });
  }

  _identity(done: () => void): void {
    const self = this;
    const se = this.se;
    se.wake(function (err) {
      if (err !== null) {
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
        },
        onCommand: function (cmd) {
          self.commands.handle(cmd);
        },
        onTimeSync: function (t) {
          const before = self.p.clock.wallMs();
          // A host may set a clock that was never set; changing a running clock takes SetTime.
          if (before === 0 && (t.hostTimeMs ?? 0) > 0) self.p.clock.setWallMs(t.hostTimeMs ?? 0);
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
    const self = this;
    const p = this.p;
    p.timers.setTimeout(function () {
      if (self.recorder.busy()) self.rebootWhenFlushed(reason, 50);
      else p.system.reboot(reason);
    }, delayMs);
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
      capabilities: [Capability.JOURNAL, Capability.SECURE_ELEMENT, Capability.DATA_TRANSFER],
      publicKey: this.publicKey,
      journalNextSeq: this.journal.nextSeq(),
      journalAckedSeq: this.journal.ackedSeq(),
    };
  }

  health(): Health {
    return {
      uptimeS: Math.floor(this.p.timers.now() / 1000),
      rebootReason: this.rebootReason,
      freeMemoryBytes: this.p.system.freeMemory(),
      freeStorageBytes: this.journal.freeBytes(),
      journalBacklog: this.journal.backlog(),
      peripheralFaults: this.peripheralFaults,
      clockMs: this.p.clock.wallMs(),
      errorCount: this.telemetry.errorCount(),
    };
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
    };
  }

  /** Self-test of each part: the secure element answers Info; the journal opened cleanly. */
  selfTest(parts: number[], cb: (verdicts: PartVerdict[]) => void): void {
    const self = this;
    const want = parts.length > 0 ? parts : ALL_PARTS;
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
        } else if (part === Peripheral.DISPLAY) {
          out.push({ part: part, verdict: Verdict.PASS, detail: "" });
        } else out.push({ part: part, verdict: Verdict.ABSENT, detail: "not fitted" });
      }
      cb(out);
    });
  }
}
