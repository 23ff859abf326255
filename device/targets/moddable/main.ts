// Entry of the Moddable firmware bundle (device/build/build.ts, target "moddable": an ES module
// whose imports `embedded:io/serial`, `embedded:io/i2c`, `timer` and `flash` stay external, for
// the Moddable SDK to provide). Engine subset (ENGINES.md), like every firmware bundle.
//
// Building the firmware with the Moddable SDK (ESP32):
//   tsx device/build/build.ts moddable        -> artifacts/firmware/moddable/{main.js,manifest.json}
//   cd artifacts/firmware/moddable
//   mcconfig -m -p esp32 -t build             (release build: no xsbug on the UART)
// manifest.json includes manifest_base (timer), $(MODDABLE)/modules/io/manifest.json (the ECMA-419
// IO modules, and the preloaded "system" module whose global `System.restart()` reboots) and the
// flash module; the module "main" is this bundle.
//
// The host link is UART0 (a dev kit's USB-serial bridge). Keep ESP-IDF's own log off it
// (CONFIG_LOG_DEFAULT_LEVEL_NONE or CONFIG_ESP_CONSOLE_NONE in the sdkconfig): a log line
// written in the middle of a frame's line breaks that frame (whole lines are harmless: the host
// keeps them as the device log).
//
// The flash partition "storage" (a data partition of the ESP32 partition table) holds the journal,
// a sector of reboot reasons and, in its last sector, the identity written at manufacture:
// ASCII JSON {"serial": "VVD-000123", "model": "...", "role": 1} followed by 0xFF.
//
// Build-time settings: each POLLKIT_* name may be replaced by esbuild `define`; without it, a
// global of that name (set by a module loaded before this one) is used, else the default.

import { DeviceFirmware as Firmware } from "../../roles/all_roles.ts";
import { createModdablePlatform, type ModdableTargetConfig } from "./platform.ts";

declare const POLLKIT_SERIAL_PORT: number | undefined;
declare const POLLKIT_SERIAL_RX: number | undefined;
declare const POLLKIT_SERIAL_TX: number | undefined;
declare const POLLKIT_I2C_SDA: number | undefined;
declare const POLLKIT_I2C_SCL: number | undefined;
declare const POLLKIT_PARTITION: string | undefined;
declare const POLLKIT_JOURNAL_PAGES: number | undefined;
declare const POLLKIT_FIRMWARE_VERSION: string | undefined;

const FIRMWARE_VERSION = typeof POLLKIT_FIRMWARE_VERSION !== "undefined" ? POLLKIT_FIRMWARE_VERSION : "1.0.0";

const config: ModdableTargetConfig = {
  serialPort: typeof POLLKIT_SERIAL_PORT !== "undefined" ? POLLKIT_SERIAL_PORT : 0,
  receive: typeof POLLKIT_SERIAL_RX !== "undefined" ? POLLKIT_SERIAL_RX : 3,
  transmit: typeof POLLKIT_SERIAL_TX !== "undefined" ? POLLKIT_SERIAL_TX : 1,
  baud: 115200,
  sda: typeof POLLKIT_I2C_SDA !== "undefined" ? POLLKIT_I2C_SDA : 21,
  scl: typeof POLLKIT_I2C_SCL !== "undefined" ? POLLKIT_I2C_SCL : 22,
  i2cHz: 100000,
  partition: typeof POLLKIT_PARTITION !== "undefined" ? POLLKIT_PARTITION : "storage",
  maxPages: typeof POLLKIT_JOURNAL_PAGES !== "undefined" ? POLLKIT_JOURNAL_PAGES : 16,
  defaultModel: "pollkit-moddable",
  defaultRole: 1,
  maxQueued: 16384,
};

const platform = createModdablePlatform(config);
new Firmware({ platform: platform, firmwareVersion: FIRMWARE_VERSION }).start();
