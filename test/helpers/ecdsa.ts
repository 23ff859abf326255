// Verifies device signatures the way the operations console will: Node's crypto, P-256, SHA-256.

import { createPublicKey, verify } from "node:crypto";

export function verifyP256(publicKeyXY: Uint8Array, message: Uint8Array, signatureRS: Uint8Array): boolean {
  const key = createPublicKey({
    key: {
      kty: "EC",
      crv: "P-256",
      x: Buffer.from(publicKeyXY.subarray(0, 32)).toString("base64url"),
      y: Buffer.from(publicKeyXY.subarray(32, 64)).toString("base64url"),
    },
    format: "jwk",
  });
  return verify("sha256", message, { key, dsaEncoding: "ieee-p1363" }, signatureRS);
}
