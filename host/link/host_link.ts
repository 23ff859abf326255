// The host's view of one device connection, whatever carries it (USB serial, BLE Nordic UART,
// an in-process link in tests). Transports produce HostLinks; a DeviceSession consumes one.

export type LinkKind = "serial" | "ble" | "memory";

export interface HostLink {
  readonly kind: LinkKind;
  /** Where the device is: a port path, a BLE peripheral id, a test name. */
  readonly address: string;
  /** Writes bytes (already framed); resolves once handed to the OS or the radio. */
  write(data: Uint8Array): Promise<void>;
  /** Incoming lines without their newline (serial: from @serialport/parser-readline). */
  onLine(cb: (line: string) => void): void;
  /** Incoming raw chunks (BLE notifications, in-memory links); lines are cut by the receiver. */
  onBytes(cb: (chunk: Uint8Array) => void): void;
  /** The connection is gone (cable pulled, radio lost, closed); called once. */
  onClose(cb: (reason: string) => void): void;
  close(): Promise<void>;
}

/** Bytes in flight per write chunk for links with small buffers (BLE MTU minus ATT header). */
export const DEFAULT_CHUNK = 20;
