// A deterministic fleet for the dashboard's tests and benchmark: governorates, offices, stations
// with a VVD and a RAD each, health samples covering every status (ready, charging, faulty, silent),
// low batteries, storage-mode batteries out of their window and journal backlogs.

import { SqliteOpsStore } from "../../host/ops/store/sqlite_store.ts";
import type { HealthSample, OpsStore, RegisteredDevice } from "../../host/ops/store/store.ts";

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
    else h = health({ socPermille: 500 + ((i * 37) % 500), mv: 3700 + ((i * 13) % 450) });
    const at = nowMs - seenAgo;
    if (i < historyDevices) {
      for (let k = historySamples - 1; k >= 1; k--) {
        const soc = Math.max(50, (h.stateOfChargePermille ?? 800) - k * 8);
        samples.push({ deviceId: d.deviceId, receivedMs: at - k * 60_000, site: d.site, health: { ...h, stateOfChargePermille: soc, batteryMv: 3500 + soc / 2 } });
      }
    }
    samples.push({ deviceId: d.deviceId, receivedMs: at, site: d.site, health: h });
  }
  const write = (): void => {
    store.putHealth(samples);
    for (let i = 0; i < n; i++) if (i % 20 < 18) store.setOnline(devices[i].deviceId, true, nowMs - (i % 7) * 1000, "1.4.2");
  };
  if (store instanceof SqliteOpsStore) store.transaction(write);
  else write();
  return { devices, nowMs };
}
