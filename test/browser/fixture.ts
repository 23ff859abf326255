// A deterministic fleet for the dashboard's tests and benchmark: governorates, offices, stations
// with a VVD and a RAD each, health samples covering every status (ready, charging, faulty, silent),
// low batteries, storage-mode batteries out of their window, ageing cells and journal backlogs;
// and an election day over the first stations (seedElection).

import { SqliteOpsStore } from "../../host/ops/store/sqlite_store.ts";
import type { HealthSample, OpsStore, RegisteredDevice, StoredRecord } from "../../host/ops/store/store.ts";
import { makeRecord, payload, RecordKind, testDevice, type TestDevice } from "../../host/ops/testing/signed.ts";

export const GOVERNORATES = ["Baghdad", "Basra", "Nineveh", "Erbil", "Najaf", "Karbala", "Kirkuk", "Diyala", "Anbar", "Babil"];
const OFFICES_PER_GOV = 6;

export interface FleetFixture {
  devices: RegisteredDevice[];
  nowMs: number;
}

export function health(p: {
  mv?: number;
  socPermille?: number;
  chargeState?: number;
  chargeMode?: number;
  chargerFaults?: number;
  peripheralFaults?: number;
  backlog?: number;
  sohPermille?: number;
  cycles?: number;
  powerAlarms?: number;
}): Record<string, number> {
  return {
    batteryMv: p.mv ?? 3900,
    stateOfChargePermille: p.socPermille ?? 800,
    currentMa: -120,
    temperatureDecic: 245,
    chargeState: p.chargeState ?? 1,
    chargerFaults: p.chargerFaults ?? 0,
    uptimeS: 3600,
    rebootReason: 1,
    freeMemoryBytes: 20000,
    freeStorageBytes: 500000,
    journalBacklog: p.backlog ?? 0,
    peripheralFaults: p.peripheralFaults ?? 0,
    clockMs: 0,
    chargeMode: p.chargeMode ?? 1,
    errorCount: 0,
    cycleCount: p.cycles ?? 42,
    stateOfHealthPermille: p.sohPermille ?? 960,
    dischargePermillePerHour: -8,
    powerAlarms: p.powerAlarms ?? 0,
  };
}

export function deviceId(i: number): string {
  return `${i % 2 === 0 ? "VVD" : "RAD"}-${String(Math.floor(i / 2)).padStart(6, "0")}`;
}

/** Registers `n` devices and writes their health; `historySamples` samples each for the first `historyDevices`. */
export function seedFleet(store: OpsStore, n: number, nowMs: number, opts: { historySamples?: number; historyDevices?: number } = {}): FleetFixture {
  const devices: RegisteredDevice[] = [];
  for (let i = 0; i < n; i++) {
    const station = Math.floor(i / 2);
    // Not station % 10: the health pattern below repeats every 10 stations.
    const gov = GOVERNORATES[Math.floor(station / 10) % GOVERNORATES.length];
    const office = `${gov}-${(Math.floor(station / 100) % OFFICES_PER_GOV) + 1}`;
    devices.push({
      deviceId: deviceId(i),
      publicKeyHex: "00".repeat(64),
      role: i % 2 === 0 ? "verification" : "result",
      governorate: gov,
      office,
      stationId: `ST-${String(station).padStart(6, "0")}`,
      site: `WH-${office}`,
    });
  }
  store.upsertDevices(devices);

  const samples: HealthSample[] = [];
  const historySamples = opts.historySamples ?? 0;
  const historyDevices = opts.historyDevices ?? 0;
  for (let i = 0; i < n; i++) {
    const d = devices[i];
    const kind = i % 20;
    if (kind === 19) continue; // never reported: silent
    const seenAgo = kind === 18 ? 2 * 3_600_000 : (i % 7) * 1000; // kind 18: silent for two hours
    let h: Record<string, number>;
    if (kind === 3) h = health({ socPermille: 120, mv: 3450 }); // battery low
    else if (kind === 5) h = health({ socPermille: 350, chargeState: 3, mv: 3800 }); // charging
    else if (kind === 7) h = health({ chargerFaults: 0x10 }); // charger fault
    else if (kind === 11) h = health({ peripheralFaults: 1 << 5 }); // fingerprint failed
    else if (kind === 13) h = health({ chargeMode: 2, socPermille: 720 }); // storage, above window
    else if (kind === 15) h = health({ backlog: 250 });
    else if (kind === 9) h = health({ sohPermille: 760, cycles: 640, powerAlarms: 1 << 7 }); // ageing cell
    else h = health({ socPermille: 500 + ((i * 37) % 500), mv: 3700 + ((i * 13) % 450) });
    const at = nowMs - seenAgo;
    if (i < historyDevices) {
      for (let k = historySamples - 1; k >= 1; k--) {
        const soc = Math.max(50, (h.stateOfChargePermille ?? 800) - k * 8);
        samples.push({ deviceId: d.deviceId, receivedMs: at - k * 60_000, site: d.site, health: { ...h, stateOfChargePermille: soc, batteryMv: 3500 + soc / 2, clockMs: at - k * 60_000 } });
      }
    }
    // Clocks set (by the agent's time sync) and right: no clock-skew alert.
    samples.push({ deviceId: d.deviceId, receivedMs: at, site: d.site, health: { ...h, clockMs: at } });
  }
  const write = (): void => {
    store.putHealth(samples);
    for (let i = 0; i < n; i++) if (i % 20 < 18) store.setOnline(devices[i].deviceId, true, nowMs - (i % 7) * 1000, "1.4.2");
  };
  if (store instanceof SqliteOpsStore) store.transaction(write);
  else write();
  return { devices, nowMs };
}

// --- an election day: turnout, results and reconciliation --------------------------------------

export interface ElectionFixture {
  closeMs: number;
  stations: string[];
  /** Stations whose counted ballots disagree with the voters admitted. */
  mismatched: string[];
  /** Stations whose VVD sent its final report and whose RAD sent nothing. */
  missingResult: string[];
  /** Stations with two different signed results. */
  conflicts: string[];
  /** Per station, its RAD as a signing test device (to add records later). */
  rad: Map<string, TestDevice>;
  vvd: Map<string, TestDevice>;
}

export const FIXTURE_ELECTION = {
  election_id: "GE-2026",
  name: "General election 2026",
  contests: [
    { id: "council", name: "Provincial council", options: ["List A", "List B", "List C"] },
    { id: "mayor", name: "Mayor", options: ["Candidate 1", "Candidate 2"] },
  ],
};

/** The ballots of one station split over the options (deterministic). */
export function stationVotes(i: number, ballots: number): { council: number[]; mayor: number[]; blank: number; invalid: number } {
  const blank = i % 3;
  const invalid = (i + 1) % 2;
  const valid = ballots - blank - invalid;
  const a = Math.floor(valid * 0.5);
  const b = Math.floor(valid * 0.3);
  const m1 = Math.floor(valid * 0.6);
  return { council: [a, b, valid - a - b], mayor: [m1, valid - m1], blank, invalid };
}

/**
 * Signed VVD and RAD records for the first `stations` stations of a seeded fleet (their devices get
 * real P-256 keys in the registry): hourly turnout, the final report, the result; every 10th
 * station from the 3rd disagrees (2 ballots more than voters), from the 5th has no result, from
 * the 7th has a second, different signed result. Stored directly (as ingest would after verifying).
 */
export function seedElection(
  store: OpsStore,
  fleet: FleetFixture,
  stations: number,
  closeMs: number,
  opts: { /** One key pair for every device (benchmarks: key generation costs about 1.4 ms a device). */ sharedKey?: boolean } = {},
): ElectionFixture {
  const out: ElectionFixture = { closeMs, stations: [], mismatched: [], missingResult: [], conflicts: [], rad: new Map(), vvd: new Map() };
  const records: StoredRecord[] = [];
  const registry: RegisteredDevice[] = [];
  const put = (d: TestDevice, kind: number, p: Uint8Array, timeMs: number, receivedMs: number): void => {
    const bytes = makeRecord(d, kind, p, timeMs);
    records.push({ deviceId: d.deviceId, seq: d.nextSeq - 1, prevSeq: d.nextSeq - 2, timeMs, kind, bytes, receivedMs, site: d.entry.site });
  };
  let shared: TestDevice | null = null;
  const device = (e: RegisteredDevice): TestDevice => {
    if (!opts.sharedKey) return testDevice(e.deviceId, e);
    shared ??= testDevice("shared", { role: "unknown" });
    return { ...shared, deviceId: e.deviceId, entry: { ...e, publicKeyHex: shared.publicKeyHex }, nextSeq: 1, prevSeq: 0 };
  };
  for (let s = 0; s < stations && 2 * s + 1 < fleet.devices.length; s++) {
    const vEntry = fleet.devices[2 * s];
    const rEntry = fleet.devices[2 * s + 1];
    const stationId = vEntry.stationId;
    const vvd = device(vEntry);
    const rad = device(rEntry);
    registry.push(vvd.entry, rad.entry);
    out.vvd.set(stationId, vvd);
    out.rad.set(stationId, rad);
    out.stations.push(stationId);
    const register = 400 + ((s * 37) % 200);
    const verified = Math.floor(register * (0.45 + (s % 5) * 0.05));
    const exempted = s % 4;
    const openMs = closeMs - 11 * 3_600_000;
    for (let h = 1; h <= 4; h++) {
      const at = openMs + h * 2 * 3_600_000;
      const v = Math.floor((verified * h) / 4);
      put(vvd, RecordKind.TURNOUT_HOURLY, payload.turnout({ stationId, electionId: "GE-2026", registerSize: register, verified: v, exempted: Math.min(exempted, h), rejected: h, rejectedByReason: [{ reason: 3, count: h }], periodEndMs: at }), at, at + 500);
    }
    put(vvd, RecordKind.TURNOUT_REPORT, payload.turnout({ stationId, electionId: "GE-2026", registerSize: register, verified, exempted, rejected: 5, rejectedByReason: [{ reason: 3, count: 4 }, { reason: 2, count: 1 }], periodEndMs: closeMs, final: true }), closeMs + 1000, closeMs + 2000);
    const k = s % 10;
    if (k === 5) {
      out.missingResult.push(stationId);
      continue;
    }
    // TurnoutCounts.verified counts every voter marked as voted, the exempted ones included.
    const admitted = verified;
    const ballots = k === 3 ? admitted + 2 : admitted;
    if (k === 3) out.mismatched.push(stationId);
    const v = stationVotes(s, ballots);
    const result = (council: number[]): Uint8Array =>
      payload.result({
        electionId: "GE-2026", stationId, openedMs: openMs, closedMs: closeMs, ballotsCounted: ballots,
        contests: [{ contestId: "council", votes: council, blank: v.blank, invalid: v.invalid }, { contestId: "mayor", votes: v.mayor, blank: v.blank, invalid: v.invalid }],
        verifiedVoters: admitted, verifiedVotersKnown: true,
      });
    put(rad, RecordKind.RESULT, result(v.council), closeMs + 120_000, closeMs + 125_000 + s);
    if (k === 7) {
      out.conflicts.push(stationId);
      put(rad, RecordKind.RESULT, result([v.council[1], v.council[0], v.council[2]]), closeMs + 900_000, closeMs + 905_000 + s);
    }
  }
  const write = (): void => {
    store.upsertDevices(registry);
    store.putRecords(records);
  };
  if (store instanceof SqliteOpsStore) store.transaction(write);
  else write();
  return out;
}
