// Entry of the Node firmware bundle: the core and the Node platform glue. The simulator's chip
// models stay outside (they are host-side hardware, not firmware) and are handed in as platform
// parts, so this bundle is the same engine-subset code that ships to the other engines.

export { PROTOCOL_VERSION } from "../../core/firmware.ts";
// Both roles linked in: the device's identity picks one at boot.
export { DeviceFirmware as Firmware } from "../../roles/all_roles.ts";
export { createNodePlatform } from "./node_platform.ts";
