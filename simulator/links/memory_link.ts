// An in-process byte link between a simulated device and a host, for tests and fleets that need
// no pseudo-terminal. Delivery is synchronous or deferred (setImmediate), and can be cut.

import type { ByteLink } from "../../device/platform/platform.ts";

export interface HostEnd {
  write(data: Uint8Array): void;
  onData(cb: (data: Uint8Array) => void): void;
  /** Plug (true) or unplug (false) the cable. */
  setConnected(connected: boolean): void;
}

export interface MemoryLinkOptions {
  /** Deliver on a later turn of the event loop (as a real link would), not inside write(). */
  deferred?: boolean;
  /** Line impairments (simulator/faults/line_noise.ts), per direction; may be swapped at any time. */
  impair?: { toHost?: (d: Uint8Array) => Uint8Array; toDevice?: (d: Uint8Array) => Uint8Array };
}

export function createMemoryLink(options: MemoryLinkOptions = {}): { device: ByteLink; host: HostEnd } {
  let toDevice: ((d: Uint8Array) => void) | null = null;
  let toHost: ((d: Uint8Array) => void) | null = null;
  let conn: ((c: boolean) => void) | null = null;
  let connected = true;
  const send = (cb: ((d: Uint8Array) => void) | null, data: Uint8Array, impair?: (d: Uint8Array) => Uint8Array): void => {
    if (!connected || cb === null) return;
    const copy = impair ? impair(data.slice()) : data.slice();
    if (copy.length === 0) return;
    if (options.deferred) setImmediate(() => connected && cb(copy));
    else cb(copy);
  };
  return {
    device: {
      write: (d) => send(toHost, d, options.impair?.toHost),
      onData: (cb) => {
        toDevice = cb;
      },
      onConnection: (cb) => {
        conn = cb;
        if (connected) cb(true);
      },
    },
    host: {
      write: (d) => send(toDevice, d, options.impair?.toDevice),
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
