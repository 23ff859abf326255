// The scheduled maintenance status report, per site: devices by state, batteries that need
// attention, faults, and every device's line. As CSV (for spreadsheets and archives) and as a
// printable HTML page (English or Arabic). `scheduleReports` writes both for every site on a
// schedule, named by site and date.

import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { alertText, BATTERY_ALERT_KINDS, DEVICE_STATUSES, hasAlarm, type Alert, type AlertKind, type AlertOptions, type DeviceStatus } from "../alerts/alerts.ts";
import type { OpsStore } from "../store/store.ts";
import { dirOf, formatTime, label, peripheralNames, t, type Lang, type MessageKey } from "../web/i18n.ts";
import { buildSnapshot, countByStatus, toCsv, type FleetRow, type Snapshot } from "../web/model.ts";

export const MAINTENANCE_CSV_HEADER = [
  "site",
  "device",
  "role",
  "governorate",
  "office",
  "station",
  "status",
  "battery_mv",
  "soc_percent",
  "charge_state",
  "charge_mode",
  "soh_percent",
  "cycle_count",
  "power_alarms",
  "charger_faults",
  "peripheral_faults",
  "journal_backlog",
  "last_seen_utc",
  "attention",
] as const;

const CHARGE_STATE_NAMES = ["unknown", "not-charging", "pre-charge", "fast-charge", "done", "no-battery"];
const CHARGE_MODE_NAMES = ["unspecified", "normal", "storage", "maintain"];
const BATTERY_KINDS = new Set<AlertKind>(BATTERY_ALERT_KINDS);
const FAULT_KINDS = new Set<AlertKind>(["charger-fault", "peripheral-fault", "gauge-fault", "no-battery", "journal-full", "clock-skew"]);
const ALARM_NAMES = ["", "low-battery", "critical-battery", "out-of-storage-window", "charger-fault", "temperature", "no-battery", "ageing-cell", "gauge-fault"];

/** Health.power_alarms bits as names, e.g. "ageing-cell charger-fault". */
export function alarmNames(bits: number): string {
  const out: string[] = [];
  for (let k = 1; k < 31; k++) if (hasAlarm(bits, k)) out.push(ALARM_NAMES[k] ?? `alarm-${k}`);
  return out.join(" ");
}

export interface MaintenanceReport {
  /** "" for every site together. */
  site: string;
  generatedMs: number;
  byState: Record<DeviceStatus, number>;
  devices: FleetRow[];
  /** Battery alerts (low, out of the storage window, ageing cell, charger and gauge faults, temperature), worst first. */
  batteries: Alert[];
  /** Charger and part faults, full journals, wrong or unset clocks. */
  faults: Alert[];
  /** Every alert of each device, for the attention column. */
  alertsByDevice: Map<string, Alert[]>;
}

export function maintenanceReport(snapshot: Snapshot, site: string): MaintenanceReport {
  const devices = site ? snapshot.rows.filter((r) => r.site === site) : snapshot.rows;
  const ids = new Set(devices.map((d) => d.deviceId));
  const alerts = snapshot.alerts.filter((a) => ids.has(a.deviceId));
  return {
    site,
    generatedMs: snapshot.nowMs,
    byState: countByStatus(devices),
    devices,
    batteries: alerts.filter((a) => BATTERY_KINDS.has(a.kind)),
    faults: alerts.filter((a) => FAULT_KINDS.has(a.kind)),
    alertsByDevice: snapshot.alertsByDevice,
  };
}

export function maintenanceCsv(report: MaintenanceReport): string {
  return toCsv(
    MAINTENANCE_CSV_HEADER,
    report.devices.map((d) => [
      d.site,
      d.deviceId,
      d.role,
      d.governorate,
      d.office,
      d.stationId,
      d.status,
      d.batteryMv,
      d.socPercent,
      d.chargeState === null ? "" : (CHARGE_STATE_NAMES[d.chargeState] ?? String(d.chargeState)),
      d.chargeMode === null ? "" : (CHARGE_MODE_NAMES[d.chargeMode] ?? String(d.chargeMode)),
      d.sohPercent,
      d.cycleCount,
      alarmNames(d.powerAlarms),
      d.chargerFaults,
      d.peripheralFaults,
      d.journalBacklog,
      formatTime(d.lastSeenMs),
      (report.alertsByDevice.get(d.deviceId) ?? []).map((a) => a.kind).join(" "),
    ]),
  );
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

export function maintenanceHtml(report: MaintenanceReport, lang: Lang): string {
  const e = escapeHtml;
  const siteName = report.site || t(lang, "report.allSites");
  const title = t(lang, "report.title", { site: siteName });
  const row = (cells: string[], tag = "td"): string => `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join("")}</tr>`;
  const alertTable = (alerts: Alert[]): string =>
    alerts.length === 0
      ? `<p>${e(t(lang, "none"))}</p>`
      : `<table><thead>${row([t(lang, "col.device"), t(lang, "col.severity"), t(lang, "col.alert"), t(lang, "col.since")].map(e), "th")}</thead><tbody>${alerts
          .map((a) => row([e(a.deviceId), e(t(lang, `severity.${a.severity}` as MessageKey)), e(alertText(lang, a)), e(formatTime(a.sinceMs))]))
          .join("")}</tbody></table>`;
  const stateRows = DEVICE_STATUSES.map((s) => row([e(t(lang, `status.${s}` as MessageKey)), String(report.byState[s])])).join("");
  const deviceRows = report.devices
    .map((d) =>
      row([
        e(d.deviceId),
        e(d.office),
        e(d.stationId),
        e(t(lang, `status.${d.status}` as MessageKey)),
        d.socPercent === null ? "" : `${d.socPercent} % (${d.batteryMv} mV)`,
        d.sohPercent === null ? "" : `${d.sohPercent} %`,
        d.cycleCount === null ? "" : String(d.cycleCount),
        d.chargeMode === null ? "" : e(label(lang, "mode", d.chargeMode)),
        d.chargeState === null ? "" : e(label(lang, "charge", d.chargeState)),
        e([d.chargerFaults ? `0x${d.chargerFaults.toString(16)}` : "", peripheralNames(lang, d.peripheralFaults)].filter(Boolean).join("; ")),
        e(formatTime(d.lastSeenMs) || t(lang, "never")),
      ]),
    )
    .join("");
  const csvHref = `/api/reports/maintenance?site=${encodeURIComponent(report.site)}`;
  return `<!doctype html>
<html lang="${lang}" dir="${dirOf(lang)}">
<head><meta charset="utf-8"><title>${e(title)}</title>
<style>
body{font:14px/1.4 system-ui,"Noto Sans Arabic","DejaVu Sans",sans-serif;margin:1.5rem;color:#111}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.25rem 0 .5rem}
table{border-collapse:collapse;margin-block-end:.5rem}th,td{border:1px solid #999;padding:.2rem .5rem;text-align:start}
th{background:#eee}.meta{color:#444}.noprint a{margin-inline-end:1rem}
@media print{.noprint{display:none}body{margin:0}}
</style></head>
<body>
<h1>${e(title)}</h1>
<p class="meta">${e(t(lang, "report.generated", { time: formatTime(report.generatedMs) + " UTC" }))}</p>
<p class="noprint"><a href="#" onclick="window.print();return false">${e(t(lang, "report.print"))}</a><a href="${e(csvHref)}">${e(t(lang, "report.csv"))}</a></p>
<h2>${e(t(lang, "report.byState"))}</h2>
<table><tbody>${stateRows}${row([e(t(lang, "col.total")), String(report.devices.length)])}</tbody></table>
<h2>${e(t(lang, "report.batteries"))}</h2>
${alertTable(report.batteries)}
<h2>${e(t(lang, "report.faults"))}</h2>
${alertTable(report.faults)}
<h2>${e(t(lang, "report.devices"))}</h2>
<table><thead>${row(
    ["col.device", "col.office", "col.station", "col.status", "col.battery", "col.soh", "col.cycles", "col.mode", "col.charge", "col.faults", "col.lastSeen"].map((k) =>
      e(t(lang, k as MessageKey)),
    ),
    "th",
  )}</thead><tbody>${deviceRows}</tbody></table>
</body></html>
`;
}

/** A site name made safe for a file name. */
export function safeName(site: string): string {
  return site.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "") || "site";
}

export interface ScheduleOptions {
  store: OpsStore;
  everyMs: number;
  outDir: string;
  lang?: Lang;
  now?: () => number;
  alertOptions?: Partial<AlertOptions>;
  /** Called after each run with the files written, or with the error. */
  onRun?: (files: string[], error?: Error) => void;
}

export interface ReportSchedule {
  /** Writes the reports now; returns the paths written. */
  runNow(): string[];
  stop(): void;
}

/** Writes `maintenance-<site>-<YYYY-MM-DD>.csv` and `.html` for each site (atomically, replaced within a day). */
export function writeMaintenanceReports(store: OpsStore, outDir: string, nowMs: number, lang: Lang = "en", alertOptions: Partial<AlertOptions> = {}): string[] {
  mkdirSync(outDir, { recursive: true });
  const snapshot = buildSnapshot(store, nowMs, alertOptions);
  const sites = [...new Set(snapshot.rows.map((r) => r.site))].sort();
  const date = new Date(nowMs).toISOString().slice(0, 10);
  const files: string[] = [];
  for (const site of sites) {
    const report = maintenanceReport(snapshot, site);
    const base = join(outDir, `maintenance-${safeName(site)}-${date}`);
    for (const [ext, body] of [
      ["csv", maintenanceCsv(report)],
      ["html", maintenanceHtml(report, lang)],
    ] as const) {
      const path = `${base}.${ext}`;
      writeFileSync(path + ".tmp", body);
      renameSync(path + ".tmp", path);
      files.push(path);
    }
  }
  return files;
}

export function scheduleReports(options: ScheduleOptions): ReportSchedule {
  const now = options.now ?? Date.now;
  const run = (): string[] => {
    try {
      const files = writeMaintenanceReports(options.store, options.outDir, now(), options.lang ?? "en", options.alertOptions);
      options.onRun?.(files);
      return files;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (options.onRun) options.onRun([], error);
      else console.error(`maintenance report failed: ${error.message}`);
      return [];
    }
  };
  const timer = setInterval(run, options.everyMs);
  timer.unref();
  return {
    runNow: run,
    stop: () => clearInterval(timer),
  };
}
