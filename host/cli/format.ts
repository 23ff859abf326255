// How the technician CLI shows things to people: tables (box drawing on a terminal, plain ASCII
// when piped or redirected) and values with their units, from the control API's raw numbers.

import { createHash } from "node:crypto";
import Table from "cli-table3";
import { root } from "../../protocol/node/schema.ts";
import { ENUM_LABELS_AR, currentLang, t } from "./messages.ts";

export type Cell = string | number | { content: string; colSpan?: number; hAlign?: "left" | "center" | "right" };

const ASCII_CHARS = {
  top: "-",
  "top-mid": "+",
  "top-left": "+",
  "top-right": "+",
  bottom: "-",
  "bottom-mid": "+",
  "bottom-left": "+",
  "bottom-right": "+",
  left: "|",
  "left-mid": "+",
  mid: "-",
  "mid-mid": "+",
  right: "|",
  "right-mid": "+",
  middle: "|",
};

/** A table as text. `tty` false: ASCII borders and no colour codes, for logs and pipes. */
export function renderTable(head: string[] | null, rows: Cell[][], tty: boolean): string {
  const table = new Table({
    head: head ?? [],
    chars: tty ? undefined : ASCII_CHARS,
    style: { head: tty ? ["bold"] : [], border: [], compact: true },
  });
  for (const r of rows) table.push(r);
  return table.toString();
}

export function none(): string {
  return t("value.none");
}

export function formatMv(mv: number | undefined): string {
  return mv === undefined ? none() : `${mv} mV`;
}

/** State of charge from permille: "88 %" (or "87.5 %" with `decimals` 1). */
export function formatPermille(permille: number | undefined, decimals = 0): string {
  return permille === undefined ? none() : `${(permille / 10).toFixed(decimals)} %`;
}

/** Temperature from tenths of a degree Celsius. */
export function formatDecic(decic: number | undefined): string {
  return decic === undefined ? none() : `${(decic / 10).toFixed(1)} °C`;
}

export function formatCurrent(ma: number | undefined): string {
  if (ma === undefined) return none();
  if (ma > 0) return t("value.charging", { ma });
  if (ma < 0) return t("value.discharging", { ma });
  return `0 mA`;
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return none();
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** How long ago `thenMs` was, in the largest whole unit: "3 s ago", "5 min ago". */
export function formatAgo(thenMs: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - thenMs) / 1000));
  if (s < 60) return t("ago.seconds", { n: s });
  if (s < 3600) return t("ago.minutes", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago.hours", { n: Math.floor(s / 3600) });
  return t("ago.days", { n: Math.floor(s / 86400) });
}

/** A duration in seconds, two units at most: "1 h 2 min". */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined) return none();
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return t("duration.seconds", { s });
  if (s < 3600) return t("duration.minutes", { m: Math.floor(s / 60), s: s % 60 });
  if (s < 86400) return t("duration.hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t("duration.days", { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

/** A device's wall clock as of its last health report; 0 means it was never set. */
export function formatClock(clockMs: number | undefined): string {
  if (clockMs === undefined || clockMs === 0) return t("value.clockNotSet");
  return new Date(clockMs).toISOString();
}

/** First 16 hex digits of SHA-256 over the key bytes: short enough to read out, long enough to compare. */
export function keyFingerprint(publicKeyHex: string): string {
  if (publicKeyHex === "") return none();
  return createHash("sha256").update(Buffer.from(publicKeyHex, "hex")).digest("hex").slice(0, 16);
}

/** The schema name of an enum value (e.g. "PERIPHERAL_FLASH"), or null if the number is not in the schema. */
export function enumValueName(enumName: string, value: number | string): string | null {
  const e = root.lookupEnum(`pollkit.v1.${enumName}`);
  if (typeof value === "string") return value in e.values ? value : null;
  return e.valuesById[value] ?? null;
}

/** The number of an enum value given as a number or by its schema name (protobufjs JSON allows both). */
export function enumNumber(enumName: string, value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return undefined;
  const e = root.lookupEnum(`pollkit.v1.${enumName}`);
  return e.values[value];
}

/**
 * A person's name for an enum value. English comes from the schema ("PERIPHERAL_FUEL_GAUGE" ->
 * "fuel gauge"); Arabic from ENUM_LABELS_AR; an unknown number shows as "#<n>".
 */
export function enumLabel(enumName: string, value: number | string | undefined): string {
  if (value === undefined) return none();
  const name = enumValueName(enumName, value);
  if (name === null) return `#${value}`;
  if (currentLang() === "ar" && ENUM_LABELS_AR[name] !== undefined) return ENUM_LABELS_AR[name];
  const prefix = enumName.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() + "_";
  const bare = name.startsWith(prefix) ? name.slice(prefix.length) : name;
  return bare.toLowerCase().replace(/_/g, " ");
}

/** Names of the peripherals whose bit (1 << Peripheral) is set in a fault mask. */
export function peripheralFaultNames(mask: number | undefined): string {
  if (mask === undefined) return none();
  if (mask === 0) return t("value.noFaults");
  const names: string[] = [];
  for (let bit = 0; bit < 31; bit++) if (mask & (1 << bit)) names.push(enumLabel("Peripheral", bit));
  return names.join(", ");
}

/** Names of the set bits of a mask whose bit numbers are values of `enumName`. */
export function enumBitNames(enumName: string, mask: number | undefined): string {
  if (mask === undefined || mask === 0) return t("value.none");
  const names: string[] = [];
  for (let bit = 0; bit < 31; bit++) if (mask & (1 << bit)) names.push(enumLabel(enumName, bit));
  return names.join(", ");
}

export function hex32(n: number | undefined): string {
  return n === undefined ? none() : `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}
