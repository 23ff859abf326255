// `pollkit verify-result <file> [--registry <file>]`: checks a signed-results export from the
// operations console on its own (no agent, no operations database): each result's P-256 signature
// over the Record as the device signed it, that it is a StationResult for the station the file
// says, and, with --registry, that each key is the device's provisioned key. Prints every result;
// exit 0 when all verify, 1 when any does not or the file is not an export.
// Its messages live here (English and Arabic), so the command stays self-contained.

import { readFileSync } from "node:fs";
import type { CliContext } from "../context.ts";
import { CliError, currentLang, EXIT, type ExitCode, type Lang } from "../messages.ts";

type Key =
  | "description"
  | "argFile"
  | "optRegistry"
  | "cannotRead"
  | "notExport"
  | "registryBad"
  | "ok"
  | "fail"
  | "head"
  | "resultLine"
  | "contestLine"
  | "summaryOk"
  | "summaryFail"
  | "keysUnchecked"
  | "keysChecked"
  | "malformed-entry"
  | "malformed-record"
  | "not-a-result"
  | "unsigned"
  | "bad-signature"
  | "unknown-device"
  | "wrong-key"
  | "bad-payload"
  | "station-mismatch"
  | "hintFile";

const TEXT: Record<Key, { en: string; ar: string }> = {
  description: {
    en: "verify a signed-results export from the operations console on its own (signatures, stations; --registry checks the keys); no agent needed",
    ar: "تحقق من ملف النتائج الموقّعة المصدَّر من منصة العمليات بشكل مستقل (التواقيع والمراكز؛ --registry يتحقق من المفاتيح)؛ لا يحتاج إلى الوكيل",
  },
  argFile: { en: "the export (JSON or NDJSON) from /api/export/results.signed.json", ar: "ملف التصدير (JSON أو NDJSON) من /api/export/results.signed.json" },
  optRegistry: { en: "provisioning registry (JSON or CSV) to check each device's key against", ar: "سجل التجهيز (JSON أو CSV) للتحقق من مفتاح كل جهاز" },
  cannotRead: { en: "Cannot read {file}: {detail}", ar: "تعذّرت قراءة {file}: {detail}" },
  notExport: { en: "{file} is not a signed-results export: {detail}", ar: "{file} ليس ملف نتائج موقّعة: {detail}" },
  registryBad: { en: "The registry {file} is not usable: {detail}", ar: "السجل {file} غير صالح: {detail}" },
  ok: { en: "VERIFIED", ar: "تم التحقق" },
  fail: { en: "FAILED", ar: "فشل التحقق" },
  head: {
    en: "{mark} {verdict}  #{index}  station {station}  device {device}  record {seq}  signed {signed} UTC",
    ar: "{mark} {verdict}  #{index}  المركز {station}  الجهاز {device}  السجل {seq}  التوقيع {signed} UTC",
  },
  resultLine: {
    en: "  election {election}, closed {closed} UTC: {ballots} ballots counted, {rejected} rejected, verified voters {verified}",
    ar: "  الانتخابات {election}، أُغلقت {closed} UTC: {ballots} ورقة معدودة، {rejected} مرفوضة، المتحقق منهم {verified}",
  },
  contestLine: { en: "  contest {contest}: {votes}; blank {blank}, invalid {invalid}", ar: "  السباق {contest}: {votes}؛ فارغة {blank}، باطلة {invalid}" },
  summaryOk: { en: "All {count} results verify.", ar: "تم التحقق من كل النتائج ({count})." },
  summaryFail: { en: "{failed} of {count} results do NOT verify.", ar: "{failed} من {count} نتيجة لم يتم التحقق منها." },
  keysUnchecked: {
    en: "The public keys are those written in the file; give --registry <file> to check them against the provisioning registry.",
    ar: "المفاتيح العامة هي المكتوبة في الملف؛ استخدم --registry <file> لمطابقتها مع سجل التجهيز.",
  },
  keysChecked: { en: "Keys checked against the registry {file}.", ar: "تمت مطابقة المفاتيح مع السجل {file}." },
  "malformed-entry": { en: "malformed entry: {detail}", ar: "مدخل غير سليم: {detail}" },
  "malformed-record": { en: "the record bytes do not parse: {detail}", ar: "بايتات السجل غير قابلة للتحليل: {detail}" },
  "not-a-result": { en: "not a result record: {detail}", ar: "ليس سجل نتيجة: {detail}" },
  unsigned: { en: "not signed: {detail}", ar: "غير موقّع: {detail}" },
  "bad-signature": {
    en: "TAMPERED OR WRONG DEVICE: {detail}",
    ar: "تم العبث به أو من جهاز آخر: التوقيع لا يتطابق مع مفتاح {device}",
  },
  "unknown-device": { en: "unknown device: {detail}", ar: "جهاز غير معروف: {device} غير موجود في السجل" },
  "wrong-key": { en: "WRONG KEY: {detail}", ar: "مفتاح خاطئ: المفتاح المذكور لـ {device} ليس مفتاحه المسجَّل" },
  "bad-payload": { en: "the signed payload is not a StationResult: {detail}", ar: "الحمولة الموقّعة ليست نتيجة مركز: {detail}" },
  "station-mismatch": { en: "station mismatch: {detail}", ar: "عدم تطابق المركز: النتيجة الموقّعة للمركز {signed} والملف يذكر {file}" },
  hintFile: { en: "Export it again from the console: /api/export/results.signed.json", ar: "صدّره مجدداً من المنصة: /api/export/results.signed.json" },
};

function tx(key: Key, params: Record<string, string | number> = {}, lang: Lang = currentLang()): string {
  return TEXT[key][lang].replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

export function verifyResultTexts(): ReadonlyArray<[string, { en: string; ar: string }]> {
  return Object.entries(TEXT);
}

export function verifyResultDescription(): string {
  return tx("description");
}
export function verifyResultArgText(): string {
  return tx("argFile");
}
export function verifyResultRegistryText(): string {
  return tx("optRegistry");
}

function time(ms: number): string {
  return ms ? new Date(ms).toISOString().slice(0, 16).replace("T", " ") : "-";
}

export async function verifyResultCommand(ctx: CliContext, file: string, o: { registry?: string } = {}): Promise<ExitCode> {
  // Loaded here: the rest of the CLI does not need them.
  const mod = await import("../../ops/export/signed_results.ts");
  const reg = await import("../../ops/registry/registry.ts");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(EXIT.error, tx("cannotRead", { file, detail: (e as Error).message }));
  }
  let registry;
  if (o.registry !== undefined) {
    try {
      registry = reg.parseRegistry(readFileSync(o.registry, "utf8"));
    } catch (e) {
      throw new CliError(EXIT.error, tx("registryBad", { file: o.registry, detail: (e as Error).message }));
    }
  }
  let outcomes;
  try {
    outcomes = mod.verifySignedResults(text, registry);
  } catch (e) {
    if (e instanceof mod.SignedFileError) throw new CliError(EXIT.error, tx("notExport", { file, detail: e.message }), tx("hintFile"));
    throw e;
  }
  const failed = outcomes.filter((x) => !x.ok).length;
  if (ctx.json) {
    ctx.printJson({
      file,
      verified: outcomes.length - failed,
      failed,
      keysChecked: registry !== undefined,
      results: outcomes.map((x) => ({
        index: x.index,
        stationId: x.stationId,
        deviceId: x.deviceId,
        seq: x.seq,
        ok: x.ok,
        keyChecked: x.keyChecked,
        problems: x.problems.map((p) => ({ code: p.code, detail: p.detail })),
        signedMs: x.signedMs,
        result: x.result,
      })),
    });
    return failed === 0 ? EXIT.ok : EXIT.error;
  }
  for (const x of outcomes) {
    ctx.print(
      tx("head", {
        mark: x.ok ? "✔" : "✘",
        verdict: x.ok ? tx("ok") : tx("fail"),
        index: x.index,
        station: x.stationId || "?",
        device: x.deviceId || "?",
        seq: x.seq,
        signed: time(x.signedMs),
      }),
    );
    for (const p of x.problems) ctx.print(`  - ${tx(p.code, { ...p.params, detail: p.detail })}`);
    const r = x.result;
    if (r) {
      ctx.print(
        tx("resultLine", {
          election: r.electionId || "-",
          closed: time(r.closedMs),
          ballots: r.ballotsCounted,
          rejected: r.ballotsRejected,
          verified: r.verifiedVotersKnown ? r.verifiedVoters : "-",
        }),
      );
      for (const c of r.contests) {
        ctx.print(tx("contestLine", { contest: c.contestId, votes: c.votes.map((v, i) => `#${i + 1} ${v}`).join(", ") || "-", blank: c.blank, invalid: c.invalid }));
      }
    }
  }
  ctx.print(failed === 0 ? tx("summaryOk", { count: outcomes.length }) : tx("summaryFail", { failed, count: outcomes.length }));
  ctx.note(registry !== undefined ? tx("keysChecked", { file: o.registry ?? "" }) : tx("keysUnchecked"));
  return failed === 0 ? EXIT.ok : EXIT.error;
}
