// `pollkit reboot <device>`: restarts the device now; it reconnects by itself. The command carries
// the technician's authority when a token is in use (pollkit token use).

import { requireOk } from "../command_result.ts";
import type { CliContext } from "../context.ts";
import { EXIT, t, type ExitCode } from "../messages.ts";
import { commandToJson } from "../../commission/authorize.ts";
import { signCommand } from "../../commission/credentials.ts";

export async function rebootCommand(ctx: CliContext, deviceId: string, env: NodeJS.ProcessEnv = process.env): Promise<ExitCode> {
  const s = signCommand(env, deviceId, { reboot: { delayMs: 0 } }, ctx.now());
  const result = await ctx.client().command(deviceId, s.signed ? commandToJson(s.command) : { reboot: { delayMs: 0 } });
  requireOk(deviceId, result);
  if (ctx.json) ctx.printJson(result);
  else ctx.print(t("reboot.done", { device: deviceId }));
  return EXIT.ok;
}
