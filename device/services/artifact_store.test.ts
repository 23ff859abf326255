// The artifact store: SHA-256 against Node's, held artifacts and version floors across reopen,
// the configuration's site and station, and power cuts at every byte of every write.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { SimFlash, PowerCut } from "../../simulator/models/flash.ts";
import { dataRegions } from "../platform/flash_partition.ts";
import { ArtifactStore, Sha256, sha256, parseConfiguration, LatestRecord, type ArtifactIdentity } from "./artifact_store.ts";
import { ArtifactKind } from "../../protocol/generated/device_codec.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { signArtifact } from "../../host/commission/artifacts.ts";

const nodeSha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(b).digest());
const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "utf8"));
const commission = createCommissionKey();

test("SHA-256 equals Node's for every length around the block and padding boundaries, fed in any pieces", () => {
  assert.equal(Buffer.from(sha256(text("abc"))).toString("hex"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(Buffer.from(sha256(new Uint8Array(0))).toString("hex"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (let n = 0; n < 300; n++) {
    const data = new Uint8Array(randomBytes(n));
    assert.deepEqual(sha256(data), nodeSha(data), `length ${n}`);
    const h = new Sha256();
    let at = 0;
    while (at < n) {
      const k = Math.min(n - at, 1 + ((at * 7 + n) % 70));
      h.update(data, at, at + k);
      at += k;
    }
    assert.deepEqual(h.digest(), nodeSha(data), `length ${n} in pieces`);
  }
  const big = new Uint8Array(randomBytes(200000));
  assert.deepEqual(sha256(big), nodeSha(big));
});

test("configuration bodies: site, station and other keys; comments and junk lines ignored", () => {
  const c = parseConfiguration(text("# depot config\nsite = BGD-WH-02\nstation=BGD-0417\nhealth_interval_s=60\nno equals here\n=x\n"));
  assert.equal(c.site, "BGD-WH-02");
  assert.equal(c.station, "BGD-0417");
  assert.deepEqual(c.keys, ["site", "station", "health_interval_s"]);
  assert.deepEqual(c.values, ["BGD-WH-02", "BGD-0417", "60"]);
  assert.equal(parseConfiguration(new Uint8Array([0xff, 0x3d, 0x41])).site, "", "invalid UTF-8 is not an error");
});

function newStore(flash: SimFlash): ArtifactStore {
  const s = new ArtifactStore({ flash: dataRegions(flash).artifacts });
  const err = s.open();
  if (err !== null) throw new Error(err);
  return s;
}

function put(store: ArtifactStore, bytes: Uint8Array, id: ArtifactIdentity): void {
  assert.equal(store.stageBegin(bytes.length), true, "room to stage");
  for (let at = 0; at < bytes.length; at += 300) assert.equal(store.stageWrite(at, bytes.subarray(at, Math.min(bytes.length, at + 300))), true);
  assert.equal(store.commitStaged(id), null);
}

function ident(kind: number, stationId: string, version: number, bytes: Uint8Array): ArtifactIdentity {
  return { kind, stationId, electionId: "E-2026", version, digest: nodeSha(bytes) };
}

test("held artifacts, floors, authority floor and the derived station and site survive a reopen", () => {
  const flash = new SimFlash({ pageSize: 1024, pageCount: 64 });
  const s = newStore(flash);
  assert.equal(s.stationId(), "");
  assert.equal(s.site(), "");
  const reg = signArtifact({ kind: ArtifactKind.STATION_REGISTER, stationId: "ST-1", version: 3, body: new Uint8Array(randomBytes(2500)) }, commission);
  put(s, reg, ident(ArtifactKind.STATION_REGISTER, "ST-1", 3, reg));
  assert.equal(s.stationId(), "ST-1", "the station comes from the register");
  assert.equal(s.site(), "ST-1", "no configuration: the site is the station");
  const cfg = signArtifact({ kind: ArtifactKind.CONFIGURATION, version: 1, body: text("site=DEPOT-7\n") }, commission);
  put(s, cfg, ident(ArtifactKind.CONFIGURATION, "", 1, cfg));
  assert.equal(s.site(), "DEPOT-7");
  assert.equal(s.raiseFloor(ident(ArtifactKind.FIRMWARE, "", 9, text("fw"))), null);
  assert.equal(s.recordAuthority(1000, "tech-a"), null);
  assert.match(s.recordAuthority(1000, "tech-b") ?? "", /not newer/, "the authority floor only grows");

  const again = newStore(flash);
  assert.deepEqual(again.bytes(ArtifactKind.STATION_REGISTER), reg);
  assert.equal(again.artifact(ArtifactKind.CONFIGURATION)?.version, 1);
  assert.equal(again.floor(ArtifactKind.STATION_REGISTER, "ST-1")?.version, 3);
  assert.equal(again.floor(ArtifactKind.FIRMWARE, "")?.version, 9);
  assert.equal(again.floor(ArtifactKind.STATION_REGISTER, "ST-2"), null);
  assert.equal(again.lastIssuedMs(), 1000);
  assert.equal(again.technicianId(), "tech-a");
  assert.equal(again.site(), "DEPOT-7");
  assert.equal(again.stationId(), "ST-1");

  // Clearing the election forgets the register; its floor stays.
  assert.equal(again.drop([ArtifactKind.STATION_REGISTER, ArtifactKind.ELECTION_DEFINITION]), null);
  const third = newStore(flash);
  assert.equal(third.held(ArtifactKind.STATION_REGISTER), null);
  assert.equal(third.stationId(), "");
  assert.equal(third.floor(ArtifactKind.STATION_REGISTER, "ST-1")?.version, 3);
});

test("a replaced artifact is staged beside the one it replaces; a store too full to stage refuses", () => {
  const flash = new SimFlash({ pageSize: 1024, pageCount: 32 }); // artifacts: 16 pages, 12 for blobs
  const s = newStore(flash);
  const a = signArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, version: 1, body: new Uint8Array(5000).fill(1) }, commission);
  put(s, a, ident(ArtifactKind.ELECTION_DEFINITION, "", 1, a));
  const b = signArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, version: 2, body: new Uint8Array(6000).fill(2) }, commission);
  put(s, b, ident(ArtifactKind.ELECTION_DEFINITION, "", 2, b));
  assert.deepEqual(s.bytes(ArtifactKind.ELECTION_DEFINITION), b);
  assert.equal(s.stageBegin(7 * 1024), false, "5 pages free beside the 6 held: 7 do not fit");
  assert.match(s.staging().begin(7 * 1024) ?? "", /no room/);
  // Damage to a held artifact is caught by its CRC.
  const h = s.held(ArtifactKind.ELECTION_DEFINITION)!;
  flash.program(h.page, 100, new Uint8Array([0])); // the artifacts region starts at page 0
  assert.equal(s.bytes(ArtifactKind.ELECTION_DEFINITION), null);
});

test("the latest-record register keeps the newest value over many pages of writes", () => {
  const flash = new SimFlash({ pageSize: 256, pageCount: 3 });
  const r = new LatestRecord(flash);
  assert.equal(r.open(), null);
  for (let i = 0; i < 400; i++) assert.equal(r.write(new Uint8Array(20 + (i % 50)).fill(i & 255)), true, `write ${i}`);
  const again = new LatestRecord(flash);
  const v = again.open();
  assert.equal(v?.length, 20 + (399 % 50));
  assert.equal(v?.[0], 399 & 255);
});

// ---- power cuts ----

interface Snapshot {
  register: number;
  registerBytes: string | null;
  firmwareFloor: number;
  issued: number;
  site: string;
}

function snapshot(flash: SimFlash): Snapshot {
  const s = newStore(flash);
  const b = s.bytes(ArtifactKind.STATION_REGISTER);
  return {
    register: s.floor(ArtifactKind.STATION_REGISTER, "ST-9")?.version ?? 0,
    registerBytes: b === null ? null : Buffer.from(b).toString("hex"),
    firmwareFloor: s.floor(ArtifactKind.FIRMWARE, "")?.version ?? 0,
    issued: s.lastIssuedMs(),
    site: s.site(),
  };
}

test("version floors and held artifacts survive a power cut at every write: old state or new, never older, never a mix", () => {
  const regs = [1, 2, 3].map((v) =>
    signArtifact({ kind: ArtifactKind.STATION_REGISTER, stationId: "ST-9", version: v, body: new Uint8Array(300 + v * 250).fill(v) }, commission),
  );
  const cfg = signArtifact({ kind: ArtifactKind.CONFIGURATION, version: 1, body: text("site=WH-1\n") }, commission);
  const ops: ((s: ArtifactStore) => void)[] = [
    (s) => put(s, regs[0], ident(ArtifactKind.STATION_REGISTER, "ST-9", 1, regs[0])),
    (s) => assert.equal(s.recordAuthority(500, "tech"), null),
    (s) => put(s, regs[1], ident(ArtifactKind.STATION_REGISTER, "ST-9", 2, regs[1])),
    (s) => assert.equal(s.raiseFloor(ident(ArtifactKind.FIRMWARE, "", 4, text("x"))), null),
    (s) => put(s, cfg, ident(ArtifactKind.CONFIGURATION, "", 1, cfg)),
    (s) => put(s, regs[2], ident(ArtifactKind.STATION_REGISTER, "ST-9", 3, regs[2])),
    (s) => assert.equal(s.recordAuthority(900, "tech"), null),
  ];
  const geometry = { pageSize: 512, pageCount: 40 };
  // The clean run: the state after each op and the flash steps it ended at.
  const clean = new SimFlash(geometry);
  const states: Snapshot[] = [snapshot(clean)];
  const ends: number[] = [];
  for (const op of ops) {
    op(newStore(clean));
    ends.push(clean.steps);
    states.push(snapshot(clean));
  }
  const total = clean.steps;
  const seen = new Set<number>();
  for (let k = 0; k <= total; k++) {
    const flash = new SimFlash({ ...geometry, seed: 7 + k });
    flash.armPowerCut(k);
    let done = 0;
    try {
      for (const op of ops) {
        op(newStore(flash));
        done++;
      }
      flash.disarmPowerCut();
    } catch (e) {
      if (!(e instanceof PowerCut)) throw e;
      flash.restorePower();
    }
    const after = snapshot(flash);
    const completed = ends.filter((e) => e <= k).length;
    const ok = [states[completed], states[Math.min(completed + 1, ops.length)]].some((s) => JSON.stringify(s) === JSON.stringify(after));
    assert.ok(ok, `cut at step ${k} (${done} ops done, ${completed} complete): ${JSON.stringify(after)}`);
    seen.add(states.findIndex((s) => JSON.stringify(s) === JSON.stringify(after)));
    // The store still works after the cut: a newer version goes in.
    const s = newStore(flash);
    const v4 = signArtifact({ kind: ArtifactKind.STATION_REGISTER, stationId: "ST-9", version: 4, body: new Uint8Array(100).fill(4) }, commission);
    put(s, v4, ident(ArtifactKind.STATION_REGISTER, "ST-9", 4, v4));
    assert.equal(newStore(flash).floor(ArtifactKind.STATION_REGISTER, "ST-9")?.version, 4);
  }
  assert.ok(seen.size >= ops.length, `cuts left the store in ${seen.size} distinct states`);
});
