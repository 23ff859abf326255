// Values with units and tables as the CLI prints them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  enumLabel,
  formatAgo,
  formatBytes,
  formatCurrent,
  formatDecic,
  formatDuration,
  formatMv,
  formatPermille,
  keyFingerprint,
  peripheralFaultNames,
  renderTable,
} from "./format.ts";
import { setLang } from "./messages.ts";

test("units: mV, % from permille, °C from tenths, mA with direction, bytes", () => {
  setLang("en");
  assert.equal(formatMv(3912), "3912 mV");
  assert.equal(formatPermille(875), "88 %");
  assert.equal(formatPermille(875, 1), "87.5 %");
  assert.equal(formatDecic(245), "24.5 °C");
  assert.equal(formatDecic(-53), "-5.3 °C");
  assert.equal(formatCurrent(-120), "-120 mA (discharging)");
  assert.equal(formatBytes(65100), "63.6 KiB");
  assert.equal(formatMv(undefined), "-");
});

test("ago and durations, in both languages, Western digits", () => {
  setLang("en");
  assert.equal(formatAgo(10_000, 13_400), "3 s ago");
  assert.equal(formatAgo(0, 5 * 60_000 + 1), "5 min ago");
  assert.equal(formatAgo(0, 2 * 86_400_000), "2 d ago");
  assert.equal(formatAgo(5000, 1000), "0 s ago", "a clock slightly ahead is not 'in the future'");
  assert.equal(formatDuration(3725), "1 h 2 min");
  setLang("ar");
  assert.equal(formatAgo(10_000, 13_400), "منذ 3 ث");
  assert.equal(formatDuration(3725), "1 س 2 د");
  setLang("en");
});

test("public key fingerprint: first 16 hex digits of SHA-256 over the key bytes", () => {
  const key = Buffer.alloc(64, 7);
  assert.equal(keyFingerprint(key.toString("hex")), createHash("sha256").update(key).digest("hex").slice(0, 16));
  assert.equal(keyFingerprint(""), "-");
});

test("enum names come from the schema; Arabic from the catalogue; unknown numbers stay visible", () => {
  setLang("en");
  assert.equal(enumLabel("Peripheral", 4), "fuel gauge");
  assert.equal(enumLabel("Verdict", "VERDICT_FAIL"), "fail");
  assert.equal(enumLabel("ChargeState", 3), "fast charge");
  assert.equal(enumLabel("Peripheral", 99), "#99");
  assert.equal(peripheralFaultNames((1 << 5) | (1 << 6)), "fingerprint, card reader");
  setLang("ar");
  assert.equal(enumLabel("Peripheral", 5), "قارئ البصمة");
  setLang("en");
});

test("tables: ASCII borders and no colour codes when not a terminal", () => {
  const plain = renderTable(["device", "battery"], [["VVD-1", "88 %"]], false);
  assert.match(plain, /^\+-+\+-+\+$/m);
  assert.match(plain, /\| VVD-1 +\| 88 % +\|/);
  assert.doesNotMatch(plain, /[\u2500-\u257F]/, "no box drawing");
  assert.ok(!plain.includes(String.fromCharCode(27)), "no ANSI escape codes");
  const tty = renderTable(["device"], [["VVD-1"]], true);
  assert.match(tty, /[\u2500-\u257F]/, "box drawing on a terminal");
});
