// Firmware application update: two slots, a trial boot and rollback. Engine subset.
//
// LAYOUT of dataRegions(dataFlash).firmware (pages renumbered from 0):
//   [0, FW_STATE_PAGES)           a Journal of update states (the latest valid record is the state)
//   slot 0, slot 1                equal runs of whole pages after it
// A slot holds a firmware artifact as received: the encoded SignedArtifact of kind FIRMWARE whose
// body is the engine's firmware application bundle.
//
// STATES
//   NONE       no image confirmed: the built-in (factory) firmware runs
//   PENDING    a verified image is staged in `candidate`; the next boot tries it
//   TRIAL      the candidate runs on trial; `boots` counts the boots it got. The firmware must call
//              confirm() (self-test passed, a host said hello) within trialMs of starting, or it
//              gives up the trial itself; the boot loader gives it up when it starts the trial for
//              the (maxTrialBoots + 1)-th time (the image kept crashing or hanging)
//   CONFIRMED  `active` runs. The other slot is free for the next update
// Giving up a trial returns to the previous state (CONFIRMED with the same `active`, or NONE) and
// remembers the version that failed in `rolledBack`. Every change is one journal append, so a
// power cut at any byte leaves the old state or the new one. The boot loader counts a boot before
// it starts the trial, so a trial that crashes the device is counted too.
//
// STATE RECORD (varints): format, mode, active + 1, candidate + 1, boots, rolledBack, then per
// slot: present, version, length, bodyOffset, bodyLength, crc32 (of the slot's bytes).

import type { Flash, Timers } from "../platform/platform.ts";
import { partitionFlash } from "../platform/flash_partition.ts";
import { sizeVarint32, writeVarint32, readVarint32, type Writer, type Reader } from "../../protocol/codec_runtime.ts";
import {
  LatestRecord,
  PageRun,
  crcSource,
  flashSource,
  memorySource,
  type ArtifactStaging,
  type ByteSource,
  type StagedArtifact,
} from "./artifact_store.ts";

export const FW_STATE_PAGES = 2;
export const FW_NONE = 0;
export const FW_PENDING = 1;
export const FW_TRIAL = 2;
export const FW_CONFIRMED = 3;
/** The built-in (factory) firmware, as a slot number. */
export const FW_BUILT_IN = -1;
/** Boots a trial image gets before the boot loader gives it up. */
export const DEFAULT_TRIAL_BOOTS = 3;
/** Time a trial image gets to confirm itself after it starts (ms). */
export const DEFAULT_TRIAL_MS = 300000;

export interface FwImage {
  version: number;
  length: number;
  bodyOffset: number;
  bodyLength: number;
  crc: number;
}

export interface FwState {
  mode: number;
  /** Slot of the confirmed image, FW_BUILT_IN for none. */
  active: number;
  /** Slot of the staged or trial image, FW_BUILT_IN for none. */
  candidate: number;
  boots: number;
  /** Version of the last image whose trial was given up (0: none). */
  rolledBack: number;
  images: (FwImage | null)[];
}

export function fwModeName(mode: number): string {
  return mode === FW_PENDING ? "trial pending" : mode === FW_TRIAL ? "trial running" : mode === FW_CONFIRMED ? "confirmed" : "none";
}

function emptyFwState(): FwState {
  return { mode: FW_NONE, active: FW_BUILT_IN, candidate: FW_BUILT_IN, boots: 0, rolledBack: 0, images: [null, null] };
}

function copyFwState(s: FwState): FwState {
  return { mode: s.mode, active: s.active, candidate: s.candidate, boots: s.boots, rolledBack: s.rolledBack, images: s.images.slice() };
}

function fwFields(s: FwState): number[] {
  const v = [1, s.mode, s.active + 1, s.candidate + 1, s.boots, s.rolledBack];
  for (let i = 0; i < 2; i++) {
    const im = s.images[i];
    if (im === null) v.push(0, 0, 0, 0, 0, 0);
    else v.push(1, im.version, im.length, im.bodyOffset, im.bodyLength, im.crc);
  }
  return v;
}

function encodeFwState(s: FwState): Uint8Array {
  const v = fwFields(s);
  let n = 0;
  for (let i = 0; i < v.length; i++) n += sizeVarint32(v[i]);
  const w: Writer = { b: new Uint8Array(n), p: 0 };
  for (let i = 0; i < v.length; i++) writeVarint32(w, v[i]);
  return w.b;
}

function decodeFwState(b: Uint8Array): FwState | null {
  const r: Reader = { b: b, p: 0 };
  const v: number[] = [];
  try {
    while (r.p < b.length) v.push(readVarint32(r));
  } catch (e) {
    return null;
  }
  if (v.length !== 18 || v[0] !== 1 || v[1] > FW_CONFIRMED || v[2] > 2 || v[3] > 2) return null;
  const s = emptyFwState();
  s.mode = v[1];
  s.active = v[2] - 1;
  s.candidate = v[3] - 1;
  s.boots = v[4];
  s.rolledBack = v[5];
  for (let i = 0; i < 2; i++) {
    const k = 6 + i * 6;
    if (v[k] === 1) s.images[i] = { version: v[k + 1], length: v[k + 2], bodyOffset: v[k + 3], bodyLength: v[k + 4], crc: v[k + 5] };
  }
  return s;
}

/** Pages per slot and the first page of each, in the firmware region. */
export function fwSlotPages(flash: Flash): number {
  const n = Math.floor((flash.pageCount - FW_STATE_PAGES) / 2);
  return n > 0 ? n : 0;
}

function slotFirst(flash: Flash, slot: number): number {
  return FW_STATE_PAGES + slot * fwSlotPages(flash);
}

/** The state journal of a firmware region, opened. */
function openStateLog(flash: Flash): { log: LatestRecord; state: FwState } {
  const log = new LatestRecord(partitionFlash(flash, 0, FW_STATE_PAGES));
  const b = log.open();
  const s = b === null ? null : decodeFwState(b);
  return { log: log, state: s === null ? emptyFwState() : s };
}

/** The update state on flash (for reports and tests). */
export function readFirmwareState(flash: Flash): FwState {
  return openStateLog(flash).state;
}

/** The stored bytes of an image (the encoded SignedArtifact), or null when they fail their CRC. */
export function slotSource(flash: Flash, slot: number, image: FwImage): ByteSource | null {
  if (slot < 0 || slot > 1 || image.length > fwSlotPages(flash) * flash.pageSize) return null;
  const src = flashSource(flash, slotFirst(flash, slot), image.length);
  return crcSource(src) === image.crc ? src : null;
}

/** What the boot loader starts. */
export interface BootChoice {
  /** 0 or 1, or FW_BUILT_IN. */
  slot: number;
  /** The artifact version of the image (0 for the built-in firmware). */
  version: number;
  /** True when this boot is a trial of a new image. */
  trial: boolean;
  /** The version whose trial was given up (0: none). */
  rolledBack: number;
  image: FwImage | null;
}

function choiceOf(s: FwState, slot: number, trial: boolean): BootChoice {
  const im = slot >= 0 ? s.images[slot] : null;
  if (im === null) return { slot: FW_BUILT_IN, version: 0, trial: false, rolledBack: s.rolledBack, image: null };
  return { slot: slot, version: im.version, trial: trial, rolledBack: s.rolledBack, image: im };
}

/** The state after giving up a trial: back to the confirmed image, or none. */
function rolledBack(s: FwState): FwState {
  const n = copyFwState(s);
  const im = s.candidate >= 0 ? s.images[s.candidate] : null;
  n.rolledBack = im !== null ? im.version : s.rolledBack;
  if (s.candidate >= 0) n.images[s.candidate] = null;
  n.mode = n.active >= 0 && n.images[n.active] !== null ? FW_CONFIRMED : FW_NONE;
  if (n.mode === FW_NONE) n.active = FW_BUILT_IN;
  n.candidate = FW_BUILT_IN;
  n.boots = 0;
  return n;
}

/**
 * The boot loader's decision, made once per boot before any firmware runs; it moves the state
 * on (a pending image starts its trial, a trial boot is counted, a trial out of boots is given
 * up). `maxTrialBoots` (DEFAULT_TRIAL_BOOTS) bounds the trial boots.
 */
export function bootDecision(flash: Flash, maxTrialBoots: number): BootChoice {
  const o = openStateLog(flash);
  const s = o.state;
  if (s.mode === FW_PENDING || s.mode === FW_TRIAL) {
    const next = copyFwState(s);
    if (s.candidate < 0 || s.images[s.candidate] === null || (s.mode === FW_TRIAL && s.boots >= maxTrialBoots)) {
      const back = rolledBack(s);
      o.log.write(encodeFwState(back));
      return choiceOf(back, back.active, false);
    }
    next.mode = FW_TRIAL;
    next.boots = s.mode === FW_PENDING ? 1 : s.boots + 1;
    // If the count cannot be written the trial does not run: an uncounted trial could loop.
    if (!o.log.write(encodeFwState(next))) return choiceOf(s, s.active, false);
    return choiceOf(next, next.candidate, true);
  }
  if (s.mode === FW_CONFIRMED) return choiceOf(s, s.active, false);
  return choiceOf(s, FW_BUILT_IN, false);
}

/**
 * Gives up the trial (pending or running): the image did not load, crashed at start, or did not
 * confirm in time. Returns true when there was a trial to give up and the change is on flash.
 */
export function failTrial(flash: Flash): boolean {
  const o = openStateLog(flash);
  const s = o.state;
  if (s.mode !== FW_PENDING && s.mode !== FW_TRIAL) return false;
  return o.log.write(encodeFwState(rolledBack(s)));
}

/** The firmware application bundle of a chosen image (the artifact's body), CRC-checked. */
export function slotBundle(flash: Flash, choice: BootChoice): Uint8Array | null {
  if (choice.image === null) return null;
  const src = slotSource(flash, choice.slot, choice.image);
  if (src === null) return null;
  return src.read(choice.image.bodyOffset, choice.image.bodyLength);
}

export interface FirmwareUpdateOptions {
  /** dataRegions(platform.dataFlash).firmware */
  flash: Flash;
  timers: Timers;
  /** Time a trial image gets to confirm itself (DEFAULT_TRIAL_MS). */
  trialMs?: number;
}

export class FirmwareUpdate {
  _f: Flash;
  _t: Timers;
  _trialMs: number;
  _log: LatestRecord | null;
  _s: FwState;
  _run: PageRun | null;
  _slot: number;
  _timer: number;
  _timerOn: boolean;

  constructor(options: FirmwareUpdateOptions) {
    this._f = options.flash;
    this._t = options.timers;
    this._trialMs = options.trialMs ?? DEFAULT_TRIAL_MS;
    this._log = null;
    this._s = emptyFwState();
    this._run = null;
    this._slot = 0;
    this._timer = 0;
    this._timerOn = false;
  }

  /** Reads the state (after the boot loader has moved it on). */
  open(): FwState {
    if (this._f.pageCount < FW_STATE_PAGES + 2) {
      this._log = null;
      return this._s;
    }
    const o = openStateLog(this._f);
    this._log = o.log;
    this._s = o.state;
    return this._s;
  }

  state(): FwState {
    return this._s;
  }

  /** True while this boot runs an image on trial (it must confirm()). */
  inTrial(): boolean {
    return this._s.mode === FW_TRIAL;
  }

  /**
   * Arms the trial timer when this boot is a trial: if confirm() has not been called within
   * trialMs, the trial is given up and `expired` runs (it should reboot with FIRMWARE_UPDATE).
   */
  startTrial(expired: () => void): void {
    const self = this;
    if (!this.inTrial() || this._timerOn) return;
    this._timerOn = true;
    this._timer = this._t.setTimeout(function () {
      self._timerOn = false;
      if (!self.inTrial()) return;
      self._write(rolledBack(self._s));
      expired();
    }, this._trialMs);
  }

  /** The image on trial confirms itself: it becomes the active one. False when not in a trial. */
  confirm(): boolean {
    if (this._s.mode !== FW_TRIAL) return false;
    const n = copyFwState(this._s);
    n.mode = FW_CONFIRMED;
    n.active = this._s.candidate;
    n.candidate = FW_BUILT_IN;
    n.boots = 0;
    n.rolledBack = 0;
    if (!this._write(n)) return false;
    if (this._timerOn) this._t.clearTimeout(this._timer);
    this._timerOn = false;
    return true;
  }

  close(): void {
    if (this._timerOn) this._t.clearTimeout(this._timer);
    this._timerOn = false;
  }

  /** The slots as the staging area of a firmware transfer. */
  staging(): ArtifactStaging {
    const self = this;
    return {
      begin: function (total: number) {
        return self._begin(total);
      },
      write: function (offset: number, data: Uint8Array) {
        return self._run !== null && self._run.write(offset, data);
      },
      source: function () {
        return self._run !== null ? self._run.source() : memorySource(new Uint8Array(0));
      },
      commit: function (a: StagedArtifact) {
        return self._commit(a);
      },
    };
  }

  _begin(total: number): string | null {
    this._run = null;
    if (this._log === null) return "no firmware slots on this device";
    const m = this._s.mode;
    if (m === FW_PENDING || m === FW_TRIAL) return "a firmware trial is " + (m === FW_PENDING ? "pending" : "running") + ": it must confirm or roll back first";
    const pages = fwSlotPages(this._f);
    if (total > pages * this._f.pageSize) return "firmware of " + total + " bytes does not fit a slot of " + pages * this._f.pageSize;
    this._slot = this._s.active === 0 ? 1 : 0;
    this._run = new PageRun(this._f, slotFirst(this._f, this._slot), pages);
    return null;
  }

  _commit(a: StagedArtifact): string | null {
    if (this._run === null) return "nothing staged";
    const src = this._run.source();
    const n = copyFwState(this._s);
    n.images[this._slot] = { version: a.version, length: src.length, bodyOffset: a.bodyOffset, bodyLength: a.bodyLength, crc: crcSource(src) };
    n.mode = FW_PENDING;
    n.candidate = this._slot;
    n.boots = 0;
    if (!this._write(n)) return "firmware state could not be written";
    this._run = null;
    return null;
  }

  _write(s: FwState): boolean {
    if (this._log === null || !this._log.write(encodeFwState(s))) return false;
    this._s = s;
    return true;
  }
}
