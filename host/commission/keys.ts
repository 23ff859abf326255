// P-256 keys of the commission and of technicians (Node side): generation, files, ECDSA with
// SHA-256 in the IEEE P1363 form (r || s, 64 bytes) that the device's secure element checks.
//
// Files: a private key is PKCS#8 PEM (readable by openssl), written with mode 0600; a public key
// is the device's form, X || Y as 128 hex digits on one line (a PEM SPKI public key is read too).

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface P256Key {
  privateKey: KeyObject;
  /** X || Y, 64 bytes: what DeviceIdentity.commissionKey and TechnicianToken.public_key hold. */
  publicKey: Uint8Array;
}

/** The X || Y form of a P-256 public (or private) key. */
export function publicKeyXY(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const jwk = pub.export({ format: "jwk" });
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new Error("not a P-256 key");
  }
  const out = new Uint8Array(64);
  out.set(Buffer.from(jwk.x, "base64url"), 0);
  out.set(Buffer.from(jwk.y, "base64url"), 32);
  return out;
}

function fromPrivate(privateKey: KeyObject): P256Key {
  return { privateKey, publicKey: publicKeyXY(privateKey) };
}

/** A new P-256 key pair. */
export function createKey(): P256Key {
  return fromPrivate(generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey);
}

/** The commission's signing key (kept offline; its public half is provisioned into every device). */
export function createCommissionKey(): P256Key {
  return createKey();
}

/** A technician's key (held by the technician's CLI; its public half goes into their token). */
export function technicianKey(): P256Key {
  return createKey();
}

/** ECDSA P-256 over SHA-256(message), r || s. */
export function signP256(key: P256Key | KeyObject, message: Uint8Array): Uint8Array {
  const k = "privateKey" in key ? key.privateKey : key;
  return new Uint8Array(sign("sha256", message, { key: k, dsaEncoding: "ieee-p1363" }));
}

/** A KeyObject for an X || Y public key. */
export function publicKeyObject(xy: Uint8Array): KeyObject {
  if (xy.length !== 64) throw new Error(`a P-256 public key has 64 bytes (X || Y), not ${xy.length}`);
  return createPublicKey({
    key: { kty: "EC", crv: "P-256", x: Buffer.from(xy.subarray(0, 32)).toString("base64url"), y: Buffer.from(xy.subarray(32)).toString("base64url") },
    format: "jwk",
  });
}

export function verifyP256(xy: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify("sha256", message, { key: publicKeyObject(xy), dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

export function privateKeyPem(key: P256Key): string {
  return key.privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

export function publicKeyHex(xy: Uint8Array): string {
  return Buffer.from(xy).toString("hex");
}

/** A private key from PKCS#8 (or SEC1) PEM text; it must be P-256. */
export function parsePrivateKey(pem: string): P256Key {
  let k: KeyObject;
  try {
    k = createPrivateKey(pem);
  } catch (e) {
    throw new Error(`not a private key in PEM form: ${(e as Error).message}`);
  }
  if (k.asymmetricKeyType !== "ec" || k.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("not a P-256 (prime256v1) key");
  return fromPrivate(k);
}

/** A public key from 128 hex digits (X || Y), 130 with the 04 prefix, or SPKI PEM. */
export function parsePublicKey(text: string): Uint8Array {
  const t = text.trim();
  if (t.startsWith("-----BEGIN")) {
    let k: KeyObject;
    try {
      k = createPublicKey(t);
    } catch (e) {
      throw new Error(`not a public key in PEM form: ${(e as Error).message}`);
    }
    return publicKeyXY(k);
  }
  const hex = t.length === 130 && t.startsWith("04") ? t.slice(2) : t;
  if (!/^[0-9a-fA-F]{128}$/.test(hex)) throw new Error("a public key is 128 hex digits (X || Y) or a PEM public key");
  const xy = new Uint8Array(Buffer.from(hex, "hex"));
  publicKeyObject(xy); // throws when the point is not on the curve
  return xy;
}

export function readPrivateKeyFile(file: string): P256Key {
  return parsePrivateKey(readFileSync(file, "utf8"));
}

export function readPublicKeyFile(file: string): Uint8Array {
  return parsePublicKey(readFileSync(file, "utf8"));
}

/** Writes `<base>.key` (0600) and `<base>.pub`; refuses to overwrite unless `force`. */
export function writeKeyPair(base: string, key: P256Key, force: boolean): { keyFile: string; pubFile: string } {
  const keyFile = `${base}.key`;
  const pubFile = `${base}.pub`;
  if (!force && (existsSync(keyFile) || existsSync(pubFile))) throw new Error(`${keyFile} already exists (use --force to replace it)`);
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(keyFile, privateKeyPem(key), { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(pubFile, publicKeyHex(key.publicKey) + "\n");
  return { keyFile, pubFile };
}
