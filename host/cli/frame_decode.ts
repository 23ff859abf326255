// Offline decoding for `pollkit decode`: frame lines as a technician copies them from a capture
// (or a bare hex payload) to the Envelope they carry, or the first thing that is wrong with them.
// Problems are values (DecodeProblem); the command turns them into messages.

import { FrameDecoder, CHUNK_CHARS } from "../../protocol/framing.ts";
import { ErrorCode } from "../../protocol/generated/device_codec.ts";
import { Envelope } from "../../protocol/node/schema.ts";

export type DecodeProblem =
  | { kind: "notFrameLine"; line: number }
  | { kind: "badBase64"; line: number; detail: string }
  | { kind: "cutLine"; line: number; chars: number }
  | { kind: "badCrc"; line: number }
  | { kind: "truncated"; line: number; have: number; need: number }
  | { kind: "orphan"; line: number }
  | { kind: "tooLarge"; line: number; detail: string }
  | { kind: "malformed"; line: number; detail: string }
  | { kind: "notEnvelope"; frame: number; detail: string | null }
  | { kind: "noFrames" }
  | { kind: "badHex"; reason: "empty" | "oddLength" | "badChar"; char?: string };

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export type EnvelopeJson = Record<string, unknown>;

/** protobufjs JSON of an Envelope as a person reads it: enum names, base64 bytes, numbers for 64-bit. */
const JSON_OPTIONS = { longs: Number, enums: String, bytes: String, defaults: false } as const;

const BASE64_GROUPS = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes one encoded Envelope. */
export function decodeEnvelope(payload: Uint8Array, frame: number): Result<EnvelopeJson, DecodeProblem> {
  let obj: EnvelopeJson;
  try {
    obj = Envelope.toObject(Envelope.decode(payload), JSON_OPTIONS);
  } catch (e) {
    return { ok: false, error: { kind: "notEnvelope", frame, detail: e instanceof Error ? e.message : String(e) } };
  }
  const members = Envelope.oneofsArray.flatMap((o) => o.oneof);
  if (!members.some((m) => obj[m] !== undefined)) return { ok: false, error: { kind: "notEnvelope", frame, detail: null } };
  return { ok: true, value: obj };
}

/**
 * Decodes frame lines. `consoleAllowed`: lines without a marker are the device's console text and
 * are skipped (a pasted capture); otherwise each one is an error (frame lines given as arguments).
 */
export function decodeFrameLines(lines: readonly string[], consoleAllowed: boolean): Result<EnvelopeJson[], DecodeProblem> {
  const envelopes: EnvelopeJson[] = [];
  let problem: DecodeProblem | null = null;
  /** The frame being assembled: the line it started on, bytes so far, bytes it needs. */
  let pending: { line: number; have: number; need: number } | null = null;
  let lineNo = 0;
  const decoder = new FrameDecoder({
    onFrame: (payload) => {
      pending = null;
      const r = decodeEnvelope(payload, envelopes.length + 1);
      if (r.ok) envelopes.push(r.value);
      else problem ??= r.error;
    },
    onConsole: () => {},
    onError: (code, detail) => {
      const start: number = pending?.line ?? lineNo;
      pending = null;
      if (code === ErrorCode.BAD_CRC) problem ??= { kind: "badCrc", line: start };
      else if (code === ErrorCode.FRAME_TOO_LARGE) problem ??= { kind: "tooLarge", line: lineNo, detail };
      else if (detail.startsWith("continuation without")) problem ??= { kind: "orphan", line: lineNo };
      else if (detail.startsWith("bad base64")) problem ??= { kind: "badBase64", line: lineNo, detail };
      else problem ??= { kind: "malformed", line: lineNo, detail };
    },
  });

  for (const raw of lines) {
    lineNo++;
    const line = raw.trim();
    if (line === "") continue;
    const marker = line[0];
    if (marker !== "!" && marker !== "*") {
      if (consoleAllowed) continue;
      return { ok: false, error: { kind: "notFrameLine", line: lineNo } };
    }
    const chunk = line.slice(1);
    if (chunk.length === 0 || chunk.length % 4 !== 0) return { ok: false, error: { kind: "cutLine", line: lineNo, chars: chunk.length } };
    const bad = /[^A-Za-z0-9+/=]/.exec(chunk);
    if (bad) return { ok: false, error: { kind: "badBase64", line: lineNo, detail: `character ${JSON.stringify(bad[0])}` } };
    if (!BASE64_GROUPS.test(chunk)) return { ok: false, error: { kind: "badBase64", line: lineNo, detail: "misplaced '=' padding" } };
    if (chunk.length > CHUNK_CHARS) return { ok: false, error: { kind: "malformed", line: lineNo, detail: `line of ${chunk.length} base64 characters, limit ${CHUNK_CHARS}` } };

    const p = pending as { line: number; have: number; need: number } | null;
    if (marker === "!" && p !== null) return { ok: false, error: { kind: "truncated", line: p.line, have: p.have, need: p.need } };
    const bytes = Buffer.from(chunk, "base64");
    if (marker === "!") pending = { line: lineNo, have: bytes.length, need: bytes.length >= 2 ? ((bytes[0] << 8) | bytes[1]) + 4 : 4 };
    else if (p !== null) p.have += bytes.length;

    decoder.pushLine(line);
    if (problem !== null) return { ok: false, error: problem };
  }
  const p = pending as { line: number; have: number; need: number } | null;
  if (p !== null) return { ok: false, error: { kind: "truncated", line: p.line, have: p.have, need: p.need } };
  if (envelopes.length === 0) return { ok: false, error: { kind: "noFrames" } };
  return { ok: true, value: envelopes };
}

/** Decodes an Envelope given as hex ("0a1b...", spaces, colons and a 0x prefix allowed). */
export function decodeHexPayload(hex: string): Result<EnvelopeJson, DecodeProblem> {
  const digits = hex.trim().replace(/^0x/i, "").replace(/[\s:]/g, "");
  if (digits === "") return { ok: false, error: { kind: "badHex", reason: "empty" } };
  const bad = /[^0-9a-fA-F]/.exec(digits);
  if (bad) return { ok: false, error: { kind: "badHex", reason: "badChar", char: bad[0] } };
  if (digits.length % 2 !== 0) return { ok: false, error: { kind: "badHex", reason: "oddLength" } };
  return decodeEnvelope(new Uint8Array(Buffer.from(digits, "hex")), 1);
}
