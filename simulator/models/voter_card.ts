// Contactless ISO/IEC 14443-4 cards for the PN532 model (Node side): a small ISO/IEC 7816-4 card
// (one application with transparent EFs) and the commission's voter / supervisor card issued on
// it, following the card application specified in device/drivers/voter_card.ts.
//
// The card answers (ISO/IEC 7816-4):
// - CLA other than 00: 6E00. Unknown INS: 6D00.
// - SELECT (A4) by DF name (P1 04): the application's AID selects it (P2 0C: no data; P2 00: FCI
//   6F .. 84 AID); any other name: 6A82 and nothing selected. SELECT EF (P1 02, or P1 00) by its
//   2-byte file id under the selected application: P2 04 returns the FCP 62 L 80 02 size 82 01 01
//   83 02 fid, P2 0C no data; unknown file or no application selected: 6A82; Lc not 2: 6700;
//   other P2: 6A86.
// - READ BINARY (B0) of the current EF: P1 bit 8 clear: 15-bit offset; P1 bit 8 set: SFI in
//   bits 1-5 selects the EF (SFI = low 5 bits of the file id) and P2 is the offset. Le 00 = 256.
//   No current EF: 6986. Offset past the end: 6B00. Fewer bytes left than Le: those bytes + 6282.
// - Faults for tests: `declaredSize` makes the FCP announce another size than the file holds
//   (a truncated or oversized file), `mute` stops the card answering.

import type { CardModel } from "./pn532.ts";
import { createHash } from "node:crypto";
import { CARD_EF_INFO, CARD_EF_TEMPLATE, CARD_KIND_SUPERVISOR, CARD_KIND_VOTER, VOTER_CARD_AID } from "../../device/drivers/voter_card.ts";

export interface Iso7816CardOptions {
  aid: Uint8Array;
  /** Transparent EFs by file id. */
  files: { [fid: number]: Uint8Array };
  /** File sizes the FCP announces instead of the real ones (fault injection). */
  declaredSize?: { [fid: number]: number };
  uid?: Uint8Array;
  atqa?: number;
  sak?: number;
  ats?: Uint8Array;
}

function sw(code: number, data?: Uint8Array | number[]): Uint8Array {
  const d = data ? Uint8Array.from(data) : new Uint8Array(0);
  const out = new Uint8Array(d.length + 2);
  out.set(d, 0);
  out[d.length] = code >> 8;
  out[d.length + 1] = code & 0xff;
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A 7-byte NFCID1 (first byte 04, NXP's manufacturer code) derived from a seed. */
export function uidFrom(seed: string): Uint8Array {
  const h = createHash("sha256").update(seed).digest();
  const uid = new Uint8Array(7);
  uid[0] = 0x04;
  uid.set(h.subarray(0, 6), 1);
  return uid;
}

export class Iso7816CardModel implements CardModel {
  readonly uid: Uint8Array;
  readonly atqa: number;
  readonly sak: number;
  readonly ats: Uint8Array | null;
  /** Fault injection: the card stops answering (as if it had broken contact). */
  mute = false;
  /** Every command APDU received, for tests. */
  readonly log: Uint8Array[] = [];

  protected readonly aid: Uint8Array;
  protected readonly files: Map<number, Uint8Array>;
  protected readonly declared: Map<number, number>;
  private appSelected = false;
  private current = -1;

  constructor(options: Iso7816CardOptions) {
    this.aid = new Uint8Array(options.aid);
    this.files = new Map(Object.entries(options.files).map(([k, v]) => [Number(k), new Uint8Array(v)]));
    this.declared = new Map(Object.entries(options.declaredSize ?? {}).map(([k, v]) => [Number(k), v]));
    this.uid = new Uint8Array(options.uid ?? uidFrom(Buffer.from(this.aid).toString("hex")));
    this.atqa = options.atqa ?? (this.uid.length === 7 ? 0x0044 : 0x0004);
    this.sak = options.sak ?? 0x20;
    // TL 05, T0 78 (TA TB TC present, FSCI 8 = 256 bytes), TA 80, TB 70, TC 02.
    this.ats = new Uint8Array(options.ats ?? [0x05, 0x78, 0x80, 0x70, 0x02]);
  }

  reset(): void {
    this.appSelected = false;
    this.current = -1;
  }

  transceive(apdu: Uint8Array): Uint8Array | null {
    if (this.mute) return null;
    this.log.push(new Uint8Array(apdu));
    if (apdu.length < 4) return sw(0x6700);
    const [cla, ins, p1, p2] = [apdu[0]!, apdu[1]!, apdu[2]!, apdu[3]!];
    if (cla !== 0x00) return sw(0x6e00);
    const body = parseBody(apdu);
    if (body === null) return sw(0x6700);
    switch (ins) {
      case 0xa4:
        return this.select(p1, p2, body.data);
      case 0xb0:
        return this.readBinary(p1, p2, body.le, body.data.length);
      default:
        return sw(0x6d00);
    }
  }

  private select(p1: number, p2: number, data: Uint8Array): Uint8Array {
    if (p1 === 0x04) {
      if (!equal(data, this.aid)) {
        this.appSelected = false;
        this.current = -1;
        return sw(0x6a82);
      }
      this.appSelected = true;
      this.current = -1;
      if (p2 === 0x0c) return sw(0x9000);
      if (p2 === 0x00) return sw(0x9000, [0x6f, this.aid.length + 2, 0x84, this.aid.length, ...this.aid]);
      return sw(0x6a86);
    }
    if (p1 === 0x02 || p1 === 0x00) {
      if (data.length !== 2) return sw(0x6700);
      const fid = (data[0]! << 8) | data[1]!;
      if (!this.appSelected || !this.files.has(fid)) return sw(0x6a82);
      this.current = fid;
      if (p2 === 0x0c) return sw(0x9000);
      if (p2 !== 0x04) return sw(0x6a86);
      const size = this.declared.get(fid) ?? this.files.get(fid)!.length;
      return sw(0x9000, [0x62, 0x0b, 0x80, 0x02, (size >> 8) & 0xff, size & 0xff, 0x82, 0x01, 0x01, 0x83, 0x02, data[0]!, data[1]!]);
    }
    return sw(0x6a86);
  }

  private readBinary(p1: number, p2: number, le: number, lc: number): Uint8Array {
    if (lc !== 0) return sw(0x6700);
    let offset: number;
    if ((p1 & 0x80) !== 0) {
      if ((p1 & 0x60) !== 0) return sw(0x6a86);
      const sfi = p1 & 0x1f;
      const fid = [...this.files.keys()].find((f) => (f & 0x1f) === sfi);
      if (!this.appSelected || fid === undefined) return sw(0x6a82);
      this.current = fid;
      offset = p2;
    } else {
      offset = (p1 << 8) | p2;
    }
    if (this.current < 0) return sw(0x6986);
    const file = this.files.get(this.current)!;
    if (offset > file.length) return sw(0x6b00);
    const want = le === 0 ? 256 : le;
    const part = file.subarray(offset, Math.min(file.length, offset + want));
    return sw(part.length < want ? 0x6282 : 0x9000, part);
  }
}

/** Command APDU body: data (Lc) and Le (-1 when absent); short APDUs only. null when malformed. */
function parseBody(apdu: Uint8Array): { data: Uint8Array; le: number } | null {
  const n = apdu.length - 4;
  if (n === 0) return { data: new Uint8Array(0), le: -1 };
  if (n === 1) return { data: new Uint8Array(0), le: apdu[4]! };
  const lc = apdu[4]!;
  if (lc === 0) return null; // extended lengths not supported
  if (n === 1 + lc) return { data: apdu.subarray(5), le: -1 };
  if (n === 2 + lc) return { data: apdu.subarray(5, 5 + lc), le: apdu[5 + lc]! };
  return null;
}

/** EF.CARD_INFO contents: 80 01 kind, 81 L id (UTF-8). */
export function encodeCardInfo(kind: "voter" | "supervisor", id: string): Uint8Array {
  const idBytes = Buffer.from(id, "utf8");
  if (idBytes.length < 1 || idBytes.length > 127) throw new RangeError("card id must be 1..127 bytes of UTF-8");
  return Uint8Array.from([
    0x80,
    0x01,
    kind === "voter" ? CARD_KIND_VOTER : CARD_KIND_SUPERVISOR,
    0x81,
    idBytes.length,
    ...idBytes,
  ]);
}

export interface VoterCardOptions {
  kind: "voter" | "supervisor";
  id: string;
  /** Compact card format minutiae (3 bytes each), for voters; opaque bytes to the card. */
  template?: Uint8Array | null;
  uid?: Uint8Array;
  /** Another AID (a card issued for another application). Default VOTER_CARD_AID. */
  aid?: Uint8Array;
  /** Raw EF.CARD_INFO contents instead of the encoded kind and id (malformed-card tests). */
  info?: Uint8Array;
  /** Sizes the FCPs announce instead of the real ones: { info?, template? }. */
  declaredSize?: { info?: number; template?: number };
}

/** A voter or supervisor card of the commission, personalised as device/drivers/voter_card.ts reads it. */
export class VoterCardModel extends Iso7816CardModel {
  readonly kind: "voter" | "supervisor";
  readonly id: string;

  constructor(options: VoterCardOptions) {
    const files: { [fid: number]: Uint8Array } = {
      [CARD_EF_INFO]: options.info ?? encodeCardInfo(options.kind, options.id),
    };
    if (options.template) files[CARD_EF_TEMPLATE] = options.template;
    const declaredSize: { [fid: number]: number } = {};
    if (options.declaredSize?.info !== undefined) declaredSize[CARD_EF_INFO] = options.declaredSize.info;
    if (options.declaredSize?.template !== undefined) declaredSize[CARD_EF_TEMPLATE] = options.declaredSize.template;
    super({
      aid: options.aid ?? VOTER_CARD_AID,
      files,
      declaredSize,
      uid: options.uid ?? uidFrom(`${options.kind}:${options.id}`),
    });
    this.kind = options.kind;
    this.id = options.id;
  }
}
