// Both roles: the firmware of the simulator, the Node and XS bundles and the Moddable build,
// where one image serves either device. Engine subset.

import { Firmware, type FirmwareOptions } from "../core/firmware.ts";
import { verificationRole } from "./verification.ts";
import { resultRole } from "./result.ts";
import type { RoleSet } from "./roles.ts";

export const ALL_ROLES: RoleSet = { verification: verificationRole, result: resultRole };

/** The firmware with both roles linked in; the device's identity picks one at boot. */
export class DeviceFirmware extends Firmware {
  constructor(options: FirmwareOptions) {
    super(Object.assign({}, options, { roles: options.roles !== undefined ? options.roles : ALL_ROLES }));
  }
}
