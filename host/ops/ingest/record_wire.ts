// Reads a Record's protobuf bytes without protobufjs (the hot path of ingest): the fields ingest
// needs and the signing bytes, i.e. the stored bytes with every field-5 (signature) occurrence
// removed. Removing the field, rather than re-encoding, keeps unknown fields exactly as the device
// signed them. Strict: a truncated varint, a length past the end, a group wire type, a known
// field with the wrong wire type, a value above 2^53 - 1 or a repeated signature is an error.

export interface RecordFields {
  seq: number;
  timeMs: number;
  kind: number;
  prevSeq: number;
  payload: Uint8Array;
  /** null when absent. */
  signature: Uint8Array | null;
  /** The bytes the signature covers. */
  signingBytes: Uint8Array;
}

export class WireError extends Error {}

const VARINT_FIELDS = new Set([1, 2, 3, 6]);
const BYTES_FIELDS = new Set([4, 5]);

export function readRecord(b: Uint8Array): RecordFields {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= b.length) throw new WireError(`truncated varint at offset ${pos}`);
      const byte = b[pos++];
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) {
        if (result > Number.MAX_SAFE_INTEGER) throw new WireError(`varint above 2^53 - 1 ending at offset ${pos}`);
        return result;
      }
      mul *= 128;
    }
    throw new WireError(`varint longer than 10 bytes at offset ${pos}`);
  };
  const out: RecordFields = { seq: 0, timeMs: 0, kind: 0, prevSeq: 0, payload: new Uint8Array(0), signature: null, signingBytes: b };
  let sigStart = -1;
  let sigEnd = -1;
  while (pos < b.length) {
    const tagAt = pos;
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) throw new WireError(`field number 0 at offset ${tagAt}`);
    if (VARINT_FIELDS.has(field) && wire !== 0) throw new WireError(`field ${field} has wire type ${wire}, expected 0 (varint)`);
    if (BYTES_FIELDS.has(field) && wire !== 2) throw new WireError(`field ${field} has wire type ${wire}, expected 2 (bytes)`);
    switch (wire) {
      case 0: {
        const v = varint();
        if (field === 1) out.seq = v;
        else if (field === 2) out.timeMs = v;
        else if (field === 3) out.kind = v;
        else if (field === 6) out.prevSeq = v;
        break;
      }
      case 1:
        if (pos + 8 > b.length) throw new WireError(`fixed64 field ${field} runs past the end`);
        pos += 8;
        break;
      case 2: {
        const len = varint();
        if (pos + len > b.length) throw new WireError(`field ${field} (length ${len}) runs past the end of the message`);
        if (field === 4) out.payload = b.subarray(pos, pos + len);
        else if (field === 5) {
          if (sigStart >= 0) throw new WireError("more than one signature field");
          out.signature = b.subarray(pos, pos + len);
          sigStart = tagAt;
          sigEnd = pos + len;
        }
        pos += len;
        break;
      }
      case 5:
        if (pos + 4 > b.length) throw new WireError(`fixed32 field ${field} runs past the end`);
        pos += 4;
        break;
      default:
        throw new WireError(`invalid wire type ${wire} at offset ${tagAt}`);
    }
  }
  if (sigStart >= 0) {
    const s = new Uint8Array(b.length - (sigEnd - sigStart));
    s.set(b.subarray(0, sigStart), 0);
    s.set(b.subarray(sigEnd), sigStart);
    out.signingBytes = s;
  }
  return out;
}
