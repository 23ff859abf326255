// The simulated device's boot loader (Node side): reads the firmware update state from the
// device's data flash (device/services/firmware_update.ts) and tells SimDevice which firmware to
// run. A firmware application bundle for the simulator is the Node firmware bundle
// (artifacts/firmware/node/pollkit_node.mjs, built by device/build/build.ts): an ES module that
// exports `Firmware`. The chosen slot's bundle is written to a file named by its SHA-256 under
// the system's temporary directory and loaded synchronously (require of an ES module, Node
// 20.19+), so that SimDevice.powerOn stays synchronous.
//
// A trial image that fails its CRC, fails to load or exports no Firmware class is a failed
// trial: the state rolls back and the loader decides again (previous image, or the built-in
// firmware). A trial whose Firmware crashes while it starts is reported with
// markBootAttempt(dataFlash, false), which rolls back too; SimDevice then reboots.

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Firmware } from "../../device/core/firmware.ts";
import type { Flash } from "../../device/platform/platform.ts";
import { dataRegions } from "../../device/platform/flash_partition.ts";
import { DEFAULT_TRIAL_BOOTS, FW_BUILT_IN, bootDecision, failTrial, slotBundle } from "../../device/services/firmware_update.ts";

export interface BuiltInFirmware {
  firmwareClass: typeof Firmware;
  version: string;
}

export interface FirmwareChoice {
  firmwareClass: typeof Firmware;
  /** The firmware version to report: the built-in's, or the image's artifact version as text. */
  version: string;
  /** The image's artifact version (0: built-in). */
  artifactVersion: number;
  /** 0 or 1, or FW_BUILT_IN (-1). */
  slot: number;
  /** This boot tries a new image: it must confirm itself (FirmwareUpdate.confirm). */
  trial: boolean;
  /** The version of an image that was rolled back (0: none). */
  rolledBack: number;
  /** Why the loader did not run what the state named (empty when it did). */
  notes: string[];
}

const requireModule = createRequire(import.meta.url);
const loaded = new Map<string, typeof Firmware>();

/** Loads a bundle's Firmware class; throws with the reason when it cannot. */
export function loadBundle(bundle: Uint8Array): typeof Firmware {
  const sha = createHash("sha256").update(bundle).digest("hex");
  const cached = loaded.get(sha);
  if (cached) return cached;
  const dir = join(tmpdir(), "pollkit-sim-firmware");
  const file = join(dir, `${sha}.mjs`);
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, bundle);
    renameSync(tmp, file);
  }
  const mod = requireModule(file) as { Firmware?: unknown };
  if (typeof mod.Firmware !== "function") throw new Error("the bundle exports no Firmware class");
  const cls = mod.Firmware as typeof Firmware;
  loaded.set(sha, cls);
  return cls;
}

/**
 * Decides what this boot runs and moves the update state on (see bootDecision). Without a data
 * flash the built-in firmware runs.
 */
export function chooseFirmware(dataFlash: Flash | undefined, builtIn: BuiltInFirmware, maxTrialBoots = DEFAULT_TRIAL_BOOTS): FirmwareChoice {
  const notes: string[] = [];
  const plain = (rolledBack: number): FirmwareChoice => ({
    firmwareClass: builtIn.firmwareClass,
    version: builtIn.version,
    artifactVersion: 0,
    slot: FW_BUILT_IN,
    trial: false,
    rolledBack,
    notes,
  });
  if (!dataFlash) return plain(0);
  const flash = dataRegions(dataFlash).firmware;
  // At most: a trial that fails to load, then the confirmed image.
  for (let attempt = 0; attempt < 3; attempt++) {
    const c = bootDecision(flash, maxTrialBoots);
    if (c.slot === FW_BUILT_IN) return plain(c.rolledBack);
    let firmwareClass: typeof Firmware | null = null;
    const bundle = slotBundle(flash, c);
    if (bundle === null) notes.push(`firmware ${c.version} in slot ${c.slot} fails its CRC`);
    else {
      try {
        firmwareClass = loadBundle(bundle);
      } catch (e) {
        notes.push(`firmware ${c.version} in slot ${c.slot} does not load: ${(e as Error).message.split("\n")[0]}`);
      }
    }
    if (firmwareClass !== null) {
      return { firmwareClass, version: String(c.version), artifactVersion: c.version, slot: c.slot, trial: c.trial, rolledBack: c.rolledBack, notes };
    }
    // A trial that cannot start is given up; a confirmed image that cannot: the built-in runs.
    if (!c.trial || !failTrial(flash)) return plain(c.rolledBack);
  }
  return plain(0);
}

/**
 * Reports how the chosen firmware started. A trial image that crashed at start (`ok` false) is
 * rolled back: returns true, and the device should reboot (it then gets the previous firmware).
 */
export function markBootAttempt(dataFlash: Flash | undefined, ok: boolean): boolean {
  if (ok || !dataFlash) return false;
  return failTrial(dataRegions(dataFlash).firmware);
}
