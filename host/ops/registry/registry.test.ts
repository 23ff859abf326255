import { test } from "node:test";
import assert from "node:assert/strict";
import { SqliteOpsStore } from "../store/sqlite_store.ts";
import { exportRegistry, parseRegistry, registryEntry, RegistryError } from "./registry.ts";

const KEY = "a1".repeat(64);
const HEADER = "deviceId,publicKeyHex,role,governorate,office,stationId,site";

test("CSV and JSON import, export round trip", () => {
  const devices = parseRegistry(`${HEADER}\nVVD-1,${KEY},verification,G,O,S1,site-a\r\nRAD-1,04${KEY.toUpperCase()},result,G,"O, north",S1,site-a\n\n`);
  assert.equal(devices.length, 2);
  assert.equal(devices[1].publicKeyHex, KEY, "SEC1 prefix dropped, lower case");
  assert.equal(devices[1].office, "O, north");
  const s = new SqliteOpsStore(":memory:");
  s.upsertDevices(devices);
  assert.deepEqual(parseRegistry(exportRegistry(s, "csv")), s.devices());
  assert.deepEqual(parseRegistry(exportRegistry(s, "json")), s.devices());
  s.close();
});

test("bad rows are named", () => {
  assert.throws(() => parseRegistry(`${HEADER}\nVVD-1,${KEY.slice(2)},verification,G,O,S,s`), (e: Error) => e instanceof RegistryError && /row 2 \(VVD-1\).*63 bytes/.test(e.message));
  assert.throws(() => parseRegistry(`${HEADER}\nVVD-1,${KEY},verification,G,O,S,s\nVVD-2,${KEY},printer,G,O,S,s`), /row 3 \(VVD-2\): unknown role "printer"/);
  assert.throws(() => parseRegistry(`${HEADER}\nVVD-1,${KEY},verification,G,O,S,s\nVVD-1,${KEY},result,G,O,S,s`), /row 3: duplicate deviceId VVD-1 \(also row 2\)/);
  assert.throws(() => parseRegistry(`deviceId,key\n`), /header/);
  assert.throws(() => parseRegistry(JSON.stringify([{ deviceId: "a/b", publicKeyHex: KEY, role: "result" }])), /entry 1: deviceId "a\/b"/);
  assert.throws(() => parseRegistry(`${HEADER}\nVVD-1,${KEY},verification,G,O,S`), /row 2: 6 fields/);
});

test("registryEntry from a raw public key", () => {
  const e = registryEntry("VVD-9", new Uint8Array(64).fill(0xa1), { role: "verification", site: "x" });
  assert.equal(e.publicKeyHex, KEY);
  assert.equal(e.site, "x");
  assert.throws(() => registryEntry("VVD-9", new Uint8Array(33)), /64 bytes/);
});
