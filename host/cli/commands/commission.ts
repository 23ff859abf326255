// `pollkit commission ...`: the commission's offline tools (no agent needed).
//   keygen --out <dir> [--force]                    commission.key (PKCS#8 PEM, 0600) and commission.pub
//                                                   (hex X || Y: what devices are provisioned with)
//   sign --kind station-register|election|config|firmware --in <file> --version N --key <k> --out <f>
//        [--station S] [--election E]               a SignedArtifact. --in: the body. A station
//                                                   register or election definition may be given as
//                                                   JSON (protobufjs form of StationRegister /
//                                                   ElectionDefinition) or as its encoded bytes; a
//                                                   configuration is `key=value` lines (site=, station=);
//                                                   firmware is the engine's bundle as is.
//   token --technician T --site S --days N --tech-pub <file> --key <k> --out <f> [--not-before <date>]
//                                                   a technician token (valid from --not-before, default
//                                                   an hour ago to absorb clock drift, for N days)

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Option, type Command } from "commander";
import { ARTIFACT_KIND_NAMES, isArtifactKindName, issueToken, signArtifact, type ArtifactKindName } from "../../commission/artifacts.ts";
import { createCommissionKey, publicKeyHex, readPrivateKeyFile, readPublicKeyFile, writeKeyPair } from "../../commission/keys.ts";
import * as schema from "../../../protocol/node/schema.ts";
import { ArtifactKind, decodeElectionDefinition, decodeStationRegister } from "../../../protocol/generated/device_codec.ts";
import { parseConfiguration } from "../../../device/services/artifact_store.ts";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, currentLang, type ExitCode } from "../messages.ts";

type Run = (work: (ctx: CliContext) => Promise<ExitCode>, cmd: Command) => Promise<void>;

const TEXT = {
  "cmd.commission": { en: "commission tools: signing key, signed artifacts, technician tokens (offline)", ar: "أدوات المفوضية: مفتاح التوقيع والملفات الموقعة ورموز الفنيين (دون اتصال)" },
  "cmd.keygen": { en: "create the commission's P-256 signing key", ar: "أنشئ مفتاح التوقيع P-256 للمفوضية" },
  "cmd.sign": { en: "sign station data, an election definition, a configuration or firmware", ar: "وقّع بيانات المركز أو تعريف الانتخابات أو الإعدادات أو البرنامج الثابت" },
  "cmd.token": { en: "issue a technician token", ar: "أصدر رمز فني" },
  "opt.out": { en: "output directory (keygen) or file", ar: "مجلد الإخراج (keygen) أو الملف" },
  "opt.force": { en: "replace existing files", ar: "استبدل الملفات الموجودة" },
  "opt.kind": { en: "artifact kind: station-register, election, config or firmware", ar: "نوع الملف: station-register أو election أو config أو firmware" },
  "opt.in": { en: "the body to sign", ar: "المحتوى المطلوب توقيعه" },
  "opt.station": { en: "station id (required for station-register and election)", ar: "معرّف المركز (مطلوب لـ station-register وelection)" },
  "opt.election": { en: "election id", ar: "معرّف الانتخابات" },
  "opt.version": { en: "version, grows per kind and station (devices refuse older ones)", ar: "الإصدار، يزداد لكل نوع ومركز (ترفض الأجهزة الأقدم)" },
  "opt.key": { en: "the commission's private key file", ar: "ملف المفتاح الخاص للمفوضية" },
  "opt.technician": { en: "technician id", ar: "معرّف الفني" },
  "opt.site": { en: 'site id, or "*" for every site', ar: 'معرّف الموقع، أو "*" لكل المواقع' },
  "opt.days": { en: "days the token is valid (1-3650)", ar: "عدد أيام صلاحية الرمز (1-3650)" },
  "opt.techPub": { en: "the technician's public key file (from: pollkit token keygen)", ar: "ملف المفتاح العام للفني (من: pollkit token keygen)" },
  "opt.notBefore": { en: "start of validity (ISO date; default one hour ago)", ar: "بداية الصلاحية (تاريخ ISO؛ الافتراضي قبل ساعة)" },
  "keygen.done": { en: "Commission key written: {key} (keep it offline) and {pub} (provision devices with it)", ar: "كُتب مفتاح المفوضية: {key} (احفظه دون اتصال) و{pub} (زوّد الأجهزة به)" },
  "sign.done": { en: "Signed {kind} version {version} for {station}: {out} ({bytes} bytes)", ar: "وُقّع {kind} الإصدار {version} لـ {station}: {out} ({bytes} بايت)" },
  "token.done": { en: "Token for {technician} at site {site}, valid until {until}: {out}", ar: "رمز للفني {technician} في الموقع {site}، صالح حتى {until}: {out}" },
  "any.station": { en: "any station", ar: "أي مركز" },
  "err.read": { en: "cannot read {file}: {detail}", ar: "تعذرت قراءة {file}: {detail}" },
  "err.write": { en: "cannot write {file}: {detail}", ar: "تعذرت كتابة {file}: {detail}" },
  "err.key": { en: "{file} is not a usable key: {detail}", ar: "{file} ليس مفتاحاً صالحاً: {detail}" },
  "err.number": { en: "{option} must be a whole number from {min} to {max} (got {value})", ar: "يجب أن يكون {option} عدداً صحيحاً من {min} إلى {max} (القيمة {value})" },
  "err.kind": { en: "--kind must be one of {kinds} (got {value})", ar: "يجب أن يكون --kind أحد {kinds} (القيمة {value})" },
  "err.stationNeeded": { en: "a {kind} is per station: give --station", ar: "{kind} خاص بمركز: حدّد --station" },
  "err.body": { en: "{file} is not a {kind}: {detail}", ar: "{file} ليس {kind}: {detail}" },
  "err.bodyStation": { en: "{file} is for station {body}, not --station {station}", ar: "{file} للمركز {body} وليس --station {station}" },
  "err.date": { en: "--not-before must be a date (ISO 8601), got {value}", ar: "يجب أن يكون --not-before تاريخاً (ISO 8601)، القيمة {value}" },
  "err.empty": { en: "{option} must not be empty", ar: "يجب ألا يكون {option} فارغاً" },
  "hint.keygen": { en: "Create one with: pollkit commission keygen --out <dir>", ar: "أنشئ واحداً بالأمر: pollkit commission keygen --out <dir>" },
  "hint.techKey": { en: "The technician creates it with: pollkit token keygen", ar: "ينشئه الفني بالأمر: pollkit token keygen" },
} as const;

type Key = keyof typeof TEXT;

export function tx(key: Key, params: Record<string, string | number> = {}): string {
  const s: string = TEXT[key][currentLang()];
  return s.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

function detail(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function readInput(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.read", { file, detail: detail(e) }));
  }
}

function writeOutput(file: string, data: Uint8Array): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, data);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.write", { file, detail: detail(e) }));
  }
}

function commissionKey(file: string): ReturnType<typeof readPrivateKeyFile> {
  try {
    return readPrivateKeyFile(file);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.key", { file, detail: detail(e) }), tx("hint.keygen"));
  }
}

export function wholeNumber(option: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw new CliError(EXIT.usage, tx("err.number", { option, min, max, value }));
    return n;
  };
}

function nonEmpty(option: string): (value: string) => string {
  return (value) => {
    if (value.trim() === "") throw new CliError(EXIT.usage, tx("err.empty", { option }));
    return value;
  };
}

function parseKindName(value: string): ArtifactKindName {
  if (!isArtifactKindName(value)) throw new CliError(EXIT.usage, tx("err.kind", { kinds: Object.keys(ARTIFACT_KIND_NAMES).join(", "), value }));
  return value;
}

const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

export async function commissionKeygenCommand(ctx: CliContext, o: { out: string; force?: boolean }): Promise<ExitCode> {
  const key = createCommissionKey();
  let files: { keyFile: string; pubFile: string };
  try {
    files = writeKeyPair(join(o.out, "commission"), key, o.force === true);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.write", { file: join(o.out, "commission.key"), detail: detail(e) }));
  }
  if (ctx.json) ctx.printJson({ keyFile: files.keyFile, pubFile: files.pubFile, publicKey: publicKeyHex(key.publicKey) });
  else ctx.print(tx("keygen.done", { key: files.keyFile, pub: files.pubFile }));
  return EXIT.ok;
}

export interface SignOptions {
  kind: ArtifactKindName;
  in: string;
  station?: string;
  election?: string;
  version: number;
  key: string;
  out: string;
}

/** The body of the artifact from --in, checked for its kind. */
function artifactBody(o: SignOptions): { body: Uint8Array; electionId: string } {
  const raw = readInput(o.in);
  const kind = ARTIFACT_KIND_NAMES[o.kind];
  if (kind !== ArtifactKind.STATION_REGISTER && kind !== ArtifactKind.ELECTION_DEFINITION) {
    if (kind === ArtifactKind.CONFIGURATION) {
      const named = parseConfiguration(raw).station;
      if (named !== "" && o.station !== undefined && named !== o.station) throw new CliError(EXIT.error, tx("err.bodyStation", { file: o.in, body: named, station: o.station }));
    }
    return { body: raw, electionId: o.election ?? "" };
  }
  const typeName = kind === ArtifactKind.STATION_REGISTER ? "StationRegister" : "ElectionDefinition";
  let body = raw;
  if (o.in.toLowerCase().endsWith(".json")) {
    try {
      const t = schema.type(typeName);
      const json = JSON.parse(Buffer.from(raw).toString("utf8")) as Record<string, unknown>;
      const problem = t.verify(json);
      if (problem) throw new Error(problem);
      body = new Uint8Array(t.encode(t.fromObject(json)).finish());
    } catch (e) {
      throw new CliError(EXIT.error, tx("err.body", { file: o.in, kind: typeName, detail: detail(e) }));
    }
  }
  let station = "";
  let electionId = "";
  try {
    const m = kind === ArtifactKind.STATION_REGISTER ? decodeStationRegister(body) : decodeElectionDefinition(body);
    station = m.stationId ?? "";
    electionId = m.electionId ?? "";
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.body", { file: o.in, kind: typeName, detail: detail(e) }));
  }
  if (o.station !== undefined && station !== "" && station !== o.station) throw new CliError(EXIT.error, tx("err.bodyStation", { file: o.in, body: station, station: o.station }));
  return { body, electionId: o.election ?? electionId };
}

export async function commissionSignCommand(ctx: CliContext, o: SignOptions): Promise<ExitCode> {
  const kind = ARTIFACT_KIND_NAMES[o.kind];
  if ((kind === ArtifactKind.STATION_REGISTER || kind === ArtifactKind.ELECTION_DEFINITION) && (o.station ?? "") === "") {
    throw new CliError(EXIT.usage, tx("err.stationNeeded", { kind: o.kind }));
  }
  const { body, electionId } = artifactBody(o);
  const key = commissionKey(o.key);
  const bytes = signArtifact({ kind, stationId: o.station ?? "", electionId, version: o.version, body }, key);
  writeOutput(o.out, bytes);
  if (ctx.json) ctx.printJson({ out: o.out, kind: o.kind, station: o.station ?? "", electionId, version: o.version, bytes: bytes.length, sha256: sha256Hex(bytes) });
  else ctx.print(tx("sign.done", { kind: o.kind, version: o.version, station: o.station ?? tx("any.station"), out: o.out, bytes: bytes.length }));
  return EXIT.ok;
}

export interface TokenOptions {
  technician: string;
  site: string;
  days: number;
  techPub: string;
  key: string;
  out: string;
  notBefore?: string;
}

export async function commissionTokenCommand(ctx: CliContext, o: TokenOptions): Promise<ExitCode> {
  let notBefore = ctx.now() - 3600000;
  if (o.notBefore !== undefined) {
    notBefore = Date.parse(o.notBefore);
    if (!Number.isFinite(notBefore)) throw new CliError(EXIT.usage, tx("err.date", { value: o.notBefore }));
  }
  const expires = notBefore + o.days * 86400000;
  let technicianPublicKey: Uint8Array;
  try {
    technicianPublicKey = readPublicKeyFile(o.techPub);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.key", { file: o.techPub, detail: detail(e) }), tx("hint.techKey"));
  }
  const key = commissionKey(o.key);
  const bytes = issueToken({ technicianId: o.technician, site: o.site, notBefore, expires, technicianPublicKey }, key);
  writeOutput(o.out, bytes);
  const until = new Date(expires).toISOString();
  if (ctx.json) ctx.printJson({ out: o.out, technician: o.technician, site: o.site, notBefore: new Date(notBefore).toISOString(), expires: until });
  else ctx.print(tx("token.done", { technician: o.technician, site: o.site, until, out: o.out }));
  return EXIT.ok;
}

/** Adds `pollkit commission keygen|sign|token` to the program. */
export function registerCommissionCommands(program: Command, run: Run): void {
  const c = program.command("commission").description(tx("cmd.commission"));
  c.command("keygen")
    .description(tx("cmd.keygen"))
    .requiredOption("--out <dir>", tx("opt.out"))
    .option("--force", tx("opt.force"))
    .action((o: { out: string; force?: boolean }, cmd: Command) => run((ctx) => commissionKeygenCommand(ctx, o), cmd));
  c.command("sign")
    .description(tx("cmd.sign"))
    .addOption(new Option("--kind <kind>", tx("opt.kind")).argParser(parseKindName).makeOptionMandatory())
    .requiredOption("--in <file>", tx("opt.in"))
    .option("--station <id>", tx("opt.station"))
    .option("--election <id>", tx("opt.election"))
    .addOption(new Option("--version <n>", tx("opt.version")).argParser(wholeNumber("--version", 1, 0xffffffff)).makeOptionMandatory())
    .requiredOption("--key <file>", tx("opt.key"))
    .requiredOption("--out <file>", tx("opt.out"))
    .action((o: SignOptions, cmd: Command) => run((ctx) => commissionSignCommand(ctx, o), cmd));
  c.command("token")
    .description(tx("cmd.token"))
    .addOption(new Option("--technician <id>", tx("opt.technician")).argParser(nonEmpty("--technician")).makeOptionMandatory())
    .addOption(new Option("--site <site>", tx("opt.site")).argParser(nonEmpty("--site")).makeOptionMandatory())
    .addOption(new Option("--days <n>", tx("opt.days")).argParser(wholeNumber("--days", 1, 3650)).makeOptionMandatory())
    .requiredOption("--tech-pub <file>", tx("opt.techPub"))
    .requiredOption("--key <file>", tx("opt.key"))
    .requiredOption("--out <file>", tx("opt.out"))
    .option("--not-before <date>", tx("opt.notBefore"))
    .action((o: TokenOptions, cmd: Command) => run((ctx) => commissionTokenCommand(ctx, o), cmd));
}
