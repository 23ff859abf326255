// `pollkit decode <frame...> | - | --hex <payload>`: offline, no agent. Prints each Envelope as
// JSON, or says exactly what is wrong with the input (exit 1).

import { readFileSync } from "node:fs";
import type { CliContext } from "../context.ts";
import { decodeFrameLines, decodeHexPayload, type DecodeProblem, type EnvelopeJson, type Result } from "../frame_decode.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export interface DecodeOptions {
  hex?: string;
  /** Reads standard input (for `-`); replaceable in tests. */
  readStdin?: () => string;
}

export async function decodeCommand(ctx: CliContext, frames: string[], o: DecodeOptions): Promise<ExitCode> {
  if (o.hex !== undefined && frames.length > 0) throw new CliError(EXIT.usage, t("decode.hexAndFrames"), t("hint.help", { command: "decode " }));
  let result: Result<EnvelopeJson[], DecodeProblem>;
  if (o.hex !== undefined) {
    const r = decodeHexPayload(o.hex);
    result = r.ok ? { ok: true, value: [r.value] } : r;
  } else {
    if (frames.length === 0) throw new CliError(EXIT.usage, t("decode.nothing"), t("hint.help", { command: "decode " }));
    const readStdin = o.readStdin ?? (() => readFileSync(0, "utf8"));
    // Arguments must be frame lines; a pasted capture on stdin may carry console text between frames.
    const fromStdin = frames.includes("-");
    const lines = frames.flatMap((f) => (f === "-" ? readStdin().split("\n") : [f]));
    result = decodeFrameLines(lines, fromStdin);
  }
  if (!result.ok) throw problemError(result.error);
  for (const env of result.value) {
    if (ctx.json) ctx.print(JSON.stringify(env));
    else ctx.printJson(env);
  }
  return EXIT.ok;
}

function problemError(p: DecodeProblem): CliError {
  const copy = t("decode.copyHint");
  switch (p.kind) {
    case "notFrameLine":
      return new CliError(EXIT.error, t("decode.notFrameLine", { line: p.line }), copy);
    case "badBase64":
      return new CliError(EXIT.error, t("decode.badBase64", { line: p.line, detail: p.detail }), copy);
    case "cutLine":
      return new CliError(EXIT.error, t("decode.cutLine", { line: p.line, chars: p.chars }), copy);
    case "badCrc":
      return new CliError(EXIT.error, t("decode.badCrc", { line: p.line }), copy);
    case "truncated":
      return new CliError(EXIT.error, t("decode.truncated", { line: p.line, have: p.have, need: p.need }), copy);
    case "orphan":
      return new CliError(EXIT.error, t("decode.orphan", { line: p.line }), copy);
    case "tooLarge":
      return new CliError(EXIT.error, t("decode.tooLarge", { line: p.line, detail: p.detail }), copy);
    case "malformed":
      return new CliError(EXIT.error, t("decode.malformed", { line: p.line, detail: p.detail }), copy);
    case "notEnvelope":
      return new CliError(EXIT.error, t("decode.notEnvelope", { frame: p.frame, detail: p.detail ?? t("decode.emptyEnvelope") }));
    case "noFrames":
      return new CliError(EXIT.error, t("decode.noFrames"), copy);
    case "badHex": {
      const detail = p.reason === "empty" ? t("decode.hexEmpty") : p.reason === "oddLength" ? t("decode.hexOddLength") : t("decode.hexBadChar", { char: JSON.stringify(p.char ?? "") });
      return new CliError(EXIT.error, t("decode.badHex", { detail }));
    }
    default:
      return unreachable(p);
  }
}

function unreachable(x: never): never {
  throw new Error(`unexpected decode problem ${JSON.stringify(x)}`);
}
