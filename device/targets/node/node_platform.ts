// The Node target: a Platform built from the simulator's chip models, for simulated devices and
// tests. Each boot gets fresh timers and a fresh view of the host link; flash, the secure element
// and the wall clock outlive a reboot, as on real hardware.

import type {
  ByteLink,
  ButtonId,
  DeviceIdentity,
  Flash,
  I2cBus,
  Platform,
  Screen,
  Uarts,
  WallClock,
} from "../../platform/platform.ts";
import type { SimTimers } from "../../../simulator/clock/timers.ts";

export interface NodePlatformParts {
  identity: DeviceIdentity;
  timers: SimTimers;
  clock: WallClock;
  hostLink: ByteLink;
  i2c: I2cBus;
  flash: Flash;
  dataFlash?: Flash;
  settingsFlash?: Flash;
  uarts?: Uarts;
  resetCause: number;
  /** The firmware asked for a reboot (the simulator restarts it with this reason). */
  onReboot: (reason: number) => void;
  onScreen?: (s: Screen) => void;
  onLog?: (line: string) => void;
  random32?: () => number;
  freeMemory?: () => number;
}

export interface NodePlatform extends Platform {
  /** Simulator side: a button press on the device. */
  press(button: ButtonId): void;
  lastScreen(): Screen | null;
}

export function createNodePlatform(parts: NodePlatformParts): NodePlatform {
  let buttonCb: ((b: ButtonId) => void) | null = null;
  let screen: Screen | null = null;
  return {
    identity: parts.identity,
    timers: parts.timers,
    clock: parts.clock,
    hostLink: parts.hostLink,
    i2c: parts.i2c,
    flash: parts.flash,
    dataFlash: parts.dataFlash,
    settingsFlash: parts.settingsFlash,
    uarts: parts.uarts ?? {},
    display: {
      show(s: Screen) {
        screen = s;
        parts.onScreen?.(s);
      },
    },
    buttons: {
      onPress(cb) {
        buttonCb = cb;
      },
    },
    system: {
      resetCause: () => parts.resetCause,
      reboot: (reason: number) => parts.onReboot(reason),
      enableWatchdog: () => {},
      kickWatchdog: () => {},
      freeMemory: parts.freeMemory ?? (() => 64 * 1024),
      random32: parts.random32 ?? (() => (Math.random() * 4294967296) >>> 0),
    },
    log: (line: string) => parts.onLog?.(line),
    press(b: ButtonId) {
      buttonCb?.(b);
    },
    lastScreen: () => screen,
  };
}
