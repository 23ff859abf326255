// The demo's world: the embedded MQTT broker, the operations console (registry and signed
// election definitions imported from files, as at a real commission), two sites each with its
// host agent, and per polling station a verification device (VVD) and a result acceleration
// device (RAD), each on its own pseudo-terminal that its site's agent opens like a USB serial
// port. Station data (register, election definition, voter cards, ballots) comes from the station
// kit (simulator/scenario/station_kit.ts), with real fingerprint minutiae.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDevice, type RunningDevice } from "../cli/device_runner.ts";
import { startEmbeddedBroker } from "../../host/broker/embedded.ts";
import { startAgent, parseAgentConfig, type RunningAgent } from "../../host/agent/agent.ts";
import { startOps, parseOpsConfig, type RunningOps } from "../../host/ops/ops.ts";
import { registryEntry } from "../../host/ops/registry/registry.ts";
import { ControlClient } from "../../host/cli/client.ts";
import type { Screen } from "../../device/platform/platform.ts";
import { buildStation, createCommission, realPacer, StationDevice, type Commission, type Station } from "../scenario/station_kit.ts";

/** Health reports per device (real time); the console's "silent" alert follows it. */
export const HEALTH_INTERVAL_MS = 1000;
export const ELECTION_ID = "GE-2026";
export const ELECTION_NAME = "General Election 2026";
/** Usable fingers in the FVC2002 minutiae the kit reads (4 databases x 10 fingers). */
const FINGERS = 40;
/** Batteries as the devices come out of months in storage (percent), in turn. */
const START_SOC = [18, 85, 55, 35, 62, 27, 90, 45];

export interface SiteSpec {
  id: string;
  /** Short code used in station and device ids. */
  code: string;
  governorate: string;
  office: string;
  agentId: string;
}

export const SITES: SiteSpec[] = [
  { id: "site-karkh", code: "BGD", governorate: "Baghdad", office: "Karkh", agentId: "agent-karkh" },
  { id: "site-basra", code: "BSR", governorate: "Basra", office: "Basra-Centre", agentId: "agent-basra" },
];

export interface DemoSite extends SiteSpec {
  agent: RunningAgent;
  client: ControlClient;
}

export interface DemoDevice {
  serial: string;
  role: "verification" | "result";
  site: DemoSite;
  stationId: string;
  running: RunningDevice;
  /** The station kit's driver for this device (screens, cards, fingers, ballots, buttons). */
  kit: StationDevice;
  startSoc: number;
}

export interface DemoStation {
  index: number;
  id: string;
  site: DemoSite;
  data: Station;
  vvd: DemoDevice;
  rad: DemoDevice;
}

export interface WorldOptions {
  stations: number;
  voters: number;
  /** The console's web port (0: any free port). */
  port: number;
  host?: string;
  /** Device console lines. */
  onDeviceLog?: (serial: string, line: string) => void;
  /** Progress of the set-up, for a person watching. */
  say: (line: string) => void;
}

export interface World {
  dir: string;
  brokerUrl: string;
  ops: RunningOps;
  commission: Commission;
  sites: DemoSite[];
  stations: DemoStation[];
  devices: DemoDevice[];
  stop(): Promise<void>;
}

/**
 * A device on its own pseudo-terminal (runDevice), driven with the station kit: the kit's
 * StationDevice normally makes its own SimDevice on an in-process link; here it is laid over the
 * one runDevice made, so that the agent reaches the device through a real serial port.
 */
async function ptyStationDevice(o: {
  serial: string;
  role: "verification" | "result";
  link: string;
  commissionKey: Uint8Array;
  socPercent: number;
  onLog?: (line: string) => void;
  onRetry?: (text: string) => void;
}): Promise<{ running: RunningDevice; kit: StationDevice }> {
  const screens: Screen[] = [];
  const logs: string[] = [];
  const running = await runDevice({
    serial: o.serial,
    role: o.role,
    link: o.link,
    healthIntervalMs: HEALTH_INTERVAL_MS,
    onLog: (l) => {
      logs.push(l);
      if (logs.length > 2000) logs.splice(0, 1000);
      o.onLog?.(l);
    },
    device: {
      commissionKey: o.commissionKey,
      // On a rack charger, as they come out of storage.
      power: { battery: { socPercent: o.socPercent, capacityMah: 3000 }, vbus: true },
      dataFlashPages: 256,
      onScreen: (s) => screens.push(s),
    },
  });
  const kit = Object.create(StationDevice.prototype) as StationDevice;
  Object.assign(kit, { sd: running.device, pacer: realPacer(), screens, logs, wire: [], serial: o.serial, role: o.role, hostEnd: null, link: null });
  // On a loaded machine the secure element's first key generation can outlast the driver's
  // timeout: the device then boots without an identity. Power it up again, as a technician would.
  for (let attempt = 1; !hasIdentity(running) && attempt <= 3; attempt++) {
    o.onRetry?.(`${o.serial} booted without its identity key (secure element busy): powering it up again`);
    await kit.restart();
  }
  if (!hasIdentity(running)) {
    await running.stop();
    throw new Error(`${o.serial} has no identity key after 4 boots (is the machine very busy?)`);
  }
  return { running, kit };
}

function hasIdentity(r: RunningDevice): boolean {
  const k = r.device.firmware?.publicKey;
  return k !== undefined && k !== null && k.length === 64;
}

/** Waits (real time) until `probe` gives a value; throws `what` after `ms`. */
export async function waitReal<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, everyMs = 150): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${Math.round(ms / 1000)} s: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startWorld(o: WorldOptions): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "pollkit-demo-"));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const stopAll = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch {
        // keep stopping the rest
      }
    }
  };
  try {
    const broker = await startEmbeddedBroker({ port: 0, dataDir: join(dir, "broker") });
    cleanups.push(() => broker.close());
    o.say(`MQTT broker (embedded aedes) on ${broker.url}`);

    // The commission: its key signs the station data; a technician holds a token from it.
    const commission = createCommission({ technicianId: "tech-amal" });
    const per = o.voters + 1;
    const slots = Math.max(1, Math.floor(FINGERS / per));
    const specs: { index: number; id: string; site: SiteSpec; data: Station }[] = [];
    for (let i = 0; i < o.stations; i++) {
      const site = SITES[i % SITES.length];
      const id = `ST-${site.code}-${String(Math.floor(i / SITES.length) + 1).padStart(3, "0")}`;
      const data = buildStation({ commission, stationId: id, electionId: ELECTION_ID, electionName: ELECTION_NAME, voters: o.voters, skipFingers: (i % slots) * per, site: site.id });
      specs.push({ index: i, id, site, data });
    }
    o.say(`commission key made; ${o.stations} station(s), ${o.voters} voters each, registers and election definitions signed with it`);

    // The devices, each on its own pseudo-terminal.
    const made: { spec: (typeof specs)[number]; vvd: Omit<DemoDevice, "site">; rad: Omit<DemoDevice, "site"> }[] = [];
    let n = 0;
    for (const spec of specs) {
      const pair: Partial<Record<"vvd" | "rad", Omit<DemoDevice, "site">>> = {};
      for (const role of ["verification", "result"] as const) {
        const serial = `${role === "verification" ? "VVD" : "RAD"}-${spec.site.code}-${spec.id.slice(-3)}`;
        const startSoc = START_SOC[n++ % START_SOC.length];
        const d = await ptyStationDevice({
          serial,
          role,
          link: join(dir, `${serial}.tty`),
          commissionKey: commission.publicKey,
          socPercent: startSoc,
          onLog: o.onDeviceLog ? (l) => o.onDeviceLog?.(serial, l) : undefined,
          onRetry: o.say,
        });
        cleanups.push(() => d.running.stop());
        pair[role === "verification" ? "vvd" : "rad"] = { serial, role, stationId: spec.id, running: d.running, kit: d.kit, startSoc };
        o.say(`${serial} (${role === "verification" ? "verification device" : "result device"}, ${spec.id}) on ${d.running.hostPath}`);
      }
      made.push({ spec, vvd: pair.vvd!, rad: pair.rad! });
    }

    // Provisioning files for the console: the registry (device keys, where they serve) and the
    // signed election definitions, checked against the commission's key on import.
    const registry = made.flatMap((m) =>
      [m.vvd, m.rad].map((d) =>
        registryEntry(d.serial, d.running.device.firmware!.publicKey, {
          role: d.role,
          governorate: m.spec.site.governorate,
          office: m.spec.site.office,
          stationId: m.spec.id,
          site: m.spec.site.id,
        }),
      ),
    );
    writeFileSync(join(dir, "registry.json"), JSON.stringify(registry, null, 1));
    mkdirSync(join(dir, "elections"));
    for (const s of specs) writeFileSync(join(dir, "elections", `${s.id}.election.bin`), s.data.electionArtifact);
    let ops: RunningOps;
    try {
      ops = await startOps(
        parseOpsConfig(
          {
            mqtt: { url: broker.url },
            store: { path: "ops/ops.db" },
            registry: "registry.json",
            election: "elections",
            commissionKey: commission.publicKeyHex,
            web: { port: o.port, host: o.host ?? "127.0.0.1" },
            reports: { everyMs: 3600000, outDir: "ops/reports" },
            healthIntervalMs: HEALTH_INTERVAL_MS,
          },
          dir,
        ),
      );
    } catch (e) {
      if ((e as { code?: string }).code === "EADDRINUSE") throw new Error(`port ${o.port} is in use: give another with --port (0 picks a free one)`);
      throw e;
    }
    cleanups.push(() => ops.stop());

    // One host agent per site, with the pseudo-terminals of that site's devices as its serial ports.
    const sites: DemoSite[] = [];
    for (const spec of SITES.slice(0, Math.min(SITES.length, o.stations))) {
      const paths = made.filter((m) => m.spec.site.id === spec.id).flatMap((m) => [m.vvd.running.hostPath, m.rad.running.hostPath]);
      const agentDir = join(dir, spec.agentId);
      mkdirSync(agentDir);
      const agent = await startAgent(
        parseAgentConfig(
          {
            site: spec.id,
            agentId: spec.agentId,
            serial: { paths, scanIntervalMs: 300 },
            outbox: { path: "outbox.db" },
            mqtt: { url: broker.url },
            control: { port: 0 },
          },
          agentDir,
        ),
      );
      cleanups.push(() => agent.stop());
      sites.push({ ...spec, agent, client: new ControlClient(agent.controlUrl) });
    }
    const siteOf = (id: string): DemoSite => sites.find((s) => s.id === id)!;
    const stations: DemoStation[] = made.map((m) => {
      const site = siteOf(m.spec.site.id);
      return { index: m.spec.index, id: m.spec.id, site, data: m.spec.data, vvd: { ...m.vvd, site }, rad: { ...m.rad, site } };
    });
    const devices = stations.flatMap((s) => [s.vvd, s.rad]);
    return {
      dir,
      brokerUrl: broker.url,
      ops,
      commission,
      sites,
      stations,
      devices,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
