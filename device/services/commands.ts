// Commands from the host: each answered with exactly one CommandResult carrying the command's id.
// A repeated id (the host retrying after a lost answer) gets the same answer again and is not
// executed twice. Commands that change the device are journalled as signed audit records.
// Engine subset.

import {
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
  executed: number;

  constructor(context: CommandContext) {
    this._c = context;
    this._ids = [];
    this._answers = [];
    this.executed = 0;
  }

  handle(cmd: Command): void {
    const id = cmd.id ?? 0;
    const cached = this._ids.indexOf(id);
    if (id !== 0 && cached >= 0) {
      this._c.send(this._answers[cached]);
      return;
    }
    const self = this;
    this._run(cmd, function (r: CommandResult) {
      r.id = id;
      if (id !== 0) {
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

  _audit(event: string, detail: string): void {
    // Technician authority (who sent it) arrives with commission-signed tokens; until then "host".
    this._c.record(RecordKind.COMMAND, encodeAuditEvent({ event: event, actor: "host", detail: detail }));
  }

  _run(cmd: Command, done: (r: CommandResult) => void): void {
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
    } else if (cmd.setTime !== undefined) {
      const ms = cmd.setTime.unixMs ?? 0;
      if (ms < MIN_UNIX_MS || ms > MAX_UNIX_MS) {
        done({ status: Status.BAD_ARGUMENT, message: "time out of range: " + ms });
        return;
      }
      c.setTime(ms);
      this._audit("clock.set", "" + ms);
      done({ status: Status.OK, message: "clock set" });
    } else if (cmd.reboot !== undefined) {
      const delay = cmd.reboot.delayMs ?? 0;
      this._audit("device.reboot", "" + delay);
      done({ status: Status.OK, message: "rebooting" });
      c.reboot(delay < 100 ? 100 : delay);
    } else if (cmd.readLog !== undefined) {
      const max = cmd.readLog.maxLines ?? 0;
      done({ status: Status.OK, log: { lines: c.logLines(max > 0 ? max : 50) } });
    } else if (cmd.setChargeMode !== undefined) {
      done({ status: Status.UNSUPPORTED, message: "no charger on this device" });
    } else if (cmd.transferBegin !== undefined) {
      done(c.transfer.begin(cmd.transferBegin));
    } else if (cmd.transferChunk !== undefined) {
      done(c.transfer.chunk(cmd.transferChunk));
    } else if (cmd.transferEnd !== undefined) {
      done(c.transfer.end(cmd.transferEnd.signature ?? new Uint8Array(0)));
    } else {
      done({ status: Status.UNSUPPORTED, message: "unknown command" });
    }
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
