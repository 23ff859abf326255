// `pollkit reboot <device>`: restarts the device now; it reconnects by itself.

import { requireOk } from "../command_result.ts";
import type { CliContext } from "../context.ts";
import { EXIT, t, type ExitCode } from "../messages.ts";

export async function rebootCommand(ctx: CliContext, deviceId: string): Promise<ExitCode> {
  const result = await ctx.client().command(deviceId, { reboot: { delayMs: 0 } });
  requireOk(deviceId, result);
  if (ctx.json) ctx.printJson(result);
  else ctx.print(t("reboot.done", { device: deviceId }));
  return EXIT.ok;
}
