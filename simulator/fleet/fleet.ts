// A fleet of simulated devices served by real host agents, in one process: each device runs the
// real firmware against its chip models and talks to an agent through an in-process byte link
// (no pseudo-terminal each), each agent has its own SQLite outbox and MQTT connection. For scale
// tests of agents, the broker and the operations console (`pollkit-sim fleet`, bench:fleet).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "../../host/agent/agent.ts";
import type { AgentConfig } from "../../host/agent/config.ts";
import { memoryHostLink } from "../../host/link/memory_host_link.ts";
import type { HostLink } from "../../host/link/host_link.ts";
import { createMemoryLink, type HostEnd } from "../links/memory_link.ts";
import { SimDevice, type SimDeviceOptions } from "../device/sim_device.ts";

export interface FleetOptions {
  devices: number;
  /** Agents sharing the devices round-robin (one per site). */
  agents: number;
  brokerUrl: string;
  /** Agents' outboxes go here. */
  dir: string;
  healthIntervalMs?: number;
  /** Serial prefixes by role; devices alternate verification / result. */
  sitePrefix?: string;
  /** Extra SimDevice options for every device (virtual clock, random sources...). */
  deviceOptions?: Partial<SimDeviceOptions>;
  onLog?: (serial: string, line: string) => void;
}

export interface FleetDevice {
  serial: string;
  role: "verification" | "result";
  site: string;
  agent: Agent;
  device: SimDevice;
  host: HostEnd;
  link: (HostLink & { unplug(): void }) | null;
}

export function fleetSerial(role: "verification" | "result", n: number): string {
  return `${role === "verification" ? "VVD" : "RAD"}-${String(n).padStart(6, "0")}`;
}

/** An agent of a simulated fleet: no hardware transports (devices come on in-process links), its outbox in `dir`. */
export function fleetAgentConfig(site: string, dir: string, brokerUrl: string): AgentConfig {
  return {
    site,
    agentId: `agent-${site}`,
    serial: { paths: [], globs: [], vendorIds: [], productIds: [], scanIntervalMs: 60_000 },
    ble: { enabled: false },
    usb: { enabled: false },
    outbox: { path: join(dir, `${site}.outbox.sqlite`) },
    mqtt: { url: brokerUrl },
    control: { host: "127.0.0.1", port: 0 },
    timeSync: true,
  };
}

export class Fleet {
  readonly agents: Agent[] = [];
  readonly devices: FleetDevice[] = [];

  constructor(readonly options: FleetOptions) {
    mkdirSync(options.dir, { recursive: true });
    const prefix = options.sitePrefix ?? "SITE";
    for (let a = 0; a < options.agents; a++) {
      this.agents.push(new Agent(fleetAgentConfig(`${prefix}-${String(a + 1).padStart(4, "0")}`, options.dir, options.brokerUrl)));
    }
    for (let i = 0; i < options.devices; i++) {
      const role = i % 2 === 0 ? "verification" : "result";
      const serial = fleetSerial(role, i + 1);
      const agent = this.agents[i % this.agents.length];
      const { device: deviceEnd, host } = createMemoryLink({ deferred: true });
      const device = new SimDevice({
        serial,
        role,
        hostLink: deviceEnd,
        healthIntervalMs: options.healthIntervalMs,
        // Devices keep time in a battery-backed clock; the agent corrects it.
        wallMs: Date.now(),
        onLog: options.onLog ? (l) => options.onLog?.(serial, l) : undefined,
        ...options.deviceOptions,
      });
      this.devices.push({ serial, role, site: agent.config.site, agent, device, host, link: null });
    }
  }

  /** Starts the agents, powers every device on and plugs it into its agent. */
  start(): void {
    for (const a of this.agents) a.start();
    for (const d of this.devices) {
      d.device.powerOn();
      this.plug(d);
    }
  }

  plug(d: FleetDevice): void {
    if (d.link) return;
    d.host.setConnected(true);
    d.link = memoryHostLink(d.host, `mem:${d.serial}`);
    d.agent.attach(d.link);
  }

  unplug(d: FleetDevice): void {
    d.link?.unplug();
    d.link = null;
  }

  async stop(): Promise<void> {
    for (const d of this.devices) {
      this.unplug(d);
      if (d.device.running) d.device.powerOff();
    }
    for (const a of this.agents) await a.stop();
  }
}
