// `pollkit charge-mode <device...|--all> <normal|storage|maintain>`: sets how devices charge
// their batteries (storage holds 40-60 % for months in a warehouse). A rack at a time: with
// --all every device the agent serves is set, each answer reported, and the exit code says
// whether any device refused.

import { CliError, EXIT, t, type ExitCode } from "../messages.ts";
import type { CliContext } from "../context.ts";
import { enumLabel, enumNumber } from "../format.ts";
import { renderTable } from "../format.ts";
import { signCommand } from "../../commission/credentials.ts";
import { commandToJson } from "../../commission/authorize.ts";

const STATUS_DENIED = 2;

export const CHARGE_MODES: Record<string, number> = { normal: 1, storage: 2, maintain: 3 };

export function parseChargeMode(v: string): number {
  const mode = CHARGE_MODES[v.toLowerCase()];
  if (mode === undefined) {
    throw new CliError(EXIT.usage, t("charge.badMode", { mode: v, modes: Object.keys(CHARGE_MODES).join(", ") }));
  }
  return mode;
}

interface Outcome {
  deviceId: string;
  ok: boolean;
  /** Status from the schema (-1: no answer). */
  code: number;
  status: string;
  message: string;
}

export async function chargeModeCommand(
  ctx: CliContext,
  devices: string[],
  modeName: string,
  o: { all?: boolean },
): Promise<ExitCode> {
  const mode = parseChargeMode(modeName);
  let ids = devices;
  if (o.all) {
    if (devices.length > 0) throw new CliError(EXIT.usage, t("charge.allAndDevices"));
    ids = (await ctx.client().devices()).filter((d) => d.state === "ready").map((d) => d.deviceId);
    if (ids.length === 0) {
      ctx.print(t("devices.none", { url: ctx.agentUrl }));
      return EXIT.ok;
    }
  } else if (ids.length === 0) throw new CliError(EXIT.usage, t("charge.noDevice"));

  // Devices answer independently: ask them all at once.
  const outcomes: Outcome[] = await Promise.all(
    ids.map(async (deviceId): Promise<Outcome> => {
      try {
        // Signed with the technician's token when one is in use (pollkit token use).
        const s = signCommand(process.env, deviceId, { setChargeMode: { mode } }, ctx.now());
        const r = await ctx.client().command(deviceId, s.signed ? commandToJson(s.command) : { setChargeMode: { mode } });
        const status = enumNumber("Status", r.status) ?? 0;
        return { deviceId, ok: status === 0, code: status, status: enumLabel("Status", status), message: typeof r.message === "string" ? r.message : "" };
      } catch (e) {
        return { deviceId, ok: false, code: -1, status: "error", message: e instanceof Error ? e.message : String(e) };
      }
    }),
  );
  const failed = outcomes.filter((x) => !x.ok);
  if (ctx.json) ctx.printJson({ mode: modeName.toLowerCase(), results: outcomes });
  else {
    const rows = outcomes.map((x) => [x.deviceId, x.ok ? t("charge.set", { mode: modeName.toLowerCase() }) : x.status, x.message]);
    ctx.print(renderTable([t("col.device"), t("col.result"), t("col.detail")], rows, ctx.tty));
  }
  if (failed.length > 0) {
    throw new CliError(
      EXIT.deviceFailure,
      t("charge.someFailed", { n: failed.length, total: outcomes.length }),
      failed.some((x) => x.code === STATUS_DENIED) ? t("command.deniedHint") : t("command.rejectedHint", { device: failed[0].deviceId }),
    );
  }
  return EXIT.ok;
}
