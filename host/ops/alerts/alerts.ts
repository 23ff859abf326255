// Alerts for the operations console, computed (purely) from what the store holds at a given time:
// the registry, each device's state and latest health, and, for the journal-backlog trend and a
// clock that reads off, a few recent health samples; the "journal full" lines of a device's log
// (device_logs.ts) as evidence. No I/O and no clock: callers pass `nowMs`, so the same inputs
// always give the same alerts. Messages are keys into host/ops/web/i18n.ts with their parameters,
// so the page and the reports render them in English or Arabic.

import type { DeviceState, HealthSample, RegisteredDevice } from "../store/store.ts";
import { isMessageKey, peripheralNames, t, type Lang, type MessageKey, type Params } from "../web/i18n.ts";

export type Severity = "critical" | "warning" | "info";
export type AlertKind =
  | "battery-low"
  | "storage-window"
  | "ageing-cell"
  | "battery-temperature"
  | "no-battery"
  | "gauge-fault"
  | "silent"
  | "charger-fault"
  | "journal-backlog"
  | "peripheral-fault"
  | "clock-skew"
  | "journal-full"
  | "result-overdue";

/** Alert kinds about the battery and its charging (the maintenance report's "batteries needing attention"). */
export const BATTERY_ALERT_KINDS: readonly AlertKind[] = [
  "battery-low",
  "storage-window",
  "ageing-cell",
  "charger-fault",
  "battery-temperature",
  "no-battery",
  "gauge-fault",
];

export interface Alert {
  /** Stable for one condition: `${deviceId}:${kind}`, or `station:${stationId}:${kind}` for a station's. */
  id: string;
  /** The device concerned; for a station's alert its result device when registered, else "". */
  deviceId: string;
  /** Set on station alerts (result overdue). */
  stationId?: string;
  severity: Severity;
  kind: AlertKind;
  messageKey: MessageKey;
  params: Params;
  /** When the condition was first seen (best evidence available: the sample that shows it). */
  sinceMs: number;
}

export interface AlertOptions {
  /** State of charge (percent) below which the battery is low. */
  batteryLowPercent: number;
  /** The storage window for CHARGE_MODE_STORAGE, percent. */
  storageLowPercent: number;
  storageHighPercent: number;
  /** The health report interval the devices are configured with. */
  healthIntervalMs: number;
  /** Silent after this many missed intervals. */
  silentIntervals: number;
  /** Backlog above this many records is an alert by itself. */
  backlogThreshold: number;
  /** Samples (oldest first) that must each rise for a "backlog rising" alert. */
  backlogRisingSamples: number;
  /** State of health (percent of design capacity) below which a cell is ageing. */
  ageingSohPercent: number;
  /** A device clock further than this from true time (the console's clock) is a clock-skew alert. */
  clockSkewMs: number;
  /**
   * A device up this long with its clock never set (Health.clock_ms 0) is a clock-skew alert: a
   * host sets the clock right after the device's hello, so by then it should have.
   */
  clockSetWithinMs: number;
  /**
   * Transport jitter allowed when telling a sample that came at once from one an agent held in
   * its outbox (estimateClockSkew): a clock is judged behind only on samples that came at once.
   */
  clockDelayToleranceMs: number;
  /**
   * A journal with records waiting (journal_backlog > 0) and less free storage than this has no
   * room (journal-full): every fleet journal page is at least 2 KiB, so this is less than a page.
   */
  journalFullFreeBytes: number;
}

export const DEFAULT_ALERT_OPTIONS: AlertOptions = {
  batteryLowPercent: 20,
  storageLowPercent: 40,
  storageHighPercent: 60,
  healthIntervalMs: 5 * 60_000,
  silentIntervals: 3,
  backlogThreshold: 100,
  backlogRisingSamples: 3,
  ageingSohPercent: 80,
  clockSkewMs: 2 * 60_000,
  clockSetWithinMs: 10 * 60_000,
  clockDelayToleranceMs: 10_000,
  journalFullFreeBytes: 512,
};

// Enum values from protocol/pollkit.proto.
export const CHARGE_STATE = { UNKNOWN: 0, NOT_CHARGING: 1, PRE_CHARGE: 2, FAST_CHARGE: 3, DONE: 4, NO_BATTERY: 5 } as const;
export const CHARGE_MODE = { UNSPECIFIED: 0, NORMAL: 1, STORAGE: 2, MAINTAIN: 3 } as const;
export const POWER_ALARM = {
  LOW_BATTERY: 1,
  CRITICAL_BATTERY: 2,
  OUT_OF_STORAGE_WINDOW: 3,
  CHARGER_FAULT: 4,
  TEMPERATURE: 5,
  NO_BATTERY: 6,
  AGEING_CELL: 7,
  GAUGE_FAULT: 8,
} as const;

/** Whether Health.power_alarms has the bit of this PowerAlarmKind. */
export function hasAlarm(bits: number, kind: number): boolean {
  return ((bits >>> 0) & (1 << kind)) !== 0;
}

/**
 * The latest PowerAlarm journal record of one kind from a device (raised or cleared), as the
 * alerts need it. host/ops/alerts/power_alarms.ts keeps these per device.
 */
export interface PowerAlarmState {
  kind: number;
  active: boolean;
  seq: number;
  timeMs: number;
  receivedMs: number;
  batteryMv: number;
  socPermille: number;
  temperatureDecic: number;
  chargerFaults: number;
  chargeMode: number;
}

/**
 * A health sample that carries the power service's fields (state of health, cycles or alarm
 * bits): its power_alarms then says which alarms are active now, so an older PowerAlarm record
 * that is not among them no longer counts.
 */
export function reportsPowerAlarms(h: Record<string, number> | null | undefined): boolean {
  return healthField(h, "stateOfHealthPermille") > 0 || healthField(h, "cycleCount") > 0 || healthField(h, "powerAlarms") !== 0;
}

export type DeviceStatus = "ready" | "charging" | "faulty" | "silent";
export const DEVICE_STATUSES: readonly DeviceStatus[] = ["ready", "charging", "faulty", "silent"];

/** A numeric Health field from protobufjs JSON (camelCase; snake_case accepted); absent is 0, as in proto3. */
export function healthField(health: Record<string, number> | null | undefined, camel: string): number {
  if (!health) return 0;
  const v = health[camel] ?? health[camel.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase())];
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** State of charge in percent (one decimal) from a Health, or null without one. */
export function socPercent(sample: HealthSample | null | undefined): number | null {
  if (!sample) return null;
  return Math.round(healthField(sample.health, "stateOfChargePermille")) / 10;
}

export function silenceLimitMs(opts: AlertOptions): number {
  return opts.silentIntervals * opts.healthIntervalMs;
}

export function isSilent(state: DeviceState | undefined, nowMs: number, opts: AlertOptions = DEFAULT_ALERT_OPTIONS): boolean {
  if (!state || !state.lastSeenMs) return true;
  return nowMs - state.lastSeenMs > silenceLimitMs(opts);
}

/**
 * One word for a device, used by the fleet filter, the status table and the report. Precedence:
 * silent (we cannot trust anything else about it), faulty, charging, ready.
 */
export function deviceStatus(state: DeviceState | undefined, nowMs: number, opts: AlertOptions = DEFAULT_ALERT_OPTIONS): DeviceStatus {
  if (isSilent(state, nowMs, opts)) return "silent";
  const h = state?.lastHealth?.health;
  if (!h) return "ready";
  if (healthField(h, "chargerFaults") !== 0 || healthField(h, "peripheralFaults") !== 0) return "faulty";
  const alarms = healthField(h, "powerAlarms");
  if (hasAlarm(alarms, POWER_ALARM.CHARGER_FAULT) || hasAlarm(alarms, POWER_ALARM.NO_BATTERY) || hasAlarm(alarms, POWER_ALARM.GAUGE_FAULT)) return "faulty";
  const cs = healthField(h, "chargeState");
  if (cs === CHARGE_STATE.NO_BATTERY) return "faulty";
  if (cs === CHARGE_STATE.PRE_CHARGE || cs === CHARGE_STATE.FAST_CHARGE) return "charging";
  return "ready";
}

export interface AlertInput {
  devices: RegisteredDevice[];
  states: DeviceState[];
  nowMs: number;
  /**
   * Recent health samples of one device, any order (the last few are used). Optional: without it
   * only the backlog threshold is checked, not the trend, and a clock is never judged behind.
   */
  recentHealth?: (deviceId: string) => HealthSample[];
  /** The latest PowerAlarm record per kind of a device (power_alarms.ts). */
  powerAlarms?: (deviceId: string) => readonly PowerAlarmState[];
  /** What the device's log says (device_logs.ts DeviceLogWatch.evidence). */
  evidence?: (deviceId: string) => DeviceEvidence | undefined;
  options?: Partial<AlertOptions>;
}

/** Evidence about a device from its log lines (host/ops/alerts/device_logs.ts). */
export interface DeviceEvidence {
  /**
   * When the console first saw a "journal full" line of the device that no health sample received
   * after it has cleared (journalHasRoom); undefined without one.
   */
  journalFullMs?: number;
}

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/** Every alert for every device (registered or only seen), most severe first, then oldest first. */
export function computeAlerts(input: AlertInput): Alert[] {
  const opts: AlertOptions = { ...DEFAULT_ALERT_OPTIONS, ...input.options };
  const stateById = new Map<string, DeviceState>();
  for (const s of input.states) stateById.set(s.deviceId, s);
  const ids = new Set<string>();
  for (const d of input.devices) ids.add(d.deviceId);
  for (const s of input.states) ids.add(s.deviceId);
  const out: Alert[] = [];
  for (const id of ids) pushDeviceAlerts(out, id, stateById.get(id), input.nowMs, opts, input.recentHealth, input.powerAlarms?.(id), input.evidence?.(id));
  return sortAlerts(out);
}

export function sortAlerts(alerts: Alert[]): Alert[] {
  return alerts.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      a.sinceMs - b.sinceMs ||
      (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0) ||
      (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0),
  );
}

/** The alerts of one device. */
export function deviceAlerts(
  deviceId: string,
  state: DeviceState | undefined,
  nowMs: number,
  options: Partial<AlertOptions> = {},
  recentHealth?: (deviceId: string) => HealthSample[],
  powerAlarms?: readonly PowerAlarmState[],
  evidence?: DeviceEvidence,
): Alert[] {
  const out: Alert[] = [];
  pushDeviceAlerts(out, deviceId, state, nowMs, { ...DEFAULT_ALERT_OPTIONS, ...options }, recentHealth, powerAlarms, evidence);
  return out;
}

/** deviceAlerts with resolved options, appending to `out` (the fleet-wide loop). */
export function pushDeviceAlerts(
  out: Alert[],
  deviceId: string,
  state: DeviceState | undefined,
  nowMs: number,
  opts: AlertOptions,
  recentHealth?: (deviceId: string) => HealthSample[],
  powerAlarms?: readonly PowerAlarmState[],
  evidence?: DeviceEvidence,
): void {
  const mine: Alert[] = [];
  const make = (kind: AlertKind, severity: Severity, messageKey: MessageKey, params: Params, sinceMs: number): void => {
    mine.push({ id: `${deviceId}:${kind}`, deviceId, severity, kind, messageKey, params, sinceMs });
  };
  const has = (kind: AlertKind): Alert | undefined => mine.find((a) => a.kind === kind);
  const intervalMin = fmt(opts.healthIntervalMs / 60_000);

  if (!state || !state.lastSeenMs) {
    make("silent", "warning", "alert.neverSeen", { interval: intervalMin }, 0);
    pushJournalFull(make, null, evidence, opts);
    pushRecordAlarms(make, has, powerAlarms, null, opts);
    out.push(...mine);
    return;
  }
  if (nowMs - state.lastSeenMs > silenceLimitMs(opts)) {
    make(
      "silent",
      "warning",
      "alert.silent",
      { minutes: Math.floor((nowMs - state.lastSeenMs) / 60_000), interval: intervalMin },
      state.lastSeenMs + silenceLimitMs(opts),
    );
  }

  const sample = state.lastHealth;
  if (sample) {
    const h = sample.health;
    const at = sample.receivedMs;
    const soc = healthField(h, "stateOfChargePermille") / 10;
    const chargeState = healthField(h, "chargeState");
    const hasBattery = chargeState !== CHARGE_STATE.NO_BATTERY;
    const alarms = healthField(h, "powerAlarms");
    const mode = healthField(h, "chargeMode");

    const critical = hasAlarm(alarms, POWER_ALARM.CRITICAL_BATTERY);
    if (hasBattery && (soc < opts.batteryLowPercent || critical || hasAlarm(alarms, POWER_ALARM.LOW_BATTERY))) {
      make("battery-low", critical || soc < opts.batteryLowPercent / 2 ? "critical" : "warning", "alert.batteryLow", { soc: fmt(soc), threshold: fmt(opts.batteryLowPercent) }, at);
    }
    const storing = mode === CHARGE_MODE.STORAGE || mode === CHARGE_MODE.MAINTAIN;
    if (hasBattery && ((storing && (soc < opts.storageLowPercent || soc > opts.storageHighPercent)) || hasAlarm(alarms, POWER_ALARM.OUT_OF_STORAGE_WINDOW))) {
      make("storage-window", "warning", "alert.storageWindow", { soc: fmt(soc), low: fmt(opts.storageLowPercent), high: fmt(opts.storageHighPercent), mode }, at);
    }
    const sohPermille = healthField(h, "stateOfHealthPermille");
    if (hasBattery && ((sohPermille > 0 && sohPermille < opts.ageingSohPercent * 10) || hasAlarm(alarms, POWER_ALARM.AGEING_CELL))) {
      make("ageing-cell", "warning", "alert.ageingCell", { soh: sohPermille > 0 ? fmt(sohPermille / 10) : "?", threshold: fmt(opts.ageingSohPercent), cycles: healthField(h, "cycleCount") }, at);
    }
    const chargerFaults = healthField(h, "chargerFaults");
    if (chargerFaults !== 0 || hasAlarm(alarms, POWER_ALARM.CHARGER_FAULT)) {
      make("charger-fault", "critical", "alert.chargerFault", { faults: "0x" + (chargerFaults >>> 0).toString(16) }, at);
    }
    if (hasAlarm(alarms, POWER_ALARM.TEMPERATURE)) {
      make("battery-temperature", "warning", "alert.batteryTemperature", { temperature: fmt(healthField(h, "temperatureDecic") / 10) }, at);
    }
    if (hasAlarm(alarms, POWER_ALARM.NO_BATTERY)) make("no-battery", "critical", "alert.noBattery", {}, at);
    if (hasAlarm(alarms, POWER_ALARM.GAUGE_FAULT)) make("gauge-fault", "warning", "alert.gaugeFault", {}, at);
    const peripheralFaults = healthField(h, "peripheralFaults");
    if (peripheralFaults !== 0) {
      make("peripheral-fault", "critical", "alert.peripheralFault", { parts: peripheralFaults, bits: peripheralFaults }, at);
    }

    const backlog = healthField(h, "journalBacklog");
    if (backlog > opts.backlogThreshold) {
      make("journal-backlog", "warning", "alert.backlogHigh", { backlog, threshold: opts.backlogThreshold }, at);
    } else if (backlog > 0 && recentHealth) {
      const rising = risingBacklog(recentHealth(deviceId), sample, opts.backlogRisingSamples);
      if (rising) make("journal-backlog", "info", "alert.backlogRising", { from: rising.from, to: rising.to }, rising.sinceMs);
    }
    pushClockSkew(make, deviceId, sample, recentHealth, opts);
  }
  pushJournalFull(make, sample, evidence, opts);
  pushRecordAlarms(make, has, powerAlarms, sample, opts);
  out.push(...mine);
}

type Make = (kind: AlertKind, severity: Severity, messageKey: MessageKey, params: Params, sinceMs: number) => void;

/**
 * clock-skew from the latest sample: never set (clock_ms 0) once the device has been up
 * clockSetWithinMs; else ahead or behind by more than clockSkewMs (estimateClockSkew). A clock
 * that reads ahead is raised from the sample alone (transport delay only hides an advance); one
 * that reads behind only when the recent samples show when this one was sent.
 */
function pushClockSkew(make: Make, deviceId: string, sample: HealthSample, recentHealth: ((deviceId: string) => HealthSample[]) | undefined, opts: AlertOptions): void {
  const h = sample.health;
  const clockMs = healthField(h, "clockMs");
  const uptimeMs = healthField(h, "uptimeS") * 1000;
  if (clockMs === 0) {
    if (uptimeMs >= opts.clockSetWithinMs) make("clock-skew", "warning", "alert.clockNeverSet", { uptimeMs, uptime: durationText("en", uptimeMs) }, sample.receivedMs);
    return;
  }
  // Read against the console's receipt alone the clock looks behind by the transport delay too:
  // within the threshold that way it is within it (or the next live sample shows it), and no
  // history is read for the (usual) healthy device.
  if (Math.abs(clockMs - sample.receivedMs) <= opts.clockSkewMs) return;
  const est = estimateClockSkew(sample, recentHealth ? recentHealth(deviceId) : [], opts.clockDelayToleranceMs);
  const params = (skewMs: number): Params => ({ skewMs, skew: durationText("en", Math.abs(skewMs)) });
  if (est.skewMs > opts.clockSkewMs) make("clock-skew", "warning", "alert.clockAhead", params(est.skewMs), sample.receivedMs);
  else if (est.skewMs < -opts.clockSkewMs && est.live) make("clock-skew", "warning", "alert.clockBehind", params(est.skewMs), sample.receivedMs);
}

/** What estimateClockSkew makes of a device clock. */
export interface ClockSkewEstimate {
  /**
   * Device clock minus true time when the sample was sent, ms (positive: ahead). A lower bound:
   * exact when some sample of this boot among those given came at once, larger by that sample's
   * delay otherwise.
   */
  skewMs: number;
  /**
   * Two samples of this boot, sent more than the tolerance apart, came with the same (least)
   * delay: they came as sent (an outbox that held samples releases them together, not at the pace
   * the device sent them), so skewMs is exact within the tolerance.
   */
  live: boolean;
}

/**
 * The skew of `latest`'s clock. The console stores only its own receive time (the agent's is not
 * carried over MQTT), and an agent may hold samples in its outbox for hours: against that time
 * alone a correct clock looks behind by the delay. Uptime is the device's monotonic time, so for
 * every sample of one boot `receivedMs - uptime` is the boot's start on the console's clock plus
 * that sample's delay; its least value over the boot's samples is the start as seen by the
 * freshest sample, and the latest sample was sent at that start plus its uptime. `history` (any
 * order, `latest` may be among it) gives the other samples; those of an earlier boot (uptime
 * going down) are left out. Without uptime the sample is judged alone.
 */
export function estimateClockSkew(latest: HealthSample, history: readonly HealthSample[], toleranceMs: number): ClockSkewEstimate {
  const clockMs = healthField(latest.health, "clockMs");
  const upMs = (s: HealthSample): number => healthField(s.health, "uptimeS") * 1000;
  const latestUp = upMs(latest);
  if (latestUp === 0) return { skewMs: clockMs - latest.receivedMs, live: false };
  const same = (s: HealthSample): boolean =>
    s.receivedMs === latest.receivedMs && upMs(s) === latestUp && healthField(s.health, "clockMs") === clockMs;
  const sorted = history.filter((s) => s.receivedMs <= latest.receivedMs && !same(s));
  sorted.push(latest);
  sorted.sort((a, b) => a.receivedMs - b.receivedMs); // stable: samples received in one ms stay in arrival order
  const boot: HealthSample[] = [];
  let up = Infinity;
  for (let i = sorted.length - 1; i >= 0; i--) {
    const u = upMs(sorted[i]);
    if (u > up) break; // an earlier boot
    boot.push(sorted[i]);
    up = u;
  }
  let start = Infinity;
  for (const s of boot) start = Math.min(start, s.receivedMs - upMs(s));
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of boot) {
    if (s.receivedMs - upMs(s) - start > toleranceMs) continue;
    lo = Math.min(lo, upMs(s));
    hi = Math.max(hi, upMs(s));
  }
  return { skewMs: clockMs - (start + latestUp), live: hi - lo > toleranceMs };
}

/** Whether a health sample shows a journal that can take records again: free storage and backlog back to normal. */
export function journalHasRoom(health: Record<string, number> | null | undefined, opts: AlertOptions): boolean {
  return healthField(health, "freeStorageBytes") >= opts.journalFullFreeBytes && healthField(health, "journalBacklog") <= opts.backlogThreshold;
}

/** Whether a health sample shows a journal without room: records waiting and less than journalFullFreeBytes free. */
export function journalOutOfRoom(health: Record<string, number> | null | undefined, opts: AlertOptions): boolean {
  return healthField(health, "journalBacklog") > 0 && healthField(health, "freeStorageBytes") < opts.journalFullFreeBytes;
}

/**
 * journal-full: the latest sample shows no room, or the device's log said "journal full" and no
 * sample received since shows room again (journalHasRoom).
 */
function pushJournalFull(make: Make, sample: HealthSample | null, evidence: DeviceEvidence | undefined, opts: AlertOptions): void {
  const h = sample?.health ?? null;
  const fromHealth = sample !== null && journalOutOfRoom(h, opts);
  const logMs = evidence?.journalFullMs;
  const fromLog = logMs !== undefined && !(sample !== null && sample.receivedMs > logMs && journalHasRoom(h, opts));
  if (!fromHealth && !fromLog) return;
  const since = Math.min(fromHealth && sample ? sample.receivedMs : Infinity, fromLog ? logMs : Infinity);
  const params: Params = sample
    ? { free: healthField(h, "freeStorageBytes"), backlog: healthField(h, "journalBacklog") }
    : { free: "?", backlog: "?" };
  make("journal-full", "critical", "alert.journalFull", params, since);
}

/** A duration as people read it: "3 d 4 h", "3 h 0 min" or "7 min" (whole minutes, rounded). */
export function durationText(lang: Lang, ms: number): string {
  const minutes = Math.round(Math.abs(ms) / 60_000);
  if (minutes >= 2 * 24 * 60) return t(lang, "duration.dh", { d: Math.floor(minutes / 1440), h: Math.floor((minutes % 1440) / 60) });
  if (minutes >= 60) return t(lang, "duration.hm", { h: Math.floor(minutes / 60), m: minutes % 60 });
  return t(lang, "duration.m", { m: minutes });
}

/** The alert kind a PowerAlarmKind raises. */
export function alarmAlertKind(kind: number): AlertKind | null {
  switch (kind) {
    case POWER_ALARM.LOW_BATTERY:
    case POWER_ALARM.CRITICAL_BATTERY:
      return "battery-low";
    case POWER_ALARM.OUT_OF_STORAGE_WINDOW:
      return "storage-window";
    case POWER_ALARM.CHARGER_FAULT:
      return "charger-fault";
    case POWER_ALARM.TEMPERATURE:
      return "battery-temperature";
    case POWER_ALARM.NO_BATTERY:
      return "no-battery";
    case POWER_ALARM.AGEING_CELL:
      return "ageing-cell";
    case POWER_ALARM.GAUGE_FAULT:
      return "gauge-fault";
    default:
      return null;
  }
}

/**
 * Alerts from PowerAlarm journal records that are raised and not cleared by a later record of the
 * same kind, nor contradicted by a later health sample that reports its alarm bits. A condition
 * the latest health already shows is not raised twice (a critical battery still upgrades it).
 */
function pushRecordAlarms(
  make: (kind: AlertKind, severity: Severity, messageKey: MessageKey, params: Params, sinceMs: number) => void,
  has: (kind: AlertKind) => Alert | undefined,
  alarms: readonly PowerAlarmState[] | undefined,
  sample: HealthSample | null,
  opts: AlertOptions,
): void {
  if (!alarms) return;
  const h = sample?.health ?? null;
  const healthSays = sample !== null && reportsPowerAlarms(h);
  const sorted = [...alarms].sort((a, b) => b.kind - a.kind); // critical battery (2) before low (1)
  for (const a of sorted) {
    if (!a.active) continue;
    if (healthSays && sample && sample.receivedMs > a.receivedMs && !hasAlarm(healthField(h, "powerAlarms"), a.kind)) continue;
    const kind = alarmAlertKind(a.kind);
    if (kind === null) continue;
    const existing = has(kind);
    if (existing) {
      if (a.kind === POWER_ALARM.CRITICAL_BATTERY) existing.severity = "critical";
      continue;
    }
    const soc = a.socPermille / 10;
    switch (kind) {
      case "battery-low":
        make(kind, a.kind === POWER_ALARM.CRITICAL_BATTERY ? "critical" : "warning", "alert.batteryLow", { soc: fmt(soc), threshold: fmt(opts.batteryLowPercent) }, a.receivedMs);
        break;
      case "storage-window":
        make(kind, "warning", "alert.storageWindow", { soc: fmt(soc), low: fmt(opts.storageLowPercent), high: fmt(opts.storageHighPercent), mode: a.chargeMode }, a.receivedMs);
        break;
      case "charger-fault":
        make(kind, "critical", "alert.chargerFault", { faults: "0x" + (a.chargerFaults >>> 0).toString(16) }, a.receivedMs);
        break;
      case "battery-temperature":
        make(kind, "warning", "alert.batteryTemperature", { temperature: fmt(a.temperatureDecic / 10) }, a.receivedMs);
        break;
      case "no-battery":
        make(kind, "critical", "alert.noBattery", {}, a.receivedMs);
        break;
      case "ageing-cell": {
        const soh = healthField(h, "stateOfHealthPermille");
        make(kind, "warning", "alert.ageingCell", { soh: soh > 0 ? fmt(soh / 10) : "?", threshold: fmt(opts.ageingSohPercent), cycles: healthField(h, "cycleCount") }, a.receivedMs);
        break;
      }
      case "gauge-fault":
        make(kind, "warning", "alert.gaugeFault", {}, a.receivedMs);
        break;
      default:
        break;
    }
  }
}

/**
 * Whether the backlog rose strictly at each of the last `n` samples (the latest included), and
 * from where. `latest` is added when the history does not already hold it.
 */
export function risingBacklog(
  history: HealthSample[],
  latest: HealthSample,
  n: number,
): { from: number; to: number; sinceMs: number } | null {
  const samples = [...history];
  if (!samples.some((s) => s.receivedMs === latest.receivedMs)) samples.push(latest);
  samples.sort((a, b) => a.receivedMs - b.receivedMs);
  const last = samples.slice(-n);
  if (last.length < n || n < 2) return null;
  for (let i = 1; i < last.length; i++) {
    if (healthField(last[i].health, "journalBacklog") <= healthField(last[i - 1].health, "journalBacklog")) return null;
  }
  return {
    from: healthField(last[0].health, "journalBacklog"),
    to: healthField(last[last.length - 1].health, "journalBacklog"),
    sinceMs: last[0].receivedMs,
  };
}

/** An alert's message in `lang` (part names of a peripheral fault translated too). */
export function alertText(lang: Lang, alert: Alert): string {
  const params: Params = { ...alert.params };
  if (alert.kind === "peripheral-fault") params.parts = peripheralNames(lang, Number(alert.params.bits));
  if (alert.kind === "storage-window") {
    const key = `mode.${Number(alert.params.mode ?? 2)}`;
    params.mode = isMessageKey(key) ? t(lang, key) : String(alert.params.mode);
  }
  if (alert.params.skewMs !== undefined) params.skew = durationText(lang, Number(alert.params.skewMs));
  if (alert.params.uptimeMs !== undefined) params.uptime = durationText(lang, Number(alert.params.uptimeMs));
  if (alert.kind === "result-overdue") params.source = t(lang, alert.params.source === "turnout-report" ? "close.turnoutReport" : "close.definition");
  return t(lang, alert.messageKey, params);
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
