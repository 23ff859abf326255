// The authority against the real secure element (ATECC608 model, real driver) and the real
// artifact store: commission-signed artifacts accepted or refused with a reason; technician
// authority on commands accepted once, for one command, one device, one site, one time window.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  AUTH_ERR_BAD_SIGNATURE,
  AUTH_ERR_CLOCK,
  AUTH_ERR_EXPIRED,
  AUTH_ERR_MALFORMED,
  AUTH_ERR_MISSING,
  AUTH_ERR_NO_KEY,
  AUTH_ERR_NOT_YET_VALID,
  AUTH_ERR_OTHER_SITE,
  AUTH_ERR_OTHER_STATION,
  AUTH_ERR_REPLAY,
  AUTH_ERR_ROLLBACK,
  AUTH_ERR_UNSIGNED,
  AUTH_ERR_WRONG_KIND,
  parseArtifactHeader,
  type ArtifactHeader,
  type AuthError,
} from "./authority.ts";
import { flashSource, memorySource } from "./artifact_store.ts";
import {
  ArtifactKind,
  decodeAuthority,
  decodeSignedArtifact,
  encodeAuthority,
  encodeSignedArtifact,
  type Command,
  type SignedArtifact,
} from "../../protocol/generated/device_codec.ts";
import { createCommissionKey } from "../../host/commission/keys.ts";
import { signArtifact } from "../../host/commission/artifacts.ts";
import { authorize } from "../../host/commission/authorize.ts";
import { DAY_MS, RIG_NOW, deviceRig, settle, technicianRig, type DeviceRig } from "../../host/commission/testing.ts";

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "utf8"));

function verify(rig: DeviceRig, bytes: Uint8Array, kind: number): { err: AuthError | null; a?: SignedArtifact } {
  const [err, a] = settle<[AuthError | null, SignedArtifact?]>(rig.clock, (cb) => rig.authority.verifyArtifact(bytes, kind, cb));
  return { err, a };
}

function refused(rig: DeviceRig, bytes: Uint8Array, kind: number, code: number, pattern: RegExp): void {
  const r = verify(rig, bytes, kind);
  assert.ok(r.err !== null, `expected refusal ${pattern}`);
  assert.equal(r.err.code, code, r.err.message);
  assert.match(r.err.message, pattern);
}

/** Accepts an artifact the way the transfer does: verify, then commit it to the store. */
function accept(rig: DeviceRig, bytes: Uint8Array, kind: number): ArtifactHeader {
  const [err, h] = settle<[AuthError | null, ArtifactHeader?]>(rig.clock, (cb) => rig.authority.verifySource(memorySource(bytes), kind, cb));
  assert.equal(err, null, err?.message);
  const st = rig.store.staging();
  assert.equal(st.begin(bytes.length), null);
  assert.equal(st.write(0, bytes), true);
  assert.equal(st.commit(h!), null);
  return h!;
}

const register = (o: { station?: string; version?: number; body?: Uint8Array; key?: ReturnType<typeof createCommissionKey> }, rig: DeviceRig): Uint8Array =>
  signArtifact(
    { kind: ArtifactKind.STATION_REGISTER, stationId: o.station ?? "ST-1", electionId: "E-2026", version: o.version ?? 1, issuedMs: RIG_NOW, body: o.body ?? text("register") },
    o.key ?? rig.commission,
  );

test("a commission-signed artifact is accepted and decoded; the digest is what the commission signed", () => {
  const rig = deviceRig();
  const bytes = register({}, rig);
  const r = verify(rig, bytes, ArtifactKind.STATION_REGISTER);
  assert.equal(r.err, null, r.err?.message);
  assert.equal(r.a?.stationId, "ST-1");
  assert.deepEqual(r.a?.body, text("register"));
  const h = accept(rig, bytes, ArtifactKind.STATION_REGISTER);
  assert.equal(h.version, 1);
  assert.equal(rig.store.stationId(), "ST-1", "the first register binds the device to its station");
});

test("unsigned, tampered, wrongly signed, wrong kind and malformed artifacts are refused with their reason", () => {
  const rig = deviceRig();
  const good = register({}, rig);
  const a = decodeSignedArtifact(good);
  refused(rig, encodeSignedArtifact({ ...a, signature: new Uint8Array(0) }), ArtifactKind.STATION_REGISTER, AUTH_ERR_UNSIGNED, /not signed/);
  refused(rig, encodeSignedArtifact({ ...a, body: text("registes") }), ArtifactKind.STATION_REGISTER, AUTH_ERR_BAD_SIGNATURE, /not signed by the commission/);
  refused(rig, encodeSignedArtifact({ ...a, version: 2 }), ArtifactKind.STATION_REGISTER, AUTH_ERR_BAD_SIGNATURE, /not signed by the commission/);
  refused(rig, register({ key: createCommissionKey() }, rig), ArtifactKind.STATION_REGISTER, AUTH_ERR_BAD_SIGNATURE, /not signed by the commission/);
  refused(rig, good, ArtifactKind.ELECTION_DEFINITION, AUTH_ERR_WRONG_KIND, /station register where a election definition was expected/);
  refused(rig, good.subarray(0, good.length - 10), ArtifactKind.STATION_REGISTER, AUTH_ERR_MALFORMED, /malformed|past the end/);
  refused(rig, encodeSignedArtifact({ ...a, signature: new Uint8Array(63) }), ArtifactKind.STATION_REGISTER, AUTH_ERR_MALFORMED, /63 bytes/);
  refused(rig, new Uint8Array([0xff, 0xff, 0xff]), ArtifactKind.STATION_REGISTER, AUTH_ERR_MALFORMED, /malformed/);
  refused(
    rig,
    signArtifact({ kind: ArtifactKind.STATION_REGISTER, version: 1, body: text("x") }, rig.commission).map((b, i, all) => (i === all.length - 1 ? b ^ 1 : b)),
    ArtifactKind.STATION_REGISTER,
    AUTH_ERR_BAD_SIGNATURE,
    /not signed/,
  );
  assert.equal(rig.store.held(ArtifactKind.STATION_REGISTER), null, "nothing was stored");
  assert.equal(rig.store.floors().length, 0, "no floor moved");
  // A device provisioned without a commission key accepts nothing signed.
  const bare = deviceRig({ provisioned: false });
  refused(bare, register({}, bare), ArtifactKind.STATION_REGISTER, AUTH_ERR_NO_KEY, /no commission key/);
});

test("an artifact for another station is refused once the device knows its station", () => {
  const rig = deviceRig();
  accept(rig, register({ station: "ST-1" }, rig), ArtifactKind.STATION_REGISTER);
  refused(rig, register({ station: "ST-2", version: 5 }, rig), ArtifactKind.STATION_REGISTER, AUTH_ERR_OTHER_STATION, /for station ST-2; this device serves station ST-1/);
  const election = signArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, stationId: "ST-2", version: 1, body: text("e") }, rig.commission);
  refused(rig, election, ArtifactKind.ELECTION_DEFINITION, AUTH_ERR_OTHER_STATION, /station ST-2/);
  const anyStation = signArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, stationId: "", version: 1, body: text("e") }, rig.commission);
  assert.equal(verify(rig, anyStation, ArtifactKind.ELECTION_DEFINITION).err, null, "station \"\" is valid anywhere");
  // A configuration cannot move the device to another station while it holds ST-1's data.
  const move = signArtifact({ kind: ArtifactKind.CONFIGURATION, version: 1, body: text("station=ST-2\nsite=S\n") }, rig.commission);
  refused(rig, move, ArtifactKind.CONFIGURATION, AUTH_ERR_OTHER_STATION, /clear the election first/);
  const mismatch = signArtifact({ kind: ArtifactKind.CONFIGURATION, stationId: "ST-1", version: 1, body: text("station=ST-3\n") }, rig.commission);
  refused(rig, mismatch, ArtifactKind.CONFIGURATION, AUTH_ERR_MALFORMED, /names station ST-3/);
  // After the election is cleared it can, and the configuration then names the station.
  assert.equal(rig.store.drop([ArtifactKind.STATION_REGISTER]), null);
  accept(rig, move, ArtifactKind.CONFIGURATION);
  assert.equal(rig.store.stationId(), "ST-2");
  assert.equal(rig.store.site(), "S");
  refused(rig, register({ station: "ST-1", version: 9 }, rig), ArtifactKind.STATION_REGISTER, AUTH_ERR_OTHER_STATION, /serves station ST-2/);
});

test("no rollback: older versions are refused; the same version reloads only with the same content", () => {
  const rig = deviceRig();
  accept(rig, register({ version: 5 }, rig), ArtifactKind.STATION_REGISTER);
  refused(rig, register({ version: 4 }, rig), ArtifactKind.STATION_REGISTER, AUTH_ERR_ROLLBACK, /version 4 is older than version 5/);
  refused(rig, register({ version: 5, body: text("other") }, rig), ArtifactKind.STATION_REGISTER, AUTH_ERR_ROLLBACK, /already accepted with other content/);
  const again = register({ version: 5 }, rig); // signed again: another signature (ECDSA is randomised), same content
  assert.notDeepEqual(again, register({ version: 5 }, rig));
  const [err, h] = settle<[AuthError | null, ArtifactHeader?]>(rig.clock, (cb) => rig.authority.verifySource(memorySource(again), ArtifactKind.STATION_REGISTER, cb));
  assert.equal(err, null);
  assert.equal(h?.reload, true);
  // The floor is on flash: a reboot does not forget it.
  rig.reboot();
  refused(rig, register({ version: 4 }, rig), ArtifactKind.STATION_REGISTER, AUTH_ERR_ROLLBACK, /older/);
  assert.equal(verify(rig, register({ version: 6 }, rig), ArtifactKind.STATION_REGISTER).err, null);
});

test("a large artifact is parsed and verified from flash without holding its body", () => {
  const rig = deviceRig({ pageSize: 1024, pages: 512 });
  const body = new Uint8Array(randomBytes(70000));
  const bytes = signArtifact({ kind: ArtifactKind.FIRMWARE, version: 2, body }, rig.commission);
  const flash = rig.regions.firmware;
  for (let p = 0; p * 1024 < bytes.length; p++) {
    flash.erase(p);
    flash.program(p, 0, bytes.subarray(p * 1024, Math.min(bytes.length, (p + 1) * 1024)));
  }
  const src = flashSource(flash, 0, bytes.length);
  const h = parseArtifactHeader(src);
  assert.ok(typeof h !== "string");
  assert.equal(h.bodyLength, body.length);
  const [err] = settle<[AuthError | null]>(rig.clock, (cb) => rig.authority.verifySource(src, ArtifactKind.FIRMWARE, cb));
  assert.equal(err, null, err?.message);
  // Fields after the body (the signature) and a station id longer than the parse window work too.
  const long = signArtifact({ kind: ArtifactKind.ELECTION_DEFINITION, stationId: "S".repeat(700), version: 1, body }, rig.commission);
  const lh = parseArtifactHeader(memorySource(long));
  assert.ok(typeof lh !== "string" && lh.stationId.length === 700, String(lh));
});

// ---------------------------------------------------------------------------------------------
// Commands

function check(rig: DeviceRig, cmd: Command): { err: AuthError | null; tech?: string } {
  const [err, tech] = settle<[AuthError | null, string?]>(rig.clock, (cb) => rig.authority.checkCommand(cmd, cb));
  return { err, tech };
}

function denied(rig: DeviceRig, cmd: Command, code: number, pattern: RegExp): void {
  const before = rig.store.lastIssuedMs();
  const r = check(rig, cmd);
  assert.ok(r.err !== null, `expected denial ${pattern}`);
  assert.equal(r.err.code, code, r.err.message);
  assert.match(r.err.message, pattern);
  assert.equal(rig.store.lastIssuedMs(), before, "a denial moves nothing");
}

test("technician authority: accepted once for its command and device, persisted against replay", () => {
  const rig = deviceRig();
  const tech = technicianRig(rig.commission, { technicianId: "tech-amal" });
  const cmd = authorize({ id: 0x80000001, reboot: { delayMs: 0 } }, rig.deviceId, tech.token, tech.key, RIG_NOW);
  const ok = check(rig, cmd);
  assert.equal(ok.err, null, ok.err?.message);
  assert.equal(ok.tech, "tech-amal");
  assert.equal(rig.authority.technicianId(), "tech-amal");
  denied(rig, cmd, AUTH_ERR_REPLAY, /not newer than the last accepted/);
  rig.reboot();
  denied(rig, cmd, AUTH_ERR_REPLAY, /a replay/);
  const later = authorize({ id: 0x80000002, reboot: { delayMs: 0 } }, rig.deviceId, tech.token, tech.key, RIG_NOW + 1);
  assert.equal(check(rig, later).err, null, "the next authority goes through (the token is cached or not)");
});

test("commands without authority, with a forged, expired, misplaced or misdirected one are denied", () => {
  const rig = deviceRig({ deviceId: "RAD-000042" });
  const cfg = signArtifact({ kind: ArtifactKind.CONFIGURATION, version: 1, body: text("site=BAGHDAD-WH\n") }, rig.commission);
  accept(rig, cfg, ArtifactKind.CONFIGURATION);
  const tech = technicianRig(rig.commission, { site: "BAGHDAD-WH" });
  const cmd: Command = { id: 0x80000010, setChargeMode: { mode: 2 } };
  let t = RIG_NOW - 1000;
  const signed = (c: Command, o: { token?: Uint8Array; device?: string; key?: typeof tech.key } = {}): Command =>
    authorize(c, o.device ?? rig.deviceId, o.token ?? tech.token, o.key ?? tech.key, ++t);

  denied(rig, cmd, AUTH_ERR_MISSING, /needs a technician's authority/);
  denied(rig, { ...cmd, authority: new Uint8Array([1, 2, 3]) }, AUTH_ERR_MALFORMED, /does not decode/);
  const expired = technicianRig(rig.commission, { site: "*", notBefore: RIG_NOW - 40 * DAY_MS, expires: RIG_NOW - DAY_MS });
  denied(rig, signed(cmd, { token: expired.token, key: expired.key }), AUTH_ERR_EXPIRED, /expired/);
  const future = technicianRig(rig.commission, { site: "*", notBefore: RIG_NOW + DAY_MS });
  denied(rig, signed(cmd, { token: future.token, key: future.key }), AUTH_ERR_NOT_YET_VALID, /valid from/);
  const elsewhere = technicianRig(rig.commission, { site: "BASRA-WH" });
  denied(rig, signed(cmd, { token: elsewhere.token, key: elsewhere.key }), AUTH_ERR_OTHER_SITE, /for site BASRA-WH; this device is at site BAGHDAD-WH/);
  const forged = technicianRig(createCommissionKey(), { site: "*" });
  denied(rig, signed(cmd, { token: forged.token, key: forged.key }), AUTH_ERR_BAD_SIGNATURE, /not signed by the commission/);
  denied(rig, signed(cmd, { key: forged.key }), AUTH_ERR_BAD_SIGNATURE, /does not match/);
  denied(rig, signed(cmd, { device: "RAD-000043" }), AUTH_ERR_BAD_SIGNATURE, /does not match this command, this device/);
  // A signature over another command, moved onto this one.
  const other = signed({ id: 0x80000010, setChargeMode: { mode: 1 } });
  denied(rig, { ...cmd, authority: other.authority }, AUTH_ERR_BAD_SIGNATURE, /does not match/);
  const otherId = signed({ id: 0x80000011, setChargeMode: { mode: 2 } });
  denied(rig, { ...cmd, authority: otherId.authority }, AUTH_ERR_BAD_SIGNATURE, /does not match/);
  // A token of another kind in place of the technician token.
  const a = decodeAuthority(signed(cmd).authority!);
  denied(rig, { ...cmd, authority: encodeAuthority({ ...a, token: cfg }) }, AUTH_ERR_WRONG_KIND, /token is a configuration/);
  // Far from the device clock.
  denied(rig, authorize(cmd, rig.deviceId, tech.token, tech.key, RIG_NOW + 2 * 3600000), AUTH_ERR_CLOCK, /set the device's time/);
  assert.equal(rig.store.lastIssuedMs(), 0, "nothing was accepted");
  assert.equal(check(rig, signed(cmd)).err, null, "the genuine one passes");
});

test("a device with an unset clock accepts only SetTime, checked against issued_ms and the time set", () => {
  const rig = deviceRig({ wallMs: 0 });
  const tech = technicianRig(rig.commission);
  denied(rig, authorize({ id: 0x80000020, reboot: {} }, rig.deviceId, tech.token, tech.key, RIG_NOW), AUTH_ERR_CLOCK, /clock is not set/);
  denied(
    rig,
    authorize({ id: 0x80000021, setTime: { unixMs: RIG_NOW + 400 * DAY_MS } }, rig.deviceId, tech.token, tech.key, RIG_NOW),
    AUTH_ERR_EXPIRED,
    /outside the token's validity/,
  );
  denied(
    rig,
    authorize({ id: 0x80000022, setTime: { unixMs: RIG_NOW } }, rig.deviceId, tech.token, tech.key, RIG_NOW + 400 * DAY_MS),
    AUTH_ERR_EXPIRED,
    /expired/,
  );
  const ok = check(rig, authorize({ id: 0x80000023, setTime: { unixMs: RIG_NOW } }, rig.deviceId, tech.token, tech.key, RIG_NOW));
  assert.equal(ok.err, null, ok.err?.message);
});

test("a site-less device accepts only tokens for every site", () => {
  const rig = deviceRig();
  const siteBound = technicianRig(rig.commission, { site: "X" });
  denied(rig, authorize({ id: 0x80000030, reboot: {} }, rig.deviceId, siteBound.token, siteBound.key, RIG_NOW), AUTH_ERR_OTHER_SITE, /no site yet/);
  const everywhere = technicianRig(rig.commission, { site: "*" });
  assert.equal(check(rig, authorize({ id: 0x80000031, reboot: {} }, rig.deviceId, everywhere.token, everywhere.key, RIG_NOW)).err, null);
});
