// The smallest WebUSB-shaped device the DFU downloader needs: open, claim the DFU interface,
// control transfers, reset, close. The `usb` package's device objects (3.x: WebUSB `USBDevice`
// plus node extras) satisfy it as they are; the simulator's DFU device implements exactly this.

export type UsbRequestType = "standard" | "class" | "vendor";
export type UsbRecipient = "device" | "interface" | "endpoint" | "other";
export type UsbTransferStatus = "ok" | "stall" | "babble";

/** The setup packet without wLength (WebUSB's USBControlTransferParameters). */
export interface UsbControlSetup {
  requestType: UsbRequestType;
  recipient: UsbRecipient;
  request: number;
  value: number;
  index: number;
}

export interface UsbInResult {
  readonly status: UsbTransferStatus;
  readonly data?: DataView;
}

export interface UsbOutResult {
  readonly status: UsbTransferStatus;
  readonly bytesWritten: number;
}

export interface DfuUsbDevice {
  readonly opened: boolean;
  open(): Promise<void>;
  close(): Promise<void>;
  claimInterface(interfaceNumber: number): Promise<void>;
  releaseInterface(interfaceNumber: number): Promise<void>;
  selectAlternateInterface(interfaceNumber: number, alternateSetting: number): Promise<void>;
  controlTransferIn(setup: UsbControlSetup, length: number): Promise<UsbInResult>;
  /**
   * `data` is required, empty for a zero-length request: usb 3.1's controlTransferOut reads
   * `data.buffer` unconditionally and throws a TypeError on `undefined`.
   */
  controlTransferOut(setup: UsbControlSetup, data: Uint8Array): Promise<UsbOutResult>;
  /** A USB bus reset (what a non-manifestation-tolerant device waits for after a download). */
  reset(): Promise<void>;
}
