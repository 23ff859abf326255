// An in-process byte link between a simulated device and a host, for tests and fleets that need
// no pseudo-terminal. Delivery is synchronous or deferred (setImmediate), and can be cut.

import type { ByteLink } from "../../device/platform/platform.ts";

export interface HostEnd {
  write(data: Uint8Array): void;
  onData(cb: (data: Uint8Array) => void): void;
  /** Plug (true) or unplug (false) the cable. */
  setConnected(connected: boolean): void;
}

export function createMemoryLink(options: { deferred?: boolean } = {}): { device: ByteLink; host: HostEnd } {
  let toDevice: ((d: Uint8Array) => void) | null = null;
  let toHost: ((d: Uint8Array) => void) | null = null;
  let conn: ((c: boolean) => void) | null = null;
  let connected = true;
  const send = (cb: ((d: Uint8Array) => void) | null, data: Uint8Array): void => {
    if (!connected || cb === null) return;
    const copy = data.slice();
    if (options.deferred) setImmediate(() => connected && cb(copy));
    else cb(copy);
  };
  return {
    device: {
      write: (d) => send(toHost, d),
      onData: (cb) => {
        toDevice = cb;
      },
      onConnection: (cb) => {
        conn = cb;
        if (connected) cb(true);
      },
    },
    host: {
      write: (d) => send(toDevice, d),
      onData: (cb) => {
        toHost = cb;
      },
      setConnected: (c) => {
        if (c === connected) return;
        connected = c;
        conn?.(c);
      },
    },
  };
}
