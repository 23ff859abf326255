// `pollkit agent --config <file>`: runs the host agent in this process until SIGINT or SIGTERM.
// The agent is imported on demand, so the rest of the CLI works on a machine without its native
// dependencies (serial bindings, SQLite).

import type { CliContext } from "../context.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export async function agentCommand(ctx: CliContext, configPath: string, defaultAgentUrl: string): Promise<ExitCode> {
  let mod: typeof import("../../agent/agent.ts");
  try {
    mod = await import("../../agent/agent.ts");
  } catch (e) {
    throw new CliError(EXIT.notAvailable, t("agent.notAvailable", { detail: message(e) }), t("agent.notAvailableHint"));
  }

  let config: ReturnType<typeof mod.loadAgentConfig>;
  try {
    config = mod.loadAgentConfig(configPath);
  } catch (e) {
    throw new CliError(EXIT.error, t("agent.badConfig", { file: configPath, detail: message(e) }), t("agent.badConfigHint", { file: configPath }));
  }

  let running: Awaited<ReturnType<typeof mod.startAgent>>;
  try {
    running = await mod.startAgent(config);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
      const address = `${config.control.host}:${config.control.port}`;
      throw new CliError(EXIT.error, t("agent.portInUse", { address }), t("agent.portInUseHint"));
    }
    throw new CliError(EXIT.error, t("agent.startFailed", { detail: message(e) }), t("agent.badConfigHint", { file: configPath }));
  }

  if (ctx.json) ctx.print(JSON.stringify({ controlUrl: running.controlUrl }));
  else {
    ctx.print(t("agent.listening", { url: running.controlUrl }));
    if (running.controlUrl !== defaultAgentUrl) ctx.note(t("agent.otherUrl", { url: running.controlUrl }));
    ctx.note(t("agent.stopHint"));
  }

  // Runs until a signal; a second signal while stopping gives up waiting.
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  ctx.note(t("agent.stopping"));
  const force = (): void => process.exit(EXIT.error);
  process.once("SIGINT", force);
  process.once("SIGTERM", force);
  try {
    await running.stop();
  } catch (e) {
    throw new CliError(EXIT.error, t("agent.stopFailed", { detail: message(e) }));
  } finally {
    process.off("SIGINT", force);
    process.off("SIGTERM", force);
  }
  ctx.note(t("agent.stopped"));
  return EXIT.ok;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
