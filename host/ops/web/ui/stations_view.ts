// The dashboard's station tabs (runs in the browser, bundled with main.ts): turnout, results and
// reconciliation per station with totals per governorate and office, and one station's detail
// (hourly turnout, rejections by reason, contests, every signed result received). Each view
// fetches its JSON page (200 stations) and writes its table as one HTML string.

import { formatTime, label, type Lang, type MessageKey, type Params } from "../i18n.ts";
import type { ContestView, HourlyPoint, ReconRow, ReconStatus, ResultRow, ResultTotal, ResultVersion, TurnoutRow, TurnoutTotal } from "../../views/stations.ts";
import { alertText, type Alert } from "../../alerts/alerts.ts";
import { document, type El } from "./dom.ts";

export type StationTab = "turnout" | "results" | "reconciliation";
export const STATION_TABS: StationTab[] = ["turnout", "results", "reconciliation"];
const PAGE = 200;

interface Paged<T> {
  generatedMs: number;
  total: number;
  offset: number;
  limit: number;
  rows: T[];
}
interface TurnoutResponse extends Paged<TurnoutRow> {
  totals: TurnoutTotal | null;
  reasons: string[];
}
interface ResultsResponse extends Paged<ResultRow> {
  totals: ResultTotal | null;
  definitions: number;
}
interface ReconResponse extends Paged<ReconRow> {
  counts: Record<ReconStatus, number>;
  statuses: ReconStatus[];
}
interface StationResponse {
  stationId: string;
  governorate: string;
  office: string;
  devices: { verification: string[]; result: string[] };
  turnout: TurnoutRow | null;
  hourly: HourlyPoint[];
  result: ResultRow | null;
  versions: ResultVersion[];
  reconciliation: ReconRow | null;
  close: { ms: number; source: string; electionId: string } | null;
  deadlineMs: number | null;
  alerts: Alert[];
}

export interface StationUiContext {
  lang(): Lang;
  tr(key: MessageKey, p?: Params): string;
  esc(s: string | number | null | undefined): string;
  $(id: string): El;
  getJson<T>(path: string): Promise<T>;
  syncUrl(): void;
}

export interface StationUiState {
  governorate: string;
  office: string;
  q: string;
  flagged: boolean;
  reconStatus: string;
  offset: number;
  station: string;
}

export function stationUi(c: StationUiContext, params: URLSearchParams): {
  state: StationUiState;
  html(): string;
  bind(): void;
  renderStatic(): void;
  renderAll(): void;
  load(tab: StationTab): Promise<void>;
  loadStation(): Promise<void>;
  urlParams(p: URLSearchParams, tab: string): void;
  onChanged(tab: StationTab | null, stations: string[], all: boolean): Promise<void>;
  show(tab: StationTab | null): void;
} {
  const { tr, esc, $ } = c;
  const st: StationUiState = {
    governorate: params.get("sgov") ?? "",
    office: params.get("soffice") ?? "",
    q: params.get("station") ?? "",
    flagged: params.get("flagged") === "1",
    reconStatus: params.get("rstatus") ?? "",
    offset: 0,
    station: params.get("sid") ?? "",
  };
  let tab: StationTab = "turnout";
  let areas: TurnoutTotal[] = [];
  let turnout: TurnoutResponse | null = null;
  let results: ResultsResponse | null = null;
  let recon: ReconResponse | null = null;
  let detail: StationResponse | null = null;
  let seq = 0;

  const num = (n: number | null | undefined): string => (n === null || n === undefined ? "" : String(n));
  const pct = (n: number | null | undefined): string => (n === null || n === undefined ? "" : `${n} %`);
  const bdi = (s: string): string => `<bdi dir="ltr">${esc(s)}</bdi>`;
  const flagList = (flags: string[]): string => flags.map((f) => `<span class="flag" data-flag="${esc(f)}">${esc(label(c.lang(), "flag", f))}</span>`).join(" ");
  const optionName = (o: { index: number; name: string }): string => o.name || tr("results.option", { n: o.index + 1 });
  const query = (extra: Record<string, string> = {}): string => {
    const p = new URLSearchParams();
    if (st.governorate) p.set("governorate", st.governorate);
    if (st.office) p.set("office", st.office);
    if (st.q) p.set("q", st.q);
    for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
    return p.toString();
  };

  function html(): string {
    return `
  <div id="station-filters" class="filters" hidden>
    <label><span id="lbl-sgov"></span><select id="s-governorate"></select></label>
    <label><span id="lbl-soffice"></span><select id="s-office"></select></label>
    <label><span id="lbl-sq"></span><input id="s-q" type="search" dir="ltr"></label>
    <label id="lbl-rstatus-wrap"><span id="lbl-rstatus"></span><select id="s-rstatus"></select></label>
    <label class="check" id="lbl-flagged-wrap"><input id="s-flagged" type="checkbox"> <span id="lbl-flagged"></span></label>
  </div>
  <div id="station" hidden></div>
  <section id="view-turnout" hidden><h2 id="turnout-heading"></h2>
    <h3 id="turnout-totals-heading"></h3><div id="turnout-totals"></div>
    <div class="bar"><span id="turnout-count"></span><button id="t-prev"></button><button id="t-next"></button><a id="turnout-csv" href="/api/export/turnout.csv"></a></div>
    <table id="turnout-table"><thead id="turnout-head"></thead><tbody id="turnout-body"></tbody></table>
    <p id="turnout-empty" class="empty" hidden></p></section>
  <section id="view-results" hidden><h2 id="results-heading"></h2><p class="note" id="results-note" hidden></p>
    <h3 id="results-scope"></h3><p id="results-reported"></p><div id="results-totals"></div>
    <div class="bar"><span id="results-count"></span><button id="r-prev"></button><button id="r-next"></button><a id="results-csv" href="/api/export/results.csv"></a><a id="results-signed" href="/api/export/results.signed.json"></a></div>
    <table id="results-table"><thead id="results-head"></thead><tbody id="results-body"></tbody></table>
    <p id="results-empty" class="empty" hidden></p></section>
  <section id="view-reconciliation" hidden><h2 id="recon-heading"></h2><p class="note" id="recon-note"></p>
    <div class="bar counts" id="recon-counts"></div>
    <div class="bar"><span id="recon-count"></span><button id="c-prev"></button><button id="c-next"></button><a id="recon-csv" href="/api/export/reconciliation.csv"></a></div>
    <table id="recon-table"><thead id="recon-head"></thead><tbody id="recon-body"></tbody></table>
    <p id="recon-empty" class="empty" hidden></p></section>`;
  }

  function bind(): void {
    $("s-governorate").addEventListener("change", (e) => {
      st.governorate = e.target.value;
      st.office = "";
      st.offset = 0;
      void load(tab);
    });
    $("s-office").addEventListener("change", (e) => {
      st.office = e.target.value;
      st.offset = 0;
      void load(tab);
    });
    let qTimer: ReturnType<typeof setTimeout> | undefined;
    $("s-q").addEventListener("input", (e) => {
      st.q = e.target.value.trim();
      st.offset = 0;
      clearTimeout(qTimer);
      qTimer = setTimeout(() => void load(tab), 200);
    });
    $("s-flagged").addEventListener("change", (e) => {
      st.flagged = e.target.checked;
      st.offset = 0;
      void load(tab);
    });
    $("s-rstatus").addEventListener("change", (e) => {
      st.reconStatus = e.target.value;
      st.offset = 0;
      void load(tab);
    });
    const pager = (prev: string, next: string, total: () => number): void => {
      $(prev).addEventListener("click", () => {
        st.offset = Math.max(0, st.offset - PAGE);
        void load(tab);
      });
      $(next).addEventListener("click", () => {
        if (st.offset + PAGE < total()) {
          st.offset += PAGE;
          void load(tab);
        }
      });
    };
    pager("t-prev", "t-next", () => turnout?.total ?? 0);
    pager("r-prev", "r-next", () => results?.total ?? 0);
    pager("c-prev", "c-next", () => recon?.total ?? 0);
    const open = (e: { target: El }): void => {
      const id = e.target.closest("[data-station]")?.getAttribute("data-station");
      if (id) {
        st.station = id;
        void loadStation().then(() => $("station").scrollIntoView({ block: "start" }));
      }
    };
    for (const id of ["turnout-body", "results-body", "recon-body"]) $(id).addEventListener("click", open);
    $("station").addEventListener("click", (e) => {
      if (e.target.id === "station-close") {
        st.station = "";
        detail = null;
        renderStation();
        c.syncUrl();
      }
    });
  }

  function head(id: string, cols: Array<[MessageKey, string]>): void {
    $(id).innerHTML = `<tr>${cols.map(([k, cls]) => `<th class="${cls}">${esc(tr(k))}</th>`).join("")}</tr>`;
  }

  function renderStatic(): void {
    $("lbl-sgov").textContent = tr("filter.governorate");
    $("lbl-soffice").textContent = tr("filter.office");
    $("lbl-sq").textContent = tr("filter.station");
    $("lbl-flagged").textContent = tr("filter.flagged");
    $("lbl-rstatus").textContent = tr("filter.status");
    $("turnout-heading").textContent = tr("turnout.heading");
    $("turnout-totals-heading").textContent = tr("stations.totals");
    $("results-heading").textContent = tr("results.heading");
    $("recon-heading").textContent = tr("recon.heading");
    $("recon-note").textContent = tr("recon.note");
    for (const id of ["t-prev", "r-prev", "c-prev"]) $(id).textContent = tr("fleet.prev");
    for (const id of ["t-next", "r-next", "c-next"]) $(id).textContent = tr("fleet.next");
    for (const id of ["turnout-csv", "results-csv", "recon-csv"]) $(id).textContent = tr("fleet.exportCsv");
    $("results-signed").textContent = tr("results.exportSigned");
    head("turnout-head", [
      ["col.station", ""], ["col.governorate", ""], ["col.office", ""], ["col.register", "num"], ["col.verified", "num"], ["col.exempted", "num"],
      ["col.rejected", "num"], ["col.turnout", "num"], ["col.final", ""], ["col.updated", ""],
    ]);
    head("results-head", [
      ["col.station", ""], ["col.governorate", ""], ["col.office", ""], ["col.ballots", "num"], ["col.verifiedVoters", "num"], ["col.contest", ""],
      ["col.received", ""], ["col.flags", ""],
    ]);
    head("recon-head", [
      ["col.station", ""], ["col.governorate", ""], ["col.office", ""], ["col.verified", "num"], ["col.exempted", "num"], ["col.admitted", "num"],
      ["col.verifiedVoters", "num"], ["col.ballots", "num"], ["col.difference", "num"], ["col.status", ""], ["col.flags", ""],
    ]);
  }

  function show(t: StationTab | null): void {
    $("station-filters").hidden = t === null;
    if (t !== null) tab = t;
    $("lbl-flagged-wrap").hidden = t === "turnout";
    $("lbl-rstatus-wrap").hidden = t !== "reconciliation";
    if (t === null) $("station").hidden = true;
    else renderStation();
  }

  function option(value: string, text: string, selected: string): string {
    return `<option value="${esc(value)}"${value === selected ? " selected" : ""}>${esc(text)}</option>`;
  }

  function renderFilters(): void {
    const all = tr("filter.all");
    const govs = areas.filter((a) => a.level === "governorate").map((a) => a.governorate);
    const offices = areas.filter((a) => a.level === "office" && (!st.governorate || a.governorate === st.governorate)).map((a) => a.office);
    $("s-governorate").innerHTML = option("", all, st.governorate) + govs.map((g) => option(g, g, st.governorate)).join("");
    $("s-office").innerHTML = option("", all, st.office) + [...new Set(offices)].map((o) => option(o, o, st.office)).join("");
    $("s-rstatus").innerHTML = option("", all, st.reconStatus) + (["match", "mismatch", "missing-result", "missing-turnout", "open"] as const).map((s) => option(s, tr(`recon.${s}`), st.reconStatus)).join("");
    $("s-flagged").checked = st.flagged;
    const q = $("s-q");
    if (document.activeElement !== q) q.value = st.q;
  }

  function counter(id: string, shown: number, total: number, offset: number, prev: string, next: string): void {
    const pages = Math.max(1, Math.ceil(total / PAGE));
    $(id).textContent = tr("stations.count", { shown, total, page: Math.floor(offset / PAGE) + 1, pages });
    $(prev).disabled = offset === 0;
    $(next).disabled = offset + PAGE >= total;
  }

  function areaName(a: { level: string; governorate: string; office: string }): [string, string] {
    if (a.level === "total") return [tr("col.total"), ""];
    if (a.level === "governorate") return [a.governorate, tr("col.allOffices")];
    return ["", a.office];
  }

  function renderTurnout(): void {
    const d = turnout;
    if (!d) return;
    const cols: Array<[MessageKey, (t: TurnoutTotal) => string]> = [
      ["col.stations", (t) => num(t.stations)],
      ["col.reporting", (t) => num(t.reporting)],
      ["col.final", (t) => num(t.final)],
      ["col.register", (t) => num(t.registerSize)],
      ["col.verified", (t) => num(t.verified)],
      ["col.exempted", (t) => num(t.exempted)],
      ["col.admitted", (t) => num(t.admitted)],
      ["col.rejected", (t) => num(t.rejected)],
      ["col.turnout", (t) => pct(t.turnoutPercent)],
    ];
    const shownAreas = areas.filter((a) => !st.governorate || a.governorate === st.governorate || a.level === "total");
    $("turnout-totals").innerHTML =
      `<table id="turnout-grid"><thead><tr><th>${esc(tr("col.governorate"))}</th><th>${esc(tr("col.office"))}</th>${cols.map(([k]) => `<th class="num">${esc(tr(k))}</th>`).join("")}</tr></thead><tbody>` +
      shownAreas
        .map((a) => {
          const [g, o] = areaName(a);
          const cls = a.level === "total" ? "total" : a.level === "governorate" ? "sub" : "";
          return `<tr class="${cls}"><td>${esc(g)}</td><td>${esc(o)}</td>${cols.map(([, f]) => `<td class="num">${esc(f(a))}</td>`).join("")}</tr>`;
        })
        .join("") +
      `</tbody></table>`;
    counter("turnout-count", d.rows.length, d.total, d.offset, "t-prev", "t-next");
    $("turnout-csv").href = `/api/export/turnout.csv?${query()}`;
    $("turnout-body").innerHTML = d.rows
      .map(
        (r) =>
          `<tr data-station="${esc(r.stationId)}"><td><button class="link" dir="ltr">${esc(r.stationId)}</button></td><td>${esc(r.governorate)}</td><td>${esc(r.office)}</td>` +
          `<td class="num">${num(r.registerSize)}</td><td class="num">${r.verified}</td><td class="num">${r.exempted}</td><td class="num">${r.rejected}</td>` +
          `<td class="num">${bdi(pct(r.turnoutPercent))}</td><td>${esc(tr(r.final ? "yes" : "no"))}</td><td>${esc(formatTime(r.lastReceivedMs))}</td></tr>`,
      )
      .join("");
    $("turnout-empty").hidden = d.rows.length > 0;
    $("turnout-empty").textContent = tr("turnout.none");
    $("turnout-table").dataset.rendered = String(d.generatedMs);
  }

  function contestTable(cs: ContestView[], withShare: boolean): string {
    return cs
      .map((ct) => {
        const valid = ct.options.reduce((n, o) => n + o.votes, 0);
        const rows = ct.options
          .map(
            (o) =>
              `<tr><td>${esc(optionName(o))}</td><td class="num">${o.votes}</td>${withShare ? `<td class="num">${valid ? bdi(`${((o.votes * 100) / valid).toFixed(1)} %`) : ""}</td>` : ""}</tr>`,
          )
          .join("");
        return (
          `<table class="contest" data-contest="${esc(ct.contestId)}"><caption>${esc(ct.name ? `${ct.name} (${ct.contestId})` : ct.contestId)}</caption>` +
          `<thead><tr><th>${esc(tr("col.option"))}</th><th class="num">${esc(tr("col.votes"))}</th>${withShare ? `<th class="num">${esc(tr("col.share"))}</th>` : ""}</tr></thead>` +
          `<tbody>${rows}<tr class="sub"><td>${esc(tr("col.blank"))}</td><td class="num">${ct.blank}</td>${withShare ? "<td></td>" : ""}</tr>` +
          `<tr class="sub"><td>${esc(tr("col.invalid"))}</td><td class="num">${ct.invalid}</td>${withShare ? "<td></td>" : ""}</tr></tbody></table>`
        );
      })
      .join("");
  }

  function contestSummary(cs: ContestView[]): string {
    return cs
      .map((ct) => `<span class="cs" dir="auto">${esc(ct.contestId)}: ${ct.options.map((o) => `${esc(optionName(o))} ${o.votes}`).join(" · ")} · ${esc(tr("col.blank"))} ${ct.blank} · ${esc(tr("col.invalid"))} ${ct.invalid}</span>`)
      .join("<br>");
  }

  function renderResults(): void {
    const d = results;
    if (!d) return;
    $("results-note").hidden = d.definitions > 0;
    $("results-note").textContent = tr("results.noDefinition");
    const t = d.totals;
    const area = st.office || st.governorate || tr("stations.country");
    $("results-scope").textContent = tr("stations.scope", { area });
    $("results-reported").textContent = t ? tr("results.reported", { reported: t.reported, stations: t.stations, ballots: t.ballotsCounted }) : "";
    $("results-totals").innerHTML = t ? contestTable(t.contests, true) : "";
    counter("results-count", d.rows.length, d.total, d.offset, "r-prev", "r-next");
    $("results-csv").href = `/api/export/results.csv?${query({ flagged: st.flagged ? "1" : "" })}`;
    $("results-signed").href = `/api/export/results.signed.json?${query()}`;
    $("results-body").innerHTML = d.rows
      .map(
        (r) =>
          `<tr data-station="${esc(r.stationId)}"${r.flags.length ? ' class="flagged"' : ""}><td><button class="link" dir="ltr">${esc(r.stationId)}</button></td><td>${esc(r.governorate)}</td><td>${esc(r.office)}</td>` +
          `<td class="num">${r.ballotsCounted}</td><td class="num">${num(r.verifiedVoters)}</td><td>${contestSummary(r.contests)}</td>` +
          `<td>${esc(formatTime(r.receivedMs))}</td><td>${flagList(r.flags)}</td></tr>`,
      )
      .join("");
    $("results-empty").hidden = d.rows.length > 0;
    $("results-empty").textContent = tr("results.none");
    $("results-table").dataset.rendered = String(d.generatedMs);
  }

  function statusBadge(s: ReconStatus): string {
    return `<span class="rs rs-${s}">${esc(tr(`recon.${s}`))}</span>`;
  }

  function renderRecon(): void {
    const d = recon;
    if (!d) return;
    $("recon-counts").innerHTML = d.statuses.map((s) => `<span>${statusBadge(s)} ${d.counts[s]}</span>`).join("");
    counter("recon-count", d.rows.length, d.total, d.offset, "c-prev", "c-next");
    $("recon-csv").href = `/api/export/reconciliation.csv?${query({ flagged: st.flagged ? "1" : "", status: st.reconStatus })}`;
    $("recon-body").innerHTML = d.rows
      .map(
        (r) =>
          `<tr data-station="${esc(r.stationId)}" data-status="${r.status}"${r.flagged ? ' class="flagged"' : ""}><td><button class="link" dir="ltr">${esc(r.stationId)}</button></td><td>${esc(r.governorate)}</td><td>${esc(r.office)}</td>` +
          `<td class="num">${num(r.verified)}</td><td class="num">${num(r.exempted)}</td><td class="num">${num(r.admitted)}</td><td class="num">${num(r.resultVerifiedVoters)}</td>` +
          `<td class="num">${num(r.ballotsCounted)}</td><td class="num">${r.difference === null ? "" : bdi(r.difference > 0 ? `+${r.difference}` : String(r.difference))}</td>` +
          `<td>${statusBadge(r.status)}</td><td>${flagList(r.flags)}</td></tr>`,
      )
      .join("");
    $("recon-empty").hidden = d.rows.length > 0;
    $("recon-empty").textContent = tr("recon.none");
    $("recon-table").dataset.rendered = String(d.generatedMs);
  }

  /** Verified + exempted per reported hour, as inline SVG bars. */
  function hourlyPlot(points: HourlyPoint[]): string {
    if (points.length === 0) return "";
    const W = 720;
    const H = 160;
    const L = 40;
    const B = 24;
    const max = Math.max(1, ...points.map((p) => p.verified + p.exempted));
    const bw = Math.min(48, (W - L - 8) / points.length - 4);
    const bars = points
      .map((p, i) => {
        const v = p.verified + p.exempted;
        const h = ((H - B - 8) * v) / max;
        const x = L + 4 + i * (bw + 4);
        return `<rect x="${x.toFixed(1)}" y="${(H - B - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${p.final ? "#1a7f37" : "#0969da"}"><title>${esc(formatTime(p.periodEndMs))}: ${v}</title></rect>` +
          `<text x="${(x + bw / 2).toFixed(1)}" y="${H - 8}" text-anchor="middle">${esc(formatTime(p.periodEndMs).slice(11))}</text>` +
          `<text x="${(x + bw / 2).toFixed(1)}" y="${(H - B - h - 3).toFixed(1)}" text-anchor="middle">${v}</text>`;
      })
      .join("");
    return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" direction="ltr" font-size="11" role="img" aria-label="${esc(tr("turnout.hourly"))}">` +
      `<line x1="${L}" x2="${W}" y1="${H - B}" y2="${H - B}" stroke="#888"/>${bars}</svg>`;
  }

  function renderStation(): void {
    const el = $("station");
    const d = detail;
    if (!st.station || !d) {
      el.hidden = true;
      el.innerHTML = "";
      return;
    }
    const item = (k: MessageKey, v: string): string => `<dt>${esc(tr(k))}</dt><dd>${v}</dd>`;
    const t = d.turnout;
    const reasons = t ? Object.entries(t.rejectedByReason).sort((a, b) => b[1] - a[1]) : [];
    const close = d.close && d.deadlineMs !== null
      ? `<p class="note">${esc(tr("station.close", { close: formatTime(d.close.ms), source: tr(d.close.source === "turnout-report" ? "close.turnoutReport" : "close.definition"), due: formatTime(d.deadlineMs) }))}</p>`
      : "";
    const alerts = d.alerts.length ? `<p class="sev-critical" id="station-alerts">${d.alerts.map((a) => esc(alertText(c.lang(), a))).join("<br>")}</p>` : "";
    const versions = d.versions.length > 1
      ? `<h3>${esc(tr("results.versions"))}</h3><table id="station-versions"><thead><tr><th>${esc(tr("col.device"))}</th><th>${esc(tr("col.seq"))}</th><th>${esc(tr("col.signed"))}</th><th>${esc(tr("col.received"))}</th><th class="num">${esc(tr("col.ballots"))}</th><th>${esc(tr("col.contest"))}</th><th></th></tr></thead><tbody>` +
        d.versions
          .map((v) => `<tr${v.current ? "" : ' class="flagged"'}><td>${bdi(v.deviceId)}</td><td class="num">${v.seq}</td><td>${esc(formatTime(v.signedMs))}</td><td>${esc(formatTime(v.receivedMs))}</td><td class="num">${num(v.ballotsCounted)}</td><td>${contestSummary(v.contests)}</td><td>${v.current ? esc(tr("results.current")) : ""}</td></tr>`)
          .join("") +
        `</tbody></table>`
      : "";
    const rc = d.reconciliation;
    el.hidden = false;
    el.innerHTML =
      `<h2>${esc(tr("station.heading", { id: d.stationId }))} <button id="station-close">${esc(tr("detail.close"))}</button></h2>` +
      alerts +
      `<dl>${item("col.governorate", esc(d.governorate))}${item("col.office", esc(d.office))}` +
      `${item("role.verification", bdi(d.devices.verification.join(", ")))}${item("role.result", bdi(d.devices.result.join(", ")))}` +
      (t ? `${item("col.register", num(t.registerSize))}${item("col.admitted", `${t.admitted} (${t.verified} + ${t.exempted})`)}${item("col.turnout", bdi(pct(t.turnoutPercent)))}${item("col.final", esc(tr(t.final ? "yes" : "no")))}` : "") +
      (rc ? `${item("col.status", statusBadge(rc.status))}${item("col.difference", rc.difference === null ? "" : bdi(String(rc.difference)))}` : "") +
      `</dl>${close}` +
      (d.hourly.length ? `<h3>${esc(tr("turnout.hourly"))}</h3><div class="plot" id="hourly">${hourlyPlot(d.hourly)}</div>` : "") +
      (reasons.length ? `<h3>${esc(tr("turnout.byReason"))}</h3><table id="station-reasons"><tbody>${reasons.map(([r, n]) => `<tr><td>${esc(label(c.lang(), "reason", r))}</td><td class="num">${n}</td></tr>`).join("")}</tbody></table>` : "") +
      (d.result ? `<h3>${esc(tr("nav.results"))} ${flagList(d.result.flags)}</h3><p>${esc(tr("col.ballots"))}: ${d.result.ballotsCounted} · ${esc(tr("col.ballotsRejected"))}: ${d.result.ballotsRejected}</p><div class="contests">${contestTable(d.result.contests, true)}</div>` : "") +
      versions;
  }

  function renderAll(): void {
    renderFilters();
    renderTurnout();
    renderResults();
    renderRecon();
    renderStation();
  }

  async function load(t: StationTab): Promise<void> {
    show(t);
    const my = ++seq;
    const off = `offset=${st.offset}&limit=${PAGE}`;
    const q = query();
    const sep = q ? "&" : "";
    const totals = c.getJson<{ rows: TurnoutTotal[] }>("/api/turnout/totals");
    if (t === "turnout") {
      const [d, a] = await Promise.all([c.getJson<TurnoutResponse>(`/api/turnout?${q}${sep}${off}`), totals]);
      if (my !== seq) return;
      turnout = d;
      areas = a.rows;
    } else if (t === "results") {
      const flag = st.flagged ? "&flagged=1" : "";
      const [d, a] = await Promise.all([c.getJson<ResultsResponse>(`/api/results?${q}${sep}${off}${flag}`), totals]);
      if (my !== seq) return;
      results = d;
      areas = a.rows;
    } else {
      const extra = (st.flagged ? "&flagged=1" : "") + (st.reconStatus ? `&status=${encodeURIComponent(st.reconStatus)}` : "");
      const [d, a] = await Promise.all([c.getJson<ReconResponse>(`/api/reconciliation?${q}${sep}${off}${extra}`), totals]);
      if (my !== seq) return;
      recon = d;
      areas = a.rows;
    }
    renderFilters();
    if (t === "turnout") renderTurnout();
    else if (t === "results") renderResults();
    else renderRecon();
    c.syncUrl();
    if (st.station && !detail) await loadStation();
  }

  async function loadStation(): Promise<void> {
    if (!st.station) return;
    try {
      detail = await c.getJson<StationResponse>(`/api/stations/${encodeURIComponent(st.station)}`);
    } catch {
      detail = null;
    }
    c.syncUrl();
    renderStation();
  }

  function urlParams(p: URLSearchParams, current: string): void {
    if (!(STATION_TABS as string[]).includes(current)) return;
    if (st.governorate) p.set("sgov", st.governorate);
    if (st.office) p.set("soffice", st.office);
    if (st.q) p.set("station", st.q);
    if (st.flagged) p.set("flagged", "1");
    if (st.reconStatus) p.set("rstatus", st.reconStatus);
    if (st.station) p.set("sid", st.station);
  }

  async function onChanged(t: StationTab | null, stations: string[], all: boolean): Promise<void> {
    if (t === null) return;
    const work: Array<Promise<void>> = [load(t)];
    if (st.station && (all || stations.includes(st.station))) work.push(loadStation());
    await Promise.allSettled(work);
  }

  return { state: st, html, bind, renderStatic, renderAll, load, loadStation, urlParams, onChanged, show };
}
