// `pollkit time sync [--device <id>...]`: sets device clocks from this computer's clock.

import type { CliContext } from "../context.ts";
import { renderTable } from "../format.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export async function timeSyncCommand(ctx: CliContext, deviceIds: string[] | undefined): Promise<ExitCode> {
  const results = await ctx.client().timeSync(deviceIds !== undefined && deviceIds.length > 0 ? deviceIds : undefined);
  if (ctx.json) ctx.printJson(results);
  else if (results.length === 0) ctx.print(t("time.none"));
  else {
    const rows = results.map((r) => [r.deviceId, r.ok ? t("value.ok") : t("value.failed"), r.message]);
    ctx.print(renderTable([t("col.device"), t("col.result"), t("col.message")], rows, ctx.tty));
  }
  const failed = results.filter((r) => !r.ok).length;
  if (failed > 0) {
    throw new CliError(EXIT.deviceFailure, t("time.failed", { n: failed, total: results.length }), t("time.failedHint"));
  }
  return EXIT.ok;
}
