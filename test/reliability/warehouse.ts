// Scenario 1, the warehouse: a fleet in storage and maintain mode, health and journal records
// flowing through agents, the TCP proxy and the embedded broker to the operations console, with
// faults from the catalogue injected across the run. Then a drain, and counting: every record each
// device journalled is stored once at the console, nothing authentic was quarantined, and every
// fault that did something was reported the way the catalogue says.
//
// The profiles are data; `runWarehouse` plays one and returns its counts (one JSON line).

import { injectFault, type FaultId } from "../../simulator/faults/catalogue.ts";
import { ChargeMode } from "../../protocol/generated/device_codec.ts";
import { FleetHarness, sleep, type AuditCounts, type FleetHarnessOptions } from "./fleet_harness.ts";

export interface WarehouseProfile {
  fleet: Omit<FleetHarnessOptions, "log">;
  /** Real time the faulted run lasts before the drain. */
  runMs: number;
  drainMs: number;
  /** Device faults: how many of each, at random moments in the device-fault windows. */
  deviceFaults: Partial<Record<FaultId, number>>;
  /** Network-wide faults at fixed moments (share of runMs); a partition lasts forMs, else the catalogue's. */
  networkFaults: { id: "broker-restart" | "network-partition"; at: number; forMs?: number }[];
}

/**
 * Device faults happen in these windows (shares of runMs), before and after the broker restarts and
 * the short partitions (an unplug waits for its agent to be connected: the console learns of it
 * from the agent's status messages).
 */
const DEVICE_WINDOWS: [number, number][] = [
  [0.04, 0.4],
  [0.78, 0.9],
];

export const WAREHOUSE: Record<"short" | "long", WarehouseProfile> = {
  short: {
    fleet: {
      devices: 40,
      agents: 4,
      seed: 9001,
      speed: 3600,
      vvdSpeed: 1,
      healthEveryRealMs: 1500,
      resendRealMs: 1500,
      maintainShare: 0.25,
      trafficRealMs: [600, 2000],
      agedCells: 2,
      tinyJournals: 2,
      chargerFaultRealMs: 5000,
    },
    runMs: 24_000,
    drainMs: 40_000,
    deviceFaults: {
      "line-noise": 2,
      "dropped-bytes": 2,
      "duplicated-bytes": 2,
      "unplug-mid-transfer": 3,
      "device-power-cut": 3,
      "clock-skew": 2,
      "full-flash": 2,
      "sensor-failure": 2,
      "charger-failure": 2,
      "battery-ageing": 2,
    },
    networkFaults: [
      { id: "broker-restart", at: 0.46 },
      { id: "network-partition", at: 0.6 },
    ],
  },
  long: {
    fleet: {
      devices: 300,
      agents: 12,
      seed: 424242,
      speed: 3600,
      vvdSpeed: 1,
      healthEveryRealMs: 3000,
      resendRealMs: 2000,
      maintainShare: 0.25,
      trafficRealMs: [1500, 6000],
      agedCells: 6,
      tinyJournals: 6,
      chargerFaultRealMs: 5000,
    },
    runMs: 170_000,
    drainMs: 120_000,
    deviceFaults: {
      "line-noise": 8,
      "dropped-bytes": 6,
      "duplicated-bytes": 6,
      "unplug-mid-transfer": 12,
      "device-power-cut": 16,
      "clock-skew": 6,
      "full-flash": 6,
      "sensor-failure": 6,
      "charger-failure": 8,
      "battery-ageing": 6,
    },
    networkFaults: [
      { id: "broker-restart", at: 0.42 },
      { id: "network-partition", at: 0.5 },
      // A partition the peers only notice through keep-alives (wills after 45 s): "for hours" of
      // device time at this speed.
      { id: "network-partition", at: 0.55, forMs: 60_000 },
      { id: "broker-restart", at: 0.94 },
    ],
  },
};

export interface WarehouseCounts extends AuditCounts {
  scenario: "warehouse";
  profile: string;
  speed: number;
  runSeconds: number;
  drainSeconds: number;
  largestOutboxBacklog: number;
  consoleAlerts: Record<string, number>;
  deviceCodeErrors: number;
  ok: boolean;
  problems: string[];
}

export async function runWarehouse(profileName: "short" | "long", log?: (s: string) => void): Promise<WarehouseCounts> {
  const p = WAREHOUSE[profileName];
  const h = new FleetHarness({ ...p.fleet, log });
  const t0 = performance.now();
  try {
    await h.build();
    // Setup-time fault: the cells of some devices are old (they are built with them).
    for (const d of h.reservedFor("battery-ageing")) await injectFault(h, "battery-ageing", { device: d.serial }, h.rnd);
    await h.start();
    h.startTraffic();

    const tasks: Promise<unknown>[] = [];
    const at = (share: number, fn: () => Promise<unknown> | unknown): void => {
      tasks.push(sleep(share * p.runMs).then(fn));
    };
    // Device faults, each on its own device, at random moments in the windows.
    for (const [id, count] of Object.entries(p.deviceFaults) as [FaultId, number][]) {
      if (id === "battery-ageing") continue;
      for (let i = 0; i < count; i++) {
        const w = DEVICE_WINDOWS[i % DEVICE_WINDOWS.length];
        const share = w[0] + h.rnd() * (w[1] - w[0]);
        if (id === "full-flash") {
          const d = h.reservedFor("full-flash")[i];
          if (!d) throw new Error("more full-flash faults than tiny journals");
          at(share, () => injectFault(h, id, { device: d.serial }, h.rnd));
          continue;
        }
        // Power faults go to result devices in storage mode: their clock runs 3,600 times faster
        // (hourly power samples every second; maintain mode wakes once a day).
        const powerFault = id === "sensor-failure" || id === "charger-failure";
        const d = h.pick(id, powerFault ? (x) => x.mode === ChargeMode.STORAGE && x.fd.role === "result" : undefined);
        // The sensor is the fuel gauge (the catalogue's first part): the card reader and the
        // fingerprint module are only checked when used or at boot, never in a warehouse.
        const rnd = id === "sensor-failure" ? () => 0 : h.rnd;
        at(share, () => injectFault(h, id, { device: d.serial }, rnd));
      }
    }
    for (const f of p.networkFaults) {
      at(f.at, () => (f.forMs === undefined ? injectFault(h, f.id, {}, h.rnd) : h.partition(f.forMs)));
    }
    await sleep(p.runMs);
    await Promise.all(tasks);
    const runSeconds = (performance.now() - t0) / 1000;
    log?.("run over: draining");
    const drainMs = await h.drain(p.drainMs);
    const alerts = await h.alerts();
    const counts = await h.audit();
    const consoleAlerts: Record<string, number> = {};
    for (const a of alerts) consoleAlerts[a.kind] = (consoleAlerts[a.kind] ?? 0) + 1;
    log?.(`console alerts: ${alerts.map((a) => `${a.deviceId}:${a.kind}`).join(" ")}`);

    const problems: string[] = [];
    if (counts.lost > 0) problems.push(`${counts.lost} journalled records not at the console (${counts.lostSample.join(", ")})`);
    if (counts.unexpected > 0) problems.push(`${counts.unexpected} stored records the devices never journalled`);
    if (counts.duplicatedStored > 0) problems.push(`${counts.duplicatedStored} records stored twice`);
    if (counts.chainBreaks > 0) problems.push(`${counts.chainBreaks} stored records whose prev_seq is not stored`);
    if (counts.quarantined > 0) problems.push(`quarantined: ${JSON.stringify(counts.quarantineReasons)}`);
    if (counts.faultsReported !== counts.faultsExercised) problems.push(`faults not reported: ${counts.unreported.join(" | ")}`);
    for (const [id, n] of Object.entries(p.deviceFaults)) {
      const t = counts.faults[id];
      if (!t || t.injected !== n) problems.push(`${id}: ${t?.injected ?? 0} injected, ${n} planned`);
      else if (t.exercised === 0) problems.push(`${id}: none of the ${n} injected did anything`);
    }
    if (counts.flatShutdowns > 0) problems.push(`${counts.flatShutdowns} shutdowns on a flat cell`);
    if (h.deviceErrors.length > 0) problems.push(`device code threw: ${h.deviceErrors.slice(0, 3).join(" | ")}`);
    return {
      scenario: "warehouse",
      profile: profileName,
      speed: p.fleet.speed,
      runSeconds: Math.round(runSeconds),
      drainSeconds: Math.round(drainMs / 100) / 10,
      ...counts,
      largestOutboxBacklog: h.largestOutboxBacklog,
      consoleAlerts,
      deviceCodeErrors: h.deviceErrors.length,
      ok: problems.length === 0,
      problems,
    };
  } finally {
    await h.stop();
  }
}
