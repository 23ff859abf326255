// The Node side of the matcher's XS entry (device/biometrics/xs_entry.ts), shared by its engine
// test and the match benchmark: builds the bundle as firmware is built and speaks its requests.

import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { startXs, type XsWorker } from "../test/helpers/xs_harness.ts";

export const MATCH_XS_ENTRY = fileURLToPath(new URL("../device/biometrics/xs_entry.ts", import.meta.url));

/** One IIFE, not minified, target ES2020 (as test/engines/codec_xs_transport.ts builds the codec). */
export async function buildMatchBundle(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [MATCH_XS_ENTRY],
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

const OP = { ENROL: 1, ENROL_PREPARED: 2, PROBE: 3, RUN: 4, PREPARED: 5 } as const;

function request(op: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = op;
  out.set(payload, 1);
  return out;
}

/** A worker running the matcher bundle. */
export class MatchXs {
  private constructor(private readonly xs: XsWorker) {}

  static async start(code?: string): Promise<MatchXs> {
    const bundle = code ?? (await buildMatchBundle());
    const xs = await startXs({ name: "match", meteringLimit: 1e9 });
    try {
      await xs.evaluate(bundle);
    } catch (error) {
      await xs.close();
      throw error;
    }
    return new MatchXs(xs);
  }

  /** Parses and prepares an ISO record as the enrolled template; returns its minutiae count. */
  async enrol(iso: Uint8Array): Promise<number> {
    const { reply } = await this.xs.command(request(OP.ENROL, iso));
    if (reply[0] !== 0) throw new Error(`XS refused the enrolled record: error ${reply[0]}`);
    return reply[1];
  }

  /** Loads serializePrepared bytes as the enrolled template; false if XS refused them. */
  async enrolPrepared(bytes: Uint8Array): Promise<boolean> {
    const { reply } = await this.xs.command(request(OP.ENROL_PREPARED, bytes));
    return reply[0] === 0;
  }

  /** serializePrepared of the enrolled template, made in XS. */
  async prepared(): Promise<Uint8Array> {
    const { reply } = await this.xs.command(request(OP.PREPARED, new Uint8Array(0)));
    return reply;
  }

  /**
   * Scores a probe ISO record against the enrolled template; `compute` is the XS meter of
   * parsing + preparing + scoring the probe alone: compute(RUN) - compute(RUN dry).
   */
  async match(iso: Uint8Array): Promise<{ score: number; compute: number }> {
    const stash = await this.xs.command(request(OP.PROBE, iso));
    if (stash.reply.length !== 0) throw new Error("XS probe stash failed");
    const run = await this.xs.command(Uint8Array.of(OP.RUN, 0));
    const dry = await this.xs.command(Uint8Array.of(OP.RUN, 1));
    if (run.reply[0] !== 0) throw new Error(`XS match failed: status ${run.reply[0]}`);
    return { score: (run.reply[1] << 8) | run.reply[2], compute: run.meter.compute - dry.meter.compute };
  }

  /** XS compute of parsing, and of parsing + preparing, the last probe given to match(). */
  async stages(): Promise<{ parse: number; prepare: number }> {
    const c = async (stage: number): Promise<number> => (await this.xs.command(Uint8Array.of(6, stage))).meter.compute;
    const zero = await c(0);
    return { parse: (await c(1)) - zero, prepare: (await c(2)) - zero };
  }

  close(): Promise<void> {
    return this.xs.close();
  }
}
