// Finger minutiae templates: ISO/IEC 19794-2:2005 finger minutiae records, the ISO/IEC 19794-2
// compact card format, and ANSI/INCITS 378-2004 records told apart (and readable on request).
//
// ISO/IEC 19794-2:2005 record (all fields big-endian):
//   header (24 bytes)  "FMR\0" | " 20\0" | record length (4) | capture equipment (2: 4 bits
//                      compliance, 12 bits id) | width (2) | height (2) | x resolution (2) |
//                      y resolution (2, pixels per cm) | number of finger views (1) | reserved (1)
//   finger view        finger position (1) | view number (4 bits), impression type (4 bits) |
//                      finger quality (1, 0..100) | number of minutiae (1)
//                      minutiae, 6 bytes each: type (2 bits: 01 ending, 10 bifurcation, 00 other)
//                      and x (14 bits) | reserved (2 bits) and y (14 bits) | angle (1, units of
//                      360/256 degrees, counter-clockwise from the x axis) | quality (1)
//                      extended data length (2, 0 = none), then that many bytes of blocks:
//                      type code (2) | block length (2, the 4 header bytes included) | data
// ANSI/INCITS 378-2004 starts with the same 8 bytes, then a 2-byte record length (or 0 and a
// 4-byte one), a 4-byte CBEFF product id, then the same fields from the capture equipment on;
// its minutia angle unit is 2 degrees. parseTemplate() recognises it and refuses it with
// TEMPLATE_ERR_ANSI (it is not what the fingerprint module is specified to deliver);
// parseAnsi378() reads it.
//
// Compact card format (ISO/IEC 19794-2 card formats): no header, 3 bytes per minutia: x (1 byte)
// and y (1 byte) in units of 0.1 mm, then type (2 high bits, coded as above) and angle (6 low
// bits, units of 360/64 degrees). The image size comes from the caller; the coordinates are
// converted with the resolution (197 px/cm, i.e. 500 dpi, unless told otherwise).
//
// The annex C.2 example record of ISO/IEC 19794-2:2005 declares 340 bytes while its two views
// take 341 (the extended data of the second view ends one byte past the declared length). The
// rule here: the record length may not exceed the bytes given (truncation), the view that is
// read must lie inside the declared length, and every view must lie inside the bytes given. So
// the annex's first view reads and its second is refused as overrunning the declared length.

/** Parsed minutiae, in pixels of the record's image (origin top left, y down). */
export interface Template {
  width: number;
  height: number;
  /** Pixels per cm. */
  resX: number;
  resY: number;
  count: number;
  x: Uint16Array;
  y: Uint16Array;
  /** 0..255 = 0..360 degrees, counter-clockwise from the x axis. */
  angle: Uint8Array;
  /** 1 ridge ending, 2 bifurcation, 0 other. */
  kind: Uint8Array;
  quality: Uint8Array;
}

export interface TemplateResult {
  template: Template | null;
  /** TEMPLATE_ERR_NONE (0) on success. */
  error: number;
  /** What was wrong (or, on success, what kind of record was read). */
  detail: string;
}

export const TEMPLATE_ERR_NONE = 0;
/** Fewer bytes than the record says it has, or than a view needs. */
export const TEMPLATE_ERR_TRUNCATED = 1;
/** Not "FMR\0". */
export const TEMPLATE_ERR_MAGIC = 2;
/** Not version " 20\0". */
export const TEMPLATE_ERR_VERSION = 3;
/** The record length field contradicts the record's contents. */
export const TEMPLATE_ERR_LENGTH = 4;
/** An ANSI/INCITS 378-2004 record given where ISO/IEC 19794-2 is expected. */
export const TEMPLATE_ERR_ANSI = 5;
/** No finger view, or not the one asked for. */
export const TEMPLATE_ERR_NO_VIEW = 6;
export const TEMPLATE_ERR_NO_MINUTIAE = 7;
/** More than TEMPLATE_MAX_MINUTIAE minutiae. */
export const TEMPLATE_ERR_TOO_MANY = 8;
/** Zero image size or resolution, or a minutia outside the image. */
export const TEMPLATE_ERR_GEOMETRY = 9;
/** Extended data blocks that do not add up. */
export const TEMPLATE_ERR_EXTENDED = 10;
/** A field with a value the format does not allow (reserved minutia type, quality over 100). */
export const TEMPLATE_ERR_FIELD = 11;

/** An ISO/IEC 19794-2:2005 record given where ANSI/INCITS 378-2004 is expected. */
export const TEMPLATE_ERR_ISO = 12;

/** Most minutiae a template may hold (bounds the matcher's memory). */
export const TEMPLATE_MAX_MINUTIAE = 128;
/** 500 dpi in pixels per cm: the resolution assumed for compact card templates. */
export const DEFAULT_RESOLUTION = 197;

const ISO_HEADER = 24;
const VIEW_HEADER = 4;
const MINUTIA_BYTES = 6;
const FORMAT_ISO = 0;
const FORMAT_ANSI = 1;

function fail(error: number, detail: string): TemplateResult {
  return { template: null, error: error, detail: detail };
}

function u16(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}

function u32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}

function newTemplate(width: number, height: number, resX: number, resY: number, count: number): Template {
  return {
    width: width,
    height: height,
    resX: resX,
    resY: resY,
    count: count,
    x: new Uint16Array(count),
    y: new Uint16Array(count),
    angle: new Uint8Array(count),
    kind: new Uint8Array(count),
    quality: new Uint8Array(count),
  };
}

/** The declared record length and header size of an ANSI 378 record, or null if it cannot be one. */
function ansiLayout(b: Uint8Array): { length: number; header: number } | null {
  if (b.length < 10) return null;
  const short = u16(b, 8);
  if (short !== 0) return { length: short, header: 26 };
  if (b.length < 14) return null;
  return { length: u32(b, 10), header: 30 };
}

/**
 * Walks the finger views from `p` (the first view) within `limit` bytes; returns the offset
 * just past view `last` or an error result. Checks counts, extended blocks and bounds only.
 */
function walkViews(b: Uint8Array, p: number, views: number, last: number, limit: number): number | TemplateResult {
  for (let v = 0; v <= last && v < views; v++) {
    if (p + VIEW_HEADER > limit) {
      return fail(TEMPLATE_ERR_TRUNCATED, "finger view " + (v + 1) + " header runs past the end (" + limit + " bytes)");
    }
    const n = b[p + 3];
    p += VIEW_HEADER + n * MINUTIA_BYTES;
    if (p + 2 > limit) {
      return fail(TEMPLATE_ERR_TRUNCATED, "finger view " + (v + 1) + " with " + n + " minutiae runs past the end (" + limit + " bytes)");
    }
    const ext = u16(b, p);
    p += 2;
    const extEnd = p + ext;
    if (extEnd > limit) {
      return fail(TEMPLATE_ERR_TRUNCATED, "extended data of view " + (v + 1) + " (" + ext + " bytes) runs past the end (" + limit + " bytes)");
    }
    while (p < extEnd) {
      if (p + 4 > extEnd) return fail(TEMPLATE_ERR_EXTENDED, "extended data block header of view " + (v + 1) + " cut short");
      const blockLength = u16(b, p + 2);
      if (blockLength < 4 || p + blockLength > extEnd) {
        return fail(TEMPLATE_ERR_EXTENDED, "extended data block of view " + (v + 1) + " says " + blockLength + " bytes, " + (extEnd - p) + " left");
      }
      p += blockLength;
    }
  }
  return p;
}

function parseRecord(bytes: Uint8Array, view: number, format: number): TemplateResult {
  const b = bytes;
  const header = format === FORMAT_ISO ? ISO_HEADER : 26;
  if (b.length < 8) return fail(TEMPLATE_ERR_TRUNCATED, "only " + b.length + " bytes: not a finger minutiae record");
  if (b[0] !== 0x46 || b[1] !== 0x4d || b[2] !== 0x52 || b[3] !== 0) {
    return fail(TEMPLATE_ERR_MAGIC, "not a finger minutiae record (no \"FMR\\0\" format identifier)");
  }
  if (b[4] !== 0x20 || b[5] !== 0x32 || b[6] !== 0x30 || b[7] !== 0) {
    return fail(TEMPLATE_ERR_VERSION, "unsupported record version (expected \" 20\\0\")");
  }
  let length = 0;
  let p = 0;
  if (format === FORMAT_ISO) {
    if (b.length < 12) return fail(TEMPLATE_ERR_TRUNCATED, "only " + b.length + " bytes: the record header needs " + ISO_HEADER);
    length = u32(b, 8);
    p = ISO_HEADER;
    // An ANSI 378 record has a 2-byte length here followed by the CBEFF product id.
    const ansi = ansiLayout(b);
    const isoPlausible = length >= ISO_HEADER + VIEW_HEADER && length <= b.length;
    if (!isoPlausible && ansi !== null && ansi.length >= ansi.header + VIEW_HEADER && ansi.length <= b.length) {
      return fail(TEMPLATE_ERR_ANSI, "ANSI/INCITS 378-2004 record (2-byte length, CBEFF product id), not ISO/IEC 19794-2:2005");
    }
  } else {
    const layout = ansiLayout(b);
    if (layout === null) return fail(TEMPLATE_ERR_TRUNCATED, "only " + b.length + " bytes: the record header needs " + header);
    const isoLength = b.length >= 12 ? u32(b, 8) : 0;
    const ansiPlausible = layout.length >= layout.header + VIEW_HEADER && layout.length <= b.length;
    if (!ansiPlausible && isoLength >= ISO_HEADER + VIEW_HEADER && isoLength <= b.length) {
      return fail(TEMPLATE_ERR_ISO, "ISO/IEC 19794-2:2005 record (4-byte length), not ANSI/INCITS 378-2004");
    }
    length = layout.length;
    p = layout.header;
  }
  if (length < p + VIEW_HEADER) return fail(TEMPLATE_ERR_LENGTH, "record length field says " + length + " bytes, less than a header and a view");
  if (length > b.length) return fail(TEMPLATE_ERR_TRUNCATED, "record length field says " + length + " bytes, only " + b.length + " given");
  if (p > b.length) return fail(TEMPLATE_ERR_TRUNCATED, "record header cut short");
  const h = p - 10;
  const width = u16(b, h);
  const height = u16(b, h + 2);
  const resX = u16(b, h + 4);
  const resY = u16(b, h + 6);
  const views = b[h + 8];
  if (width === 0 || height === 0) return fail(TEMPLATE_ERR_GEOMETRY, "image size " + width + " x " + height);
  if (resX === 0 || resY === 0) return fail(TEMPLATE_ERR_GEOMETRY, "resolution " + resX + " x " + resY + " px/cm");
  if (views === 0) return fail(TEMPLATE_ERR_NO_VIEW, "the record holds no finger view");
  if (!(view >= 0 && view < views && Math.floor(view) === view)) {
    return fail(TEMPLATE_ERR_NO_VIEW, "view " + (view + 1) + " asked for, the record holds " + views);
  }
  // Every view must lie within the bytes given; the one read within the declared length too.
  const allEnd = walkViews(b, p, views, views - 1, b.length);
  if (typeof allEnd !== "number") return allEnd;
  const before = walkViews(b, p, views, view - 1, b.length) as number;
  const end = walkViews(b, p, views, view, b.length) as number;
  if (end > length) {
    return fail(TEMPLATE_ERR_LENGTH, "view " + (view + 1) + " ends at byte " + end + ", past the record length field (" + length + ")");
  }
  if (allEnd < length) {
    return fail(TEMPLATE_ERR_LENGTH, "record length field says " + length + " bytes, its views end at " + allEnd);
  }
  p = before;
  const fingerQuality = b[p + 2];
  const count = b[p + 3];
  if (fingerQuality > 100) return fail(TEMPLATE_ERR_FIELD, "finger quality " + fingerQuality + " (0..100)");
  if (count === 0) return fail(TEMPLATE_ERR_NO_MINUTIAE, "view " + (view + 1) + " has no minutiae");
  if (count > TEMPLATE_MAX_MINUTIAE) {
    return fail(TEMPLATE_ERR_TOO_MANY, "view " + (view + 1) + " has " + count + " minutiae (at most " + TEMPLATE_MAX_MINUTIAE + ")");
  }
  const t = newTemplate(width, height, resX, resY, count);
  p += VIEW_HEADER;
  for (let i = 0; i < count; i++) {
    const type = b[p] >> 6;
    const x = u16(b, p) & 0x3fff;
    const y = u16(b, p + 2) & 0x3fff;
    if (type === 3) return fail(TEMPLATE_ERR_FIELD, "minutia " + (i + 1) + " has the reserved type 11");
    if (x >= width || y >= height) {
      return fail(TEMPLATE_ERR_GEOMETRY, "minutia " + (i + 1) + " at (" + x + ", " + y + ") lies outside the " + width + " x " + height + " image");
    }
    t.x[i] = x;
    t.y[i] = y;
    t.kind[i] = type;
    const a = b[p + 4];
    if (format === FORMAT_ISO) t.angle[i] = a;
    else {
      if (a >= 180) return fail(TEMPLATE_ERR_FIELD, "minutia " + (i + 1) + " angle " + a + " (ANSI units of 2 degrees: 0..179)");
      t.angle[i] = Math.round((a * 64) / 45) & 255;
    }
    t.quality[i] = b[p + 5];
    p += MINUTIA_BYTES;
  }
  let detail = format === FORMAT_ISO ? "ISO/IEC 19794-2:2005" : "ANSI/INCITS 378-2004";
  detail += ", view " + (view + 1) + " of " + views + ", finger " + b[before] + ", quality " + fingerQuality;
  if (allEnd !== length) detail += "; note: the record length field says " + length + " bytes, its views take " + allEnd;
  return { template: t, error: TEMPLATE_ERR_NONE, detail: detail };
}

/**
 * Reads finger view `view` (0-based, the first by default) of an ISO/IEC 19794-2:2005 finger
 * minutiae record. An ANSI/INCITS 378-2004 record is told apart and refused (TEMPLATE_ERR_ANSI).
 */
export function parseTemplate(bytes: Uint8Array, view?: number): TemplateResult {
  return parseRecord(bytes, view === undefined ? 0 : view, FORMAT_ISO);
}

/** Reads finger view `view` (0-based) of an ANSI/INCITS 378-2004 record; angles converted to 0..255. */
export function parseAnsi378(bytes: Uint8Array, view?: number): TemplateResult {
  return parseRecord(bytes, view === undefined ? 0 : view, FORMAT_ANSI);
}

/**
 * Number of finger views an ISO/IEC 19794-2:2005 record declares (0 if it is not one: another
 * format or version, or a record length field that does not fit the bytes).
 */
export function countViews(bytes: Uint8Array): number {
  const b = bytes;
  if (b.length < ISO_HEADER || b[0] !== 0x46 || b[1] !== 0x4d || b[2] !== 0x52 || b[3] !== 0) return 0;
  if (b[4] !== 0x20 || b[5] !== 0x32 || b[6] !== 0x30 || b[7] !== 0) return 0;
  const length = u32(b, 8);
  if (length < ISO_HEADER + VIEW_HEADER || length > b.length) return 0;
  return b[22];
}

/**
 * Reads a compact card template (3 bytes per minutia) for an image of widthPx x heightPx at
 * `resolution` px/cm (197, i.e. 500 dpi, when not given).
 */
export function parseCompactCard(bytes: Uint8Array, widthPx: number, heightPx: number, resolution?: number): TemplateResult {
  const res = resolution === undefined ? DEFAULT_RESOLUTION : resolution;
  if (!(widthPx >= 1 && heightPx >= 1 && widthPx <= 0x3fff && heightPx <= 0x3fff)) {
    return fail(TEMPLATE_ERR_GEOMETRY, "image size " + widthPx + " x " + heightPx);
  }
  if (!(res >= 1 && res <= 0xffff)) return fail(TEMPLATE_ERR_GEOMETRY, "resolution " + res + " px/cm");
  if (bytes.length === 0) return fail(TEMPLATE_ERR_NO_MINUTIAE, "empty compact card template");
  if (bytes.length % 3 !== 0) return fail(TEMPLATE_ERR_LENGTH, "compact card template of " + bytes.length + " bytes (3 per minutia)");
  const count = bytes.length / 3;
  if (count > TEMPLATE_MAX_MINUTIAE) {
    return fail(TEMPLATE_ERR_TOO_MANY, count + " minutiae in the compact card template (at most " + TEMPLATE_MAX_MINUTIAE + ")");
  }
  const t = newTemplate(widthPx, heightPx, res, res, count);
  for (let i = 0; i < count; i++) {
    const p = i * 3;
    const x = Math.round((bytes[p] * res) / 100);
    const y = Math.round((bytes[p + 1] * res) / 100);
    const type = bytes[p + 2] >> 6;
    if (type === 3) return fail(TEMPLATE_ERR_FIELD, "minutia " + (i + 1) + " has the reserved type 11");
    if (x >= widthPx || y >= heightPx) {
      return fail(TEMPLATE_ERR_GEOMETRY, "minutia " + (i + 1) + " at (" + x + ", " + y + ") px lies outside the " + widthPx + " x " + heightPx + " image");
    }
    t.x[i] = x;
    t.y[i] = y;
    t.kind[i] = type;
    t.angle[i] = (bytes[p + 2] & 63) << 2;
  }
  return { template: t, error: TEMPLATE_ERR_NONE, detail: "compact card, " + count + " minutiae" };
}

/**
 * The compact card form of a template (3 bytes per minutia, 0.1 mm units, 6-bit angles). Throws
 * if a minutia lies beyond 25.5 mm (the format's reach) or the template is empty or too large.
 */
export function encodeCompactCard(t: Template): Uint8Array {
  if (t.count < 1 || t.count > TEMPLATE_MAX_MINUTIAE) throw new Error("compact card: " + t.count + " minutiae");
  if (!(t.resX >= 1 && t.resY >= 1)) throw new Error("compact card: resolution " + t.resX + " x " + t.resY);
  const out = new Uint8Array(t.count * 3);
  for (let i = 0; i < t.count; i++) {
    const x = Math.round((t.x[i] * 100) / t.resX);
    const y = Math.round((t.y[i] * 100) / t.resY);
    if (x > 255 || y > 255) throw new Error("compact card: minutia " + (i + 1) + " lies beyond 25.5 mm");
    const kind = t.kind[i] === 1 || t.kind[i] === 2 ? t.kind[i] : 0;
    out[i * 3] = x;
    out[i * 3 + 1] = y;
    out[i * 3 + 2] = (kind << 6) | (((t.angle[i] + 2) >> 2) & 63);
  }
  return out;
}

/** An ISO/IEC 19794-2:2005 record of one finger view holding the template (no extended data). */
export function encodeTemplate(t: Template, finger: number, fingerQuality: number): Uint8Array {
  const length = ISO_HEADER + VIEW_HEADER + t.count * MINUTIA_BYTES + 2;
  const b = new Uint8Array(length);
  b[0] = 0x46;
  b[1] = 0x4d;
  b[2] = 0x52;
  b[4] = 0x20;
  b[5] = 0x32;
  b[6] = 0x30;
  b[8] = (length >>> 24) & 255;
  b[9] = (length >> 16) & 255;
  b[10] = (length >> 8) & 255;
  b[11] = length & 255;
  b[14] = t.width >> 8;
  b[15] = t.width & 255;
  b[16] = t.height >> 8;
  b[17] = t.height & 255;
  b[18] = t.resX >> 8;
  b[19] = t.resX & 255;
  b[20] = t.resY >> 8;
  b[21] = t.resY & 255;
  b[22] = 1;
  b[24] = finger;
  b[26] = fingerQuality;
  b[27] = t.count;
  let p = 28;
  for (let i = 0; i < t.count; i++) {
    b[p] = ((t.kind[i] & 3) << 6) | ((t.x[i] >> 8) & 0x3f);
    b[p + 1] = t.x[i] & 255;
    b[p + 2] = (t.y[i] >> 8) & 0x3f;
    b[p + 3] = t.y[i] & 255;
    b[p + 4] = t.angle[i];
    b[p + 5] = t.quality[i];
    p += MINUTIA_BYTES;
  }
  return b;
}
