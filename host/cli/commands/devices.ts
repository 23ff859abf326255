// `pollkit devices`: the devices connected to the agent, one row each.

import type { DeviceSummary } from "../../control/api.ts";
import type { CliContext } from "../context.ts";
import { formatAgo, formatPermille, none, renderTable } from "../format.ts";
import { EXIT, t, type ExitCode, type MessageKey } from "../messages.ts";

const ROLE_KEYS: Record<DeviceSummary["role"], MessageKey> = {
  verification: "role.verification",
  result: "role.result",
  unknown: "role.unknown",
};

export function roleLabel(role: DeviceSummary["role"]): string {
  return t(ROLE_KEYS[role] ?? "role.unknown");
}

export async function devicesCommand(ctx: CliContext): Promise<ExitCode> {
  const devices = await ctx.client().devices();
  if (ctx.json) {
    ctx.printJson(devices);
    return EXIT.ok;
  }
  if (devices.length === 0) {
    ctx.print(t("devices.none", { url: ctx.agentUrl }));
    ctx.note(t("devices.noneHint"));
    return EXIT.ok;
  }
  const now = ctx.now();
  const head = ["device", "role", "transport", "address", "state", "firmware", "battery", "backlog", "lastSeen"] as const;
  const rows = devices.map((d) => [
    d.deviceId,
    roleLabel(d.role),
    d.transport,
    d.address,
    d.state,
    d.firmwareVersion || none(),
    // proto3 JSON leaves out zero values: a field missing from a health report is 0.
    d.health ? formatPermille(d.health.stateOfChargePermille ?? 0) : none(),
    d.health ? (d.health.journalBacklog ?? 0) : none(),
    formatAgo(d.lastSeenMs, now),
  ]);
  ctx.print(renderTable(head.map((h) => t(`col.${h}`)), rows, ctx.tty));
  return EXIT.ok;
}
