// The commission's card application, read over ISO/IEC 7816-4 APDUs through the card reader
// (device/drivers/pn532.ts): which card is in the field (voter or supervisor), its holder's id,
// and for voters the finger minutiae in the ISO/IEC 19794-2 compact card format.
// FIRMWARE: engine subset (see ENGINES.md): callbacks, plain objects, typed arrays, no exceptions
// out of the functions.
//
// The card application (this file is its specification; simulator/models/voter_card.ts issues
// cards that follow it):
// - Application identifier (AID): F0 50 4F 4C 4C 4B 49 54 01 ("F" category of ISO/IEC 7816-5:
//   a proprietary AID that needs no registration, then "POLLKIT", then version 01). A commission
//   that registers its own RID (A0 00 00 0x xx, ISO/IEC 7816-5) issues cards under that AID and
//   passes it as `aid` to readCardWith().
// - Selected with SELECT by DF name: 00 A4 04 0C Lc AID (P2 0C: no answer data). A card without
//   the application answers 6A82 (file or application not found); 6A81, 6D00, 6E00 (a card that
//   does not take the command or class) count as "not a commission card" too.
// - Two transparent elementary files under the application, selected by file identifier with
//   SELECT 00 A4 02 04 02 FID 00 (P1 02: EF under the current DF; P2 04: return the FCP template,
//   whose tag 80 (or 81) gives the file size), then read with READ BINARY 00 B0 P1 P2 Le (P1 P2 =
//   15-bit offset), in pieces of at most 250 bytes (a PN532 normal frame carries 252 bytes of
//   answer: 250 + SW1 SW2). The file size comes from the FCP: a file larger than the limit is
//   refused before it is read; a card that returns fewer bytes than the file size (6282 "end of
//   file reached", 6B00 "offset outside the file", or a short answer with 9000) is truncated.
//   - EF.CARD_INFO, FID 01 01: simple BER-TLV objects, in any order, unknown tags skipped:
//     tag 80 (1 byte) card kind, 01 voter / 02 supervisor; tag 81 (1..64 bytes) the holder's id,
//     UTF-8 without control characters. At most 128 bytes.
//   - EF.TEMPLATE, FID 01 02 (voter cards): the finger minutiae in the ISO/IEC 19794-2 compact
//     card format, 3 bytes a minutia, no header (the data of the biometric data object); at most
//     `maxTemplateBytes` (255 minutiae by default). Supervisor cards need no such file; if one is
//     there it is not read.
// - After reading, the reader releases the card (InRelease), whatever the outcome.

import type { Pn532Error } from "./pn532.ts";

/** What readCard needs from the reader (the Pn532 driver provides it). */
export interface CardReader {
  detect(cb: (err: Pn532Error | null, uid: Uint8Array | null) => void): void;
  apdu(cmd: Uint8Array, cb: (err: Pn532Error | null, resp?: Uint8Array) => void): void;
  release(cb: (err: Pn532Error | null) => void): void;
}

export interface CardError {
  code: number;
  message: string;
}

export interface CardData {
  uid: Uint8Array;
  kind: "voter" | "supervisor";
  id: string;
  /** Compact card format minutiae (3 bytes each), voters only. */
  template: Uint8Array | null;
}

export interface ReadCardOptions {
  /** The application's AID. Default VOTER_CARD_AID. */
  aid?: Uint8Array;
  /** Largest template accepted (bytes). Default 765 (255 minutiae). */
  maxTemplateBytes?: number;
  /** Largest READ BINARY (bytes, 1..250). Default 250. */
  chunkBytes?: number;
}

// Error codes.
export const CARD_ERR_NO_CARD = 1; // no card in the field
export const CARD_ERR_READER = 2; // the reader failed (the message carries the reader's error)
export const CARD_ERR_REMOVED = 3; // the card left the field during the read
export const CARD_ERR_NOT_COMMISSION = 4; // the card has no commission application (wrong AID)
export const CARD_ERR_BAD_DATA = 5; // a file is missing, malformed, truncated or oversized
export const CARD_ERR_STATUS = 6; // the card answered an unexpected status word
export const CARD_ERR_NOT_ISO_DEP = 7; // the card does not speak APDUs (e.g. MIFARE Classic)

/** F0 "POLLKIT" 01. */
export const VOTER_CARD_AID = new Uint8Array([0xf0, 0x50, 0x4f, 0x4c, 0x4c, 0x4b, 0x49, 0x54, 0x01]);
export const CARD_EF_INFO = 0x0101;
export const CARD_EF_TEMPLATE = 0x0102;
export const CARD_TAG_KIND = 0x80;
export const CARD_TAG_ID = 0x81;
export const CARD_KIND_VOTER = 0x01;
export const CARD_KIND_SUPERVISOR = 0x02;
export const CARD_INFO_MAX = 128;
export const CARD_ID_MAX = 64;
export const CARD_TEMPLATE_MAX = 765;
export const CARD_CHUNK_MAX = 250;

// Reader error codes that matter here (pn532.ts values, repeated to keep this file free of a
// runtime dependency on the driver).
const PN_ERR_CARD_GONE = 6;
const PN_ERR_NOT_ISO_DEP = 8;

function cardError(code: number, message: string): CardError {
  return { code: code, message: message };
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) {
    const h = bytes[i].toString(16);
    s += h.length < 2 ? "0" + h : h;
  }
  return s.toUpperCase();
}

function swText(sw: number): string {
  const h = sw.toString(16).toUpperCase();
  return "SW " + "0000".substring(h.length) + h;
}

/**
 * Decodes strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without
 * control characters. Returns null when the bytes are not such text.
 */
export function decodeUtf8Text(b: Uint8Array): string | null {
  let out = "";
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let cp = 0;
    let n = 0;
    let min = 0;
    if (c < 0x80) {
      cp = c;
    } else if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1f;
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0f;
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07;
      n = 3;
      min = 0x10000;
    } else {
      return null;
    }
    if (n > 0 && i + n >= b.length) return null;
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if ((cc & 0xc0) !== 0x80) return null;
      cp = cp * 64 + (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return null;
    if (cp >= 0x10000) {
      const v = cp - 0x10000;
      out += String.fromCharCode(0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
    } else {
      out += String.fromCharCode(cp);
    }
    i += n + 1;
  }
  return out;
}

export interface CardInfo {
  /** "" when the info is malformed (see error). */
  kind: "voter" | "supervisor" | "";
  id: string;
  /** null when well formed, else what is wrong. */
  error: string | null;
}

/** Decodes EF.CARD_INFO (simple BER-TLV: 80 kind, 81 id; other tags skipped). */
export function decodeCardInfo(b: Uint8Array): CardInfo {
  let kind = -1;
  let id: string | null = null;
  let i = 0;
  const bad = (why: string): CardInfo => {
    return { kind: "", id: "", error: "card info: " + why };
  };
  while (i < b.length) {
    const tag = b[i];
    if (tag === 0x00 || tag === 0xff) {
      i++; // padding between objects (ISO/IEC 7816-4 allows 00 and FF)
      continue;
    }
    if ((tag & 0x1f) === 0x1f) return bad("multi-byte tag " + tag.toString(16) + " not expected");
    if (i + 1 >= b.length) return bad("truncated length of tag " + tag.toString(16));
    let len = b[i + 1];
    let at = i + 2;
    if (len === 0x81) {
      if (at >= b.length) return bad("truncated length of tag " + tag.toString(16));
      len = b[at];
      at++;
    } else if (len > 0x7f) {
      return bad("length form " + len.toString(16) + " not expected");
    }
    if (at + len > b.length) return bad("tag " + tag.toString(16) + " runs past the end of the file");
    if (tag === CARD_TAG_KIND) {
      if (kind >= 0) return bad("kind given twice");
      if (len !== 1) return bad("kind must be one byte");
      kind = b[at];
      if (kind !== CARD_KIND_VOTER && kind !== CARD_KIND_SUPERVISOR) return bad("unknown card kind " + kind);
    } else if (tag === CARD_TAG_ID) {
      if (id !== null) return bad("id given twice");
      if (len < 1 || len > CARD_ID_MAX) return bad("id must be 1.." + CARD_ID_MAX + " bytes");
      id = decodeUtf8Text(b.subarray(at, at + len));
      if (id === null) return bad("id is not UTF-8 text");
    }
    i = at + len;
  }
  if (kind < 0) return bad("no kind (tag 80)");
  if (id === null) return bad("no id (tag 81)");
  return { kind: kind === CARD_KIND_VOTER ? "voter" : "supervisor", id: id, error: null };
}

/** The file size from an FCP template (62 L ... 80 size / 81 size ...), or -1. */
export function fcpFileSize(b: Uint8Array): number {
  if (b.length < 2 || b[0] !== 0x62) return -1;
  let end = 2 + b[1];
  let i = 2;
  if (b[1] === 0x81) {
    if (b.length < 3) return -1;
    end = 3 + b[2];
    i = 3;
  } else if (b[1] > 0x7f) {
    return -1;
  }
  if (end > b.length) return -1;
  let size = -1;
  while (i + 1 < end) {
    const tag = b[i];
    const len = b[i + 1];
    if (len > 0x7f || i + 2 + len > end) return -1;
    if ((tag === 0x80 || (tag === 0x81 && size < 0)) && len >= 1 && len <= 4) {
      let v = 0;
      for (let k = 0; k < len; k++) v = v * 256 + b[i + 2 + k];
      if (tag === 0x80 || size < 0) size = v;
    }
    i += 2 + len;
  }
  return size;
}

/** Reads the card in the field: detect, SELECT the application, read its files, release. */
export function readCard(reader: CardReader, cb: (err: CardError | null, card?: CardData) => void): void {
  readCardWith(reader, null, cb);
}

/** readCard with options (another AID, limits). */
export function readCardWith(
  reader: CardReader,
  options: ReadCardOptions | null,
  cb: (err: CardError | null, card?: CardData) => void,
): void {
  const aid = options && options.aid ? options.aid : VOTER_CARD_AID;
  const maxTemplate = options && typeof options.maxTemplateBytes === "number" ? options.maxTemplateBytes : CARD_TEMPLATE_MAX;
  let chunk = options && typeof options.chunkBytes === "number" ? Math.floor(options.chunkBytes) : CARD_CHUNK_MAX;
  if (chunk < 1 || chunk > CARD_CHUNK_MAX) chunk = CARD_CHUNK_MAX;
  let uid: Uint8Array | null = null;
  let settled = false;

  // Ends the read: release the card (best effort), then report.
  const end = (err: CardError | null, card: CardData | null): void => {
    if (settled) return;
    settled = true;
    reader.release(() => {
      if (err) cb(err);
      else cb(null, card as CardData);
    });
  };

  const readerError = (what: string, e: Pn532Error): CardError => {
    if (e.code === PN_ERR_CARD_GONE) return cardError(CARD_ERR_REMOVED, what + ": the card was removed (" + e.message + ")");
    if (e.code === PN_ERR_NOT_ISO_DEP) return cardError(CARD_ERR_NOT_ISO_DEP, what + ": " + e.message);
    return cardError(CARD_ERR_READER, what + ": " + e.message);
  };

  // One APDU: delivers the data and the status word.
  const transmit = (what: string, cmd: Uint8Array, next: (data: Uint8Array, sw: number) => void): void => {
    reader.apdu(cmd, (e, resp) => {
      if (e) {
        end(readerError(what, e), null);
        return;
      }
      const r = resp as Uint8Array;
      if (!r || r.length < 2) {
        end(cardError(CARD_ERR_BAD_DATA, what + ": answer without a status word"), null);
        return;
      }
      next(r.subarray(0, r.length - 2), r[r.length - 2] * 256 + r[r.length - 1]);
    });
  };

  // SELECT an EF by file id and read all of it (at most `max` bytes); `missing` when absent.
  const readEf = (name: string, fid: number, max: number, missing: () => void, done: (bytes: Uint8Array) => void): void => {
    const sel = new Uint8Array([0x00, 0xa4, 0x02, 0x04, 0x02, (fid >> 8) & 0xff, fid & 0xff, 0x00]);
    transmit("SELECT " + name, sel, (fcp, sw) => {
      if (sw === 0x6a82) {
        missing();
        return;
      }
      if (sw !== 0x9000) {
        end(cardError(CARD_ERR_STATUS, "SELECT " + name + ": " + swText(sw)), null);
        return;
      }
      const size = fcpFileSize(fcp);
      if (size < 0) {
        end(cardError(CARD_ERR_BAD_DATA, "SELECT " + name + ": no file size in the FCP"), null);
        return;
      }
      if (size === 0) {
        end(cardError(CARD_ERR_BAD_DATA, name + " is empty"), null);
        return;
      }
      if (size > max) {
        end(cardError(CARD_ERR_BAD_DATA, name + " is " + size + " bytes, over the limit of " + max), null);
        return;
      }
      const buf = new Uint8Array(size);
      let offset = 0;
      const step = (): void => {
        if (offset >= size) {
          done(buf);
          return;
        }
        const n = size - offset < chunk ? size - offset : chunk;
        const rb = new Uint8Array([0x00, 0xb0, (offset >> 8) & 0x7f, offset & 0xff, n]);
        transmit("READ BINARY " + name, rb, (data, sw2) => {
          if (sw2 === 0x6282 || sw2 === 0x6b00 || (sw2 === 0x9000 && data.length < n)) {
            end(
              cardError(
                CARD_ERR_BAD_DATA,
                name + " is truncated: the card declares " + size + " bytes and returned " + (offset + data.length),
              ),
              null,
            );
            return;
          }
          if (sw2 !== 0x9000) {
            end(cardError(CARD_ERR_STATUS, "READ BINARY " + name + " at " + offset + ": " + swText(sw2)), null);
            return;
          }
          if (data.length > n) {
            end(cardError(CARD_ERR_BAD_DATA, "READ BINARY " + name + ": " + data.length + " bytes for " + n + " asked"), null);
            return;
          }
          buf.set(data, offset);
          offset += n;
          step();
        });
      };
      step();
    });
  };

  const readTemplate = (info: CardInfo): void => {
    readEf(
      "EF.TEMPLATE",
      CARD_EF_TEMPLATE,
      maxTemplate,
      () => {
        end(cardError(CARD_ERR_BAD_DATA, "voter card without a template file (EF 0102)"), null);
      },
      (t) => {
        if (t.length % 3 !== 0) {
          end(cardError(CARD_ERR_BAD_DATA, "EF.TEMPLATE is " + t.length + " bytes, not whole 3-byte minutiae"), null);
          return;
        }
        end(null, { uid: uid as Uint8Array, kind: "voter", id: info.id, template: t });
      },
    );
  };

  const selectApp = (): void => {
    const sel = new Uint8Array(5 + aid.length);
    sel[0] = 0x00;
    sel[1] = 0xa4;
    sel[2] = 0x04;
    sel[3] = 0x0c;
    sel[4] = aid.length;
    sel.set(aid, 5);
    transmit("SELECT application", sel, (data, sw) => {
      if (sw === 0x6a82 || sw === 0x6a81 || sw === 0x6d00 || sw === 0x6e00) {
        end(
          cardError(CARD_ERR_NOT_COMMISSION, "not a commission card: application " + hex(aid) + " not on the card (" + swText(sw) + ")"),
          null,
        );
        return;
      }
      if (sw !== 0x9000) {
        end(cardError(CARD_ERR_STATUS, "SELECT application: " + swText(sw)), null);
        return;
      }
      readEf(
        "EF.CARD_INFO",
        CARD_EF_INFO,
        CARD_INFO_MAX,
        () => {
          end(cardError(CARD_ERR_BAD_DATA, "commission card without a card-info file (EF 0101)"), null);
        },
        (bytes) => {
          const info = decodeCardInfo(bytes);
          if (info.error !== null) {
            end(cardError(CARD_ERR_BAD_DATA, info.error), null);
            return;
          }
          if (info.kind === "voter") readTemplate(info);
          else end(null, { uid: uid as Uint8Array, kind: "supervisor", id: info.id, template: null });
        },
      );
    });
  };

  reader.detect((e, found) => {
    if (e) {
      settled = true;
      cb(readerError("card detection", e));
      return;
    }
    if (found === null) {
      settled = true;
      cb(cardError(CARD_ERR_NO_CARD, "no card on the reader"));
      return;
    }
    uid = found;
    selectApp();
  });
}
