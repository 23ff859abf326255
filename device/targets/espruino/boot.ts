// The Espruino boot shared by the two role bundles (main.ts: verification device; main_rad.ts:
// result acceleration device). Engine subset.
//
// Install: write the bundle as boot code, so that it runs at every power-on:
//   require("Storage").write(".bootcde", <bundle text>)      (or E.setBootCode(<bundle text>))
// On Espruino's Linux build, run it with the host link on a pseudo-terminal:
//   esbuild define POLLKIT_SERIAL_PATH='"/dev/pts/7"' (or set the global of that name before the
//   bundle runs), then `espruino pollkit.min.js`; Storage is the build's flash file.
//
// Build-time settings: each POLLKIT_* name below may be replaced by esbuild `define` (string or
// number literals); without a define, a global of that name set before the bundle runs is used,
// and failing that the default. See platform.ts for what each part maps to.
//
// BLE: with POLLKIT_HOST_LINK "Bluetooth" the host link is the Nordic UART service of nRF52
// boards (the console is detached from it, as from every device on boards), and NRF
// connect/disconnect events drive the link state. A UART or USB link counts as connected from boot.

import { Firmware } from "../../core/firmware.ts";
import type { RoleSet } from "../../roles/roles.ts";
import { createEspruinoPlatform, type EspruinoTargetConfig } from "./platform.ts";

declare const POLLKIT_HOST_LINK: string | undefined;
declare const POLLKIT_SERIAL_PATH: string | undefined;
declare const POLLKIT_SERIAL_RX: string | undefined;
declare const POLLKIT_SERIAL_TX: string | undefined;
declare const POLLKIT_I2C_SCL: string | undefined;
declare const POLLKIT_I2C_SDA: string | undefined;
declare const POLLKIT_JOURNAL_PAGES: number | undefined;
declare const POLLKIT_JOURNAL_PAGE_SIZE: number | undefined;
declare const POLLKIT_FIRMWARE_VERSION: string | undefined;
declare const POLLKIT_WATCHDOG: boolean | undefined;

const FIRMWARE_VERSION = typeof POLLKIT_FIRMWARE_VERSION !== "undefined" ? POLLKIT_FIRMWARE_VERSION : "1.0.0";
/** The watchdog restarts a firmware that stops running its timers for this long. */
const WATCHDOG_MS = 20000;

/** Boots the firmware with one role's services (the identity file may name the other role: then
 * the device runs core-only and says so in its log). */
export function bootEspruino(roles: RoleSet, role: number): void {
  const config: EspruinoTargetConfig = {
    hostLink: typeof POLLKIT_HOST_LINK !== "undefined" ? POLLKIT_HOST_LINK : "Serial1",
    serialPath: typeof POLLKIT_SERIAL_PATH !== "undefined" ? POLLKIT_SERIAL_PATH : "",
    baud: 115200,
    rx: typeof POLLKIT_SERIAL_RX !== "undefined" ? POLLKIT_SERIAL_RX : "",
    tx: typeof POLLKIT_SERIAL_TX !== "undefined" ? POLLKIT_SERIAL_TX : "",
    scl: typeof POLLKIT_I2C_SCL !== "undefined" ? POLLKIT_I2C_SCL : "",
    sda: typeof POLLKIT_I2C_SDA !== "undefined" ? POLLKIT_I2C_SDA : "",
    i2cBitrate: 100000,
    // 8 x 2 KB: fits the Storage area of an nRF52832 board (about 40 KB) with room to compact.
    pageSize: typeof POLLKIT_JOURNAL_PAGE_SIZE !== "undefined" ? POLLKIT_JOURNAL_PAGE_SIZE : 2048,
    pageCount: typeof POLLKIT_JOURNAL_PAGES !== "undefined" ? POLLKIT_JOURNAL_PAGES : 8,
    filePrefix: "pkj",
    settingsPrefix: "pks",
    identityFile: "pkident",
    reasonFile: "pkreason",
    defaultModel: "pollkit-espruino",
    defaultRole: role,
    watchdog: typeof POLLKIT_WATCHDOG !== "undefined" ? POLLKIT_WATCHDOG : true,
  };

  const platform = createEspruinoPlatform(config);
  const firmware = new Firmware({ platform: platform, firmwareVersion: FIRMWARE_VERSION, roles: roles });

  // The watchdog is kicked from a timer: it fires only if the event loop stalls (a hung callback,
  // a runaway loop). Enabled after boot so that a slow first boot (key generation) cannot trip it.
  function kick(): void {
    platform.system.kickWatchdog();
    platform.timers.setTimeout(kick, WATCHDOG_MS / 4);
  }

  firmware.start(function () {
    platform.system.enableWatchdog(WATCHDOG_MS);
    kick();
  });
}
