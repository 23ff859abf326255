// The part of @abandonware/noble that the BLE transport uses, typed here: the package's own
// typings describe the module as free functions and leave out what the transport relies on
// (peripheral.mtu, the 'warning' event, error-first callbacks). The real noble and one built by
// `@abandonware/noble/with-bindings.js` over the simulator's bindings both fit it.

export type NobleCallback<T = void> = (error: Error | null | undefined, value: T) => void;

export interface NobleCharacteristic {
  readonly uuid: string;
  readonly properties: readonly string[];
  /** The callback gets no error from noble: a write's completion is all it reports. */
  write(data: Buffer, withoutResponse: boolean, callback?: (error: Error | null) => void): void;
  subscribe(callback?: (error: Error | null) => void): void;
  on(event: "data", listener: (data: Buffer, isNotification: boolean) => void): this;
  removeListener(event: "data", listener: (data: Buffer, isNotification: boolean) => void): this;
}

export interface NobleService {
  readonly uuid: string;
  discoverCharacteristics(uuids: string[], callback?: NobleCallback<NobleCharacteristic[]>): void;
}

export interface NoblePeripheral {
  readonly id: string;
  readonly address: string;
  readonly rssi: number;
  /** ATT MTU once exchanged ('onMtu' from the bindings); null before. */
  readonly mtu: number | null;
  readonly state: "disconnected" | "connecting" | "connected" | "disconnecting" | "error";
  readonly advertisement: { localName?: string; serviceUuids?: string[] };
  connect(callback?: (error?: Error | null) => void): void;
  cancelConnect(): void;
  disconnect(callback?: () => void): void;
  discoverServices(uuids: string[], callback?: NobleCallback<NobleService[]>): void;
  once(event: "disconnect", listener: (reason?: unknown) => void): this;
  removeListener(event: "disconnect", listener: (reason?: unknown) => void): this;
}

export interface NobleLike {
  /** Reading it the first time initializes the bindings. */
  readonly state: string;
  on(event: "stateChange", listener: (state: string) => void): this;
  on(event: "discover", listener: (peripheral: NoblePeripheral) => void): this;
  on(event: "warning", listener: (message: string) => void): this;
  removeListener(event: "stateChange", listener: (state: string) => void): this;
  removeListener(event: "discover", listener: (peripheral: NoblePeripheral) => void): this;
  removeListener(event: "warning", listener: (message: string) => void): this;
  /** Without a callback noble throws when the adapter is not poweredOn: always pass one. */
  startScanning(serviceUuids: string[], allowDuplicates: boolean, callback: (error?: Error | null) => void): void;
  stopScanning(callback?: () => void): void;
}
