// The fault catalogue: every fault the simulator and the tests inject, in one table, with where it
// strikes and how the system is expected to report it. The reliability suite draws from this
// table and checks, by counting, that every fault injected was reported and that no record was
// lost or doubled. A harness (a fleet, a station rig) implements the actions; `injectFault`
// turns a catalogue entry into those actions.

export type FaultLayer = "link" | "device" | "agent" | "broker" | "network" | "hardware";

export type FaultId =
  | "line-noise"
  | "dropped-bytes"
  | "duplicated-bytes"
  | "unplug-mid-transfer"
  | "device-power-cut"
  | "agent-kill"
  | "broker-restart"
  | "network-partition"
  | "clock-skew"
  | "full-flash"
  | "sensor-failure"
  | "charger-failure"
  | "battery-ageing";

export interface FaultSpec {
  id: FaultId;
  layer: FaultLayer;
  what: string;
  /** Where the system says so: what the reliability suite looks for. */
  reportedBy: string;
}

export const FAULTS: readonly FaultSpec[] = [
  { id: "line-noise", layer: "link", what: "bit errors on the device link at a given bit error rate", reportedBy: "frame errors in the agent's session counters and the device's Health.error_count" },
  { id: "dropped-bytes", layer: "link", what: "bytes lost on the device link", reportedBy: "frame errors in the agent's session counters; records resent by the device" },
  { id: "duplicated-bytes", layer: "link", what: "bytes doubled on the device link", reportedBy: "frame errors in the agent's session counters" },
  { id: "unplug-mid-transfer", layer: "link", what: "the cable pulled while records or a transfer are in flight", reportedBy: "device status offline, then online (retained MQTT status)" },
  { id: "device-power-cut", layer: "device", what: "power lost at a random point, flash writes torn", reportedBy: "BOOT record with reboot reason BROWN_OUT or POWER_ON and a new boot id" },
  { id: "agent-kill", layer: "agent", what: "the host agent killed (SIGKILL) and restarted", reportedBy: "agent status offline through its MQTT will, then online" },
  { id: "broker-restart", layer: "broker", what: "the MQTT broker restarted", reportedBy: "agents reconnect; records delivered late, once" },
  { id: "network-partition", layer: "network", what: "the network between agents and the broker cut for hours", reportedBy: "agent status offline (will) and the outbox backlog; delivered once healed" },
  { id: "clock-skew", layer: "device", what: "the device's wall clock off by hours", reportedBy: "Health.clock_ms against the time of receipt: the console's clock-skew alert; a technician corrects it with `pollkit time sync` (a signed SetTime: a host's unsigned TimeSync only sets a clock that was never set)" },
  { id: "full-flash", layer: "device", what: "the journal full while the host is away", reportedBy: "Error JOURNAL_FULL and Health.journal_backlog; records refused, none lost silently" },
  { id: "sensor-failure", layer: "hardware", what: "a chip stops answering (fuel gauge, fingerprint module, card reader)", reportedBy: "Health.peripheral_faults bit, PowerAlarm GAUGE_FAULT for the gauge" },
  { id: "charger-failure", layer: "hardware", what: "a charger fault (input, thermal, safety timer, NTC)", reportedBy: "PowerAlarm CHARGER_FAULT record and Health.charger_faults" },
  { id: "battery-ageing", layer: "hardware", what: "a cell aged by years of cycles and heat", reportedBy: "Health.state_of_health_permille and PowerAlarm AGEING_CELL" },
];

export function faultSpec(id: FaultId): FaultSpec {
  const f = FAULTS.find((x) => x.id === id);
  if (!f) throw new Error(`no fault "${id}" in the catalogue`);
  return f;
}

/** What a harness must offer for the catalogue's faults; it may leave out what it cannot do. */
export interface FaultHarness {
  lineNoise?(device: string, o: { bitErrorRate?: number; dropRate?: number; duplicateRate?: number; forMs: number }): Promise<void> | void;
  unplug?(device: string, forMs: number): Promise<void> | void;
  powerCut?(device: string, afterFlashWrites: number): Promise<void> | void;
  killAgent?(agent: number): Promise<void> | void;
  restartBroker?(): Promise<void> | void;
  partition?(forMs: number): Promise<void> | void;
  skewClock?(device: string, byMs: number): Promise<void> | void;
  fillFlash?(device: string): Promise<void> | void;
  failSensor?(device: string, part: "gauge" | "fingerprint" | "card-reader"): Promise<void> | void;
  failCharger?(device: string, kind: "input" | "thermal" | "safety-timer" | "ntc"): Promise<void> | void;
  ageBattery?(device: string, o: { years: number; cycles: number }): Promise<void> | void;
}

export interface InjectedFault {
  id: FaultId;
  target: string;
  atMs: number;
  detail: string;
}

/** Injects one fault from the catalogue through the harness; returns what was done. */
export async function injectFault(
  h: FaultHarness,
  id: FaultId,
  target: { device?: string; agent?: number },
  rnd: () => number,
): Promise<InjectedFault> {
  const device = target.device ?? "";
  const at = Date.now();
  const need = <T>(fn: T | undefined): T => {
    if (fn === undefined) throw new Error(`this harness cannot inject "${id}"`);
    return fn;
  };
  let detail = "";
  switch (id) {
    case "line-noise":
      detail = "bit error rate 1e-4 for 2 s";
      await need(h.lineNoise).call(h, device, { bitErrorRate: 1e-4, forMs: 2000 });
      break;
    case "dropped-bytes":
      detail = "1 byte in 2,000 lost for 2 s";
      await need(h.lineNoise).call(h, device, { dropRate: 5e-4, forMs: 2000 });
      break;
    case "duplicated-bytes":
      detail = "1 byte in 2,000 doubled for 2 s";
      await need(h.lineNoise).call(h, device, { duplicateRate: 5e-4, forMs: 2000 });
      break;
    case "unplug-mid-transfer": {
      const ms = 500 + Math.floor(rnd() * 1500);
      detail = `unplugged for ${ms} ms`;
      await need(h.unplug).call(h, device, ms);
      break;
    }
    case "device-power-cut": {
      const writes = 1 + Math.floor(rnd() * 20);
      detail = `power cut after ${writes} flash writes`;
      await need(h.powerCut).call(h, device, writes);
      break;
    }
    case "agent-kill":
      detail = `agent ${target.agent ?? 0} killed`;
      await need(h.killAgent).call(h, target.agent ?? 0);
      break;
    case "broker-restart":
      detail = "broker restarted";
      await need(h.restartBroker).call(h, );
      break;
    case "network-partition":
      detail = "partition";
      await need(h.partition).call(h, 3000);
      break;
    case "clock-skew": {
      const by = (rnd() < 0.5 ? -1 : 1) * (1 + Math.floor(rnd() * 5)) * 3_600_000;
      detail = `clock skewed by ${by / 3_600_000} h`;
      await need(h.skewClock).call(h, device, by);
      break;
    }
    case "full-flash":
      detail = "journal filled";
      await need(h.fillFlash).call(h, device);
      break;
    case "sensor-failure": {
      const parts = ["gauge", "fingerprint", "card-reader"] as const;
      const part = parts[Math.floor(rnd() * parts.length)];
      detail = `${part} stopped answering`;
      await need(h.failSensor).call(h, device, part);
      break;
    }
    case "charger-failure": {
      const kinds = ["input", "thermal", "safety-timer", "ntc"] as const;
      const kind = kinds[Math.floor(rnd() * kinds.length)];
      detail = `charger ${kind} fault`;
      await need(h.failCharger).call(h, device, kind);
      break;
    }
    case "battery-ageing":
      detail = "5 years, 800 cycles";
      await need(h.ageBattery).call(h, device, { years: 5, cycles: 800 });
      break;
  }
  return { id, target: device || `agent ${target.agent ?? 0}`, atMs: at, detail };
}
