// An in-memory SessionStore for session tests: the Outbox's contract (dedupe by (device, seq)),
// visible to the test and able to fail on demand. The real Outbox (SQLite) is tested in host/outbox.

import type { SessionStore, StoreItem } from "../../host/session/device_session.ts";

/** An in-memory SessionStore with the Outbox's contract (dedupe by (device, seq)); can be told to fail. */
export class ArrayStore implements SessionStore {
  readonly items: StoreItem[] = [];
  failRecords = false;
  putCalls = 0;
  put(items: StoreItem[]): number {
    this.putCalls++;
    if (this.failRecords && items.some((i) => i.channel === "record")) throw new Error("disk I/O error (test)");
    let fresh = 0;
    for (const i of items) {
      if (i.seq !== null && this.items.some((x) => x.deviceId === i.deviceId && x.seq === i.seq)) continue;
      this.items.push(i);
      fresh++;
    }
    return fresh;
  }
  highestSeq(deviceId: string): number {
    let top = 0;
    for (const i of this.items) if (i.deviceId === deviceId && i.seq !== null && i.seq > top) top = i.seq;
    return top;
  }
  records(deviceId: string): StoreItem[] {
    return this.items.filter((i) => i.deviceId === deviceId && i.channel === "record");
  }
  seqs(deviceId: string): number[] {
    return this.records(deviceId).map((i) => i.seq!);
  }
  count(deviceId: string, channel: StoreItem["channel"]): number {
    return this.items.filter((i) => i.deviceId === deviceId && i.channel === channel).length;
  }
}
