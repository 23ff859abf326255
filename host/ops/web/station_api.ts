// The JSON API and CSV exports of the station views (turnout, results, reconciliation, one
// station, election definitions, the signed-results export). Pure functions of the views and the
// query string; server.ts routes to them. Documented in docs/ops_api.md.

import { electionSummary, ElectionImportError, parseElectionFile, storeElections } from "../election/election.ts";
import { signedResultsFile, signedResultsNdjson } from "../export/signed_results.ts";
import type { OpsStore } from "../store/store.ts";
import { RejectReason, rejectReasonName } from "../views/payloads.ts";
import { RECON_STATUSES, type StationFilter, type StationViews } from "../views/stations.ts";
import { formatTime } from "./i18n.ts";
import { toCsv } from "./model.ts";

export interface Reply {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

const PAGE_LIMIT_MAX = 1000;

function json(body: unknown, status = 200): Reply {
  return { status, type: "application/json; charset=utf-8", body: JSON.stringify(body) };
}

function csv(name: string, body: string): Reply {
  return { status: 200, type: "text/csv; charset=utf-8", body, headers: { "content-disposition": `attachment; filename="${name}"` } };
}

function clampInt(v: string | null, dflt: number, min: number, max: number): number {
  if (v === null || v === "") return dflt;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : dflt;
}

function bool(v: string | null): boolean | undefined {
  if (v === null || v === "") return undefined;
  return v === "1" || v === "true" || v === "yes";
}

export function stationFilter(q: URLSearchParams): StationFilter {
  return { governorate: q.get("governorate") || undefined, office: q.get("office") || undefined, q: q.get("q") || q.get("station") || undefined };
}

function page<T>(rows: T[], q: URLSearchParams): { offset: number; limit: number; rows: T[] } {
  const limit = clampInt(q.get("limit"), 200, 1, PAGE_LIMIT_MAX);
  const offset = clampInt(q.get("offset"), 0, 0, Number.MAX_SAFE_INTEGER);
  return { offset, limit, rows: rows.slice(offset, offset + limit) };
}

export const REASON_NAMES: readonly string[] = Object.values(RejectReason)
  .filter((v) => v !== 0)
  .map((v) => rejectReasonName(v));

/** GET routes under /api of the station views; null when the path is not one of them. */
export function stationApi(path: string, q: URLSearchParams, views: StationViews, store: OpsStore, nowMs: number): Reply | null {
  const f = stationFilter(q);
  switch (path) {
    case "/api/turnout": {
      const rows = views.turnout({ ...f, final: bool(q.get("final")) });
      return json({ generatedMs: nowMs, total: rows.length, ...page(rows, q), totals: views.turnoutTotal(f.governorate, f.office), reasons: REASON_NAMES });
    }
    case "/api/turnout/totals":
      return json({ generatedMs: nowMs, rows: views.turnoutTotalsList() });
    case "/api/results": {
      const rows = views.results({ ...f, flagged: bool(q.get("flagged")) });
      return json({
        generatedMs: nowMs,
        total: rows.length,
        ...page(rows, q),
        totals: views.resultTotal(f.governorate, f.office),
        definitions: views.electionIndex.size,
      });
    }
    case "/api/results/totals":
      return json({ generatedMs: nowMs, rows: views.resultTotalsList() });
    case "/api/reconciliation": {
      const rows = views.reconciliation({ ...f, status: q.get("status") || undefined, flagged: bool(q.get("flagged")) });
      return json({ generatedMs: nowMs, total: rows.length, counts: views.reconCounts(f), statuses: RECON_STATUSES, ...page(rows, q) });
    }
    case "/api/elections":
      return json({ generatedMs: nowMs, definitions: store.elections().map(electionSummary) });
    default:
      break;
  }
  const m = /^\/api\/stations\/([^/]+)$/.exec(path);
  if (m) {
    const id = decodeURIComponent(m[1]);
    const d = views.stationDetail(id);
    if (!d) return json({ error: "unknown-station", stationId: id }, 404);
    return json({ generatedMs: nowMs, ...d, alerts: views.overdueAlerts(nowMs).filter((a) => a.stationId === id) });
  }
  return null;
}

/** POST /api/elections: the request body is a definition file (binary artifact or JSON). */
export function importElectionBody(body: Uint8Array, name: string, store: OpsStore, views: StationViews, commissionKeyHex: string | null, nowMs: number): Reply {
  try {
    const list = storeElections(store, parseElectionFile(body, name, { commissionKeyHex, nowMs }));
    views.reloadElections();
    return json({ imported: list.map(electionSummary) });
  } catch (e) {
    if (e instanceof ElectionImportError) return json({ error: "invalid-definition", message: e.message }, 400);
    throw e;
  }
}

/** CSV exports of the station views; null for another table. */
export function stationCsv(table: string, q: URLSearchParams, views: StationViews): Reply | null {
  const f = stationFilter(q);
  if (table === "turnout") {
    const rows = views.turnout({ ...f, final: bool(q.get("final")) });
    return csv(
      "turnout.csv",
      toCsv(
        ["station", "governorate", "office", "election", "register_size", "verified", "exempted", "admitted", "rejected", ...REASON_NAMES.map((r) => `rejected_${r.replace(/-/g, "_")}`), "turnout_percent", "final", "period_end_utc", "last_event_utc", "devices"],
        rows.map((r) => [
          r.stationId, r.governorate, r.office, r.electionId, r.registerSize, r.verified, r.exempted, r.admitted, r.rejected,
          ...REASON_NAMES.map((n) => r.rejectedByReason[n] ?? 0),
          r.turnoutPercent, r.final, formatTime(r.periodEndMs), formatTime(r.lastEventMs), r.devices.join(" "),
        ]),
      ),
    );
  }
  if (table === "results") {
    // One line per station, contest and option, then its blank and invalid lines (option_index empty).
    const lines: Array<Array<string | number | boolean | null>> = [];
    for (const r of views.results({ ...f, flagged: bool(q.get("flagged")) })) {
      const common = [r.stationId, r.governorate, r.office, r.deviceId, r.seq, r.electionId];
      const tail = [r.ballotsCounted, r.ballotsRejected, r.verifiedVoters, formatTime(r.closedMs), formatTime(r.receivedMs), r.flags.join(" ")];
      if (r.error !== null) lines.push([...common, "", "", "", "", "", ...tail]);
      for (const c of r.contests) {
        for (const o of c.options) lines.push([...common, c.contestId, c.name, o.index + 1, o.name, o.votes, ...tail]);
        lines.push([...common, c.contestId, c.name, "", "blank", c.blank, ...tail]);
        lines.push([...common, c.contestId, c.name, "", "invalid", c.invalid, ...tail]);
      }
    }
    return csv(
      "results.csv",
      toCsv(
        ["station", "governorate", "office", "device", "record_seq", "election", "contest", "contest_name", "option_number", "option", "votes", "ballots_counted", "ballots_rejected", "verified_voters", "closed_utc", "received_utc", "flags"],
        lines,
      ),
    );
  }
  if (table === "reconciliation") {
    const rows = views.reconciliation({ ...f, status: q.get("status") || undefined, flagged: bool(q.get("flagged")) });
    return csv(
      "reconciliation.csv",
      toCsv(
        ["station", "governorate", "office", "verified", "exempted", "admitted", "result_verified_voters", "ballots_counted", "difference", "status", "flagged", "flags"],
        rows.map((r) => [r.stationId, r.governorate, r.office, r.verified, r.exempted, r.admitted, r.resultVerifiedVoters, r.ballotsCounted, r.difference, r.status, r.flagged, r.flags.join(" ")]),
      ),
    );
  }
  return null;
}

/** The signed-results export (every RESULT record as signed, with device keys): JSON or NDJSON. */
export function signedExport(format: "json" | "ndjson", q: URLSearchParams, views: StationViews, store: OpsStore, nowMs: number): Reply {
  const file = signedResultsFile(views.resultRecords(stationFilter(q)), (id) => store.device(id)?.publicKeyHex ?? "", nowMs);
  const date = new Date(nowMs).toISOString().slice(0, 10);
  if (format === "ndjson") {
    return { status: 200, type: "application/x-ndjson; charset=utf-8", body: signedResultsNdjson(file), headers: { "content-disposition": `attachment; filename="results-signed-${date}.ndjson"` } };
  }
  return { status: 200, type: "application/json; charset=utf-8", body: JSON.stringify(file, null, 1) + "\n", headers: { "content-disposition": `attachment; filename="results-signed-${date}.json"` } };
}
