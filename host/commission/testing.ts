// Test rig for the commission authority (Node only, used by the tests of device/services and
// host/commission): a device's secure element (the ATECC608 model on a simulated I2C bus, the
// real driver), its data flash (SimFlash), the real ArtifactStore and Authority on a virtual
// clock, and the commission's and a technician's keys.

import { VirtualClock, type SimTimers } from "../../simulator/clock/timers.ts";
import { SimI2cBus } from "../../simulator/models/i2c_bus.ts";
import { Atecc608Model } from "../../simulator/models/atecc608.ts";
import { SimFlash } from "../../simulator/models/flash.ts";
import { SecureElement } from "../../device/drivers/secure_element.ts";
import { dataRegions, type DataRegions } from "../../device/platform/flash_partition.ts";
import { ArtifactStore } from "../../device/services/artifact_store.ts";
import { Authority } from "../../device/services/authority.ts";
import type { WallClock } from "../../device/platform/platform.ts";
import { createCommissionKey, technicianKey, type P256Key } from "./keys.ts";
import { issueToken } from "./artifacts.ts";

export const DAY_MS = 86400000;
/** 2026-01-01: the wall clock the rig's devices start with. */
export const RIG_NOW = 1767225600000;

/** Runs `start`, advancing the virtual clock until its callback has run; returns the callback's arguments. */
export function settle<A extends unknown[]>(clock: VirtualClock, start: (cb: (...args: A) => void) => void, limitMs = 600000): A {
  let out: A | null = null;
  start((...args: A) => {
    out = args;
  });
  for (let t = 0; out === null && t < limitMs; t += 20) clock.advance(20);
  if (out === null) throw new Error(`callback did not run within ${limitMs} ms of virtual time`);
  return out;
}

export interface WallClockRig extends WallClock {
  ms: number;
}

export interface DeviceRig {
  clock: VirtualClock;
  timers: SimTimers;
  bus: SimI2cBus;
  chip: Atecc608Model;
  se: SecureElement;
  dataFlash: SimFlash;
  regions: DataRegions;
  store: ArtifactStore;
  authority: Authority;
  wall: WallClockRig;
  deviceId: string;
  commission: P256Key;
  /** What the device was provisioned with (null: no commission key). */
  commissionKey: Uint8Array | null;
  /** A reboot: new store and authority over the same flash and chip (RAM state lost). */
  reboot(): void;
}

export interface DeviceRigOptions {
  deviceId?: string;
  commission?: P256Key;
  /** false: the device was provisioned without a commission key. */
  provisioned?: boolean;
  pageSize?: number;
  pages?: number;
  wallMs?: number;
  dataFlash?: SimFlash;
}

export function deviceRig(o: DeviceRigOptions = {}): DeviceRig {
  const clock = new VirtualClock();
  const timers = clock.timers();
  const bus = new SimI2cBus();
  const chip = new Atecc608Model({ now: () => clock.now() });
  bus.attach(0x60, chip);
  const se = new SecureElement({ bus, timers });
  const dataFlash = o.dataFlash ?? new SimFlash({ pageSize: o.pageSize ?? 1024, pageCount: o.pages ?? 64 });
  const commission = o.commission ?? createCommissionKey();
  const wall: WallClockRig = {
    ms: o.wallMs ?? RIG_NOW,
    wallMs() {
      return this.ms;
    },
    setWallMs(ms: number) {
      this.ms = ms;
    },
  };
  const rig = {
    clock,
    timers,
    bus,
    chip,
    se,
    dataFlash,
    regions: dataRegions(dataFlash),
    wall,
    deviceId: o.deviceId ?? "VVD-000001",
    commission,
    commissionKey: o.provisioned === false ? null : commission.publicKey,
  } as DeviceRig;
  rig.reboot = () => {
    rig.store = new ArtifactStore({ flash: rig.regions.artifacts });
    const err = rig.store.open();
    if (err !== null) throw new Error(err);
    rig.authority = new Authority({
      se,
      commissionKey: rig.commissionKey,
      store: rig.store,
      clock: wall,
      deviceId: rig.deviceId,
      site: () => rig.store.site(),
    });
  };
  rig.reboot();
  return rig;
}

export interface TechnicianRig {
  key: P256Key;
  token: Uint8Array;
  technicianId: string;
}

/** A technician with a token from `commission` (site "*" and 30 days from RIG_NOW - 1 day by default). */
export function technicianRig(
  commission: P256Key,
  o: { technicianId?: string; site?: string; notBefore?: number; expires?: number; key?: P256Key } = {},
): TechnicianRig {
  const key = o.key ?? technicianKey();
  const technicianId = o.technicianId ?? "tech-amal";
  const notBefore = o.notBefore ?? RIG_NOW - DAY_MS;
  const token = issueToken(
    { technicianId, site: o.site ?? "*", notBefore, expires: o.expires ?? notBefore + 30 * DAY_MS, technicianPublicKey: key.publicKey },
    commission,
  );
  return { key, token, technicianId };
}
