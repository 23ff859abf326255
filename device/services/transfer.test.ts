// The device's transfer receiver: in-order chunks, repeats answered without rewriting, resume of
// the same file, a different file of the same size started afresh, and refusals; signed artifacts
// verified, handed to their consumer and held, or refused with the reason.

import { test } from "node:test";
import assert from "node:assert/strict";
import { TransferReceiver, CountingSink, installArtifactSinks } from "./transfer.ts";
import { crc32 } from "./journal.ts";
import { ArtifactKind, Status, TransferKind, decodeSignedArtifact, type CommandResult, type SignedArtifact } from "../../protocol/generated/device_codec.ts";
import { signArtifact } from "../../host/commission/artifacts.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { RIG_NOW, deviceRig, type DeviceRig } from "../../host/commission/testing.ts";

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

test("chunks in order, repeats ignored, gaps refused with the offset to resume from", () => {
  const sink = new CountingSink();
  const rx = new TransferReceiver(sink);
  const data = bytes(3000, 1);
  assert.equal(rx.begin({ kind: 2, totalBytes: 3000 }).status, Status.OK);
  assert.equal(rx.chunk({ offset: 0, data: data.subarray(0, 1000) }).status, Status.OK);
  assert.equal(rx.chunk({ offset: 0, data: data.subarray(0, 1000) }).status, Status.OK, "a repeat is answered");
  const gap = rx.chunk({ offset: 2000, data: data.subarray(2000) });
  assert.equal(gap.status, Status.BAD_ARGUMENT);
  assert.equal(gap.transfer?.receivedBytes, 1000);
  assert.equal(rx.end(new Uint8Array(0)).status, Status.BAD_ARGUMENT, "not complete yet");
  rx.chunk({ offset: 1000, data: data.subarray(1000, 2000) });
  rx.chunk({ offset: 2000, data: data.subarray(2000) });
  const end = rx.end(new Uint8Array(0));
  assert.equal(end.status, Status.OK);
  assert.equal(end.transfer?.complete, true);
  assert.equal(sink.digest(), crc32(data, 0, data.length), "each byte written once, in order");
  assert.equal(rx.begin({ kind: 2, totalBytes: 0 }).status, Status.BAD_ARGUMENT);
});

test("resume continues the same file; another file of the same size starts afresh", () => {
  const sink = new CountingSink();
  const rx = new TransferReceiver(sink);
  const a = bytes(2000, 1);
  const b = bytes(2000, 2);
  const shaA = new Uint8Array(32).fill(0xaa);
  const shaB = new Uint8Array(32).fill(0xbb);
  rx.begin({ kind: 2, totalBytes: 2000, sha256: shaA });
  rx.chunk({ offset: 0, data: a.subarray(0, 1000) });
  const again = rx.begin({ kind: 2, totalBytes: 2000, sha256: shaA });
  assert.equal(again.transfer?.receivedBytes, 1000, "same file: resume where it was");
  const other = rx.begin({ kind: 2, totalBytes: 2000, sha256: shaB });
  assert.equal(other.transfer?.receivedBytes, 0, "different file: from the start");
  rx.chunk({ offset: 0, data: b });
  assert.equal(rx.end(new Uint8Array(0)).status, Status.OK);
  assert.equal(sink.digest(), crc32(b, 0, b.length), "only the second file's bytes");
});

// ---- signed artifacts over the transfer (real secure element model, artifact store) ----


function artifactRig(consumer?: (kind: number, a: SignedArtifact) => string | null): { rig: DeviceRig; rx: TransferReceiver; delivered: SignedArtifact[] } {
  const rig = deviceRig();
  const rx = new TransferReceiver(new CountingSink());
  const delivered: SignedArtifact[] = [];
  installArtifactSinks(rx, {
    authority: rig.authority,
    store: rig.store,
    deliver: (kind, a, cb) => {
      const err = consumer ? consumer(kind, a) : null;
      if (err === null) delivered.push(a);
      cb(err);
    },
  });
  return { rig, rx, delivered };
}

function send(rig: DeviceRig, rx: TransferReceiver, kind: number, data: Uint8Array): CommandResult {
  assert.equal(rx.begin({ kind, totalBytes: data.length }, "tech-x").status, Status.OK);
  for (let at = 0; at < data.length; at += 700) assert.equal(rx.chunk({ offset: at, data: data.subarray(at, at + 700) }).status, Status.OK);
  let out: CommandResult | null = null;
  rx.finish(new Uint8Array(0), (r) => (out = r));
  for (let t = 0; out === null && t < 60000; t += 20) rig.clock.advance(20);
  assert.ok(out !== null, "the transfer was answered");
  return out;
}

test("a signed station register over chunks is verified, handed to its consumer and held", () => {
  const { rig, rx, delivered } = artifactRig();
  const body = new Uint8Array(5000).map((_, i) => i & 255);
  const bytes = signArtifact({ kind: ArtifactKind.STATION_REGISTER, stationId: "ST-7", version: 2, issuedMs: RIG_NOW, body }, rig.commission);
  const r = send(rig, rx, TransferKind.STATION_DATA, bytes);
  assert.equal(r.status, Status.OK, r.message);
  assert.match(r.message ?? "", /accepted station register version 2/);
  assert.equal(r.transfer?.complete, true);
  assert.equal(rx.actor(), "tech-x");
  assert.deepEqual(delivered.map((a) => [a.kind, a.stationId, a.body?.length]), [[ArtifactKind.STATION_REGISTER, "ST-7", 5000]]);
  assert.deepEqual(rig.store.bytes(ArtifactKind.STATION_REGISTER), bytes);
  assert.equal(rig.store.floor(ArtifactKind.STATION_REGISTER, "ST-7")?.version, 2);
  // Sent again: an idempotent reload.
  const again = send(rig, rx, TransferKind.STATION_DATA, bytes);
  assert.equal(again.status, Status.OK);
  assert.match(again.message ?? "", /reloaded/);
});

test("refused artifacts answer DENIED with the reason; nothing is held and no floor moves", () => {
  const { rig, rx, delivered } = artifactRig((kind, a) => (a.electionId === "refuse-me" ? "polls are open" : null));
  const good = signArtifact({ kind: ArtifactKind.STATION_REGISTER, stationId: "ST-7", version: 3, body: new Uint8Array(900).fill(7) }, rig.commission);
  const tampered = good.slice();
  tampered[100] ^= 0x20;
  const cases: [number, Uint8Array, RegExp][] = [
    [TransferKind.STATION_DATA, tampered, /not signed by the commission/],
    [TransferKind.STATION_DATA, signArtifact({ kind: ArtifactKind.STATION_REGISTER, version: 1, body: new Uint8Array(9) }, createCommissionKey()), /not signed by the commission/],
    [TransferKind.ELECTION_DEFINITION, good, /station register where a election definition was expected/],
    [TransferKind.STATION_DATA, { ...good, length: 0 } as unknown as Uint8Array, /size out of range/],
    [TransferKind.STATION_DATA, signArtifact({ kind: ArtifactKind.STATION_REGISTER, electionId: "refuse-me", version: 4, body: new Uint8Array(9) }, rig.commission), /did not take the station register: polls are open/],
  ];
  for (const [kind, data, why] of cases) {
    if (data.length === 0) {
      assert.match(rx.begin({ kind, totalBytes: 0 }).message ?? "", why);
      continue;
    }
    const r = send(rig, rx, kind, data);
    assert.equal(r.status, Status.DENIED, `${why}: ${r.message}`);
    assert.match(r.message ?? "", why);
  }
  assert.equal(delivered.length, 0);
  assert.equal(rig.store.held(ArtifactKind.STATION_REGISTER), null);
  assert.deepEqual(rig.store.floors(), []);
  // Now the good one, then an older one.
  assert.equal(send(rig, rx, TransferKind.STATION_DATA, good).status, Status.OK);
  const older = signArtifact({ kind: ArtifactKind.STATION_REGISTER, stationId: "ST-7", version: 2, body: new Uint8Array(9) }, rig.commission);
  const r = send(rig, rx, TransferKind.STATION_DATA, older);
  assert.equal(r.status, Status.DENIED);
  assert.match(r.message ?? "", /version 2 is older than version 3/);
  assert.equal(decodeSignedArtifact(rig.store.bytes(ArtifactKind.STATION_REGISTER)!).version, 3);
});
