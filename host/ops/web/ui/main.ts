// The dashboard page (runs in the browser; bundled by esbuild into /app.js at server start).
// No framework: each view fetches its JSON and writes its table as one HTML string, which keeps a
// page of 200 fleet rows cheap. The server pushes "changed" events on /events (server-sent
// events); the page then refetches what is on screen: the current fleet page, the open device,
// the alert and status tables.

import { alertText, type Alert, type DeviceStatus } from "../../alerts/alerts.ts";
import { dirOf, formatTime, label, parseLang, peripheralNames, t, type Lang, type MessageKey } from "../i18n.ts";
import type { FleetRow, StatusRow } from "../model.ts";
import { document, history, location, openEventSource, type El, type MessageEv } from "./dom.ts";
import { STATION_TABS, stationUi, type StationTab } from "./stations_view.ts";

interface FleetResponse {
  generatedMs: number;
  total: number;
  totalAll: number;
  counts: Record<DeviceStatus, number>;
  offset: number;
  limit: number;
  rows: FleetRow[];
  governorates: string[];
  offices: Record<string, string[]>;
  statuses: DeviceStatus[];
}
interface HistoryPoint {
  t: number;
  batteryMv: number;
  socPercent: number;
}
interface DetailResponse {
  device: FleetRow;
  alerts: Alert[];
  history: HistoryPoint[];
}
interface AlertsResponse {
  total: number;
  counts: { critical: number; warning: number; info: number };
  alerts: Array<Alert & { governorate: string; office: string }>;
}
interface QuarantineResponse {
  counts: Record<string, number>;
  latest: Array<{ receivedMs: number; topic: string; deviceId: string; reason: string; detail: string; payloadBytes: number }>;
}
interface ChangedEvent {
  devices: string[];
  stations?: string[];
  all: boolean;
  kinds: string[];
}

type Tab = "fleet" | "alerts" | "status" | StationTab | "quarantine";
const TABS: Tab[] = ["fleet", "alerts", "status", "turnout", "results", "reconciliation", "quarantine"];
const isStationTab = (tab: string): tab is StationTab => (STATION_TABS as string[]).includes(tab);
const PAGE_SIZE = 200;

const params = new URLSearchParams(location.search);
const app = document.getElementById("app") as El;
const state = {
  lang: parseLang(params.get("lang")) ?? parseLang(app.dataset.lang) ?? ("en" as Lang),
  tab: (TABS as string[]).includes(params.get("tab") ?? "") ? (params.get("tab") as Tab) : ("fleet" as Tab),
  governorate: params.get("governorate") ?? "",
  office: params.get("office") ?? "",
  status: params.get("status") ?? "",
  q: params.get("q") ?? "",
  offset: 0,
  selected: params.get("device") ?? "",
  fleet: null as FleetResponse | null,
  detail: null as DetailResponse | null,
  alerts: null as AlertsResponse | null,
  status_: null as StatusRow[] | null,
  quarantine: null as QuarantineResponse | null,
  live: false,
  lastUpdate: 0,
};

const tr = (key: MessageKey, p?: Record<string, string | number>): string => t(state.lang, key, p);
const esc = (s: string | number | null | undefined): string =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
const $ = (id: string): El => document.getElementById(id) as El;
const stations = stationUi({ lang: () => state.lang, tr, esc, $, getJson, syncUrl }, params);

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

// --- layout --------------------------------------------------------------------------------------

function shell(): void {
  app.innerHTML = `
<header>
  <h1 id="title"></h1>
  <span id="live" class="off"></span>
  <span id="lang" role="group"><button data-lang="en" lang="en">English</button> <button data-lang="ar" lang="ar">العربية</button></span>
</header>
<nav id="tabs" role="tablist">${TABS.map((tab) => `<button role="tab" data-tab="${tab}" id="tab-${tab}"></button>`).join("")}</nav>
<main>
  <section id="view-fleet">
    <div id="detail" hidden></div>
    <h2 id="fleet-heading"></h2>
    <div class="filters">
      <label><span id="lbl-governorate"></span><select id="f-governorate"></select></label>
      <label><span id="lbl-office"></span><select id="f-office"></select></label>
      <label><span id="lbl-status"></span><select id="f-status"></select></label>
      <label><span id="lbl-q"></span><input id="f-q" type="search" dir="ltr"></label>
    </div>
    <div class="bar"><span id="fleet-count"></span><span id="fleet-counts" class="counts"></span>
      <button id="prev"></button><button id="next"></button><a id="fleet-csv" href="#"></a><a id="report-link" href="#" target="_blank"></a></div>
    <table id="fleet-table"><thead id="fleet-head"></thead><tbody id="fleet-body"></tbody></table>
    <div id="fleet-empty" class="empty" hidden></div>
  </section>
  <section id="view-alerts" hidden><h2 id="alerts-heading"></h2><div class="bar"><span id="alerts-count"></span><a id="alerts-csv" href="/api/export/alerts.csv"></a></div><div id="alerts-list"></div></section>
  <section id="view-status" hidden><h2 id="status-heading"></h2><p class="note" id="status-note"></p><div class="bar"><a id="status-csv" href="/api/export/status.csv"></a></div><div id="status-table"></div></section>
  <section id="view-quarantine" hidden><h2 id="quarantine-heading"></h2><div class="bar"><a id="quarantine-csv" href="/api/export/quarantine.csv"></a></div><div id="quarantine-body"></div></section>
  ${stations.html()}
</main>`;

  $("lang").addEventListener("click", (e) => {
    const lang = parseLang(e.target.dataset.lang);
    if (lang && lang !== state.lang) setLang(lang);
  });
  $("tabs").addEventListener("click", (e) => {
    const tab = e.target.closest("button")?.dataset.tab as Tab | undefined;
    if (tab) showTab(tab);
  });
  $("f-governorate").addEventListener("change", (e) => {
    state.governorate = e.target.value;
    state.office = "";
    state.offset = 0;
    void loadFleet();
  });
  $("f-office").addEventListener("change", (e) => {
    state.office = e.target.value;
    state.offset = 0;
    void loadFleet();
  });
  $("f-status").addEventListener("change", (e) => {
    state.status = e.target.value;
    state.offset = 0;
    void loadFleet();
  });
  let qTimer: ReturnType<typeof setTimeout> | undefined;
  $("f-q").addEventListener("input", (e) => {
    state.q = e.target.value.trim();
    state.offset = 0;
    clearTimeout(qTimer);
    qTimer = setTimeout(() => void loadFleet(), 200);
  });
  $("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    void loadFleet();
  });
  $("next").addEventListener("click", () => {
    if (state.fleet && state.offset + PAGE_SIZE < state.fleet.total) {
      state.offset += PAGE_SIZE;
      void loadFleet();
    }
  });
  const openDevice = (e: { target: El }): void => {
    const id = e.target.closest("[data-device]")?.getAttribute("data-device");
    if (id) {
      state.selected = id;
      if (state.tab !== "fleet") showTab("fleet");
      void loadDetail().then(() => $("detail").scrollIntoView({ block: "start" }));
    }
  };
  $("fleet-body").addEventListener("click", openDevice);
  $("alerts-list").addEventListener("click", (e) => {
    // A station's alert (result overdue) opens the station on the reconciliation tab.
    const station = e.target.closest("[data-station]")?.getAttribute("data-station");
    if (station) {
      stations.state.station = station;
      showTab("reconciliation");
      void stations.loadStation();
      return;
    }
    openDevice(e);
  });
  stations.bind();
  $("detail").addEventListener("click", (e) => {
    if (e.target.id === "detail-close") {
      state.selected = "";
      state.detail = null;
      renderDetail();
      syncUrl();
    }
  });
}

function setLang(lang: Lang): void {
  state.lang = lang;
  document.documentElement.lang = lang;
  document.documentElement.dir = dirOf(lang);
  syncUrl();
  renderAll();
}

function showTab(tab: Tab): void {
  state.tab = tab;
  for (const x of TABS) {
    $(`view-${x}`).hidden = x !== tab;
    $(`tab-${x}`).setAttribute("aria-selected", String(x === tab));
  }
  syncUrl();
  void refreshTab();
}

function syncUrl(): void {
  const p = new URLSearchParams();
  if (state.lang !== "en") p.set("lang", state.lang);
  if (state.tab !== "fleet") p.set("tab", state.tab);
  if (state.governorate) p.set("governorate", state.governorate);
  if (state.office) p.set("office", state.office);
  if (state.status) p.set("status", state.status);
  if (state.q) p.set("q", state.q);
  if (state.selected) p.set("device", state.selected);
  stations.urlParams(p, state.tab);
  const s = p.toString();
  history.replaceState(null, "", s ? `?${s}` : location.pathname);
}

function renderStatic(): void {
  document.title = tr("page.title");
  $("title").textContent = tr("page.title");
  for (const b of Array.from($("lang").querySelectorAll("button"))) b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
  const tabKeys: Record<Tab, MessageKey> = {
    fleet: "nav.fleet",
    alerts: "nav.alerts",
    status: "nav.status",
    turnout: "nav.turnout",
    results: "nav.results",
    reconciliation: "nav.reconciliation",
    quarantine: "nav.quarantine",
  };
  for (const tab of TABS) {
    const badge = tab === "alerts" && state.alerts && state.alerts.counts.critical > 0 ? `<span class="badge">${state.alerts.counts.critical}</span>` : "";
    $(`tab-${tab}`).innerHTML = esc(tr(tabKeys[tab])) + badge;
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === state.tab));
    $(`view-${tab}`).hidden = tab !== state.tab;
  }
  $("fleet-heading").textContent = tr("fleet.heading");
  $("lbl-governorate").textContent = tr("filter.governorate");
  $("lbl-office").textContent = tr("filter.office");
  $("lbl-status").textContent = tr("filter.status");
  $("lbl-q").textContent = tr("filter.search");
  $("prev").textContent = tr("fleet.prev");
  $("next").textContent = tr("fleet.next");
  $("fleet-csv").textContent = tr("fleet.exportCsv");
  $("report-link").textContent = tr("report.link");
  $("alerts-heading").textContent = tr("alerts.heading");
  $("alerts-csv").textContent = tr("fleet.exportCsv");
  $("status-heading").textContent = tr("statusTable.heading");
  $("status-note").textContent = tr("statusTable.note");
  $("status-csv").textContent = tr("fleet.exportCsv");
  $("quarantine-heading").textContent = tr("quarantine.heading");
  $("quarantine-csv").textContent = tr("fleet.exportCsv");
  stations.renderStatic();
  $("fleet-head").innerHTML = `<tr>${(
    [
      ["col.device", ""],
      ["col.site", ""],
      ["col.governorate", ""],
      ["col.office", ""],
      ["col.role", ""],
      ["col.battery", "num"],
      ["col.charge", ""],
      ["col.mode", ""],
      ["col.soh", "num"],
      ["col.cycles", "num"],
      ["col.lastSeen", ""],
      ["col.faults", ""],
      ["col.online", ""],
      ["col.status", ""],
    ] as Array<[MessageKey, string]>
  )
    .map(([k, cls]) => `<th class="${cls}">${esc(tr(k))}</th>`)
    .join("")}</tr>`;
  renderLive();
}

function renderLive(): void {
  const el = $("live");
  el.className = state.live ? "on" : "off";
  el.textContent = state.live
    ? tr("page.live") + (state.lastUpdate ? " · " + tr("page.updated", { time: new Date(state.lastUpdate).toISOString().slice(11, 19) }) : "")
    : tr("page.offline");
}

function renderAll(): void {
  renderStatic();
  renderFleet(new Set());
  renderDetail();
  renderAlerts();
  renderStatus();
  renderQuarantine();
  stations.renderAll();
}

// --- fleet ---------------------------------------------------------------------------------------

function fleetQuery(): string {
  const p = new URLSearchParams();
  if (state.governorate) p.set("governorate", state.governorate);
  if (state.office) p.set("office", state.office);
  if (state.status) p.set("status", state.status);
  if (state.q) p.set("q", state.q);
  return p.toString();
}

let fleetSeq = 0;
async function loadFleet(changed: Set<string> = new Set()): Promise<void> {
  const seq = ++fleetSeq;
  const q = fleetQuery();
  const data = await getJson<FleetResponse>(`/api/fleet?${q}${q ? "&" : ""}offset=${state.offset}&limit=${PAGE_SIZE}`);
  if (seq !== fleetSeq) return; // a newer request is on its way
  state.fleet = data;
  syncUrl();
  renderFleet(changed);
}

function option(value: string, label: string, selected: string): string {
  return `<option value="${esc(value)}"${value === selected ? " selected" : ""}>${esc(label)}</option>`;
}

function renderFleet(changed: Set<string>): void {
  const f = state.fleet;
  if (!f) return;
  const all = tr("filter.all");
  $("f-governorate").innerHTML = option("", all, state.governorate) + f.governorates.map((g) => option(g, g, state.governorate)).join("");
  const offices = state.governorate ? (f.offices[state.governorate] ?? []) : [...new Set(Object.values(f.offices).flat())].sort();
  $("f-office").innerHTML = option("", all, state.office) + offices.map((o) => option(o, o, state.office)).join("");
  $("f-status").innerHTML = option("", all, state.status) + f.statuses.map((s) => option(s, tr(`status.${s}` as MessageKey), state.status)).join("");
  const q = $("f-q");
  if (document.activeElement !== q) q.value = state.q;

  const pages = Math.max(1, Math.ceil(f.total / PAGE_SIZE));
  $("fleet-count").textContent = tr("fleet.count", { shown: f.rows.length, total: f.total, page: Math.floor(f.offset / PAGE_SIZE) + 1, pages });
  $("fleet-counts").innerHTML = f.statuses.map((s) => `<span><span class="st st-${s}">${esc(tr(`status.${s}` as MessageKey))}</span> ${f.counts[s]}</span>`).join("");
  $("prev").disabled = f.offset === 0;
  $("next").disabled = f.offset + PAGE_SIZE >= f.total;
  const q2 = fleetQuery();
  $("fleet-csv").href = `/api/export/fleet.csv${q2 ? "?" + q2 : ""}`;
  const site = f.rows[0]?.site ?? "";
  $("report-link").href = `/reports/maintenance?site=${encodeURIComponent(state.governorate || state.office ? site : "")}&lang=${state.lang}`;

  const html: string[] = [];
  for (const r of f.rows) {
    const faults: string[] = [];
    if (r.chargerFaults) faults.push(`${tr("peripheral.3")} 0x${r.chargerFaults.toString(16)}`);
    if (r.peripheralFaults) faults.push(peripheralNames(state.lang, r.peripheralFaults));
    html.push(
      `<tr data-device="${esc(r.deviceId)}"${changed.has(r.deviceId) ? ' class="flash"' : ""}>` +
        `<td><button class="link" dir="ltr">${esc(r.deviceId)}</button></td>` +
        `<td>${esc(r.site)}</td><td>${esc(r.governorate)}</td><td>${esc(r.office)}</td>` +
        `<td>${esc(tr(`role.${r.role}` as MessageKey))}</td>` +
        `<td class="num" data-col="battery">${r.socPercent === null ? "" : `<bdi dir="ltr">${r.socPercent} % <small>(${r.batteryMv} mV)</small></bdi>`}</td>` +
        `<td>${r.chargeState === null ? "" : esc(label(state.lang, "charge", r.chargeState))}</td>` +
        `<td>${r.chargeMode === null ? "" : esc(label(state.lang, "mode", r.chargeMode))}</td>` +
        `<td class="num${r.sohPercent !== null && r.sohPercent < 80 ? " warn" : ""}" data-col="soh">${r.sohPercent === null ? "" : `<bdi dir="ltr">${r.sohPercent} %</bdi>`}</td>` +
        `<td class="num">${r.cycleCount === null ? "" : r.cycleCount}</td>` +
        `<td>${esc(r.lastSeenMs ? formatTime(r.lastSeenMs) : tr("never"))}</td>` +
        `<td>${esc(faults.join("; "))}</td>` +
        `<td>${esc(tr(r.online ? "yes" : "no"))}</td>` +
        `<td><span class="st st-${r.status}">${esc(tr(`status.${r.status}` as MessageKey))}</span></td></tr>`,
    );
  }
  $("fleet-body").innerHTML = html.join("");
  const empty = $("fleet-empty");
  empty.hidden = f.rows.length > 0;
  empty.textContent = tr("fleet.empty");
  $("fleet-table").dataset.rendered = String(f.generatedMs);
}

// --- device detail -------------------------------------------------------------------------------

async function loadDetail(): Promise<void> {
  if (!state.selected) return;
  try {
    state.detail = await getJson<DetailResponse>(`/api/devices/${encodeURIComponent(state.selected)}`);
  } catch {
    state.detail = null;
  }
  syncUrl();
  renderDetail();
}

function renderDetail(): void {
  const el = $("detail");
  const d = state.detail;
  if (!state.selected || !d) {
    el.hidden = true;
    el.innerHTML = "";
    return;
  }
  const r = d.device;
  // Values with units or ids stay left to right inside Arabic text (<bdi dir="ltr">).
  const item = (k: MessageKey, v: string): string => `<dt>${esc(tr(k))}</dt><dd><bdi dir="ltr">${esc(v)}</bdi></dd>`;
  el.hidden = false;
  el.innerHTML =
    `<h2>${esc(tr("detail.heading", { id: r.deviceId }))} <button id="detail-close">${esc(tr("detail.close"))}</button></h2>` +
    `<dl>${item("col.site", r.site)}${item("col.station", r.stationId)}${item("col.governorate", r.governorate)}${item("col.office", r.office)}` +
    `${item("col.role", tr(`role.${r.role}` as MessageKey))}${item("col.status", tr(`status.${r.status}` as MessageKey))}` +
    `${item("col.battery", r.socPercent === null ? "" : `${r.socPercent} % (${r.batteryMv} mV)`)}${item("col.charge", r.chargeState === null ? "" : tr(`charge.${r.chargeState}` as MessageKey))}` +
    `${item("col.mode", r.chargeMode === null ? "" : label(state.lang, "mode", r.chargeMode))}${item("detail.temperature", r.temperatureC === null ? "" : `${r.temperatureC} °C`)}` +
    `${item("col.soh", r.sohPercent === null ? "" : `${r.sohPercent} %`)}${item("col.cycles", r.cycleCount === null ? "" : String(r.cycleCount))}` +
    `${item("detail.discharge", r.dischargePercentPerHour === null ? "" : tr("detail.perHour", { value: r.dischargePercentPerHour }))}${item("detail.alarms", alarmNames(r.powerAlarms))}` +
    `${item("detail.polls", r.pollsState === null ? "" : label(state.lang, "polls", r.pollsState))}${item("detail.station", r.healthStationId)}` +
    `${item("col.lastSeen", r.lastSeenMs ? formatTime(r.lastSeenMs) : tr("never"))}${item("col.online", tr(r.online ? "yes" : "no"))}` +
    `${item("col.firmware", r.firmwareVersion)}${item("detail.backlog", String(r.journalBacklog))}${item("col.records", String(r.records))}</dl>` +
    `<h3>${esc(tr("detail.history"))}</h3><div class="plot" id="plot">${plot(d.history)}</div>` +
    `<h3>${esc(tr("detail.alerts"))}</h3>${alertsTable(d.alerts)}`;
}

function alarmNames(bits: number): string {
  const out: string[] = [];
  for (let k = 1; k <= 8; k++) if (bits & (1 << k)) out.push(label(state.lang, "alarm", k));
  return out.join(state.lang === "ar" ? "، " : ", ");
}

/** Battery mV (left axis) and state of charge % (right axis) over time, as inline SVG. */
function plot(points: HistoryPoint[]): string {
  if (points.length === 0) return `<p class="empty">${esc(tr("detail.noHistory"))}</p>`;
  const W = 720;
  const H = 220;
  const L = 56;
  const R = 44;
  const T = 12;
  const B = 28;
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  let mvMin = Infinity;
  let mvMax = -Infinity;
  for (const p of points) {
    mvMin = Math.min(mvMin, p.batteryMv);
    mvMax = Math.max(mvMax, p.batteryMv);
  }
  mvMin = Math.floor((mvMin - 50) / 100) * 100;
  mvMax = Math.ceil((mvMax + 50) / 100) * 100;
  const x = (ms: number): number => L + ((ms - t0) / (t1 - t0)) * (W - L - R);
  const yMv = (mv: number): number => T + (1 - (mv - mvMin) / (mvMax - mvMin)) * (H - T - B);
  const ySoc = (soc: number): number => T + (1 - soc / 100) * (H - T - B);
  const line = (f: (p: HistoryPoint) => number): string => points.map((p) => `${x(p.t).toFixed(1)},${f(p).toFixed(1)}`).join(" ");
  const grid = [0, 25, 50, 75, 100]
    .map((s) => `<line x1="${L}" x2="${W - R}" y1="${ySoc(s)}" y2="${ySoc(s)}" stroke="#eee"/><text x="${W - R + 4}" y="${ySoc(s) + 4}" fill="#1a7f37">${s}%</text>`)
    .join("");
  const mvTicks = [mvMin, (mvMin + mvMax) / 2, mvMax].map((v) => `<text x="${L - 4}" y="${yMv(v) + 4}" text-anchor="end" fill="#0969da">${Math.round(v)}</text>`).join("");
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" direction="ltr" font-size="11" role="img" aria-label="${esc(tr("detail.history"))}">` +
    grid +
    mvTicks +
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#888"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#888"/>` +
    `<polyline fill="none" stroke="#0969da" stroke-width="1.6" points="${line((p) => yMv(p.batteryMv))}"/>` +
    `<polyline fill="none" stroke="#1a7f37" stroke-width="1.6" stroke-dasharray="4 3" points="${line((p) => ySoc(p.socPercent))}"/>` +
    `<text x="${L}" y="${H - 8}">${formatTime(t0)}</text><text x="${W - R}" y="${H - 8}" text-anchor="end">${formatTime(t1)}</text>` +
    `</svg><div class="bar"><span style="color:#0969da">━ ${esc(tr("detail.batteryMv"))}</span><span style="color:#1a7f37">┅ ${esc(tr("detail.soc"))}</span></div>`
  );
}

// --- alerts, status, quarantine ------------------------------------------------------------------

function alertsTable(alerts: Array<Alert & { governorate?: string; office?: string }>, withPlace = false): string {
  if (alerts.length === 0) return `<p class="empty">${esc(tr("alerts.none"))}</p>`;
  const head = ["col.severity", "col.device", ...(withPlace ? ["col.governorate", "col.office"] : []), "col.alert", "col.since"] as MessageKey[];
  return (
    `<table><thead><tr>${head.map((k) => `<th>${esc(tr(k))}</th>`).join("")}</tr></thead><tbody>` +
    alerts
      .map(
        (a) =>
          `<tr data-alert="${esc(a.id)}"><td class="sev-${a.severity}">${esc(tr(`severity.${a.severity}` as MessageKey))}</td>` +
          (a.stationId !== undefined
            ? `<td data-station="${esc(a.stationId)}"><button class="link" dir="ltr">${esc(a.stationId)}</button></td>`
            : `<td data-device="${esc(a.deviceId)}"><button class="link" dir="ltr">${esc(a.deviceId)}</button></td>`) +
          (withPlace ? `<td>${esc(a.governorate)}</td><td>${esc(a.office)}</td>` : "") +
          `<td>${esc(alertText(state.lang, a))}</td><td>${esc(a.sinceMs ? formatTime(a.sinceMs) : "")}</td></tr>`,
      )
      .join("") +
    `</tbody></table>`
  );
}

async function loadAlerts(): Promise<void> {
  state.alerts = await getJson<AlertsResponse>("/api/alerts?limit=500");
  renderAlerts();
  renderStatic();
}

function renderAlerts(): void {
  const a = state.alerts;
  if (!a) return;
  $("alerts-count").textContent = tr("alerts.count", { count: a.total, critical: a.counts.critical, warning: a.counts.warning });
  $("alerts-list").innerHTML = alertsTable(a.alerts, true);
}

async function loadStatus(): Promise<void> {
  state.status_ = (await getJson<{ rows: StatusRow[] }>("/api/status")).rows;
  renderStatus();
}

function renderStatus(): void {
  const rows = state.status_;
  if (!rows) return;
  const cols: Array<[MessageKey, keyof StatusRow]> = [
    ["col.devices", "devices"],
    ["status.ready", "ready"],
    ["status.charging", "charging"],
    ["status.faulty", "faulty"],
    ["status.silent", "silent"],
    ["col.records", "records"],
  ];
  $("status-table").innerHTML =
    `<table id="status-grid"><thead><tr><th>${esc(tr("col.governorate"))}</th><th>${esc(tr("col.office"))}</th>${cols
      .map(([k]) => `<th class="num">${esc(tr(k))}</th>`)
      .join("")}</tr></thead><tbody>` +
    rows
      .map((r) => {
        const total = r.governorate === "" && r.office === "";
        const sub = !total && r.office === "";
        const cls = total ? "total" : sub ? "sub" : "";
        const gov = total ? tr("col.total") : sub ? r.governorate : "";
        const office = total ? "" : sub ? tr("col.allOffices") : r.office;
        return `<tr class="${cls}"><td>${esc(gov)}</td><td>${esc(office)}</td>${cols.map(([, f]) => `<td class="num">${esc(r[f])}</td>`).join("")}</tr>`;
      })
      .join("") +
    `</tbody></table>`;
}

async function loadQuarantine(): Promise<void> {
  state.quarantine = await getJson<QuarantineResponse>("/api/quarantine?limit=50");
  renderQuarantine();
}

function renderQuarantine(): void {
  const qd = state.quarantine;
  if (!qd) return;
  const reasons = Object.entries(qd.counts).sort((a, b) => b[1] - a[1]);
  if (reasons.length === 0) {
    $("quarantine-body").innerHTML = `<p class="empty">${esc(tr("quarantine.none"))}</p>`;
    return;
  }
  $("quarantine-body").innerHTML =
    `<table><thead><tr><th>${esc(tr("col.reason"))}</th><th class="num">${esc(tr("col.count"))}</th></tr></thead><tbody>` +
    reasons.map(([r, n]) => `<tr><td dir="ltr">${esc(r)}</td><td class="num">${n}</td></tr>`).join("") +
    `</tbody></table><h3>${esc(tr("quarantine.latest"))}</h3><table><thead><tr>${(["col.received", "col.device", "col.reason", "col.topic", "col.detail"] as MessageKey[])
      .map((k) => `<th>${esc(tr(k))}</th>`)
      .join("")}</tr></thead><tbody>` +
    qd.latest
      .map((e) => `<tr><td>${esc(formatTime(e.receivedMs))}</td><td>${esc(e.deviceId)}</td><td>${esc(e.reason)}</td><td dir="ltr">${esc(e.topic)}</td><td>${esc(e.detail)}</td></tr>`)
      .join("") +
    `</tbody></table>`;
}

async function refreshTab(): Promise<void> {
  stations.show(isStationTab(state.tab) ? state.tab : null);
  if (isStationTab(state.tab)) await stations.load(state.tab);
  else if (state.tab === "alerts") await loadAlerts();
  else if (state.tab === "status") await loadStatus();
  else if (state.tab === "quarantine") await loadQuarantine();
}

// --- live updates --------------------------------------------------------------------------------

let pendingChanged = new Set<string>();
let pendingStations = new Set<string>();
let pendingStationKinds = false;
let pendingAll = false;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;

function onChanged(ev: ChangedEvent): void {
  for (const id of ev.devices) pendingChanged.add(id);
  for (const id of ev.stations ?? []) pendingStations.add(id);
  if (ev.kinds.includes("stations") || ev.kinds.includes("tick") || ev.kinds.includes("elections")) pendingStationKinds = true;
  if (ev.all) pendingAll = true;
  state.lastUpdate = Date.now();
  renderLive();
  if (!refreshTimer) refreshTimer = setTimeout(applyChanges, 100);
}

async function applyChanges(): Promise<void> {
  refreshTimer = undefined;
  const changed = pendingChanged;
  const all = pendingAll;
  const changedStations = pendingStations;
  const stationKinds = pendingStationKinds;
  pendingChanged = new Set();
  pendingStations = new Set();
  pendingStationKinds = false;
  pendingAll = false;
  // The current page (its counts and filters may change with any device), the open device if it
  // changed, the badge of critical alerts, and the tab on screen.
  const work: Array<Promise<void>> = [loadFleet(changed), loadAlerts()];
  if (state.selected && (all || changed.has(state.selected))) work.push(loadDetail());
  if (state.tab === "status") work.push(loadStatus());
  if (state.tab === "quarantine") work.push(loadQuarantine());
  if (isStationTab(state.tab) && (all || stationKinds)) work.push(stations.onChanged(state.tab, [...changedStations], all));
  await Promise.allSettled(work);
  document.body.dataset.updates = String(Number(document.body.dataset.updates ?? "0") + 1);
}

function connect(): void {
  const es = openEventSource("/events");
  es.addEventListener("open", () => {
    state.live = true;
    renderLive();
  });
  es.addEventListener("error", () => {
    state.live = false;
    renderLive();
  });
  es.addEventListener("changed", (e: MessageEv) => onChanged(JSON.parse(e.data) as ChangedEvent));
}

// --- start ---------------------------------------------------------------------------------------

document.documentElement.lang = state.lang;
document.documentElement.dir = dirOf(state.lang);
shell();
renderStatic();
void loadFleet().then(() => {
  if (state.selected) void loadDetail();
});
void loadAlerts();
void refreshTab();
connect();
// Silence is a matter of time too: refresh what is on screen every minute without events.
setInterval(() => onChanged({ devices: [], all: false, kinds: ["tick"] }), 60_000);
