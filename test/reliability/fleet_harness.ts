// The reliability suite's fleet harness: a Fleet of simulated devices (real firmware and chip
// models, in-process links) served by real host agents (SQLite outboxes, MQTT) through a TCP proxy
// that can cut the network, the embedded broker, and the real operations console (verify, store,
// alerts). It implements the fault catalogue's actions (simulator/faults/catalogue.ts
// FaultHarness), watches what the system reports at the agents and at the console, and, after a
// drain, counts: every record each device journalled is stored once at the console, and every
// fault injected was reported the way the catalogue says.
//
// Time. Devices run on FastClocks (fast_clock.ts): speed 1 while they boot, are registered and
// take the technician's signed charge-mode command, then `speed` times faster for result devices
// (3,600: an hour of warehouse storage per real second), so power sampling, top-ups, state-of-health
// estimates and alarms happen within the run; verification devices keep `vvdSpeed` (their card
// reader polling costs too much CPU to go faster). Agents, broker and console keep real time.
// Device-side intervals (health, link resend) are given in real milliseconds at full speed.
//
// Ground truth. Each firmware instance's journal is wrapped at boot: every sequence number that
// Journal.append returns is a record the device holds durably and must reach the console, and so
// is every record the journal itself holds at boot (what start() journalled before the wrap, a
// record that reached flash whole although its append was cut short). A number torn by a power
// cut is neither: the journal skips it and the next record's prev_seq steps over it. Devices keep
// journalling (alarms, boots) during the drain; the records counted are those journalled when the
// drain saw every one of them at the console (or at its timeout).
//
// Power cuts. SimFlash throws PowerCut out of the firmware code that was writing. Every entry into
// device code (clock timers, bytes and connection changes from the link, the harness's own calls)
// runs inside `guard`, which catches it there, as the supply stops the MCU: the device is powered
// off at once (timers cancelled, link detached), its USB link drops, and it is powered on again
// (BROWN_OUT) a moment later.
//
// Fleet builds its devices with default options; the harness refits each slot with the device it
// needs (link guard and noise taps, clock, battery, flash sizes, commission key) before power-on:
// the same link end, the same agent.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedBroker, type EmbeddedBroker } from "../../host/broker/embedded.ts";
import { parseOpsConfig, startOps, type RunningOps } from "../../host/ops/ops.ts";
import { Fleet, type FleetDevice } from "../../simulator/fleet/fleet.ts";
import { startTcpProxy, type TcpProxy, type PartitionMode } from "../../simulator/faults/tcp_proxy.ts";
import { LineNoise, seededRandom } from "../../simulator/faults/line_noise.ts";
import type { FaultHarness, FaultId } from "../../simulator/faults/catalogue.ts";
import { SimDevice, type SimDeviceOptions } from "../../simulator/device/sim_device.ts";
import { PowerCut } from "../../simulator/models/flash.ts";
import { MAX17048_DEFAULT_ADDRESS } from "../../simulator/models/max17048.ts";
import { PN532_I2C_ADDRESS } from "../../simulator/models/pn532.ts";
import type { Bq25895Fault } from "../../simulator/models/bq25895.ts";
import type { ByteLink } from "../../device/platform/platform.ts";
import type { DeviceSession, SessionError } from "../../host/session/device_session.ts";
import { createCommissionKey, technicianKey, type P256Key } from "../../host/commission/keys.ts";
import { issueToken } from "../../host/commission/artifacts.ts";
import { authorize, signedCommandId } from "../../host/commission/authorize.ts";
import { FIRST_MARKER, CONTINUATION_MARKER } from "../../protocol/framing.ts";
import { decodeAlarm, recordPayload } from "../../host/ops/views/payloads.ts";
import { ChargeMode, ErrorCode, PowerAlarmKind, RebootReason, RecordKind, Status, decodeBootInfo, type Command } from "../../protocol/generated/device_codec.ts";
import type { StoredRecord } from "../../host/ops/store/store.ts";
import { FastClock } from "./fast_clock.ts";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const HOUR_MS = 3_600_000;

export async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await sleep(50);
  }
}

export interface FleetHarnessOptions {
  devices: number;
  agents: number;
  seed: number;
  /** Device time per real time, result devices, once the fleet is set up. */
  speed: number;
  /**
   * The same for verification devices. Their flow polls the card reader some 40 times a second of
   * device time, even in storage (0.3 ms of CPU per device second here): they cannot go thousands
   * of times faster, so they keep (about) real time, and the power faults go to result devices.
   */
  vvdSpeed: number;
  /** Health report interval, real ms at full speed. */
  healthEveryRealMs: number;
  /** Link resend timeout, real ms at full speed. */
  resendRealMs: number;
  /** Share of devices in MAINTAIN mode; the others are in STORAGE. */
  maintainShare: number;
  /** Each device journals a TEST record every min..max real ms while traffic runs. */
  trafficRealMs: [number, number];
  /** Devices built with an aged cell (the battery-ageing fault is applied to them before power-on). */
  agedCells: number;
  /** Devices built with a tiny journal (targets of full-flash). */
  tinyJournals: number;
  /**
   * A charger fault lasts this long (real ms), then clears: long enough for hours of device time
   * (sampling, the alarm), short enough that the cell, running the device without input power,
   * does not go flat at this speed.
   */
  chargerFaultRealMs: number;
  /** Agents' sites are <sitePrefix>-0001...; default "WH" (warehouses). */
  sitePrefix?: string;
  /** The commission whose key the devices hold (default: a new one). */
  commission?: P256Key;
  /** The polling station each device is registered to at the console (default: none, stock). */
  stationOf?: (role: "verification" | "result", index: number) => string;
  /** Put each device in its storage/maintain mode with a technician's signed command (default true). */
  setChargeModes?: boolean;
  /** More operations console configuration (commissionKey, election...). */
  opsConfig?: Record<string, unknown>;
  /** Builds the device of a slot from the harness's options (default: a SimDevice). */
  makeDevice?: (options: SimDeviceOptions) => SimDevice;
  log?: (line: string) => void;
}

interface Tap {
  noise: LineNoise | null;
  /** Bytes changed on frame lines, at positions a receiver can detect (not a line's first byte). */
  detectable: number;
  /** Every byte changed (flipped, dropped or doubled). */
  changed: number;
  atLineStart: boolean;
  frameLine: boolean;
}

/** A device's view of its link: every entry into device code guarded, noise taps both ways. */
class DeviceLink implements ByteLink {
  readonly toHost: Tap = newTap();
  readonly toDevice: Tap = newTap();
  constructor(
    private readonly inner: ByteLink,
    private readonly guard: (fn: () => void) => void,
  ) {}
  write(data: Uint8Array): void {
    const d = applyTap(this.toHost, data);
    if (d.length > 0) this.inner.write(d);
  }
  onData(cb: (data: Uint8Array) => void): void {
    this.inner.onData((data) => {
      const d = applyTap(this.toDevice, data);
      if (d.length > 0) this.guard(() => cb(d));
    });
  }
  onConnection(cb: (connected: boolean) => void): void {
    this.inner.onConnection((c) => this.guard(() => cb(c)));
  }
}

function newTap(): Tap {
  return { noise: null, detectable: 0, changed: 0, atLineStart: true, frameLine: false };
}

/**
 * Applies the tap's noise byte by byte, counting the changes a framing decoder can see: on a frame
 * line, any change but a lost or flipped marker (the line then reads as console text) or a doubled
 * newline (an empty line).
 */
function applyTap(t: Tap, data: Uint8Array): Uint8Array {
  const n = t.noise;
  if (n === null) {
    if (data.length > 0) t.atLineStart = data[data.length - 1] === 10;
    return data;
  }
  const c = n.counters;
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    const lineStart = t.atLineStart;
    if (lineStart) t.frameLine = b === FIRST_MARKER || b === CONTINUATION_MARKER;
    t.atLineStart = b === 10;
    const flips = c.bitsFlipped;
    const drops = c.bytesDropped;
    const dups = c.bytesDuplicated;
    const o = n.apply(data.subarray(i, i + 1));
    const lostOrFlipped = c.bitsFlipped !== flips || c.bytesDropped !== drops;
    const doubled = c.bytesDuplicated !== dups;
    if (lostOrFlipped || doubled) {
      t.changed++;
      if (t.frameLine && ((lostOrFlipped && !lineStart) || (doubled && b !== 10))) t.detectable++;
    }
    for (const x of o) out.push(x);
  }
  return Uint8Array.from(out);
}

interface HealthPoint {
  rx: number;
  errorCount: number;
  chargerFaults: number;
  powerAlarms: number;
  peripheralFaults: number;
  soh: number;
  clockMs: number;
  backlog: number;
  chargeMode: number;
  /** The device's monotonic clock when it sampled (the FastClock's time: Health.uptime_s). */
  uptimeMs: number;
}

export interface Dev {
  index: number;
  serial: string;
  fd: FleetDevice;
  link: DeviceLink;
  mode: number;
  /** Sequence numbers Journal.append returned (durable records the console must get). */
  journalled: Set<number>;
  /** Seqs stored at the console (from ingest events; the audit reads the store). */
  stored: Set<number>;
  health: HealthPoint[];
  statusEvents: { online: boolean; at: number }[];
  /** Session error counts seen at the agent, over every session of this device. */
  sess: { frame: number; decode: number; device: number; journalFull: number };
  /** The last session errors seen at the agent (for failure reports). */
  sessLog: string[];
  /** Assigned to a device fault: no other device fault is put on it. */
  reserved: string | null;
  aged: boolean;
  tiny: boolean;
  armed: boolean;
  down: boolean;
  unplugged: boolean;
  /** Traffic generator and filler pause while set. */
  busy: boolean;
  cuts: number;
  /** Shutdowns on a flat cell (LOW_BATTERY reboots kept off). */
  flatShutdowns: number;
  refused: number;
  nextTraffic: number;
  sent: number;
}

export interface FaultCase {
  id: FaultId;
  target: string;
  atMs: number;
  detail: string;
  /** Evaluated at the audit: did the fault do something, and did the system report it? */
  check: () => { exercised: boolean; reported: boolean; evidence: string };
}

export interface FaultTally {
  injected: number;
  exercised: number;
  reported: number;
}

export interface AuditCounts {
  devices: number;
  agents: number;
  journalled: number;
  stored: number;
  lost: number;
  unexpected: number;
  duplicatedStored: number;
  chainBreaks: number;
  skippedSeqs: number;
  duplicateDeliveriesDropped: number;
  quarantined: number;
  quarantineReasons: Record<string, number>;
  health: number;
  faults: Record<string, FaultTally>;
  faultsInjected: number;
  faultsExercised: number;
  faultsReported: number;
  unreported: string[];
  lostSample: string[];
  flatShutdowns: number;
}

export class FleetHarness implements FaultHarness {
  readonly o: FleetHarnessOptions;
  readonly devs: Dev[] = [];
  readonly faults: FaultCase[] = [];
  readonly rnd: () => number;
  /** Result devices' clock (fast) and verification devices' clock. */
  clock!: FastClock;
  vvdClock!: FastClock;
  fleet!: Fleet;
  ops!: RunningOps;
  broker!: EmbeddedBroker;
  proxy!: TcpProxy;
  private dir = "";
  private brokerPort = 0;
  private commission!: P256Key;
  private tech!: { key: P256Key; token: Uint8Array };
  private readonly bySerial = new Map<string, Dev>();
  private readonly sessions = new Map<DeviceSession, Dev>();
  private readonly agentEvents: { agentId: string; state: string; at: number }[] = [];
  private opsConnects: number[] = [];
  private trafficTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private readonly pendingTimers = new Set<NodeJS.Timeout>();
  private maxOutboxPending = 0;
  private stopped = false;
  /** Unexpected errors thrown out of device code (not power cuts). */
  readonly deviceErrors: string[] = [];

  constructor(options: FleetHarnessOptions) {
    this.o = options;
    this.rnd = seededRandom(options.seed);
  }

  private log(s: string): void {
    this.o.log?.(s);
  }

  // ----------------------------------------------------------------------------------------------
  // Setup

  /** Builds everything; devices are not powered yet (setup-time faults go between build and start). */
  async build(): Promise<void> {
    const o = this.o;
    this.dir = mkdtempSync(join(tmpdir(), "pollkit-reliability-"));
    this.broker = await startEmbeddedBroker({ port: 0, dataDir: join(this.dir, "broker") });
    this.brokerPort = this.broker.port;
    this.proxy = await startTcpProxy({ targetPort: this.brokerPort });
    this.ops = await startOps(
      parseOpsConfig(
        {
          mqtt: { url: this.broker.url },
          store: { path: join(this.dir, "ops.sqlite") },
          web: { host: "127.0.0.1", port: 0 },
          reports: { everyMs: HOUR_MS, outDir: join(this.dir, "reports") },
          healthIntervalMs: o.healthEveryRealMs,
          ...o.opsConfig,
        },
        this.dir,
      ),
    );
    this.watchConsole();
    this.commission = o.commission ?? createCommissionKey();
    const key = technicianKey();
    const now = Date.now();
    this.tech = {
      key,
      token: issueToken({ technicianId: "tech-reliability", site: "*", notBefore: now - HOUR_MS, expires: now + 3650 * 24 * HOUR_MS, technicianPublicKey: key.publicKey }, this.commission),
    };
    this.clock = new FastClock(1, (fn) => this.guard(fn));
    this.vvdClock = new FastClock(1, (fn) => this.guard(fn));
    // Fleet's own devices are placeholders (smallest parts): each slot is refitted below.
    this.fleet = new Fleet({
      devices: o.devices,
      agents: o.agents,
      brokerUrl: this.proxy.url,
      dir: this.dir,
      sitePrefix: o.sitePrefix ?? "WH",
      deviceOptions: { flashPages: 2, flashPageSize: 256, dataFlashPages: 0, power: false },
    });
    const order = this.fleet.devices.map((_, i) => i);
    shuffle(order, this.rnd);
    // Aged cells on result devices (their clock is fast enough for a state-of-health estimate).
    const aged = new Set(order.filter((i) => this.fleet.devices[i].role === "result").slice(0, o.agedCells));
    const tiny = new Set(order.filter((i) => !aged.has(i)).slice(0, o.tinyJournals));
    this.fleet.devices.forEach((fd, i) => {
      const link = new DeviceLink(fd.device.options.hostLink, (fn) => this.enter(this.devs[i], fn));
      const mode = aged.has(i) || tiny.has(i) || this.rnd() >= o.maintainShare ? ChargeMode.STORAGE : ChargeMode.MAINTAIN;
      const d: Dev = {
        index: i,
        serial: fd.serial,
        fd,
        link,
        mode,
        journalled: new Set(),
        stored: new Set(),
        health: [],
        statusEvents: [],
        sess: { frame: 0, decode: 0, device: 0, journalFull: 0 },
        sessLog: [],
        reserved: aged.has(i) ? "battery-ageing" : tiny.has(i) ? "full-flash" : null,
        aged: false,
        tiny: tiny.has(i),
        armed: false,
        down: false,
        unplugged: false,
        busy: false,
        cuts: 0,
        flatShutdowns: 0,
        refused: 0,
        nextTraffic: 0,
        sent: 0,
      };
      this.devs.push(d);
      this.bySerial.set(d.serial, d);
      this.refit(d, {});
    });
  }

  /** Puts a freshly built device (same link, same agent) in the slot, with `extra` options. */
  private refit(d: Dev, extra: Partial<SimDeviceOptions>): void {
    const o = this.o;
    // Most cells sit in the storage window; a few below it (they get topped up).
    const soc = this.rnd() < 0.15 ? 30 + this.rnd() * 6 : 45 + this.rnd() * 12;
    const speed = this.speedOf(d);
    const options: SimDeviceOptions = {
      serial: d.serial,
      role: d.fd.role,
      hostLink: d.link,
      clock: this.clockOf(d),
      wallMs: Date.now(),
      flashPages: d.tiny ? 4 : 16,
      flashPageSize: d.tiny ? 1024 : 4096,
      dataFlashPages: 16,
      dataFlashPageSize: 1024,
      healthIntervalMs: speed * o.healthEveryRealMs,
      linkResendMs: speed * o.resendRealMs,
      commissionKey: this.commission.publicKey,
      power: { battery: { capacityMah: 3000, socPercent: soc, temperatureC: 25 }, vbus: true },
      ...extra,
    };
    const sd = o.makeDevice ? o.makeDevice(options) : new SimDevice(options);
    // Every boot, also those the firmware asks for itself (reboot, low battery), gets its journal
    // wrapped before its first record.
    const powerOn = sd.powerOn.bind(sd);
    sd.powerOn = (reason?: number, cb?: () => void): void => {
      if (reason === RebootReason.LOW_BATTERY) {
        // The firmware shut down on a flat cell, and input power came back (SimDevice stays off
        // until it does): the harness keeps it off and counts it, since no scenario here means
        // to run a cell flat; the drain boots it again.
        d.flatShutdowns++;
        d.down = true;
        this.unplugDev(d);
        return;
      }
      powerOn(reason, cb);
      this.wrapJournal(d, sd);
    };
    d.fd.device = sd;
  }

  private readonly wrapped = new WeakSet<object>();

  /**
   * Logs every sequence number Journal.append returns for this firmware instance. What the boot
   * itself journalled before this (start() runs inside powerOn), and a record that reached flash
   * whole although its append was cut short, are in the journal: its own view adds them.
   */
  private wrapJournal(d: Dev, sd: SimDevice): void {
    const j = sd.firmware?.journal;
    if (!j || this.wrapped.has(j)) return;
    this.wrapped.add(j);
    for (let seq = j.firstSeq(); seq < j.nextSeq(); seq++) if (j.read(seq) !== null) d.journalled.add(seq);
    const append = j.append.bind(j);
    j.append = (encode) => {
      const seq = append(encode);
      if (seq > 0) d.journalled.add(seq);
      return seq;
    };
  }

  clockOf(d: Dev): FastClock {
    return d.fd.role === "result" ? this.clock : this.vvdClock;
  }

  speedOf(d: Dev): number {
    return d.fd.role === "result" ? this.o.speed : this.o.vvdSpeed;
  }

  /** Code from outside enters a device: its clock catches up first (due timers run, in order). */
  enter(d: Dev, fn: () => void): void {
    this.clockOf(d).sync();
    this.guard(fn);
  }

  /** Runs device code; a power cut thrown out of it stops that device there. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof PowerCut) {
        this.powerLost();
        return;
      }
      this.deviceErrors.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
      this.log(`device code threw: ${String(e)}`);
    }
  }

  private powerLost(): void {
    for (const d of this.devs) {
      const sd = d.fd.device;
      if (d.armed && sd.flash.powerLost && sd.running) this.cutPower(d);
    }
  }

  private boot(d: Dev, reason: number): void {
    const sd = d.fd.device;
    this.enter(d, () => sd.powerOn(reason));
  }

  /** Powers every device, registers the keys at the console, plugs everything in, sets charge modes. */
  async start(): Promise<void> {
    const t0 = performance.now();
    for (const d of this.devs) this.boot(d, RebootReason.POWER_ON);
    await until(
      () => this.devs.every((d) => d.fd.device.firmware?.started === true),
      60_000,
      () => `every device booted (${this.devs.filter((d) => d.fd.device.firmware?.started).length}/${this.devs.length})`,
    );
    this.ops.store.upsertDevices(
      this.devs.map((d) => ({
        deviceId: d.serial,
        publicKeyHex: Buffer.from(d.fd.device.firmware!.publicKey).toString("hex"),
        role: d.fd.role,
        governorate: `G${(this.fleet.agents.indexOf(d.fd.agent) % 5) + 1}`,
        office: `O${this.fleet.agents.indexOf(d.fd.agent)}`,
        stationId: this.o.stationOf?.(d.fd.role, d.index) ?? "",
        site: d.fd.site,
      })),
    );
    this.ops.ingest.reloadRegistry();
    for (const a of this.fleet.agents) a.start();
    for (const d of this.devs) this.fleet.plug(d.fd);
    this.watchTimer = setInterval(() => this.watchSessions(), 100);
    await until(
      () => this.devs.every((d) => d.stored.has(1) && d.fd.agent.session(d.serial)?.state === "ready"),
      60_000,
      () => `a boot record and a session of every device (${this.devs.filter((d) => d.stored.has(1)).length}/${this.devs.length})`,
    );
    // The technician puts the warehouse stock in storage (some in maintain) mode: signed commands.
    let issued = Date.now();
    await Promise.all(
      this.devs.map(async (d) => {
        if (this.o.setChargeModes === false) return;
        const session = d.fd.agent.session(d.serial)!;
        const cmd: Command = { id: signedCommandId(), setChargeMode: { mode: d.mode } };
        const signed = authorize(cmd, d.serial, this.tech.token, this.tech.key, ++issued);
        const r = await session.command(signed as unknown as Record<string, unknown>, 20_000);
        if (r.status !== Status.OK) throw new Error(`${d.serial}: set charge mode ${d.mode}: status ${r.status} ${r.message}`);
      }),
    );
    const modes = this.o.setChargeModes === false ? "" : ", in storage/maintain mode";
    this.log(`${this.devs.length} devices up, registered${modes} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    this.clock.setSpeed(this.o.speed);
    this.vvdClock.setSpeed(this.o.vvdSpeed);
  }

  // ----------------------------------------------------------------------------------------------
  // Observation

  private watchConsole(): void {
    const ingest = this.ops.ingest;
    ingest.on("records", (rs) => {
      for (const r of rs) this.bySerial.get(r.deviceId)?.stored.add(r.seq);
    });
    ingest.on("health", (samples) => {
      for (const s of samples) {
        const d = this.bySerial.get(s.deviceId);
        if (!d) continue;
        const h = s.health;
        d.health.push({
          rx: s.receivedMs,
          errorCount: h.errorCount ?? 0,
          chargerFaults: h.chargerFaults ?? 0,
          powerAlarms: h.powerAlarms ?? 0,
          peripheralFaults: h.peripheralFaults ?? 0,
          soh: h.stateOfHealthPermille ?? 0,
          clockMs: h.clockMs ?? 0,
          backlog: h.journalBacklog ?? 0,
          chargeMode: h.chargeMode ?? 0,
          uptimeMs: (h.uptimeS ?? 0) * 1000,
        });
      }
    });
    ingest.on("device", (e) => this.bySerial.get(e.deviceId)?.statusEvents.push({ online: e.online, at: Date.now() }));
    ingest.on("agent", (a) => this.agentEvents.push({ agentId: a.agentId, state: a.state, at: Date.now() }));
    ingest.on("connected", () => this.opsConnects.push(Date.now()));
  }

  /** Follows every agent session of every device: its error events, by kind. */
  private watchSessions(): void {
    for (const d of this.devs) {
      const s = d.fd.agent.session(d.serial);
      if (!s || this.sessions.has(s)) continue;
      this.sessions.set(s, d);
      // Errors before we saw the session are in its counters.
      const c = s.info().counters;
      d.sess.frame += c.frameErrors;
      d.sess.decode += c.decodeErrors;
      d.sess.device += c.deviceErrors;
      s.on("error", (e: SessionError) => {
        d.sessLog.push(`${new Date().toISOString().slice(11, 23)} ${e.kind} ${e.code}: ${e.detail}`);
        if (d.sessLog.length > 12) d.sessLog.shift();
        if (e.kind === "frame") d.sess.frame++;
        else if (e.kind === "decode") d.sess.decode++;
        else if (e.kind === "device") {
          d.sess.device++;
          if (e.code === ErrorCode.JOURNAL_FULL) d.sess.journalFull++;
        }
      });
    }
    for (const a of this.fleet.agents) this.maxOutboxPending = Math.max(this.maxOutboxPending, a.outbox.stats().pending);
  }

  private sessionErrors(d: Dev): number {
    return d.sess.frame + d.sess.decode + d.sess.device;
  }

  private maxErrorCount(d: Dev, afterRx: number): number {
    let m = 0;
    for (const h of d.health) if (h.rx >= afterRx) m = Math.max(m, h.errorCount);
    return m;
  }

  /** The console's stored records of a device (optionally one kind), in seq order. */
  storedRecords(d: Dev, kind?: number): StoredRecord[] {
    return this.ops.store.records({ deviceId: d.serial, kind, limit: 10_000_000 });
  }

  private alarmRecords(d: Dev, kind: number, afterSeq: number): number {
    let n = 0;
    for (const r of this.storedRecords(d, RecordKind.POWER_ALARM)) {
      if (r.seq <= afterSeq) continue;
      const p = recordPayload(r.bytes);
      const a = p.ok ? decodeAlarm(p.value) : null;
      if (a?.ok && a.value.kind === kind && a.value.active) n++;
    }
    return n;
  }

  // ----------------------------------------------------------------------------------------------
  // Traffic

  /** Journals one TEST record on a running device; cb gets the seq or a negative code. */
  record(d: Dev, cb?: (seq: number) => void): boolean {
    const fw = d.fd.device.firmware;
    if (!fw || !fw.started) return false;
    d.sent++;
    const payload = new TextEncoder().encode(`inventory ${d.serial} #${d.sent}`);
    this.enter(d, () => fw.record(RecordKind.TEST, payload, cb));
    return true;
  }

  startTraffic(): void {
    const [lo, hi] = this.o.trafficRealMs;
    const now = Date.now();
    for (const d of this.devs) d.nextTraffic = now + this.rnd() * hi;
    this.trafficTimer = setInterval(() => {
      const t = Date.now();
      for (const d of this.devs) {
        if (d.busy || d.down || t < d.nextTraffic) continue;
        d.nextTraffic = t + lo + this.rnd() * (hi - lo);
        this.record(d);
      }
    }, 25);
  }

  stopTraffic(): void {
    if (this.trafficTimer) clearInterval(this.trafficTimer);
    this.trafficTimer = null;
  }

  // ----------------------------------------------------------------------------------------------
  // Targets

  dev(serial: string): Dev {
    const d = this.bySerial.get(serial);
    if (!d) throw new Error(`no device ${serial}`);
    return d;
  }

  /** Reserves a free device for a device fault (none gets two), optionally of one mode or role. */
  pick(fault: string, filter?: (d: Dev) => boolean): Dev {
    const free = this.devs.filter((d) => d.reserved === null && (!filter || filter(d)));
    if (free.length === 0) throw new Error(`no free device left for ${fault}`);
    const d = free[Math.floor(this.rnd() * free.length)];
    d.reserved = fault;
    return d;
  }

  /** The devices built for a setup-time fault (aged cells, tiny journals). */
  reservedFor(fault: string): Dev[] {
    return this.devs.filter((d) => d.reserved === fault);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.pendingTimers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.pendingTimers.add(t);
  }

  private unplugDev(d: Dev): void {
    d.unplugged = true;
    this.fleet.unplug(d.fd);
  }

  private plugDev(d: Dev): void {
    d.unplugged = false;
    this.fleet.plug(d.fd);
  }

  // ----------------------------------------------------------------------------------------------
  // FaultHarness: the catalogue's actions

  async lineNoise(serial: string, o: { bitErrorRate?: number; dropRate?: number; duplicateRate?: number; forMs: number }): Promise<void> {
    const d = this.dev(serial);
    const id: FaultId = o.bitErrorRate ? "line-noise" : o.dropRate ? "dropped-bytes" : "duplicated-bytes";
    const seed = 1 + Math.floor(this.rnd() * 1e9);
    const at = Date.now();
    const base = { sess: this.sessionErrors(d), dev: this.maxErrorCount(d, 0) };
    d.link.toHost.noise = new LineNoise({ ...o, seed });
    d.link.toDevice.noise = new LineNoise({ ...o, seed: seed + 1 });
    this.faults.push({
      id,
      target: serial,
      atMs: at,
      detail: JSON.stringify(o),
      check: () => {
        const detectable = d.link.toHost.detectable + d.link.toDevice.detectable;
        const sess = this.sessionErrors(d) - base.sess;
        const dev = this.maxErrorCount(d, at) - base.dev;
        return {
          exercised: detectable > 0,
          reported: sess > 0 || dev > 0,
          evidence: `bytes changed ${d.link.toHost.changed}+${d.link.toDevice.changed} (detectable ${detectable}); agent session errors +${sess}; device Health.error_count +${dev}`,
        };
      },
    });
    // Traffic on the noisy line while it lasts: the noise must have frames to hit.
    const busy = setInterval(() => {
      for (let i = 0; i < 4; i++) this.record(d);
    }, 20);
    await sleep(o.forMs);
    clearInterval(busy);
    d.link.toHost.noise = null;
    d.link.toDevice.noise = null;
  }

  async unplug(serial: string, forMs: number): Promise<void> {
    const d = this.dev(serial);
    // The console learns of it from the agent's status messages: pull the cable while the agent
    // is connected (an unplug and replug within a network outage leaves only "online" to say).
    await until(() => d.fd.agent.bridge.stats().connected, 60_000, () => `${serial}'s agent connected to the broker`);
    const at = Date.now();
    // Mid-transfer: a burst journalled and on its way when the cable goes.
    for (let i = 0; i < 12; i++) this.record(d);
    const backlog = d.fd.device.firmware?.journal.backlog() ?? 0;
    this.unplugDev(d);
    this.faults.push({
      id: "unplug-mid-transfer",
      target: serial,
      atMs: at,
      detail: `unplugged for ${forMs} ms with ${backlog} records unacknowledged`,
      check: () => {
        const off = d.statusEvents.find((e) => !e.online && e.at >= at);
        const on = off ? d.statusEvents.find((e) => e.online && e.at >= off.at) : undefined;
        return { exercised: backlog > 0, reported: !!off && !!on, evidence: `console: offline ${off ? "seen" : "not seen"}, online again ${on ? "seen" : "not seen"}; backlog at unplug ${backlog}` };
      },
    });
    await sleep(forMs);
    this.plugDev(d);
  }

  powerCut(serial: string, afterFlashWrites: number): void {
    const d = this.dev(serial);
    const sd = d.fd.device;
    const at = Date.now();
    const bootId = sd.firmware?.bootId ?? 0;
    d.armed = true;
    sd.flash.armPowerCut(afterFlashWrites, 1 + Math.floor(this.rnd() * 1e6));
    this.faults.push({
      id: "device-power-cut",
      target: serial,
      atMs: at,
      detail: `cut after ${afterFlashWrites} flash steps`,
      check: () => {
        const boots = this.storedRecords(d, RecordKind.BOOT).map((r) => {
          const p = recordPayload(r.bytes);
          return p.ok ? decodeBootInfo(p.value) : null;
        });
        const after = boots.find((b) => b !== null && b.reason === RebootReason.BROWN_OUT && (b.bootId ?? 0) !== bootId);
        const cut = sd.flash.lastCut;
        const modes = [...new Set(d.health.filter((h) => h.rx > at).map((h) => h.chargeMode))].join("/");
        const parts = d.health.filter((h) => h.rx > at).reduce((b, h) => b | h.peripheralFaults, 0);
        return {
          exercised: d.cuts > 0,
          reported: after !== undefined,
          evidence: `cuts ${d.cuts}${cut ? ` (${cut.kind} page ${cut.page} offset ${cut.offset})` : ""}; BOOT BROWN_OUT with a new boot id at the console: ${after ? "yes" : "no"}; charge mode ${d.mode} before, ${modes || "none"} reported after; peripheral_faults after 0x${parts.toString(16)}`,
        };
      },
    });
  }

  private cutPower(d: Dev): void {
    const sd = d.fd.device;
    d.armed = false;
    d.down = true;
    d.cuts++;
    sd.powerOff();
    // The MCU's USB goes with it.
    this.unplugDev(d);
    const offMs = 200 + Math.floor(this.rnd() * 800);
    this.later(offMs, () => {
      sd.flash.restorePower();
      this.boot(d, RebootReason.BROWN_OUT);
      d.down = false;
      this.plugDev(d);
    });
  }

  async restartBroker(): Promise<void> {
    const at = Date.now();
    // Agents may publish before the console is back: the console's persistent session on the
    // broker's data directory queues it for the console.
    await this.broker.close();
    await sleep(500);
    this.broker = await startEmbeddedBroker({ port: this.brokerPort, dataDir: join(this.dir, "broker") });
    const agents = this.fleet.agents.map((a) => a.config.agentId);
    this.faults.push({
      id: "broker-restart",
      target: "broker",
      atMs: at,
      detail: "restarted",
      check: () => {
        const back = agents.filter((id) => this.agentEvents.some((e) => e.agentId === id && e.state === "online" && e.at > at));
        const console = this.opsConnects.some((t) => t > at);
        return { exercised: true, reported: back.length === agents.length && console, evidence: `agents online again at the console ${back.length}/${agents.length}; console resubscribed ${console}` };
      },
    });
  }

  async partition(forMs: number): Promise<void> {
    const mode: PartitionMode = forMs > 10_000 ? "blackhole" : "refuse";
    const at = Date.now();
    const agents = this.fleet.agents.map((a) => a.config.agentId);
    this.proxy.partition(mode);
    let backlog = 0;
    const watch = setInterval(() => {
      for (const a of this.fleet.agents) backlog = Math.max(backlog, a.outbox.stats().pending);
    }, 100);
    await sleep(forMs);
    const healed = Date.now();
    this.proxy.heal();
    clearInterval(watch);
    this.faults.push({
      id: "network-partition",
      target: "agents",
      atMs: at,
      detail: `${mode} for ${forMs} ms`,
      check: () => {
        const off = agents.filter((id) => this.agentEvents.some((e) => e.agentId === id && e.state === "offline" && e.at >= at && e.at <= healed + 1000));
        const on = agents.filter((id) => this.agentEvents.some((e) => e.agentId === id && e.state === "online" && e.at > healed));
        return {
          exercised: true,
          reported: off.length === agents.length && on.length === agents.length,
          evidence: `agents offline at the console (will) ${off.length}/${agents.length}, online after healing ${on.length}/${agents.length}; largest outbox backlog ${backlog}`,
        };
      },
    });
  }

  skewClock(serial: string, byMs: number): void {
    const d = this.dev(serial);
    const sd = d.fd.device;
    const at = Date.now();
    this.clockOf(d).sync();
    const wall0 = sd.wallMs();
    const dev0 = this.clockOf(d).now();
    this.enter(d, () => sd.platform?.clock.setWallMs(wall0 + byMs));
    // Health samples carry the device's wall clock and its monotonic time (uptime_s, whole
    // seconds): against the unskewed clock at that moment they show the skew.
    const tolerance = 5000;
    this.faults.push({
      id: "clock-skew",
      target: serial,
      atMs: at,
      detail: `${byMs / HOUR_MS} h`,
      check: () => {
        const after = d.health.filter((h) => h.rx > at + 50);
        const offset = (h: HealthPoint): number => h.clockMs - (wall0 + (h.uptimeMs - dev0));
        const shows = after.filter((h) => Math.abs(offset(h) - byMs) < tolerance);
        const last = after[after.length - 1];
        const lastOffset = last ? Math.round(offset(last) / 60_000) : null;
        return {
          exercised: true,
          reported: shows.length > 0,
          evidence: `health samples after the skew ${after.length}, showing it ${shows.length}; offset in the last one ${lastOffset} min (not corrected by time sync: ${lastOffset !== null && Math.abs(lastOffset * 60_000 - byMs) < tolerance})`,
        };
      },
    });
  }

  async fillFlash(serial: string): Promise<void> {
    const d = this.dev(serial);
    const at = Date.now();
    d.busy = true;
    // The host goes away; the device keeps journalling until its journal refuses.
    this.unplugDev(d);
    await sleep(20);
    let accepted = 0;
    let refusedAway = 0;
    for (let i = 0; i < 5000 && refusedAway < 3; i++) {
      const seq = await new Promise<number>((resolve) => {
        if (!this.record(d, resolve)) resolve(0);
      });
      if (seq > 0) accepted++;
      else if (seq === -1) refusedAway++;
      else break;
    }
    d.refused += refusedAway;
    const backlog = d.fd.device.firmware?.journal.backlog() ?? 0;
    // The host is back: the first record it sees refused is said on the live link.
    this.plugDev(d);
    let refusedLive = 0;
    this.record(d, (seq) => {
      if (seq === -1) refusedLive++;
    });
    d.refused += refusedLive;
    d.busy = false;
    this.faults.push({
      id: "full-flash",
      target: serial,
      atMs: at,
      detail: `${accepted} records journalled while the host was away, then ${refusedAway} refused; ${refusedLive} refused with the host back`,
      check: () => {
        const logLine = this.ops.ingest.logTail(serial).some((l) => l.includes("journal full"));
        const errs = this.maxErrorCount(d, at);
        const backlogSeen = Math.max(0, ...d.health.filter((h) => h.rx >= at).map((h) => h.backlog));
        return {
          exercised: refusedAway > 0,
          // The device said so: JOURNAL_FULL on the link (agent), its log line and error count at
          // the console; what it accepted is checked record by record like every other record.
          reported: (d.sess.journalFull > 0 || d.sess.device > 0) && logLine && errs >= d.refused,
          evidence: `refusals ${d.refused} (${refusedLive} with the host back); agent JOURNAL_FULL errors ${d.sess.journalFull}; "journal full" in the console's log of the device ${logLine}; Health.error_count ${errs}; journal backlog at reconnect ${backlog}, highest reported ${backlogSeen}`,
        };
      },
    });
  }

  failSensor(serial: string, part: "gauge" | "fingerprint" | "card-reader"): void {
    const d = this.dev(serial);
    const sd = d.fd.device;
    const at = Date.now();
    const seq0 = (sd.firmware?.journal.nextSeq() ?? 1) - 1;
    if (part === "gauge") sd.bus.setConnected(MAX17048_DEFAULT_ADDRESS, false);
    else if (part === "card-reader") {
      if (!sd.cardReader) throw new Error(`${serial} has no card reader`);
      sd.bus.setConnected(PN532_I2C_ADDRESS, false);
    } else {
      if (!sd.fingerprint) throw new Error(`${serial} has no fingerprint module`);
      sd.fingerprint.setConnected(false);
    }
    this.faults.push({
      id: "sensor-failure",
      target: serial,
      atMs: at,
      detail: part,
      check: () => {
        if (part === "gauge") {
          const recs = this.alarmRecords(d, PowerAlarmKind.GAUGE_FAULT, seq0);
          const bit = d.health.some((h) => h.rx > at && (h.powerAlarms & (1 << PowerAlarmKind.GAUGE_FAULT)) !== 0);
          return { exercised: true, reported: recs > 0 && bit, evidence: `PowerAlarm GAUGE_FAULT records ${recs}; Health.power_alarms bit ${bit}` };
        }
        const bit = part === "card-reader" ? 6 : 5; // Peripheral.CARD_READER / FINGERPRINT
        const seen = d.health.some((h) => h.rx > at && (h.peripheralFaults & (1 << bit)) !== 0);
        return { exercised: true, reported: seen, evidence: `Health.peripheral_faults bit ${bit}: ${seen}` };
      },
    });
  }

  failCharger(serial: string, kind: "input" | "thermal" | "safety-timer" | "ntc"): void {
    const d = this.dev(serial);
    const sd = d.fd.device;
    if (!sd.power) throw new Error(`${serial} has no charger`);
    const at = Date.now();
    const seq0 = (sd.firmware?.journal.nextSeq() ?? 1) - 1;
    const fault: Bq25895Fault = kind === "ntc" ? "ntc-open" : kind;
    sd.power.charger.injectFault(fault);
    this.later(this.o.chargerFaultRealMs, () => sd.power?.charger.injectFault(fault, false));
    this.faults.push({
      id: "charger-failure",
      target: serial,
      atMs: at,
      detail: `${fault} for ${this.o.chargerFaultRealMs} ms`,
      check: () => {
        const recs = this.alarmRecords(d, PowerAlarmKind.CHARGER_FAULT, seq0);
        const bits = d.health.filter((h) => h.rx > at).reduce((b, h) => b | h.chargerFaults, 0);
        return { exercised: true, reported: recs > 0 && bits !== 0, evidence: `PowerAlarm CHARGER_FAULT records ${recs}; Health.charger_faults 0x${bits.toString(16)}` };
      },
    });
  }

  /** Before start only: the device is rebuilt with a cell that has lived `years` and `cycles`. */
  ageBattery(serial: string, o: { years: number; cycles: number }): void {
    const d = this.dev(serial);
    if (d.fd.device.running) throw new Error("a cell's age is fixed when the device is built: age it before start()");
    d.aged = true;
    d.mode = ChargeMode.STORAGE;
    this.refit(d, { power: { battery: { capacityMah: 3000, socPercent: 10, temperatureC: 25, ageDays: o.years * 365, cycles: o.cycles }, vbus: true } });
    this.faults.push({
      id: "battery-ageing",
      target: serial,
      atMs: Date.now(),
      detail: `${o.years} years, ${o.cycles} cycles`,
      check: () => {
        const truth = d.fd.device.power?.battery.stateOfHealth ?? 1;
        const recs = this.alarmRecords(d, PowerAlarmKind.AGEING_CELL, 0);
        const soh = d.health.map((h) => h.soh).filter((s) => s > 0);
        const low = soh.some((s) => s < 800);
        return { exercised: truth < 0.8, reported: recs > 0 && low, evidence: `true state of health ${Math.round(truth * 1000)}‰; AGEING_CELL records ${recs}; reported state of health ${soh.length ? soh[soh.length - 1] : "none"}‰` };
      },
    });
  }

  // ----------------------------------------------------------------------------------------------
  // Drain and count

  /** Undoes what is still in force on the links and the network, then waits for every record. */
  async drain(timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    this.stopTraffic();
    this.proxy.heal();
    for (const d of this.devs) {
      d.link.toHost.noise = null;
      d.link.toDevice.noise = null;
      if (d.armed) {
        // A cut that never fired (the device wrote nothing since): disarm it.
        d.fd.device.flash.disarmPowerCut();
        d.armed = false;
      }
    }
    for (const d of this.devs) {
      if (d.flatShutdowns > 0 && d.down && !d.fd.device.running) {
        this.boot(d, RebootReason.POWER_ON);
        d.down = false;
      }
    }
    await until(() => this.devs.every((d) => !d.down), 10_000, () => "devices back from their power cuts");
    for (const d of this.devs) if (d.unplugged && !d.busy) this.plugDev(d);
    // Devices keep journalling (alarms, boots) while the drain runs: the records that count are
    // those journalled when every one of them had reached the console, or at the timeout.
    const missing = (): number => this.devs.reduce((n, d) => n + [...d.journalled].filter((s) => !d.stored.has(s)).length, 0);
    try {
      await until(() => missing() === 0, timeoutMs, () => `every journalled record at the console (${missing()} missing)`);
    } catch (e) {
      this.log(String(e));
    }
    for (const d of this.devs) this.expected.set(d, new Set(d.journalled));
    await this.ops.ingest.drain();
    return Date.now() - t0;
  }

  /** Per device, the records that must be at the console (set by drain()). */
  private readonly expected = new Map<Dev, Set<number>>();

  /** Counts, per the console's store: lost, doubled, unexpected records; faults reported. */
  async audit(): Promise<AuditCounts> {
    let journalled = 0;
    let stored = 0;
    let lost = 0;
    let unexpected = 0;
    let duplicatedStored = 0;
    let chainBreaks = 0;
    let skipped = 0;
    const lostSample: string[] = [];
    for (const d of this.devs) {
      const rows = this.storedRecords(d);
      const seqs = new Set(rows.map((r) => r.seq));
      const expected = this.expected.get(d) ?? d.journalled;
      duplicatedStored += rows.length - seqs.size;
      stored += rows.length;
      journalled += expected.size;
      for (const s of expected) {
        if (!seqs.has(s)) {
          lost++;
          if (lostSample.length < 10) lostSample.push(`${d.serial}#${s} ${this.whereIs(d, s)}`);
        }
      }
      // (Stored records journalled after the drain's count are not unexpected.)
      for (const s of seqs) if (!d.journalled.has(s)) unexpected++;
      for (const r of rows) if (r.prevSeq !== 0 && !seqs.has(r.prevSeq)) chainBreaks++;
      const top = Math.max(0, ...expected);
      let below = 0;
      for (const x of expected) if (x <= top) below++;
      skipped += top - below;
    }
    const faults: Record<string, FaultTally> = {};
    const unreported: string[] = [];
    let ex = 0;
    let rep = 0;
    for (const f of this.faults) {
      const c = f.check();
      const t = (faults[f.id] ??= { injected: 0, exercised: 0, reported: 0 });
      t.injected++;
      if (c.exercised) {
        t.exercised++;
        ex++;
        if (c.reported) {
          t.reported++;
          rep++;
        } else unreported.push(`${f.id} ${f.target} (${f.detail}): ${c.evidence}`);
      }
      this.log(`fault ${f.id} ${f.target} ${f.detail}: ${c.exercised ? (c.reported ? "reported" : "NOT REPORTED") : "not exercised"}; ${c.evidence}`);
    }
    const q = this.ops.store.quarantineCounts();
    return {
      devices: this.devs.length,
      agents: this.fleet.agents.length,
      journalled,
      stored,
      lost,
      unexpected,
      duplicatedStored,
      chainBreaks,
      skippedSeqs: skipped,
      duplicateDeliveriesDropped: this.ops.ingest.stats().duplicates,
      quarantined: Object.values(q).reduce((a, b) => a + b, 0),
      quarantineReasons: q,
      health: this.ops.ingest.stats().healthStored,
      faults,
      faultsInjected: this.faults.length,
      faultsExercised: ex,
      faultsReported: rep,
      unreported,
      lostSample,
      flatShutdowns: this.devs.reduce((n, d) => n + d.flatShutdowns, 0),
    };
  }

  /** Where a record the console lacks still is: the device's journal, the agent's outbox. */
  private whereIs(d: Dev, seq: number): string {
    const j = d.fd.device.firmware?.journal;
    const inJournal = j ? (j.read(seq) !== null ? "in the journal" : "not in the journal") : "device off";
    const acked = j ? `acked to ${j.ackedSeq()}` : "";
    const outbox = d.fd.agent.outbox.highestSeq(d.serial);
    const link = d.fd.device.firmware?.link;
    const s = d.fd.agent.session(d.serial)?.info();
    const linkState = link ? `device link ${link.inSession() ? "in session" : "no session"}, frames in ${link.framesIn} out ${link.framesOut}, resends ${link.resends}` : "no device link";
    const c = s?.counters;
    const hostState = s && c ? `agent session ${s.state}, acked ${s.ackedSeq}, records ${c.records}, frames in ${c.framesIn} out ${c.framesOut}, errors ${c.errors}` : "no agent session";
    const console = `console store ${this.ops.store.recordBytes(d.serial, seq) !== null ? "has it" : "lacks it"}, ingest event ${d.stored.has(seq) ? "seen" : "not seen"}`;
    const errs = d.sessLog.length > 0 ? `; agent session errors: ${d.sessLog.join(" / ")}` : "";
    return `(${console}, ${inJournal}, ${acked}, agent outbox highest ${outbox}, boots ${d.fd.device.boots}, cuts ${d.cuts}, ${linkState}, ${hostState}, plugged ${!d.unplugged}${errs})`;
  }

  /** The console's alerts (GET /api/alerts), for evidence. */
  async alerts(): Promise<{ deviceId: string; kind: string }[]> {
    const res = await fetch(`${this.ops.url}/api/alerts?limit=100000`);
    const body = (await res.json()) as { alerts: { deviceId: string; kind: string }[] };
    return body.alerts;
  }

  get largestOutboxBacklog(): number {
    return this.maxOutboxPending;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTraffic();
    if (this.watchTimer) clearInterval(this.watchTimer);
    for (const t of this.pendingTimers) clearTimeout(t);
    this.proxy?.heal();
    this.clock?.stop();
    this.vvdClock?.stop();
    if (this.fleet) await this.fleet.stop();
    if (this.ops) await this.ops.stop();
    if (this.broker) await this.broker.close();
    if (this.proxy) await this.proxy.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function shuffle<T>(a: T[], rnd: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}
