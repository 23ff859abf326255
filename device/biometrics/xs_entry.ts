// XS entry for the matcher's engine test and benchmark (bundled by bench/match_xs.ts): parses,
// prepares and scores templates inside XS, and runs the metered match the benchmark counts.
//
// Requests (ArrayBuffer, first byte the operation):
//   1 ENROL      payload: an ISO/IEC 19794-2 record; parsed and prepared, kept as the enrolled
//                template. Reply: status (0 ok, else the TEMPLATE_ERR_* code), minutiae count.
//   2 ENROL_PREP payload: serializePrepared bytes, loaded as the enrolled template. Reply: status
//                (0 ok, 1 refused).
//   3 PROBE      payload: an ISO record, kept (a copy) for RUN. Empty reply.
//   4 RUN        [4, dry]: parse the kept probe + prepare it + score it against the enrolled
//                template. With dry = 1 it takes the same path but skips the work, so
//                compute(RUN) - compute(RUN dry) is the match alone. Reply: status, score (2 bytes
//                big-endian), or nothing when dry.
//   5 PREPARED   the serializePrepared bytes of the enrolled template.
//   6 STAGE      [6, stage]: 0 nothing, 1 parse the kept probe, 2 parse and prepare it (a cost
//                breakdown of RUN: compute(stage) - compute(stage 0)). Empty reply.
import { parseTemplate } from "./iso19794.ts";
import { loadPrepared, prepare, prepareProbe, scorePrepared, serializePrepared, type Prepared } from "./matcher.ts";

const EMPTY = new ArrayBuffer(0);
let enrolled: Prepared | null = null;
let probe: Uint8Array = new Uint8Array(0);

function reply(bytes: number[]): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i];
  return out.buffer;
}

function run(): ArrayBuffer {
  const r = parseTemplate(probe);
  if (r.template === null || enrolled === null) return reply([r.error === 0 ? 255 : r.error, 0, 0]);
  const s = scorePrepared(enrolled, prepareProbe(r.template));
  return reply([0, s >> 8, s & 255]);
}

function handle(buf: ArrayBuffer): ArrayBuffer {
  const req = new Uint8Array(buf);
  const op = req[0];
  // The metered operation first, with the least work before it; `dry` skips only the work.
  if (op === 4) {
    if (req[1] === 1) return EMPTY;
    return run();
  }
  if (op === 6) {
    // Stages of RUN for a cost breakdown: [6, stage] 0 nothing, 1 parse, 2 parse + prepare.
    if (req[1] === 0) return EMPTY;
    const r = parseTemplate(probe);
    if (req[1] === 1 || r.template === null) return EMPTY;
    prepareProbe(r.template);
    return EMPTY;
  }
  const payload = req.subarray(1);
  if (op === 1) {
    const r = parseTemplate(payload);
    if (r.template === null) return reply([r.error, 0]);
    enrolled = prepare(r.template);
    return reply([0, enrolled.n]);
  }
  if (op === 2) {
    enrolled = loadPrepared(payload);
    return reply([enrolled === null ? 1 : 0]);
  }
  if (op === 3) {
    probe = payload.slice();
    return EMPTY;
  }
  if (op === 5) {
    if (enrolled === null) return EMPTY;
    const bytes = serializePrepared(enrolled);
    const out = new Uint8Array(bytes.length);
    out.set(bytes);
    return out.buffer;
  }
  return reply([254]);
}

const host = globalThis as unknown as { handleCommand: (buf: ArrayBuffer) => ArrayBuffer };
host.handleCommand = handle;
