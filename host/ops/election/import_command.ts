// `pollkit ops import-election <file|dir> --config <ops.json>`: imports election definitions into
// the console's store (the same SQLite file a running console uses; it reads them again within its
// reload interval, or at once when imported through POST /api/elections). The command wiring in
// host/cli/program.ts calls importElectionCommand. Messages in English and Arabic here.

import type { CliContext } from "../../cli/context.ts";
import { CliError, currentLang, EXIT, type ExitCode } from "../../cli/messages.ts";

const TEXT = {
  description: {
    en: "import election definitions (signed artifact or JSON; a file or a directory) into the operations console's store",
    ar: "استيراد تعريفات الانتخابات (ملف موقّع أو JSON؛ ملف أو مجلد) إلى مخزن منصة العمليات",
  },
  failed: { en: "The election definitions were not imported: {detail}", ar: "لم تُستورد تعريفات الانتخابات: {detail}" },
  hint: { en: "Nothing was stored. Fix the file, then run the import again.", ar: "لم يُخزَّن شيء. أصلح الملف ثم أعد الاستيراد." },
  imported: { en: "Imported {count} election definition(s):", ar: "استُورد {count} تعريف انتخابات:" },
  line: {
    en: "  {election} station {station}: {contests} contest(s), polls close {close} UTC, {signed}",
    ar: "  {election} المركز {station}: {contests} سباق، يُغلق الاقتراع {close} UTC، {signed}",
  },
  allStations: { en: "(all stations)", ar: "(كل المراكز)" },
  signedChecked: { en: "commission signature verified", ar: "تم التحقق من توقيع المفوضية" },
  signedUnchecked: { en: "signed artifact, signature not checked (no commissionKey configured)", ar: "ملف موقّع، لم يُتحقق من التوقيع (لا يوجد commissionKey في الإعدادات)" },
  unsigned: { en: "unsigned (JSON)", ar: "غير موقّع (JSON)" },
} as const;

type Key = keyof typeof TEXT;

function tx(key: Key, params: Record<string, string | number> = {}): string {
  return TEXT[key][currentLang()].replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

export function importElectionDescription(): string {
  return tx("description");
}

export function importElectionTexts(): ReadonlyArray<[string, { en: string; ar: string }]> {
  return Object.entries(TEXT);
}

export async function importElectionCommand(ctx: CliContext, configPath: string, file: string): Promise<ExitCode> {
  const ops = await import("../ops.ts");
  const election = await import("./election.ts");
  let config;
  try {
    config = ops.loadOpsConfig(configPath);
  } catch (e) {
    throw new CliError(EXIT.error, tx("failed", { detail: (e as Error).message }));
  }
  const store = ops.openOpsStore(config.store);
  try {
    const list = election.importElection(store, file, { commissionKeyHex: config.commissionKeyHex, nowMs: ctx.now() });
    const summaries = list.map((e) => election.electionSummary(e));
    if (ctx.json) {
      ctx.printJson({ imported: summaries });
      return EXIT.ok;
    }
    ctx.print(tx("imported", { count: list.length }));
    for (const s of summaries) {
      ctx.print(
        tx("line", {
          election: String(s.electionId),
          station: s.stationId === "" ? tx("allStations") : String(s.stationId),
          contests: (s.contests as unknown[]).length,
          close: s.pollsCloseMs ? new Date(Number(s.pollsCloseMs)).toISOString().slice(0, 16).replace("T", " ") : "-",
          signed: s.signed ? (s.signatureChecked ? tx("signedChecked") : tx("signedUnchecked")) : tx("unsigned"),
        }),
      );
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof election.ElectionImportError) throw new CliError(EXIT.error, tx("failed", { detail: e.message }), tx("hint"));
    throw e;
  } finally {
    store.close();
  }
}
