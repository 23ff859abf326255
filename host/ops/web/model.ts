// The dashboard's view of the store: one snapshot joins the registry, device states and alerts
// into fleet rows, and aggregates the cumulative status per governorate and office. The server
// rebuilds it when ingest reports a change (at most a few times a second), so every API call reads
// memory, not the database, even with 60,000 devices.

import {
  DEFAULT_ALERT_OPTIONS,
  pushDeviceAlerts,
  sortAlerts,
  deviceStatus,
  healthField,
  type Alert,
  type AlertOptions,
  type DeviceStatus,
} from "../alerts/alerts.ts";
import { PowerAlarmBook } from "../alerts/power_alarms.ts";
import { DeviceLogWatch } from "../alerts/device_logs.ts";
import type { DeviceState, HealthSample, OpsStore, RegisteredDevice, Role, StoredRecord } from "../store/store.ts";
import { RecordKind } from "../views/payloads.ts";

export interface FleetRow {
  deviceId: string;
  site: string;
  governorate: string;
  office: string;
  stationId: string;
  role: Role;
  /** null when the device never sent health. */
  batteryMv: number | null;
  socPercent: number | null;
  chargeState: number | null;
  chargeMode: number | null;
  chargerFaults: number;
  peripheralFaults: number;
  journalBacklog: number;
  temperatureC: number | null;
  /** State of health: capacity now against design, percent; null when not reported. */
  sohPercent: number | null;
  /** Full-equivalent charge cycles; null without health. */
  cycleCount: number | null;
  /** State-of-charge change, percent per hour (negative: draining); null without health. */
  dischargePercentPerHour: number | null;
  /** Health.power_alarms bits, or'ed with the PowerAlarm records that are raised. */
  powerAlarms: number;
  /** Health.polls_state (PollsState) and the station the device holds data for (Health.station_id). */
  pollsState: number | null;
  healthStationId: string;
  lastSeenMs: number;
  online: boolean;
  status: DeviceStatus;
  firmwareVersion: string;
  records: number;
  alerts: number;
  registered: boolean;
}

export interface StatusRow {
  governorate: string;
  /** "" on a governorate's subtotal row. */
  office: string;
  devices: number;
  ready: number;
  charging: number;
  faulty: number;
  silent: number;
  records: number;
}

export interface Snapshot {
  builtMs: number;
  nowMs: number;
  rows: FleetRow[];
  byId: Map<string, FleetRow>;
  alerts: Alert[];
  alertsByDevice: Map<string, Alert[]>;
  /** Governorate subtotal first, then its offices; the grand total last (governorate ""). */
  status: StatusRow[];
  governorates: string[];
  /** Offices per governorate. */
  offices: Record<string, string[]>;
}

/** A one-off snapshot (reports, tests): reads the whole store. */
export function buildSnapshot(store: OpsStore, nowMs: number, options: Partial<AlertOptions> = {}): Snapshot {
  const model = new FleetModel(store, options);
  model.reload(nowMs);
  return model.view();
}

export interface DeviceChange {
  deviceId: string;
  online?: boolean;
  atMs?: number;
  firmwareVersion?: string;
}

/**
 * The fleet kept in memory and patched from ingest events: a full read of the store (reload) only
 * at start and now and then; a health sample, a device event or new records recompute only that
 * device's row and alerts. Time alone (silence) is handled by refresh(), which recomputes every
 * row from memory without reading the store. The sorted alert list and the status aggregate are
 * derived lazily, at most once per `viewMinMs`.
 */
export class FleetModel {
  private readonly opts: AlertOptions;
  private registry = new Map<string, RegisteredDevice>();
  private states = new Map<string, DeviceState>();
  private rows: FleetRow[] = [];
  private index = new Map<string, number>();
  private alertsByDevice = new Map<string, Alert[]>();
  /** PowerAlarm records: the latest of each kind per device. */
  readonly powerAlarms = new PowerAlarmBook();
  /** Evidence from the devices' log lines (journal full), read through `logTail` at each ingest event. */
  readonly logs = new DeviceLogWatch();
  private nowMs = 0;
  private cached: Snapshot | null = null;
  private changedSinceView = true;
  private needsSort = false;

  constructor(
    private readonly store: OpsStore,
    options: Partial<AlertOptions> = {},
    private readonly viewMinMs = 0,
    /** A device's last log lines, oldest first (ingest's logTail); without it no log evidence. */
    private readonly logTail?: (deviceId: string) => readonly string[],
  ) {
    this.opts = { ...DEFAULT_ALERT_OPTIONS, ...options };
  }

  /** Reads the registry and every device state from the store. */
  reload(nowMs: number): void {
    this.registry = new Map(this.store.devices().map((d) => [d.deviceId, d]));
    this.states = new Map(this.store.deviceStates().map((s) => [s.deviceId, s]));
    this.powerAlarms.clear();
    this.powerAlarms.apply(this.store.records({ kind: RecordKind.POWER_ALARM }));
    this.refresh(nowMs);
  }

  /** Recomputes every row and alert at `nowMs` from memory. */
  refresh(nowMs: number): void {
    this.nowMs = nowMs;
    const ids = new Set<string>(this.registry.keys());
    for (const id of this.states.keys()) ids.add(id);
    this.rows = [];
    this.alertsByDevice = new Map();
    for (const id of ids) this.rows.push(this.compute(id));
    this.sortRows();
    this.changedSinceView = true;
    this.cached = null;
  }

  /** Patches device states from an ingest "health" event. */
  applyHealth(samples: HealthSample[]): string[] {
    for (const h of samples) {
      const s = this.state(h.deviceId);
      if (!s.lastHealth || s.lastHealth.receivedMs <= h.receivedMs) s.lastHealth = h;
      s.lastSeenMs = Math.max(s.lastSeenMs, h.receivedMs);
    }
    this.observeLogs(samples);
    for (const h of samples) this.logs.noteHealth(h, this.opts);
    return this.recompute(samples.map((h) => h.deviceId));
  }

  /** From an ingest "device" event (online/offline). */
  applyDevice(ev: DeviceChange): string[] {
    const s = this.state(ev.deviceId);
    if (ev.online !== undefined) s.online = ev.online;
    if (ev.atMs !== undefined) s.lastSeenMs = Math.max(s.lastSeenMs, ev.atMs);
    if (ev.firmwareVersion !== undefined) s.firmwareVersion = ev.firmwareVersion;
    return this.recompute([ev.deviceId]);
  }

  /** From an ingest "records" event: counts, last seen, power alarms. */
  applyRecords(records: Array<{ deviceId: string; receivedMs: number } & Partial<Pick<StoredRecord, "seq" | "kind" | "bytes" | "timeMs">>>): string[] {
    const alarms: StoredRecord[] = [];
    for (const r of records) {
      const s = this.state(r.deviceId);
      s.records++;
      s.lastSeenMs = Math.max(s.lastSeenMs, r.receivedMs);
      if (r.kind === RecordKind.POWER_ALARM && r.bytes && r.seq !== undefined) alarms.push(r as StoredRecord);
    }
    if (alarms.length) this.powerAlarms.apply(alarms);
    this.observeLogs(records);
    return this.recompute(records.map((r) => r.deviceId));
  }

  /**
   * Reads the log tails of the devices these items came from: lines new since the last look count
   * as received with the device's latest item here (console clock; its log line came before).
   */
  private observeLogs(items: ReadonlyArray<{ deviceId: string; receivedMs: number }>): void {
    if (!this.logTail) return;
    const at = new Map<string, number>();
    for (const it of items) at.set(it.deviceId, Math.max(at.get(it.deviceId) ?? 0, it.receivedMs));
    for (const [id, ms] of at) this.logs.observe(id, this.logTail(id), ms);
  }

  /** Recomputes the rows of these devices (their states already patched). */
  recompute(deviceIds: Iterable<string>): string[] {
    const done = new Set<string>();
    for (const id of deviceIds) {
      if (done.has(id)) continue;
      done.add(id);
      const row = this.compute(id);
      const i = this.index.get(id);
      if (i === undefined) {
        this.rows.push(row);
        this.needsSort = true;
      } else this.rows[i] = row;
    }
    if (this.needsSort) this.sortRows();
    if (done.size) {
      this.changedSinceView = true;
    }
    return [...done];
  }

  deviceState(deviceId: string): DeviceState | null {
    return this.states.get(deviceId) ?? null;
  }

  get size(): number {
    return this.rows.length;
  }

  /** The current snapshot; rebuilt (sorted alerts, status) when something changed and `viewMinMs` passed. */
  view(): Snapshot {
    if (this.cached && (!this.changedSinceView || Date.now() - this.cached.builtMs < this.viewMinMs)) return this.cached;
    const alerts: Alert[] = [];
    for (const list of this.alertsByDevice.values()) for (const a of list) alerts.push(a);
    sortAlerts(alerts);
    const byId = new Map<string, FleetRow>();
    for (const r of this.rows) byId.set(r.deviceId, r);
    const { status, governorates, offices } = aggregate(this.rows);
    this.changedSinceView = false;
    this.cached = {
      builtMs: Date.now(),
      nowMs: this.nowMs,
      rows: this.rows.slice(),
      byId,
      alerts,
      alertsByDevice: new Map(this.alertsByDevice),
      status,
      governorates,
      offices,
    };
    return this.cached;
  }

  private state(deviceId: string): DeviceState {
    let s = this.states.get(deviceId);
    if (!s) {
      s = { deviceId, online: false, lastSeenMs: 0, lastHealth: null, firmwareVersion: "", records: 0, chainTop: 0 };
      this.states.set(deviceId, s);
    }
    return s;
  }

  private compute(id: string): FleetRow {
    const s = this.states.get(id);
    const list: Alert[] = [];
    const alarms = this.powerAlarms.of(id);
    pushDeviceAlerts(list, id, s, this.nowMs, this.opts, (deviceId) => this.recentHealth(deviceId), alarms, this.logs.evidence(id));
    if (list.length) this.alertsByDevice.set(id, list);
    else this.alertsByDevice.delete(id);
    return fleetRow(id, this.registry.get(id), s, this.nowMs, this.opts, list.length, this.powerAlarms.activeBits(id));
  }

  // The backlog trend needs a few samples, read only for devices with a modest, non-zero backlog;
  // so does a clock that reads more than clockSkewMs off (only then).
  private recentHealth(deviceId: string): HealthSample[] {
    const latest = this.states.get(deviceId)?.lastHealth;
    if (!latest) return [];
    const since = latest.receivedMs - (this.opts.backlogRisingSamples + 2) * this.opts.healthIntervalMs;
    return this.store.healthHistory(deviceId, since, 50);
  }

  private sortRows(): void {
    this.rows.sort(
      (a, b) =>
        cmp(a.governorate, b.governorate) || cmp(a.office, b.office) || cmp(a.stationId, b.stationId) || cmp(a.deviceId, b.deviceId),
    );
    this.index = new Map();
    this.rows.forEach((r, i) => this.index.set(r.deviceId, i));
    this.needsSort = false;
  }
}

function fleetRow(
  id: string,
  d: RegisteredDevice | undefined,
  s: DeviceState | undefined,
  nowMs: number,
  opts: AlertOptions,
  alerts: number,
  recordAlarms = 0,
): FleetRow {
  const h = s?.lastHealth?.health ?? null;
  const soh = healthField(h, "stateOfHealthPermille");
  const station = h ? (h as Record<string, unknown>).stationId : undefined;
  return {
    deviceId: id,
    site: d?.site ?? s?.lastHealth?.site ?? "",
    governorate: d?.governorate ?? "",
    office: d?.office ?? "",
    stationId: d?.stationId ?? "",
    role: d?.role ?? "unknown",
    batteryMv: h ? healthField(h, "batteryMv") : null,
    socPercent: h ? healthField(h, "stateOfChargePermille") / 10 : null,
    chargeState: h ? healthField(h, "chargeState") : null,
    chargeMode: h ? healthField(h, "chargeMode") : null,
    chargerFaults: healthField(h, "chargerFaults"),
    peripheralFaults: healthField(h, "peripheralFaults"),
    journalBacklog: healthField(h, "journalBacklog"),
    temperatureC: h ? healthField(h, "temperatureDecic") / 10 : null,
    sohPercent: soh > 0 ? soh / 10 : null,
    cycleCount: h ? healthField(h, "cycleCount") : null,
    dischargePercentPerHour: h ? healthField(h, "dischargePermillePerHour") / 10 : null,
    powerAlarms: (healthField(h, "powerAlarms") | recordAlarms) >>> 0,
    pollsState: h ? healthField(h, "pollsState") : null,
    healthStationId: typeof station === "string" ? station : "",
    lastSeenMs: s?.lastSeenMs ?? 0,
    online: s?.online ?? false,
    status: deviceStatus(s, nowMs, opts),
    firmwareVersion: s?.firmwareVersion ?? "",
    records: s?.records ?? 0,
    alerts,
    registered: d !== undefined,
  };
}

function emptyStatus(governorate: string, office: string): StatusRow {
  return { governorate, office, devices: 0, ready: 0, charging: 0, faulty: 0, silent: 0, records: 0 };
}

function add(row: StatusRow, r: FleetRow): void {
  row.devices++;
  row[r.status]++;
  row.records += r.records;
}

export function aggregate(rows: FleetRow[]): { status: StatusRow[]; governorates: string[]; offices: Record<string, string[]> } {
  const govs = new Map<string, { total: StatusRow; offices: Map<string, StatusRow> }>();
  const total = emptyStatus("", "");
  for (const r of rows) {
    let g = govs.get(r.governorate);
    if (!g) govs.set(r.governorate, (g = { total: emptyStatus(r.governorate, ""), offices: new Map() }));
    let o = g.offices.get(r.office);
    if (!o) g.offices.set(r.office, (o = emptyStatus(r.governorate, r.office)));
    add(o, r);
    add(g.total, r);
    add(total, r);
  }
  const status: StatusRow[] = [];
  const governorates = [...govs.keys()].sort(cmp);
  const offices: Record<string, string[]> = {};
  for (const name of governorates) {
    const g = govs.get(name);
    if (!g) continue;
    status.push(g.total);
    const names = [...g.offices.keys()].sort(cmp);
    offices[name] = names;
    for (const o of names) {
      const row = g.offices.get(o);
      if (row) status.push(row);
    }
  }
  status.push(total);
  return { status, governorates, offices };
}

export interface FleetFilter {
  governorate?: string;
  office?: string;
  status?: string;
  site?: string;
  /** Substring of the device id. */
  q?: string;
}

export function filterRows(rows: FleetRow[], f: FleetFilter): FleetRow[] {
  const q = f.q?.toLowerCase();
  if (!f.governorate && !f.office && !f.status && !f.site && !q) return rows;
  return rows.filter(
    (r) =>
      (!f.governorate || r.governorate === f.governorate) &&
      (!f.office || r.office === f.office) &&
      (!f.status || r.status === f.status) &&
      (!f.site || r.site === f.site) &&
      (!q || r.deviceId.toLowerCase().includes(q)),
  );
}

export function countByStatus(rows: FleetRow[]): Record<DeviceStatus, number> {
  const c: Record<DeviceStatus, number> = { ready: 0, charging: 0, faulty: 0, silent: 0 };
  for (const r of rows) c[r.status]++;
  return c;
}

// --- CSV -------------------------------------------------------------------------------------

/** One CSV field (RFC 4180 quoting; a leading =, +, - or @ is prefixed so spreadsheets do not run it). */
export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return "";
  let s = String(v);
  if (typeof v === "string" && /^[=+\-@]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | boolean | null | undefined>>): string {
  const lines = [header.map(csvField).join(",")];
  for (const r of rows) lines.push(r.map(csvField).join(","));
  return lines.join("\r\n") + "\r\n";
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
