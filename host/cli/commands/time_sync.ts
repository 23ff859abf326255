// `pollkit time sync [--device <id>...]`: sets device clocks from this computer's clock. With a
// technician token in use (pollkit token use) each device gets a SetTime signed for it; without
// one the agent sets the clocks (devices that require authority then refuse).

import type { CliContext } from "../context.ts";
import type { TimeSyncResult } from "../../control/api.ts";
import { renderTable } from "../format.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";
import { commandToJson } from "../../commission/authorize.ts";
import { loadCredentials, pollkitHome, signCommand } from "../../commission/credentials.ts";

async function signedTimeSync(ctx: CliContext, env: NodeJS.ProcessEnv, deviceIds: string[] | undefined): Promise<TimeSyncResult[]> {
  const client = ctx.client();
  const ids = deviceIds ?? (await client.devices()).map((d) => d.deviceId);
  const results: TimeSyncResult[] = [];
  for (const id of ids) {
    const s = signCommand(env, id, { setTime: { unixMs: Date.now() } }, ctx.now());
    try {
      const r = await client.command(id, commandToJson(s.command));
      results.push({ deviceId: id, ok: (r.status ?? 0) === 0, message: String(r.message ?? "") });
    } catch (e) {
      results.push({ deviceId: id, ok: false, message: e instanceof Error ? e.message : String(e) });
    }
  }
  return results;
}

export async function timeSyncCommand(ctx: CliContext, deviceIds: string[] | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  const only = deviceIds !== undefined && deviceIds.length > 0 ? deviceIds : undefined;
  const signed = loadCredentials(pollkitHome(env)) !== null;
  const results = signed ? await signedTimeSync(ctx, env, only) : await ctx.client().timeSync(only);
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
