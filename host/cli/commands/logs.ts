// `pollkit logs <device> [--follow] [--lines N]`: a device's console log; with --follow, the
// agent's event stream until Ctrl-C or the device disconnects.

import type { CliContext } from "../context.ts";
import { CliError, EXIT, t, type ExitCode } from "../messages.ts";

export interface LogsOptions {
  follow: boolean;
  lines?: number;
}

export async function logsCommand(ctx: CliContext, deviceId: string, o: LogsOptions): Promise<ExitCode> {
  const show = (line: string): void => (ctx.json ? ctx.print(JSON.stringify({ line })) : ctx.print(line));
  if (!o.follow) {
    const lines = await ctx.client().logs(deviceId, o.lines);
    if (ctx.json) ctx.printJson({ lines });
    else if (lines.length === 0) ctx.note(t("logs.none", { device: deviceId }));
    else for (const l of lines) show(l);
    return EXIT.ok;
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const end = await ctx.client().followLogs(deviceId, { lines: o.lines, signal: stop.signal, onLine: show });
    switch (end) {
      case "aborted":
        return EXIT.ok;
      case "device-closed":
        ctx.note(t("logs.closed", { device: deviceId }));
        return EXIT.ok;
      case "stream-ended":
        throw new CliError(EXIT.agentUnreachable, t("logs.lost"), t("hint.startAgent"));
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
