// `pollkit ops --config <file>`: runs the operations console (ingest, store, dashboard, reports)
// until SIGINT or SIGTERM. Imported on demand, like the agent.

import type { CliContext } from "../context.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export async function opsCommand(ctx: CliContext, configPath: string): Promise<ExitCode> {
  let mod: typeof import("../../ops/ops.ts");
  try {
    mod = await import("../../ops/ops.ts");
  } catch (e) {
    throw new CliError(EXIT.notAvailable, t("ops.notAvailable", { detail: (e as Error).message }));
  }
  let running: Awaited<ReturnType<typeof mod.startOps>>;
  try {
    running = await mod.startOps(mod.loadOpsConfig(configPath));
  } catch (e) {
    throw new CliError(EXIT.error, t("ops.startFailed", { detail: (e as Error).message }), t("ops.configHint", { file: configPath }));
  }
  if (ctx.json) ctx.print(JSON.stringify({ url: running.url }));
  else ctx.print(t("ops.listening", { url: running.url }));
  ctx.note(t("agent.stopHint"));
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await running.stop();
  return EXIT.ok;
}
