// The session's acknowledgement chain: a record lost in transit holds the ack back (the device
// resends it), a sequence number the journal skipped after a power cut does not.

import { test } from "node:test";
import assert from "node:assert/strict";
import { DeviceSession, type SessionStore } from "./device_session.ts";
import type { HostLink } from "../link/host_link.ts";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope } from "../../protocol/node/schema.ts";

function rig(): { session: DeviceSession; deviceSends: (env: Record<string, unknown>) => void; acks: number[]; stored: number[] } {
  const acks: number[] = [];
  const stored: number[] = [];
  let lineCb: ((l: string) => void) | null = null;
  const fromHost = new FrameDecoder({
    onFrame: (p) => {
      const e = Envelope.toObject(Envelope.decode(p), { longs: Number }) as { ack?: { seq?: number } };
      if (e.ack) acks.push(e.ack.seq ?? 0);
    },
    onConsole: () => {},
    onError: () => {},
  });
  // An in-memory link: the device side is this test, speaking frames directly.
  const link: HostLink = {
    kind: "memory",
    address: "mem",
    write: async (d) => fromHost.pushBytes(d),
    onLine: (cb) => (lineCb = cb),
    onBytes: () => {},
    onClose: () => {},
    close: async () => {},
  };
  const store: SessionStore = {
    put: (items) => {
      let n = 0;
      for (const i of items) {
        if (i.channel === "record" && i.seq !== null && !stored.includes(i.seq)) {
          stored.push(i.seq);
          n++;
        }
      }
      return n + items.filter((i) => i.channel !== "record").length;
    },
    highestSeq: () => (stored.length ? Math.max(...stored) : 0),
  };
  const session = new DeviceSession({ link, agentId: "a", site: "s", store, ackBatchMs: 1, timeSync: false });
  const deviceSends = (env: Record<string, unknown>): void => {
    const text = Buffer.from(encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish())).toString("latin1");
    for (const l of text.split("\n")) if (l) lineCb?.(l);
  };
  return { session, deviceSends, acks, stored };
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rec = (seq: number, prevSeq: number) => ({ record: { seq, prevSeq, timeMs: 1, kind: 12 } });

test("a record lost in transit holds the acknowledgement; a skipped number does not", async () => {
  const r = rig();
  r.deviceSends({ hello: { protocolVersion: 1, deviceId: "D1", role: 1, journalNextSeq: 10, journalAckedSeq: 3 } });
  await wait(5);
  r.deviceSends(rec(4, 3));
  await wait(10);
  assert.equal(r.acks.at(-1), 4);
  // 5 is lost on the wire; 6 arrives: stored, but the ack stays at 4.
  r.deviceSends(rec(6, 5));
  await wait(10);
  assert.ok(r.stored.includes(6));
  assert.equal(r.acks.at(-1), 4, "nothing past the missing record is acknowledged");
  // The device resends 5 (and 6): the chain closes.
  r.deviceSends(rec(5, 4));
  r.deviceSends(rec(6, 5));
  await wait(10);
  assert.equal(r.acks.at(-1), 6);
  // The journal skipped 7 after a power cut: record 8 says its previous record is 6.
  r.deviceSends(rec(8, 6));
  await wait(10);
  assert.equal(r.acks.at(-1), 8, "a skipped number is not waited for");
  await r.session.close();
});
