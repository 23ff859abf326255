// Alerts for the operations console, computed (purely) from what the store holds at a given time:
// the registry, each device's state and latest health, and, for the journal-backlog trend, a few
// recent health samples. No I/O and no clock: callers pass `nowMs`, so the same inputs always give
// the same alerts. Messages are keys into host/ops/web/i18n.ts with their parameters, so the page
// and the reports render them in English or Arabic.

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
   * only the backlog threshold is checked, not the trend.
   */
  recentHealth?: (deviceId: string) => HealthSample[];
  /** The latest PowerAlarm record per kind of a device (power_alarms.ts). */
  powerAlarms?: (deviceId: string) => readonly PowerAlarmState[];
  options?: Partial<AlertOptions>;
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
  for (const id of ids) pushDeviceAlerts(out, id, stateById.get(id), input.nowMs, opts, input.recentHealth, input.powerAlarms?.(id));
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
): Alert[] {
  const out: Alert[] = [];
  pushDeviceAlerts(out, deviceId, state, nowMs, { ...DEFAULT_ALERT_OPTIONS, ...options }, recentHealth, powerAlarms);
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
): void {
  const mine: Alert[] = [];
  const make = (kind: AlertKind, severity: Severity, messageKey: MessageKey, params: Params, sinceMs: number): void => {
    mine.push({ id: `${deviceId}:${kind}`, deviceId, severity, kind, messageKey, params, sinceMs });
  };
  const has = (kind: AlertKind): Alert | undefined => mine.find((a) => a.kind === kind);
  const intervalMin = fmt(opts.healthIntervalMs / 60_000);

  if (!state || !state.lastSeenMs) {
    make("silent", "warning", "alert.neverSeen", { interval: intervalMin }, 0);
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
  }
  pushRecordAlarms(make, has, powerAlarms, sample, opts);
  out.push(...mine);
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
  if (alert.kind === "result-overdue") params.source = t(lang, alert.params.source === "turnout-report" ? "close.turnoutReport" : "close.definition");
  return t(lang, alert.messageKey, params);
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
