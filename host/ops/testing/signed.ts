// Test and fixture helpers: devices with real P-256 keys (node:crypto) that sign journal records
// exactly as the firmware's recorder does (signature over the Record encoded without it), the
// record payloads of the two roles, and feeding them through the real Ingest (verification in its
// worker pool) without a broker. Node only; used by tests, the browser fixture and benches.

import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import {
  encodePowerAlarm,
  encodeRecord,
  encodeStationResult,
  encodeTurnoutCounts,
  encodeVerificationEvent,
  RecordKind,
  type PowerAlarm,
  type StationResult,
  type TurnoutCounts,
  type VerificationEvent,
} from "../../../protocol/generated/device_codec.ts";
import { isSignedKind, signingBytes } from "../../../device/services/recorder.ts";
import { registryEntry } from "../registry/registry.ts";
import type { RegisteredDevice, Role, StoredRecord } from "../store/store.ts";

export interface TestDevice {
  deviceId: string;
  key: KeyObject;
  /** X || Y, 64 bytes. */
  publicKey: Uint8Array;
  publicKeyHex: string;
  entry: RegisteredDevice;
  /** The next record's sequence number. */
  nextSeq: number;
  prevSeq: number;
}

export function p256Key(): { key: KeyObject; publicKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" });
  const xy = Buffer.concat([Buffer.from(jwk.x ?? "", "base64url"), Buffer.from(jwk.y ?? "", "base64url")]);
  return { key: createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" })), publicKey: new Uint8Array(xy) };
}

export function testDevice(
  deviceId: string,
  place: { role: Role; governorate?: string; office?: string; stationId?: string; site?: string },
): TestDevice {
  const k = p256Key();
  return {
    deviceId,
    key: k.key,
    publicKey: k.publicKey,
    publicKeyHex: Buffer.from(k.publicKey).toString("hex"),
    entry: registryEntry(deviceId, k.publicKey, place),
    nextSeq: 1,
    prevSeq: 0,
  };
}

/** A Record as the device journals it: signed by `signer` (default: the device) when the kind is signed. */
export function makeRecord(dev: TestDevice, kind: number, payload: Uint8Array, timeMs: number, signer?: KeyObject): Uint8Array {
  const seq = dev.nextSeq++;
  const rec = { seq, timeMs, kind, payload, prevSeq: dev.prevSeq };
  dev.prevSeq = seq;
  if (!isSignedKind(kind)) return encodeRecord(rec);
  const signature = new Uint8Array(sign("sha256", signingBytes(rec), { key: signer ?? dev.key, dsaEncoding: "ieee-p1363" }));
  return encodeRecord({ seq, timeMs, kind, payload, prevSeq: rec.prevSeq, signature });
}

export const payload = {
  verified: (e: VerificationEvent): Uint8Array => encodeVerificationEvent(e),
  turnout: (c: TurnoutCounts): Uint8Array => encodeTurnoutCounts(c),
  result: (r: StationResult): Uint8Array => encodeStationResult(r),
  powerAlarm: (a: PowerAlarm): Uint8Array => encodePowerAlarm(a),
};

/** The stored form of a record (what ingest writes after verifying it), for feeding a store directly. */
export function storedRecord(dev: TestDevice, bytes: Uint8Array, kind: number, seq: number, timeMs: number, receivedMs: number): StoredRecord {
  return { deviceId: dev.deviceId, seq, prevSeq: seq - 1, timeMs, kind, bytes, receivedMs, site: dev.entry.site };
}

/** What ingest needs to be fed without a broker: `onMessage` and `drain`. */
export interface Feedable {
  onMessage(topic: string, payload: Buffer): void;
  drain(): Promise<void>;
}

/** Publishes records "as the agent does" straight into an Ingest and waits until they are committed. */
export async function feed(ingest: Feedable, items: Array<{ dev: TestDevice; bytes: Uint8Array }>): Promise<void> {
  for (const it of items) ingest.onMessage(`pollkit/v1/${it.dev.entry.site || "site"}/${it.dev.deviceId}/record`, Buffer.from(it.bytes));
  await ingest.drain();
}

export { RecordKind };
