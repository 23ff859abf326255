// The paper voucher of a station result: what the thermal printer prints at poll close, so that
// the paper can be checked against the electronic result. It carries the station, the election,
// each contest's counts, the totals, the open and close times, the journal sequence number of the
// signed RESULT record and a short digest (the first 8 hex digits of SHA-256 of the StationResult
// payload). Printed in ASCII: option names in other scripts print as "?", so each option also
// carries its number in definition order. Engine subset.

import { ALIGN_CENTER, ALIGN_LEFT, type PrintLine } from "../../drivers/escpos_printer.ts";
import type { StationResult } from "../../../protocol/generated/device_codec.ts";
import type { Election } from "./election.ts";

export interface VoucherInput {
  election: Election;
  result: StationResult;
  /** Journal seq of the RESULT record. */
  seq: number;
  /** SHA-256 of the encoded StationResult. */
  digest: Uint8Array;
  deviceId: string;
  /** Printed again on request: marked as a copy. */
  copy: number;
  columns: number;
}

const HEX = "0123456789abcdef";

/** Lower-case hex of the first `n` bytes. */
export function hexBytes(b: Uint8Array, n: number): string {
  let s = "";
  const m = n < b.length ? n : b.length;
  for (let i = 0; i < m; i++) s += HEX.charAt(b[i] >>> 4) + HEX.charAt(b[i] & 15);
  return s;
}

/** The short digest printed on the voucher: 8 hex digits. */
export function shortDigest(digest: Uint8Array): string {
  return hexBytes(digest, 4);
}

function two(n: number): string {
  return n < 10 ? "0" + n : "" + n;
}

/** "YYYY-MM-DD HH:MM:SS UTC" of Unix milliseconds (proleptic Gregorian, by hand). */
export function formatUtc(ms: number): string {
  if (!(ms > 0)) return "not set";
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86400);
  const rem = secs - days * 86400;
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const hh = Math.floor(rem / 3600);
  const mi = Math.floor((rem - hh * 3600) / 60);
  const ss = rem - hh * 3600 - mi * 60;
  return y + "-" + two(m) + "-" + two(d) + " " + two(hh) + ":" + two(mi) + ":" + two(ss) + " UTC";
}

function repeat(c: string, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += c;
  return s;
}

/** "label ....... value" on one line of `columns`, the label cut when it does not fit. */
export function row(label: string, value: string, columns: number): string {
  const room = columns - value.length - 1;
  if (room <= 0) return value;
  const l = label.length > room ? label.substring(0, room) : label;
  return l + repeat(" ", columns - l.length - value.length) + value;
}

function line(text: string, bold: boolean): PrintLine {
  return { text: text, align: ALIGN_LEFT, bold: bold, big: false };
}

/** The voucher, line by line. */
export function buildVoucher(v: VoucherInput): PrintLine[] {
  const cols = v.columns;
  const r = v.result;
  const e = v.election;
  const rule = repeat("-", cols);
  const out: PrintLine[] = [];
  out.push({ text: "STATION RESULT", align: ALIGN_CENTER, bold: true, big: true });
  if (v.copy > 0) out.push({ text: "COPY " + v.copy, align: ALIGN_CENTER, bold: true, big: false });
  out.push(line(row("Station", r.stationId ?? "", cols), false));
  out.push(line(row("Election", r.electionId ?? "", cols), false));
  out.push(line(row("Device", v.deviceId, cols), false));
  const contests = r.contests ?? [];
  for (let i = 0; i < contests.length; i++) {
    const cr = contests[i];
    const def = i < e.contests.length ? e.contests[i] : null;
    out.push(line(rule, false));
    out.push(line("Contest " + (cr.contestId ?? ""), true));
    if (def !== null && def.name.length > 0) out.push(line(def.name, false));
    const votes = cr.votes ?? [];
    for (let k = 0; k < votes.length; k++) {
      const name = def !== null && k < def.options.length ? def.options[k] : "";
      out.push(line(row(k + 1 + " " + name, "" + votes[k], cols), false));
    }
    out.push(line(row("Blank", "" + (cr.blank ?? 0), cols), false));
    out.push(line(row("Invalid", "" + (cr.invalid ?? 0), cols), false));
  }
  out.push(line(rule, false));
  out.push(line(row("Ballots counted", "" + (r.ballotsCounted ?? 0), cols), true));
  out.push(line(row("Ballots rejected", "" + (r.ballotsRejected ?? 0), cols), false));
  out.push(line(row("Verified voters", r.verifiedVotersKnown ? "" + (r.verifiedVoters ?? 0) : "not paired", cols), false));
  out.push(line("Opened " + formatUtc(r.openedMs ?? 0), false));
  out.push(line("Closed " + formatUtc(r.closedMs ?? 0), false));
  out.push(line(row("Record", "#" + v.seq, cols), false));
  out.push(line(row("Digest", shortDigest(v.digest), cols), true));
  return out;
}

/** The voucher as plain text lines (display, logs, tests). */
export function voucherText(lines: PrintLine[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) out.push(lines[i].text);
  return out;
}
