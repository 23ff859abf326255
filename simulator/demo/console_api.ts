// What the demo reads back from the operations console: the same JSON API the dashboard uses
// (docs/ops_api.md), so that what the demo prints is what arrived, not what the simulator knows.

import type { FleetRow } from "../../host/ops/web/model.ts";
import type { ReconRow, ResultRow, TurnoutRow } from "../../host/ops/views/stations.ts";
import type { Alert } from "../../host/ops/alerts/alerts.ts";

export class ConsoleApi {
  constructor(readonly url: string) {}

  private async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(10000) });
    if (!res.ok) throw new Error(`console ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  async fleet(): Promise<FleetRow[]> {
    return (await this.get<{ rows: FleetRow[] }>("/api/fleet?limit=1000")).rows;
  }

  async alerts(deviceId?: string): Promise<Alert[]> {
    const q = deviceId ? `?device=${encodeURIComponent(deviceId)}` : "";
    return (await this.get<{ alerts: Alert[] }>(`/api/alerts${q}`)).alerts;
  }

  async turnout(stationId: string): Promise<TurnoutRow | null> {
    const rows = (await this.get<{ rows: TurnoutRow[] }>(`/api/turnout?q=${encodeURIComponent(stationId)}`)).rows;
    return rows.find((r) => r.stationId === stationId) ?? null;
  }

  async result(stationId: string): Promise<ResultRow | null> {
    const rows = (await this.get<{ rows: ResultRow[] }>(`/api/results?q=${encodeURIComponent(stationId)}`)).rows;
    return rows.find((r) => r.stationId === stationId) ?? null;
  }

  async reconciliation(stationId: string): Promise<ReconRow | null> {
    const rows = (await this.get<{ rows: ReconRow[] }>(`/api/reconciliation?q=${encodeURIComponent(stationId)}`)).rows;
    return rows.find((r) => r.stationId === stationId) ?? null;
  }

  async reconciliationCounts(): Promise<Record<string, number>> {
    return (await this.get<{ counts: Record<string, number> }>("/api/reconciliation")).counts;
  }
}

const CHARGE_STATES: Record<number, string> = { 1: "not charging", 2: "pre-charging", 3: "charging", 4: "full", 5: "no battery" };
const CHARGE_MODES: Record<number, string> = { 1: "normal", 2: "storage", 3: "maintain" };

export function chargeStateName(v: number | null): string {
  return v === null ? "?" : (CHARGE_STATES[v] ?? `state ${v}`);
}

export function chargeModeName(v: number | null): string {
  return v === null ? "?" : (CHARGE_MODES[v] ?? `mode ${v}`);
}

/** "VVD-BGD-001 34 % charging" for a fleet row. */
export function batteryText(r: FleetRow): string {
  const soc = r.socPercent === null ? "?" : `${Math.round(r.socPercent)} %`;
  return `${r.deviceId} ${soc} ${chargeStateName(r.chargeState)}`;
}

/** One line per contest of a result row: "Council of Representatives: List A 2, List B 1, blank 0". */
export function contestLines(r: ResultRow): string[] {
  return r.contests.map((c) => {
    const opts = c.options.map((o) => `${o.name || `option ${o.index + 1}`} ${o.votes}`).join(", ");
    const extra = [c.blank ? `blank ${c.blank}` : "", c.invalid ? `invalid ${c.invalid}` : ""].filter((x) => x !== "").join(", ");
    return `${c.name || c.contestId}: ${opts}${extra ? `; ${extra}` : ""}`;
  });
}
