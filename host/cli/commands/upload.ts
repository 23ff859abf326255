// `pollkit upload <device> <file> --kind <kind> [--name <name>]`: sends a file to a device with the
// agent's chunked transfer (POST /v1/devices/:id/transfer) and shows the device's progress: a bar
// when stderr is a terminal, a line every 10 % otherwise, JSON lines on stdout with --json.
// Ctrl-C cancels; the device keeps what it has, and the same command continues from there.
// With a technician token in use (pollkit token use) the TransferBegin is signed here and the
// agent sends it as it is (the device refuses transfers begun without authority).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import cliProgress from "cli-progress";
import {
  MAX_TRANSFER_DATA_BYTES,
  TRANSFER_KINDS,
  type TransferBeginAuthority,
  type TransferKindName,
  type TransferProgress,
} from "../../control/api.ts";
import type { TransferClientOptions } from "../client.ts";
import type { CliContext } from "../context.ts";
import { signCommand } from "../../commission/credentials.ts";
import { enumLabel, formatBytes } from "../format.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export interface UploadOptions {
  kind: TransferKindName;
  /** What the device stores with the data; default the file's name. */
  name?: string;
}

interface Progress {
  update(p: TransferProgress): void;
  stop(): void;
}

/** The three ways of showing progress: JSON lines, a bar, or a plain line per 10 %. */
function progressFor(ctx: CliContext, deviceId: string, size: number): Progress {
  if (ctx.json) {
    return {
      update: (p) => ctx.print(JSON.stringify({ event: "progress", device: deviceId, sent: p.sent, total: p.total })),
      stop: () => {},
    };
  }
  if (ctx.stderrTty === true) {
    const bar = new cliProgress.SingleBar({ format: t("upload.progress"), hideCursor: true }, cliProgress.Presets.shades_classic);
    let started = false;
    return {
      update: (p) => {
        const payload = { sent: formatBytes(p.sent), size: formatBytes(p.total) };
        if (!started) bar.start(p.total, p.sent, payload);
        else bar.update(p.sent, payload);
        started = true;
      },
      stop: () => {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let shown = -1;
  return {
    update: (p) => {
      const percent = p.total === 0 ? 100 : Math.floor((p.sent * 100) / p.total);
      const step = Math.floor(percent / 10);
      if (step <= shown) return;
      shown = step;
      ctx.note(t("upload.progressLine", { device: deviceId, percent, sent: formatBytes(p.sent), size: formatBytes(size) }));
    },
    stop: () => {},
  };
}

/**
 * The technician's signature on the TransferBegin the agent will send for this file (same kind,
 * size, name and SHA-256), or undefined when no token is in use.
 */
export function signedBegin(env: NodeJS.ProcessEnv, deviceId: string, kind: TransferKindName, name: string, data: Uint8Array, now: number): TransferBeginAuthority | undefined {
  const sha256 = new Uint8Array(createHash("sha256").update(data).digest());
  const s = signCommand(env, deviceId, { transferBegin: { kind: TRANSFER_KINDS[kind], totalBytes: data.length, sha256, name } }, now);
  if (!s.signed) return undefined;
  return { id: s.command.id ?? 0, authorityBase64: Buffer.from(s.command.authority ?? new Uint8Array(0)).toString("base64") };
}

export async function uploadCommand(ctx: CliContext, deviceId: string, file: string, o: UploadOptions, env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  let data: Uint8Array;
  try {
    data = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new CliError(EXIT.error, t("upload.cannotRead", { file, detail: e instanceof Error ? e.message : String(e) }), t("upload.cannotReadHint"));
  }
  if (data.length === 0) throw new CliError(EXIT.error, t("upload.empty", { file }), t("upload.cannotReadHint"));
  if (data.length > MAX_TRANSFER_DATA_BYTES) {
    throw new CliError(
      EXIT.error,
      t("upload.tooLarge", { file, size: formatBytes(data.length), max: formatBytes(MAX_TRANSFER_DATA_BYTES) }),
      t("upload.tooLargeHint", { kind: o.kind }),
    );
  }
  const name = o.name ?? basename(file);
  const progress = progressFor(ctx, deviceId, data.length);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    // `begin` reaches the agent once ControlClient.transfer copies it into the request body.
    const options: TransferClientOptions & { begin?: TransferBeginAuthority } = {
      kind: o.kind,
      name,
      data,
      signal: stop.signal,
      onProgress: (p) => progress.update(p),
      begin: signedBegin(env, deviceId, o.kind, name, data, ctx.now()),
    };
    const end = await ctx.client().transfer(deviceId, options);
    progress.stop();
    if (!end.ok) throw new CliError(EXIT.error, t("upload.cancelled", { device: deviceId }), t("upload.cancelledHint"));
    const r = end.outcome;
    if (ctx.json) ctx.print(JSON.stringify({ event: "done", device: deviceId, kind: o.kind, name, ...r }));
    else {
      ctx.print(
        t("upload.done", {
          device: deviceId,
          name,
          size: formatBytes(r.bytes),
          kind: enumLabel("TransferKind", TRANSFER_KINDS[o.kind]),
          seconds: (r.ms / 1000).toFixed(1),
          chunks: r.chunks,
          resumes: r.resumes,
        }),
      );
    }
    return EXIT.ok;
  } finally {
    progress.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
