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
import { alertText, DEVICE_STATUSES, healthField, type Alert, type AlertOptions } from "../alerts/alerts.ts";
import { maintenanceCsv, maintenanceHtml, maintenanceReport, safeName } from "../reports/maintenance.ts";
import type { OpsStore } from "../store/store.ts";
import { formatTime, parseLang, type Lang } from "./i18n.ts";
import { countByStatus, filterRows, FleetModel, toCsv, type DeviceChange, type FleetRow, type Snapshot } from "./model.ts";
import type { HealthSample } from "../store/store.ts";
import { pageHtml } from "./page.ts";

/** What the server needs of host/ops/ingest/ingest.ts `Ingest`: its events. */
export interface IngestEvents {
  on(event: string, listener: (payload: unknown) => void): unknown;
  off(event: string, listener: (payload: unknown) => void): unknown;
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
}

export interface OpsWeb {
  url: string;
  port: number;
  server: Server;
  /** Tell the server (and open pages) that these devices changed; what ingest events do. */
  notifyChanged(deviceIds: string[], kind?: string): void;
  /** Emits "changed" ({ devices, kinds }) after each throttled flush. */
  events: EventEmitter;
  close(): Promise<void>;
}

const MAX_IDS_PER_EVENT = 500;
const PAGE_LIMIT_MAX = 1000;
const QUARANTINE_WINDOW = 100_000;

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
  const model = new FleetModel(store, options.alertOptions, eventIntervalMs);
  model.reload(now());
  let reloadNeeded = false;
  const snapshot = (): Snapshot => model.view();
  const refreshTimer = setInterval(() => {
    model.refresh(now());
  }, options.refreshEveryMs ?? 15_000);
  refreshTimer.unref();
  const reloadTimer = setInterval(() => {
    reloadNeeded = false;
    model.reload(now());
  }, options.reloadEveryMs ?? 300_000);
  reloadTimer.unref();

  // --- change notification: ingest events -> throttled SSE -------------------------------------
  const clients = new Set<ServerResponse>();
  const pendingIds = new Set<string>();
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
    }
    const payload = {
      devices: overflow ? [] : [...pendingIds],
      all: overflow,
      kinds: [...pendingKinds],
      atMs: now(),
    };
    pendingIds.clear();
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
      else if (kind === "records" && Array.isArray(payload)) ids = model.applyRecords(payload as Array<{ deviceId: string; receivedMs: number }>);
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
        }));
      const state = model.deviceState(id);
      return json(res, {
        generatedMs: s.nowMs,
        device: row,
        registered: store.device(id),
        lastHealth: state?.lastHealth?.health ?? null,
        alerts: s.alertsByDevice.get(id) ?? [],
        history,
      });
    }
    if (path === "/api/alerts") {
      const s = snapshot();
      const list = filterAlerts(s, q);
      const limit = clampInt(q.get("limit"), 500, 1, 100_000);
      return json(res, {
        generatedMs: s.nowMs,
        total: list.length,
        counts: { critical: count(list, "critical"), warning: count(list, "warning"), info: count(list, "info") },
        alerts: list.slice(0, limit).map((a) => ({ ...a, ...placeOf(s, a.deviceId) })),
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
    if (path === "/api/turnout" || path === "/api/results" || path === "/api/reconciliation") {
      return json(res, {
        rows: [],
        note: "no turnout or results reported yet: the verification and result roles that produce them are not built yet",
      });
    }
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

  const exportCsv = (res: ServerResponse, table: string, q: URLSearchParams, lang: Lang): void => {
    const s = snapshot();
    let body: string;
    if (table === "fleet") {
      body = toCsv(
        ["device", "site", "governorate", "office", "station", "role", "status", "battery_mv", "soc_percent", "charge_state", "charge_mode", "charger_faults", "peripheral_faults", "journal_backlog", "online", "last_seen_utc", "firmware", "records", "alerts"],
        filterRows(s.rows, fleetFilter(q)).map((r) => [
          r.deviceId, r.site, r.governorate, r.office, r.stationId, r.role, r.status, r.batteryMv, r.socPercent, r.chargeState, r.chargeMode,
          r.chargerFaults, r.peripheralFaults, r.journalBacklog, r.online, formatTime(r.lastSeenMs), r.firmwareVersion, r.records, r.alerts,
        ]),
      );
    } else if (table === "alerts") {
      body = toCsv(
        ["id", "device", "governorate", "office", "severity", "kind", "message", "since_utc"],
        filterAlerts(s, q).map((a) => {
          const p = placeOf(s, a.deviceId);
          return [a.id, a.deviceId, p.governorate, p.office, a.severity, a.kind, alertText(lang, a), formatTime(a.sinceMs)];
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
      return send(res, 404, "text/plain", `unknown table: ${table} (fleet, alerts, status, quarantine)\n`);
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

function filterAlerts(s: Snapshot, q: URLSearchParams): Alert[] {
  const severity = q.get("severity");
  const kind = q.get("kind");
  const governorate = q.get("governorate");
  const office = q.get("office");
  const device = q.get("device");
  if (!severity && !kind && !governorate && !office && !device) return s.alerts;
  return s.alerts.filter((a) => {
    if (severity && a.severity !== severity) return false;
    if (kind && a.kind !== kind) return false;
    if (device && a.deviceId !== device) return false;
    const row: FleetRow | undefined = s.byId.get(a.deviceId);
    if (governorate && row?.governorate !== governorate) return false;
    if (office && row?.office !== office) return false;
    return true;
  });
}

function placeOf(s: Snapshot, deviceId: string): { governorate: string; office: string; site: string } {
  const r = s.byId.get(deviceId);
  return { governorate: r?.governorate ?? "", office: r?.office ?? "", site: r?.site ?? "" };
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

