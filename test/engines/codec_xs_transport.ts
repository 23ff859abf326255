// The Node side of the XS codec entry (codec_xs_entry.ts), shared by its test and the codec
// benchmark: how the entry is bundled, and the request and JSON transport it speaks.
// Requests are op | name length | name | payload; values travel as ASCII JSON (non-ASCII as \u
// escapes: firmware has no TextDecoder) with byte fields as {"$b": [numbers]}.

import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

type Json = Record<string, unknown>;

export const CODEC_XS_ENTRY = fileURLToPath(new URL("./codec_xs_entry.ts", import.meta.url));

/**
 * Bundles the entry as firmware is bundled: one IIFE, nothing minified. Target ES2020 keeps `??`
 * (Espruino has it) and lowers nothing else the source uses; `useDefineForClassFields: false`
 * drops the bare field declarations of FrameDecoder instead of lowering them to esbuild's
 * `__publicField`/`__defProp` helpers (ES2022 class fields would otherwise stay or be lowered).
 */
export async function buildCodecBundle(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [CODEC_XS_ENTRY],
    bundle: true,
    format: "iife",
    target: "es2020",
    platform: "neutral",
    write: false,
    minify: false,
    legalComments: "none",
    logLevel: "silent",
    tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error("esbuild produced no output");
  return file.text;
}

/** Device form to JSON data: Uint8Array as {"$b": [...]}. */
export function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $b: Array.from(v) };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

/** JSON data back to device form. */
export function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v !== null && typeof v === "object") {
    const b = (v as Json).$b;
    if (Array.isArray(b)) return new Uint8Array(b as number[]);
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = revive(x);
    return out;
  }
  return v;
}

/** JSON with every non-ASCII character escaped. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

export function request(op: number, name: string, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === "string" ? Buffer.from(payload, "latin1") : payload;
  const out = new Uint8Array(2 + name.length + body.length);
  out[0] = op;
  out[1] = name.length;
  out.set(Buffer.from(name, "latin1"), 2);
  out.set(body, 2 + name.length);
  return out;
}
