// `pollkit diag <device>`: the device tests each of its parts; a table of verdicts, exit 5 when a
// part fails. Part and verdict names come from the schema's Peripheral and Verdict enums.

import type { CommandResultJson } from "../../control/api.ts";
import { requireOk } from "../command_result.ts";
import type { CliContext } from "../context.ts";
import { enumLabel, enumNumber, renderTable } from "../format.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

const VERDICT_FAIL = 2;

interface PartVerdict {
  part: number;
  verdict: number;
  detail: string;
}

/** Diagnostics may take a while on a device that probes its fingerprint sensor and printer. */
const DIAG_TIMEOUT_MS = 20000;

export function partsOf(result: CommandResultJson): PartVerdict[] {
  const report = result.diagnostics as { parts?: unknown } | undefined;
  const parts = Array.isArray(report?.parts) ? (report.parts as Array<Record<string, unknown>>) : [];
  return parts.map((p) => ({
    part: enumNumber("Peripheral", p.part) ?? 0,
    verdict: enumNumber("Verdict", p.verdict) ?? 0,
    detail: typeof p.detail === "string" ? p.detail : "",
  }));
}

export async function diagCommand(ctx: CliContext, deviceId: string): Promise<ExitCode> {
  const result = await ctx.client().command(deviceId, { diagnostics: {} }, DIAG_TIMEOUT_MS);
  requireOk(deviceId, result);
  const parts = partsOf(result);
  if (ctx.json) ctx.printJson(result);
  else if (parts.length === 0) ctx.print(t("diag.empty", { device: deviceId }));
  else {
    const rows = parts.map((p) => [enumLabel("Peripheral", p.part), enumLabel("Verdict", p.verdict), p.detail]);
    ctx.print(renderTable([t("col.part"), t("col.verdict"), t("col.detail")], rows, ctx.tty));
  }
  const failed = parts.filter((p) => p.verdict === VERDICT_FAIL);
  if (failed.length > 0) {
    throw new CliError(
      EXIT.deviceFailure,
      t("diag.failed", { device: deviceId, n: failed.length, parts: failed.map((p) => enumLabel("Peripheral", p.part)).join(", ") }),
      t("diag.failedHint", { device: deviceId }),
    );
  }
  if (!ctx.json && parts.length > 0) ctx.note(t("diag.passed", { device: deviceId }));
  return EXIT.ok;
}
