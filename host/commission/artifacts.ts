// Commission-signed artifacts (Node side): the SignedArtifact of protocol/pollkit.proto, encoded
// with the device's own codec so that the bytes signed are the bytes the device re-encodes
// (canonical: fields in number order, defaults left out), signed over SHA-256 of the artifact
// encoded with `signature` empty.

import {
  ArtifactKind,
  decodeSignedArtifact,
  decodeTechnicianToken,
  encodeSignedArtifact,
  encodeTechnicianToken,
  type SignedArtifact,
  type TechnicianToken,
} from "../../protocol/generated/device_codec.ts";
import { signP256, verifyP256, type P256Key } from "./keys.ts";

/** The kinds a person names on the command line. */
export const ARTIFACT_KIND_NAMES = {
  firmware: ArtifactKind.FIRMWARE,
  "station-register": ArtifactKind.STATION_REGISTER,
  election: ArtifactKind.ELECTION_DEFINITION,
  config: ArtifactKind.CONFIGURATION,
} as const;

export type ArtifactKindName = keyof typeof ARTIFACT_KIND_NAMES;

export function isArtifactKindName(v: unknown): v is ArtifactKindName {
  return typeof v === "string" && Object.prototype.hasOwnProperty.call(ARTIFACT_KIND_NAMES, v);
}

export interface ArtifactSpec {
  kind: number;
  /** "" (or absent): valid at any station. */
  stationId?: string;
  electionId?: string;
  /** Grows per (kind, station); at least 1. */
  version: number;
  /** Default: now. */
  issuedMs?: number;
  body: Uint8Array;
}

/** The bytes the commission's signature covers: the artifact encoded with `signature` empty. */
export function artifactSigningBytes(a: SignedArtifact): Uint8Array {
  return encodeSignedArtifact({ kind: a.kind, stationId: a.stationId, electionId: a.electionId, version: a.version, issuedMs: a.issuedMs, body: a.body });
}

/** Signs an artifact with the commission's key; returns the encoded SignedArtifact. */
export function signArtifact(spec: ArtifactSpec, key: P256Key): Uint8Array {
  if (!Number.isSafeInteger(spec.version) || spec.version < 1 || spec.version > 0xffffffff) throw new RangeError(`version must be an integer 1..4294967295, not ${spec.version}`);
  if (!Number.isSafeInteger(spec.kind) || spec.kind <= 0) throw new RangeError(`bad artifact kind ${spec.kind}`);
  const a: SignedArtifact = {
    kind: spec.kind,
    stationId: spec.stationId ?? "",
    electionId: spec.electionId ?? "",
    version: spec.version,
    issuedMs: spec.issuedMs ?? Date.now(),
    body: spec.body,
  };
  a.signature = signP256(key, artifactSigningBytes(a));
  return encodeSignedArtifact(a);
}

/** Decodes and checks an artifact against a commission public key (X || Y). */
export function openArtifact(bytes: Uint8Array, commissionPublicKey: Uint8Array): { artifact: SignedArtifact; valid: boolean } {
  const artifact = decodeSignedArtifact(bytes);
  const valid = verifyP256(commissionPublicKey, artifactSigningBytes(artifact), artifact.signature ?? new Uint8Array(0));
  return { artifact, valid };
}

export interface TokenSpec {
  technicianId: string;
  /** A site id, or "*" for every site. */
  site: string;
  notBefore: number;
  expires: number;
  technicianPublicKey: Uint8Array;
  /** Default: now. */
  issuedMs?: number;
}

/** A technician token (SignedArtifact of kind TECHNICIAN_TOKEN), signed by the commission. */
export function issueToken(spec: TokenSpec, key: P256Key): Uint8Array {
  if (spec.technicianId === "") throw new Error("a token names its technician");
  if (spec.site === "") throw new Error('a token names a site (or "*")');
  if (spec.technicianPublicKey.length !== 64) throw new Error("the technician's public key has 64 bytes (X || Y)");
  if (!(spec.expires > spec.notBefore)) throw new Error("a token must expire after it becomes valid");
  const body: TechnicianToken = {
    technicianId: spec.technicianId,
    site: spec.site,
    notBeforeMs: spec.notBefore,
    expiresMs: spec.expires,
    publicKey: spec.technicianPublicKey,
  };
  return signArtifact({ kind: ArtifactKind.TECHNICIAN_TOKEN, version: 1, issuedMs: spec.issuedMs, body: encodeTechnicianToken(body) }, key);
}

/** A token's artifact and body; throws with a reason when it is not a technician token. */
export function readToken(bytes: Uint8Array): { artifact: SignedArtifact; token: TechnicianToken } {
  let artifact: SignedArtifact;
  try {
    artifact = decodeSignedArtifact(bytes);
  } catch (e) {
    throw new Error(`not a signed artifact: ${(e as { message?: string }).message ?? String(e)}`);
  }
  if (artifact.kind !== ArtifactKind.TECHNICIAN_TOKEN) throw new Error(`not a technician token (artifact kind ${artifact.kind})`);
  let token: TechnicianToken;
  try {
    token = decodeTechnicianToken(artifact.body ?? new Uint8Array(0));
  } catch (e) {
    throw new Error(`token body does not decode: ${(e as { message?: string }).message ?? String(e)}`);
  }
  return { artifact, token };
}
