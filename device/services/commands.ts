// Commands from the host: each answered with exactly one CommandResult carrying the command's id.
// A repeated id (the host retrying after a lost answer) gets the same answer again and is not
// executed twice. Commands that change the device are journalled as signed audit records.
//
// Authority (see authority.ts): SetTime, SetChargeMode, Reboot, TransferBegin and ClearElection
// need a technician's authority; a refusal answers DENIED and changes nothing. Chunks and the end
// of a transfer need a transfer begun with authority. Info, Diagnostics and ReadLog need none.
// The audit records name the technician. A context without `authority` (a development build
// without a commission key) runs every command, with "host" as the actor.
// Engine subset.

import {
  ChargeMode,
  Status,
  Peripheral,
  Verdict,
  RecordKind,
  encodeAuditEvent,
  type Command,
  type CommandResult,
  type DeviceInfo,
  type PartVerdict,
} from "../../protocol/generated/device_codec.ts";
import type { TransferReceiver } from "./transfer.ts";
import type { AuthError } from "./authority.ts";

/** What the command service needs from the Authority. */
export interface CommandAuthority {
  checkCommand(cmd: Command, cb: (err: AuthError | null, technicianId?: string) => void): void;
}

/** What the command service needs from the rest of the firmware. */
export interface CommandContext {
  info(): DeviceInfo;
  /** Runs each part's self-test; cb gets one verdict per part. */
  selfTest(parts: number[], cb: (verdicts: PartVerdict[]) => void): void;
  setTime(unixMs: number): void;
  /** Schedules a reboot after the answer has gone out. */
  reboot(delayMs: number): void;
  logLines(max: number): string[];
  record(kind: number, payload: Uint8Array): void;
  send(result: CommandResult): void;
  transfer: TransferReceiver;
  /** Checks technicians' authority. Absent only in builds without a commission key. */
  authority?: CommandAuthority;
  /** Sets the charge mode (ChargeMode): null, or why not. Absent: the device has no charger. */
  setChargeMode?(mode: number): string | null;
  /** Records no host has acknowledged yet (Journal.backlog()). */
  backlog?(): number;
  /**
   * Wipes the election: the role's data (voted marks, tally) and the held station register and
   * election definition. Absent: nothing to clear on this device.
   */
  clearElection?(cb: (err: string | null) => void): void;
  /** Console text (refusals are logged, not journalled). */
  log?(text: string): void;
}

/** Remembered answers, for repeated command ids. */
const ANSWER_CACHE = 8;
/** Earliest credible wall clock: 2024-01-01 (a clock set before it is a mistake). */
const MIN_UNIX_MS = 1704067200000;
const MAX_UNIX_MS = 4102444800000;

export class CommandService {
  _c: CommandContext;
  _ids: number[];
  _answers: CommandResult[];
  /** Ids of commands still running (an authority check takes time): a repeat waits for the answer. */
  _running: number[];
  executed: number;

  constructor(context: CommandContext) {
    this._c = context;
    this._ids = [];
    this._answers = [];
    this._running = [];
    this.executed = 0;
  }

  handle(cmd: Command): void {
    const id = cmd.id ?? 0;
    const cached = this._ids.indexOf(id);
    if (id !== 0 && cached >= 0) {
      this._c.send(this._answers[cached]);
      return;
    }
    if (id !== 0 && this._running.indexOf(id) >= 0) return;
    const self = this;
    if (id !== 0) this._running.push(id);
    this._run(cmd, function (r: CommandResult) {
      r.id = id;
      if (id !== 0) {
        const k = self._running.indexOf(id);
        if (k >= 0) self._running.splice(k, 1);
        self._ids.push(id);
        self._answers.push(r);
        if (self._ids.length > ANSWER_CACHE) {
          self._ids.shift();
          self._answers.shift();
        }
      }
      self._c.send(r);
    });
  }

  _audit(event: string, actor: string, detail: string): void {
    this._c.record(RecordKind.COMMAND, encodeAuditEvent({ event: event, actor: actor, detail: detail }));
  }

  /** Runs `ok` with the technician id once the command's authority is accepted; else answers DENIED. */
  _authorized(cmd: Command, done: (r: CommandResult) => void, ok: (actor: string) => void): void {
    const c = this._c;
    const a = c.authority;
    if (a === undefined) {
      ok("host");
      return;
    }
    a.checkCommand(cmd, function (err: AuthError | null, technicianId?: string) {
      if (err !== null || technicianId === undefined) {
        const message = err !== null ? err.message : "not authorized";
        if (c.log !== undefined) c.log("command " + (cmd.id ?? 0) + " denied: " + message);
        done({ status: Status.DENIED, message: message });
        return;
      }
      ok(technicianId);
    });
  }

  _run(cmd: Command, done: (r: CommandResult) => void): void {
    const self = this;
    const c = this._c;
    this.executed++;
    if (cmd.info !== undefined) {
      done({ status: Status.OK, info: c.info() });
    } else if (cmd.diagnostics !== undefined) {
      const parts = cmd.diagnostics.parts ?? [];
      c.selfTest(parts, function (verdicts: PartVerdict[]) {
        let failed = 0;
        for (let i = 0; i < verdicts.length; i++) if (verdicts[i].verdict === Verdict.FAIL) failed++;
        done({
          status: Status.OK,
          message: failed === 0 ? "all parts pass" : failed + " part(s) failed",
          diagnostics: { parts: verdicts },
        });
      });
    } else if (cmd.readLog !== undefined) {
      const max = cmd.readLog.maxLines ?? 0;
      done({ status: Status.OK, log: { lines: c.logLines(max > 0 ? max : 50) } });
    } else if (cmd.setTime !== undefined) {
      const ms = cmd.setTime.unixMs ?? 0;
      if (ms < MIN_UNIX_MS || ms > MAX_UNIX_MS) {
        done({ status: Status.BAD_ARGUMENT, message: "time out of range: " + ms });
        return;
      }
      this._authorized(cmd, done, function (actor: string) {
        c.setTime(ms);
        self._audit("clock.set", actor, "" + ms);
        done({ status: Status.OK, message: "clock set" });
      });
    } else if (cmd.reboot !== undefined) {
      const delay = cmd.reboot.delayMs ?? 0;
      this._authorized(cmd, done, function (actor: string) {
        self._audit("device.reboot", actor, "" + delay);
        done({ status: Status.OK, message: "rebooting" });
        c.reboot(delay < 100 ? 100 : delay);
      });
    } else if (cmd.setChargeMode !== undefined) {
      const setMode = c.setChargeMode;
      const mode = cmd.setChargeMode.mode ?? 0;
      if (setMode === undefined) {
        done({ status: Status.UNSUPPORTED, message: "no charger on this device" });
        return;
      }
      if (mode < ChargeMode.NORMAL || mode > ChargeMode.MAINTAIN) {
        done({ status: Status.BAD_ARGUMENT, message: "unknown charge mode " + mode });
        return;
      }
      this._authorized(cmd, done, function (actor: string) {
        const err = setMode(mode);
        if (err !== null) {
          done({ status: Status.ERROR, message: err });
          return;
        }
        self._audit("charge.mode", actor, "" + mode);
        done({ status: Status.OK, message: "charge mode set" });
      });
    } else if (cmd.clearElection !== undefined) {
      const clear = c.clearElection;
      if (clear === undefined) {
        done({ status: Status.UNSUPPORTED, message: "nothing to clear on this device" });
        return;
      }
      if (this._backlog() > 0) {
        done({ status: Status.BUSY, message: this._backlog() + " record(s) not yet acknowledged by a host: connect the device to an agent first" });
        return;
      }
      this._authorized(cmd, done, function (actor: string) {
        if (self._backlog() > 0) {
          done({ status: Status.BUSY, message: self._backlog() + " record(s) not yet acknowledged by a host" });
          return;
        }
        clear(function (err: string | null) {
          self._audit("election.clear", actor, err === null ? "cleared" : "failed: " + err);
          done(err === null ? { status: Status.OK, message: "election data cleared" } : { status: Status.ERROR, message: err });
        });
      });
    } else if (cmd.transferBegin !== undefined) {
      const b = cmd.transferBegin;
      this._authorized(cmd, done, function (actor: string) {
        done(c.transfer.begin(b, actor));
      });
    } else if (cmd.transferChunk !== undefined) {
      done(c.transfer.chunk(cmd.transferChunk));
    } else if (cmd.transferEnd !== undefined) {
      const rx = c.transfer;
      const was = rx.active();
      rx.finish(cmd.transferEnd.signature ?? new Uint8Array(0), function (r: CommandResult) {
        if (was && (r.status === Status.OK || r.status === Status.DENIED)) {
          self._audit(r.status === Status.OK ? "transfer.accepted" : "transfer.refused", rx.actor() !== "" ? rx.actor() : "host", "kind " + rx.kind() + ": " + (r.message ?? ""));
        }
        done(r);
      });
    } else {
      done({ status: Status.UNSUPPORTED, message: "unknown command" });
    }
  }

  _backlog(): number {
    const f = this._c.backlog;
    return f !== undefined ? f() : 0;
  }
}

/** Every part a device may have, in report order. */
export const ALL_PARTS = [
  Peripheral.SECURE_ELEMENT,
  Peripheral.FLASH,
  Peripheral.CHARGER,
  Peripheral.FUEL_GAUGE,
  Peripheral.FINGERPRINT,
  Peripheral.CARD_READER,
  Peripheral.PRINTER,
  Peripheral.BALLOT_FEED,
  Peripheral.DISPLAY,
];
