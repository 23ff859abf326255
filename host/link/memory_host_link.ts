// A HostLink over an in-process byte link (simulator/links/memory_link.ts): fleets of simulated
// devices attach to real agents without a pseudo-terminal each. Unplugging the link closes it,
// as pulling a USB cable closes a serial port.

import type { HostLink } from "./host_link.ts";
import type { HostEnd } from "../../simulator/links/memory_link.ts";

export function memoryHostLink(end: HostEnd, address: string): HostLink & { unplug(): void } {
  let bytesCb: ((chunk: Uint8Array) => void) | null = null;
  let closeCb: ((reason: string) => void) | null = null;
  let closed = false;
  const close = (reason: string): void => {
    if (closed) return;
    closed = true;
    bytesCb = null;
    closeCb?.(reason);
  };
  end.onData((d) => bytesCb?.(d));
  return {
    kind: "memory",
    address,
    write: async (data) => {
      if (closed) throw new Error(`${address}: link closed`);
      end.write(data);
    },
    onLine: () => {},
    onBytes: (cb) => {
      bytesCb = cb;
    },
    onClose: (cb) => {
      closeCb = cb;
    },
    close: async () => close("closed by the host"),
    unplug: () => {
      end.setConnected(false);
      close("unplugged");
    },
  };
}
