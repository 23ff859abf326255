// The operations console's web server (node:http): the dashboard page, a JSON API for each view,
// CSV exports, the maintenance report, and server-sent events that tell open pages what changed.
//
// Reads go through an in-memory fleet model (model.ts): the store is read in full at start and
// every `reloadEveryMs`; ingest events patch only the devices they name; statuses that depend on
// time alone (silence) are recomputed from memory every `refreshEveryMs`. A page of 200 fleet rows
// out of 60,000 costs a filter and a slice.

import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { alertText, DEVICE_STATUSES, healthField, sortAlerts, type Alert, type AlertOptions } from "../alerts/alerts.ts";
import { maintenanceCsv, maintenanceHtml, maintenanceReport, safeName } from "../reports/maintenance.ts";
import type { OpsStore } from "../store/store.ts";
import { formatTime, parseLang, type Lang } from "./i18n.ts";
import { countByStatus, filterRows, FleetModel, toCsv, type DeviceChange, type FleetRow, type Snapshot } from "./model.ts";
import type { HealthSample } from "../store/store.ts";
import { pageHtml } from "./page.ts";
import { StationViews } from "../views/stations.ts";
import { importElectionBody, signedExport, stationApi, stationCsv, type Reply } from "./station_api.ts";

/** What the server needs of host/ops/ingest/ingest.ts `Ingest`: its events. */
export interface IngestEvents {
  on(event: string, listener: (payload: unknown) => void): unknown;
  off(event: string, listener: (payload: unknown) => void): unknown;
  /** A device's last log lines, oldest first: evidence for alerts (journal full). */
  logTail?(deviceId: string): string[];
}

export const INGEST_EVENTS = ["records", "health", "quarantine", "device"] as const;

export interface OpsWebOptions {
  store: OpsStore;
  ingest?: IngestEvents;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The page's language when the URL does not say (?lang=ar). */
  lang?: Lang;
  alertOptions?: Partial<AlertOptions>;
  /** Clock, for tests. */
  now?: () => number;
  /** Minimum time between two "changed" events per client stream (default 250 ms: 4 a second). */
  eventIntervalMs?: number;
  /** Recompute statuses and alerts from memory this often, for silence (default 15 s). */
  refreshEveryMs?: number;
  /** Read every device state from the store again this often (default 5 min). */
  reloadEveryMs?: number;
  /**
   * Other consoles write the same store (a shared subscription): the station views are read again
   * in full every reloadEveryMs, not only from this console's ingest events.
   */
  sharedStore?: boolean;
  /** Time after a station's close by which its result must have arrived (default 6 h). */
  resultDeadlineMs?: number;
  /** The commission's public key (X || Y hex): election definitions imported as artifacts must verify against it. */
  commissionKeyHex?: string | null;
  /**
   * Bearer token that allows POST /api/elections (importing definitions over HTTP). Without one the
   * endpoint is refused; use `pollkit ops import-election` or the config's `election` instead.
   */
  importToken?: string | null;
}

export interface OpsWeb {
  url: string;
  port: number;
  server: Server;
  /** Tell the server (and open pages) that these devices changed; what ingest events do. */
  notifyChanged(deviceIds: string[], kind?: string): void;
  /** Emits "changed" ({ devices, stations, kinds }) after each throttled flush. */
  events: EventEmitter;
  /** Turnout, results and reconciliation (host/ops/views/stations.ts). */
  stations: StationViews;
  close(): Promise<void>;
}

const MAX_IDS_PER_EVENT = 500;
const PAGE_LIMIT_MAX = 1000;
const QUARANTINE_WINDOW = 100_000;
const MAX_IMPORT_BYTES = 64 * 1024 * 1024;

let bundlePromise: Promise<string> | null = null;

/** The browser code, bundled once per process by esbuild into memory. */
export function uiBundle(): Promise<string> {
  bundlePromise ??= (async () => {
    const esbuild = await import("esbuild");
    const result = await esbuild.build({
      entryPoints: [fileURLToPath(new URL("./ui/main.ts", import.meta.url))],
      bundle: true,
      write: false,
      format: "iife",
      target: "es2020",
      minify: true,
      legalComments: "none",
      logLevel: "silent",
    });
    return result.outputFiles[0].text;
  })();
  return bundlePromise;
}

export async function startOpsWeb(options: OpsWebOptions): Promise<OpsWeb> {
  const store = options.store;
  const now = options.now ?? Date.now;
  const defaultLang = options.lang ?? "en";
  const eventIntervalMs = options.eventIntervalMs ?? 250;
  const js = await uiBundle();
  const events = new EventEmitter();

  // --- snapshot: read the store once, then patch from ingest events -------------------------------
  const ingestLogs = options.ingest;
  const logTail = ingestLogs?.logTail ? (deviceId: string): string[] => ingestLogs.logTail?.(deviceId) ?? [] : undefined;
  const model = new FleetModel(store, options.alertOptions, eventIntervalMs, logTail);
  model.reload(now());
  const stations = new StationViews(store, { resultDeadlineMs: options.resultDeadlineMs, viewMinMs: eventIntervalMs });
  stations.reload();
  let reloadNeeded = false;
  const snapshot = (): Snapshot => model.view();
  const refreshTimer = setInterval(() => {
    model.refresh(now());
  }, options.refreshEveryMs ?? 15_000);
  refreshTimer.unref();
  const reloadTimer = setInterval(() => {
    reloadNeeded = false;
    model.reload(now());
    // Records another console stored in a shared database reach this one only through a reload;
    // otherwise ingest's events keep the views current and only the registry and definitions are read.
    if (options.sharedStore) stations.reload();
    else {
      stations.reloadRegistry();
      stations.reloadElections();
    }
  }, options.reloadEveryMs ?? 300_000);
  reloadTimer.unref();

  // --- change notification: ingest events -> throttled SSE -------------------------------------
  const clients = new Set<ServerResponse>();
  const pendingIds = new Set<string>();
  const pendingStations = new Set<string>();
  const pendingKinds = new Set<string>();
  let overflow = false;
  let flushTimer: NodeJS.Timeout | null = null;
  let lastFlush = 0;
  const flush = (): void => {
    flushTimer = null;
    lastFlush = Date.now();
    if (reloadNeeded) {
      reloadNeeded = false;
      model.reload(now());
      stations.reloadRegistry();
      stations.reloadElections();
    }
    const payload = {
      devices: overflow ? [] : [...pendingIds],
      /** Stations whose turnout, result or reconciliation changed (at most 500). */
      stations: [...pendingStations],
      all: overflow,
      kinds: [...pendingKinds],
      atMs: now(),
    };
    pendingIds.clear();
    pendingStations.clear();
    pendingKinds.clear();
    overflow = false;
    const text = `event: changed\ndata: ${JSON.stringify(payload)}\n\n`;
    for (const c of clients) c.write(text);
    events.emit("changed", payload);
  };
  const queue = (deviceIds: string[], kind: string): void => {
    pendingKinds.add(kind);
    for (const id of deviceIds) {
      if (pendingIds.size >= MAX_IDS_PER_EVENT) {
        overflow = true;
        break;
      }
      pendingIds.add(id);
    }
    if (deviceIds.length === 0 && kind !== "quarantine") overflow = true;
    if (!flushTimer) flushTimer = setTimeout(flush, Math.max(0, lastFlush + eventIntervalMs - Date.now()));
  };
  /** External changes (no payload): the devices' states are read again from the store at the next flush. */
  const notifyChanged = (deviceIds: string[], kind = "device"): void => {
    reloadNeeded = true;
    queue(deviceIds, kind);
  };
  const onIngest = (kind: string, payload: unknown): void => {
    let ids: string[];
    try {
      if (kind === "health" && Array.isArray(payload)) ids = model.applyHealth(payload as HealthSample[]);
      else if (kind === "records" && Array.isArray(payload)) {
        ids = model.applyRecords(payload as Array<{ deviceId: string; receivedMs: number }>);
        const changed = stations.apply(payload as Parameters<StationViews["apply"]>[0]);
        if (changed.length) {
          pendingKinds.add("stations");
          for (const id of changed) if (pendingStations.size < MAX_IDS_PER_EVENT) pendingStations.add(id);
        }
      }
      else if (kind === "device" && isDeviceChange(payload)) ids = model.applyDevice(payload);
      else ids = deviceIdsOf(payload);
    } catch {
      ids = deviceIdsOf(payload);
      reloadNeeded = true;
    }
    queue(ids, kind);
  };
  const listeners = INGEST_EVENTS.map((kind) => {
    const fn = (payload: unknown): void => onIngest(kind, payload);
    options.ingest?.on(kind, fn);
    return [kind, fn] as const;
  });
  const keepAlive = setInterval(() => {
    for (const c of clients) c.write(": keep-alive\n\n");
  }, 20_000);
  keepAlive.unref();

  // --- routes -----------------------------------------------------------------------------------
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const q = url.searchParams;
    const lang = parseLang(q.get("lang")) ?? defaultLang;
    if (req.method === "POST" && path === "/api/elections") return postElection(req, res);
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed\n");

    if (path === "/" || path === "/index.html") return send(res, 200, "text/html; charset=utf-8", pageHtml(lang));
    if (path === "/app.js") return send(res, 200, "text/javascript; charset=utf-8", js, { "cache-control": "no-cache" });
    if (path === "/events") return openEvents(req, res, clients);

    if (path === "/api/fleet") {
      const s = snapshot();
      const filtered = filterRows(s.rows, fleetFilter(q));
      const limit = clampInt(q.get("limit"), 200, 1, PAGE_LIMIT_MAX);
      const offset = clampInt(q.get("offset"), 0, 0, Number.MAX_SAFE_INTEGER);
      return json(res, {
        generatedMs: s.nowMs,
        total: filtered.length,
        totalAll: s.rows.length,
        counts: countByStatus(filtered),
        offset,
        limit,
        rows: filtered.slice(offset, offset + limit),
        governorates: s.governorates,
        offices: s.offices,
        statuses: DEVICE_STATUSES,
      });
    }
    const m = /^\/api\/devices\/([^/]+)$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]);
      const s = snapshot();
      const row = s.byId.get(id);
      if (!row) return json(res, { error: "unknown-device", deviceId: id }, 404);
      // healthHistory returns the oldest first from sinceMs: ask for the window, thin it for the plot.
      const hours = clampInt(q.get("hours"), 24, 1, 24 * 90);
      const points = clampInt(q.get("points"), 720, 2, 10_000);
      const history = thin(
        store.healthHistory(id, now() - hours * 3_600_000, 50_000).sort((a, b) => a.receivedMs - b.receivedMs),
        points,
      ).map((h) => ({
          t: h.receivedMs,
          batteryMv: healthField(h.health, "batteryMv"),
          socPercent: healthField(h.health, "stateOfChargePermille") / 10,
          chargeState: healthField(h.health, "chargeState"),
          temperatureC: healthField(h.health, "temperatureDecic") / 10,
          journalBacklog: healthField(h.health, "journalBacklog"),
          sohPercent: healthField(h.health, "stateOfHealthPermille") / 10,
          cycleCount: healthField(h.health, "cycleCount"),
          powerAlarms: healthField(h.health, "powerAlarms"),
        }));
      const state = model.deviceState(id);
      return json(res, {
        generatedMs: s.nowMs,
        device: row,
        registered: store.device(id),
        lastHealth: state?.lastHealth?.health ?? null,
        powerAlarms: model.powerAlarms.of(id),
        alerts: [...(s.alertsByDevice.get(id) ?? []), ...allAlerts(s).filter((a) => a.stationId !== undefined && a.deviceId === id)],
        history,
      });
    }
    if (path === "/api/alerts") {
      const s = snapshot();
      const list = filterAlerts(s, allAlerts(s), q, stations);
      const limit = clampInt(q.get("limit"), 500, 1, 100_000);
      return json(res, {
        generatedMs: s.nowMs,
        total: list.length,
        counts: { critical: count(list, "critical"), warning: count(list, "warning"), info: count(list, "info") },
        alerts: list.slice(0, limit).map((a) => ({ ...a, ...placeOf(s, a, stations) })),
      });
    }
    if (path === "/api/status") {
      const s = snapshot();
      return json(res, { generatedMs: s.nowMs, rows: s.status });
    }
    if (path === "/api/quarantine") {
      // quarantined() returns the oldest first: read a bounded window and keep its newest end.
      const limit = clampInt(q.get("limit"), 50, 1, 1000);
      const recent = store.quarantined({ reason: q.get("reason") || undefined, limit: QUARANTINE_WINDOW });
      return json(res, {
        counts: store.quarantineCounts(),
        latest: recent.slice(-limit).reverse().map(quarantineJson),
      });
    }
    const st = stationApi(path, q, stations, store, now());
    if (st) return reply(res, st);
    const signed = /^\/api\/export\/results\.signed\.(json|ndjson)$/.exec(path);
    if (signed) return reply(res, signedExport(signed[1] as "json" | "ndjson", q, stations, store, now()));
    const exp = /^\/api\/export\/([a-z]+)\.csv$/.exec(path);
    if (exp) return exportCsv(res, exp[1], q, lang);
    if (path === "/api/reports/maintenance") {
      const site = q.get("site") ?? "";
      const body = maintenanceCsv(maintenanceReport(snapshot(), site));
      const date = new Date(now()).toISOString().slice(0, 10);
      return send(res, 200, "text/csv; charset=utf-8", body, {
        "content-disposition": `attachment; filename="maintenance-${safeName(site || "all")}-${date}.csv"`,
      });
    }
    if (path === "/reports/maintenance") {
      return send(res, 200, "text/html; charset=utf-8", maintenanceHtml(maintenanceReport(snapshot(), q.get("site") ?? ""), lang));
    }
    return send(res, 404, "text/plain", "not found\n");
  };

  // --- alerts: the devices' (from the fleet model) and the stations' (result overdue) ------------
  let alertCache: { snap: Snapshot; version: number; atMs: number; list: Alert[] } | null = null;
  const allAlerts = (s: Snapshot): Alert[] => {
    const t = now();
    const c = alertCache;
    if (c && c.snap === s && c.version === stations.changeCount && t - c.atMs < 1000) return c.list;
    const overdue = stations.overdueAlerts(t);
    const list = overdue.length ? sortAlerts([...s.alerts, ...overdue]) : s.alerts;
    alertCache = { snap: s, version: stations.changeCount, atMs: t, list };
    return list;
  };

  const postElection = (req: IncomingMessage, res: ServerResponse): void => {
    const token = options.importToken;
    if (!token) {
      json(res, { error: "import-disabled", message: "importing over HTTP needs web.importToken in the ops config; or run: pollkit ops import-election <file>" }, 403);
      req.resume();
      return;
    }
    if (req.headers.authorization !== `Bearer ${token}`) {
      json(res, { error: "unauthorized", message: "send the import token as: Authorization: Bearer <token>" }, 401);
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_IMPORT_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on("end", () => {
      if (tooLarge) return json(res, { error: "too-large", message: `at most ${MAX_IMPORT_BYTES} bytes` }, 413);
      try {
        const name = new URL(req.url ?? "/", "http://localhost").searchParams.get("name") || "upload";
        reply(res, importElectionBody(new Uint8Array(Buffer.concat(chunks)), name, store, stations, options.commissionKeyHex ?? null, now()));
        queue([], "elections");
      } catch (err) {
        json(res, { error: "internal", message: err instanceof Error ? err.message : String(err) }, 500);
      }
    });
  };

  const exportCsv = (res: ServerResponse, table: string, q: URLSearchParams, lang: Lang): void => {
    const st = stationCsv(table, q, stations);
    if (st) return reply(res, st);
    const s = snapshot();
    let body: string;
    if (table === "fleet") {
      body = toCsv(
        ["device", "site", "governorate", "office", "station", "role", "status", "battery_mv", "soc_percent", "charge_state", "charge_mode", "soh_percent", "cycle_count", "power_alarms", "charger_faults", "peripheral_faults", "journal_backlog", "online", "last_seen_utc", "firmware", "records", "alerts"],
        filterRows(s.rows, fleetFilter(q)).map((r) => [
          r.deviceId, r.site, r.governorate, r.office, r.stationId, r.role, r.status, r.batteryMv, r.socPercent, r.chargeState, r.chargeMode,
          r.sohPercent, r.cycleCount, r.powerAlarms, r.chargerFaults, r.peripheralFaults, r.journalBacklog, r.online, formatTime(r.lastSeenMs), r.firmwareVersion, r.records, r.alerts,
        ]),
      );
    } else if (table === "alerts") {
      body = toCsv(
        ["id", "device", "station", "governorate", "office", "severity", "kind", "message", "since_utc"],
        filterAlerts(s, allAlerts(s), q, stations).map((a) => {
          const p = placeOf(s, a, stations);
          return [a.id, a.deviceId, a.stationId ?? "", p.governorate, p.office, a.severity, a.kind, alertText(lang, a), formatTime(a.sinceMs)];
        }),
      );
    } else if (table === "status") {
      body = toCsv(
        ["governorate", "office", "devices", "ready", "charging", "faulty", "silent", "records"],
        s.status.map((r) => [r.governorate || "total", r.office || (r.governorate ? "total" : ""), r.devices, r.ready, r.charging, r.faulty, r.silent, r.records]),
      );
    } else if (table === "quarantine") {
      const counts = store.quarantineCounts();
      body = toCsv(
        ["received_utc", "device", "reason", "topic", "detail", "payload_bytes"],
        store.quarantined({ limit: clampInt(q.get("limit"), 10_000, 1, 1_000_000) }).map((e) => [
          formatTime(e.receivedMs), e.deviceId, e.reason, e.topic, e.detail, e.payload.length,
        ]),
      );
      body += toCsv(["reason", "count"], Object.entries(counts)).replace(/^/, "\r\n");
    } else {
      return send(res, 404, "text/plain", `unknown table: ${table} (fleet, alerts, status, quarantine, turnout, results, reconciliation)\n`);
    }
    send(res, 200, "text/csv; charset=utf-8", body, { "content-disposition": `attachment; filename="${table}.csv"` });
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) send(res, 500, "application/json", JSON.stringify({ error: "internal", message }) + "\n");
      else res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;

  return {
    url: `http://${hostForUrl}:${addr.port}`,
    port: addr.port,
    server,
    notifyChanged,
    events,
    stations,
    close: async () => {
      for (const [kind, fn] of listeners) options.ingest?.off(kind, fn);
      clearInterval(keepAlive);
      clearInterval(refreshTimer);
      clearInterval(reloadTimer);
      if (flushTimer) clearTimeout(flushTimer);
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// --- helpers -----------------------------------------------------------------------------------

function openEvents(req: IncomingMessage, res: ServerResponse, clients: Set<ServerResponse>): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.write("retry: 2000\n\n");
  clients.add(res);
  req.on("close", () => clients.delete(res));
}

/** Device ids in an ingest event's payload: a sample, a list of them, or an object holding lists. */
export function deviceIdsOf(payload: unknown, depth = 0): string[] {
  if (payload === null || typeof payload !== "object" || depth > 2) return [];
  if (Array.isArray(payload)) {
    const ids = new Set<string>();
    for (const p of payload) for (const id of deviceIdsOf(p, depth + 1)) ids.add(id);
    return [...ids];
  }
  const o = payload as Record<string, unknown>;
  if (typeof o.deviceId === "string") return [o.deviceId];
  const ids = new Set<string>();
  for (const v of Object.values(o)) if (Array.isArray(v)) for (const id of deviceIdsOf(v, depth + 1)) ids.add(id);
  return [...ids];
}

function isDeviceChange(p: unknown): p is DeviceChange {
  return typeof p === "object" && p !== null && typeof (p as { deviceId?: unknown }).deviceId === "string";
}

function fleetFilter(q: URLSearchParams): { governorate?: string; office?: string; status?: string; site?: string; q?: string } {
  return {
    governorate: q.get("governorate") || undefined,
    office: q.get("office") || undefined,
    status: q.get("status") || undefined,
    site: q.get("site") || undefined,
    q: q.get("q") || undefined,
  };
}

function filterAlerts(s: Snapshot, alerts: Alert[], q: URLSearchParams, stations: StationViews): Alert[] {
  const severity = q.get("severity");
  const kind = q.get("kind");
  const governorate = q.get("governorate");
  const office = q.get("office");
  const device = q.get("device");
  const station = q.get("station");
  if (!severity && !kind && !governorate && !office && !device && !station) return alerts;
  return alerts.filter((a) => {
    if (severity && a.severity !== severity) return false;
    if (kind && a.kind !== kind) return false;
    if (device && a.deviceId !== device) return false;
    if (station && a.stationId !== station && s.byId.get(a.deviceId)?.stationId !== station) return false;
    if (governorate || office) {
      const p = placeOf(s, a, stations);
      if (governorate && p.governorate !== governorate) return false;
      if (office && p.office !== office) return false;
    }
    return true;
  });
}

function placeOf(s: Snapshot, a: Pick<Alert, "deviceId" | "stationId">, stations: StationViews): { governorate: string; office: string; site: string } {
  const r: FleetRow | undefined = s.byId.get(a.deviceId);
  if (a.stationId !== undefined && !r) return { ...stations.stationPlace(a.stationId), site: "" };
  return { governorate: r?.governorate ?? "", office: r?.office ?? "", site: r?.site ?? "" };
}

function reply(res: ServerResponse, r: Reply): void {
  send(res, r.status, r.type, r.body, r.headers);
}

function count(list: Alert[], severity: string): number {
  let n = 0;
  for (const a of list) if (a.severity === severity) n++;
  return n;
}

function quarantineJson(e: { receivedMs: number; topic: string; deviceId: string; reason: string; detail: string; payload: Uint8Array }): {
  receivedMs: number;
  topic: string;
  deviceId: string;
  reason: string;
  detail: string;
  payloadBytes: number;
} {
  return { receivedMs: e.receivedMs, topic: e.topic, deviceId: e.deviceId, reason: e.reason, detail: e.detail, payloadBytes: e.payload.length };
}

/** At most `n` items, evenly spaced, first and last kept. */
export function thin<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(items[Math.round((i * (items.length - 1)) / (n - 1))]);
  return out;
}

function clampInt(v: string | null, dflt: number, min: number, max: number): number {
  if (v === null || v === "") return dflt;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : dflt;
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(body));
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  const buf = Buffer.from(body, "utf8");
  res.writeHead(status, { "content-type": type, "content-length": buf.length, ...headers });
  res.end(res.req.method === "HEAD" ? undefined : buf);
}

