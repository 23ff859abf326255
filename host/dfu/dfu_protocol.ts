// USB DFU 1.1 facts in one place: class requests, device states, status codes with their names and
// meanings, the DFU_GETSTATUS reply, and the DFU functional descriptor found in the configuration
// descriptor. The host's downloader and the simulator's device model both read this file.

/** Class-specific requests (DFU 1.1 table 3.2), sent to the DFU interface. */
export const DfuRequest = {
  DETACH: 0,
  DNLOAD: 1,
  UPLOAD: 2,
  GETSTATUS: 3,
  CLRSTATUS: 4,
  GETSTATE: 5,
  ABORT: 6,
} as const;
export type DfuRequestCode = (typeof DfuRequest)[keyof typeof DfuRequest];

const REQUEST_NAMES: readonly string[] = ["DFU_DETACH", "DFU_DNLOAD", "DFU_UPLOAD", "DFU_GETSTATUS", "DFU_CLRSTATUS", "DFU_GETSTATE", "DFU_ABORT"];

export function dfuRequestName(code: number): string {
  return REQUEST_NAMES[code] ?? `request ${code}`;
}

/** Device states (DFU 1.1 section 6.1.2): key, code, and the spec's spelling. */
export const DFU_STATES = {
  appIDLE: { code: 0, name: "appIDLE" },
  appDETACH: { code: 1, name: "appDETACH" },
  dfuIDLE: { code: 2, name: "dfuIDLE" },
  dfuDNLOAD_SYNC: { code: 3, name: "dfuDNLOAD-SYNC" },
  dfuDNBUSY: { code: 4, name: "dfuDNBUSY" },
  dfuDNLOAD_IDLE: { code: 5, name: "dfuDNLOAD-IDLE" },
  dfuMANIFEST_SYNC: { code: 6, name: "dfuMANIFEST-SYNC" },
  dfuMANIFEST: { code: 7, name: "dfuMANIFEST" },
  dfuMANIFEST_WAIT_RESET: { code: 8, name: "dfuMANIFEST-WAIT-RESET" },
  dfuUPLOAD_IDLE: { code: 9, name: "dfuUPLOAD-IDLE" },
  dfuERROR: { code: 10, name: "dfuERROR" },
} as const;
export type DfuStateKey = keyof typeof DFU_STATES;
export type DfuStateCode = (typeof DFU_STATES)[DfuStateKey]["code"];

/** Status codes (DFU 1.1 section 6.1.2, bStatus): key (the spec's name), code, meaning. */
export const DFU_STATUSES = {
  OK: { code: 0x00, meaning: "no error condition is present" },
  errTARGET: { code: 0x01, meaning: "file is not targeted for use by this device" },
  errFILE: { code: 0x02, meaning: "file is for this device but fails some vendor-specific verification test" },
  errWRITE: { code: 0x03, meaning: "device is unable to write memory" },
  errERASE: { code: 0x04, meaning: "memory erase function failed" },
  errCHECK_ERASED: { code: 0x05, meaning: "memory erase check failed" },
  errPROG: { code: 0x06, meaning: "program memory function failed" },
  errVERIFY: { code: 0x07, meaning: "programmed memory failed verification" },
  errADDRESS: { code: 0x08, meaning: "cannot program memory due to received address that is out of range" },
  errNOTDONE: { code: 0x09, meaning: "received DFU_DNLOAD with wLength = 0, but device does not think it has all of the data yet" },
  errFIRMWARE: { code: 0x0a, meaning: "device's firmware is corrupt; it cannot return to run-time (non-DFU) operations" },
  errVENDOR: { code: 0x0b, meaning: "iString indicates a vendor-specific error" },
  errUSBR: { code: 0x0c, meaning: "device detected unexpected USB reset signaling" },
  errPOR: { code: 0x0d, meaning: "device detected unexpected power on reset" },
  errUNKNOWN: { code: 0x0e, meaning: "something went wrong, but the device does not know what it was" },
  errSTALLEDPKT: { code: 0x0f, meaning: "device stalled an unexpected request" },
} as const;
export type DfuStatusName = keyof typeof DFU_STATUSES;
export type DfuStatusCode = (typeof DFU_STATUSES)[DfuStatusName]["code"];

type CodesOf<T extends Record<string, { code: number }>> = { readonly [K in keyof T]: T[K]["code"] };

function codesOf<T extends Record<string, { code: number }>>(table: T): CodesOf<T> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(table)) out[key] = table[key].code;
  return out as CodesOf<T>;
}

/** `DfuState.dfuIDLE === 2`: the codes of DFU_STATES by key. */
export const DfuState = codesOf(DFU_STATES);
/** `DfuStatus.errWRITE === 3`: the codes of DFU_STATUSES by name. */
export const DfuStatus = codesOf(DFU_STATUSES);

const STATE_BY_CODE = new Map<number, (typeof DFU_STATES)[DfuStateKey]>(Object.values(DFU_STATES).map((s) => [s.code, s]));
const STATUS_BY_CODE = new Map<number, DfuStatusName>(
  (Object.keys(DFU_STATUSES) as DfuStatusName[]).map((name) => [DFU_STATUSES[name].code, name]),
);

/** "dfuDNLOAD-IDLE", or "state 42" for a code the spec does not define. */
export function dfuStateName(code: number): string {
  return STATE_BY_CODE.get(code)?.name ?? `state ${code}`;
}

export function isDfuStateCode(code: number): code is DfuStateCode {
  return STATE_BY_CODE.has(code);
}

/** "errWRITE", or "status 0x42" for a code the spec does not define. */
export function dfuStatusName(code: number): string {
  return STATUS_BY_CODE.get(code) ?? `status 0x${code.toString(16).padStart(2, "0")}`;
}

/** "errWRITE (device is unable to write memory)". */
export function describeDfuStatus(code: number): string {
  const name = STATUS_BY_CODE.get(code);
  return name === undefined ? dfuStatusName(code) : `${name} (${DFU_STATUSES[name].meaning})`;
}

// ---------------------------------------------------------------------------------------------
// DFU_GETSTATUS reply: bStatus, bwPollTimeout (3 bytes, little-endian ms), bState, iString.

export const STATUS_REPLY_LENGTH = 6;
/** bwPollTimeout is 24 bits. */
export const MAX_POLL_TIMEOUT_MS = 0xffffff;

export interface DfuStatusReply {
  status: number;
  /** Minimum wait before the next DFU_GETSTATUS. */
  pollTimeoutMs: number;
  state: number;
  iString: number;
}

export function parseStatusReply(data: DataView): DfuStatusReply | null {
  if (data.byteLength < STATUS_REPLY_LENGTH) return null;
  return {
    status: data.getUint8(0),
    pollTimeoutMs: data.getUint8(1) | (data.getUint8(2) << 8) | (data.getUint8(3) << 16),
    state: data.getUint8(4),
    iString: data.getUint8(5),
  };
}

export function encodeStatusReply(reply: DfuStatusReply): Uint8Array {
  const ms = Math.max(0, Math.min(MAX_POLL_TIMEOUT_MS, Math.round(reply.pollTimeoutMs)));
  return Uint8Array.of(reply.status, ms & 0xff, (ms >> 8) & 0xff, (ms >> 16) & 0xff, reply.state, reply.iString);
}

// ---------------------------------------------------------------------------------------------
// Descriptors: the DFU interface (class 0xFE, subclass 0x01; protocol 0x01 in run-time mode, 0x02
// in DFU mode) and the DFU functional descriptor (type 0x21) that follows it in the configuration.

export const USB_CLASS_APPLICATION_SPECIFIC = 0xfe;
export const DFU_SUBCLASS = 0x01;
export const DFU_PROTOCOL_RUNTIME = 0x01;
export const DFU_PROTOCOL_DFU_MODE = 0x02;

export const USB_REQUEST_GET_DESCRIPTOR = 6;
export const USB_DESCRIPTOR_CONFIGURATION = 0x02;
export const USB_DESCRIPTOR_INTERFACE = 0x04;
export const DFU_DESCRIPTOR_FUNCTIONAL = 0x21;
export const DFU_FUNCTIONAL_LENGTH = 9;
export const DFU_VERSION_1_1 = 0x0110;

export interface DfuFunctionalDescriptor {
  canDownload: boolean;
  canUpload: boolean;
  /** bitManifestationTolerant: the device still answers on the bus after manifestation. */
  manifestationTolerant: boolean;
  willDetach: boolean;
  detachTimeoutMs: number;
  /** wTransferSize: the most bytes one DFU_DNLOAD may carry. */
  transferSize: number;
  dfuVersion: number;
}

export function encodeFunctionalDescriptor(d: DfuFunctionalDescriptor): Uint8Array {
  const attributes =
    (d.canDownload ? 0x01 : 0) | (d.canUpload ? 0x02 : 0) | (d.manifestationTolerant ? 0x04 : 0) | (d.willDetach ? 0x08 : 0);
  return Uint8Array.of(
    DFU_FUNCTIONAL_LENGTH,
    DFU_DESCRIPTOR_FUNCTIONAL,
    attributes,
    d.detachTimeoutMs & 0xff,
    (d.detachTimeoutMs >> 8) & 0xff,
    d.transferSize & 0xff,
    (d.transferSize >> 8) & 0xff,
    d.dfuVersion & 0xff,
    (d.dfuVersion >> 8) & 0xff,
  );
}

/** Reads a functional descriptor at `at`; DFU 1.0 devices may send only 7 bytes (no version). */
export function parseFunctionalDescriptor(bytes: Uint8Array, at = 0): DfuFunctionalDescriptor | null {
  const length = bytes[at];
  if (length === undefined || length < 7 || at + length > bytes.length || bytes[at + 1] !== DFU_DESCRIPTOR_FUNCTIONAL) return null;
  const attributes = bytes[at + 2];
  return {
    canDownload: (attributes & 0x01) !== 0,
    canUpload: (attributes & 0x02) !== 0,
    manifestationTolerant: (attributes & 0x04) !== 0,
    willDetach: (attributes & 0x08) !== 0,
    detachTimeoutMs: bytes[at + 3] | (bytes[at + 4] << 8),
    transferSize: bytes[at + 5] | (bytes[at + 6] << 8),
    dfuVersion: length >= 9 ? bytes[at + 7] | (bytes[at + 8] << 8) : 0x0100,
  };
}

export interface DfuInterfaceInfo {
  interfaceNumber: number;
  alternateSetting: number;
  /** DFU_PROTOCOL_RUNTIME (application running) or DFU_PROTOCOL_DFU_MODE (bootloader). */
  protocol: number;
  functional: DfuFunctionalDescriptor | null;
}

/**
 * The DFU interfaces of a configuration descriptor (as GET_DESCRIPTOR(CONFIGURATION) returns it),
 * each with the functional descriptor that follows its interface descriptors.
 */
export function findDfuInterfaces(config: Uint8Array): DfuInterfaceInfo[] {
  const found: DfuInterfaceInfo[] = [];
  let inDfuInterface = false;
  for (let at = 0; at + 2 <= config.length; ) {
    const length = config[at];
    if (length < 2 || at + length > config.length) break; // a truncated or corrupt descriptor ends the walk
    const type = config[at + 1];
    if (type === USB_DESCRIPTOR_INTERFACE && length >= 9) {
      inDfuInterface = config[at + 5] === USB_CLASS_APPLICATION_SPECIFIC && config[at + 6] === DFU_SUBCLASS;
      if (inDfuInterface) {
        found.push({ interfaceNumber: config[at + 2], alternateSetting: config[at + 3], protocol: config[at + 7], functional: null });
      }
    } else if (type === DFU_DESCRIPTOR_FUNCTIONAL && inDfuInterface) {
      const functional = parseFunctionalDescriptor(config, at);
      // One functional descriptor follows all the alternate settings of the interface.
      for (const i of found) if (i.functional === null) i.functional = functional;
    }
    at += length;
  }
  return found;
}
