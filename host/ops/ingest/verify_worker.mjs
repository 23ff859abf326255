// A verify-pool worker (plain JavaScript, so it starts without a TypeScript loader): verifies
// batches of ECDSA P-256 / SHA-256 signatures (r || s, IEEE P1363) with node:crypto. Keys arrive
// once as {t:"key"} messages and are kept as KeyObjects; a batch is one buffer of
// (signing bytes || 64-byte signature) items cut by `offs`, each with its key id in `keys`.
import { createPublicKey, verify } from "node:crypto";
import { parentPort } from "node:worker_threads";

const keys = new Map();

parentPort.on("message", (m) => {
  if (m.t === "key") {
    try {
      keys.set(m.id, createPublicKey({ key: { kty: "EC", crv: "P-256", x: m.x, y: m.y }, format: "jwk" }));
    } catch {
      keys.set(m.id, null); // not a point on the curve: every signature with it fails
    }
    return;
  }
  if (m.t === "verify") {
    const n = m.keys.length;
    const ok = new Uint8Array(n);
    const buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength);
    for (let i = 0; i < n; i++) {
      const key = keys.get(m.keys[i]);
      if (!key) continue;
      const start = m.offs[i];
      const end = m.offs[i + 1];
      if (end - start < 64) continue;
      try {
        ok[i] = verify("sha256", buf.subarray(start, end - 64), { key, dsaEncoding: "ieee-p1363" }, buf.subarray(end - 64, end)) ? 1 : 0;
      } catch {
        ok[i] = 0;
      }
    }
    parentPort.postMessage({ id: m.id, ok }, [ok.buffer]);
  }
});
