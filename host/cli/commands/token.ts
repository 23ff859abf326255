// `pollkit token ...`: the technician's credentials, kept in POLLKIT_HOME (default
// $XDG_CONFIG_HOME/pollkit, else ~/.config/pollkit; see host/commission/credentials.ts).
//   keygen [--force]                   the technician's key: technician.key (0600) and technician.pub,
//                                      which goes to the commission to be named in a token
//   use <token-file> [--key <file>]    puts a token from the commission in use (with the technician
//                                      key it was issued for; default the one from keygen). From
//                                      then on mutating verbs (time sync, reboot, upload, ...) sign
//                                      every command they send with it
//   show                               the token in use: technician, site, validity

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { readToken } from "../../commission/artifacts.ts";
import {
  TECHNICIAN_KEY,
  TECHNICIAN_PUB,
  homeTechnicianKey,
  loadCredentials,
  pollkitHome,
  useToken,
} from "../../commission/credentials.ts";
import { publicKeyHex, readPrivateKeyFile, technicianKey, writeKeyPair, type P256Key } from "../../commission/keys.ts";
import type { CliContext } from "../context.ts";
import { CliError, EXIT, currentLang, type ExitCode } from "../messages.ts";

type Run = (work: (ctx: CliContext) => Promise<ExitCode>, cmd: Command) => Promise<void>;

const TEXT = {
  "cmd.token": { en: "the technician's key and token (signs commands that change devices)", ar: "مفتاح الفني ورمزه (يوقّع الأوامر التي تغيّر الأجهزة)" },
  "cmd.keygen": { en: "create this technician's key", ar: "أنشئ مفتاح هذا الفني" },
  "cmd.use": { en: "use a technician token from the commission", ar: "استخدم رمز فني من المفوضية" },
  "cmd.show": { en: "show the token in use", ar: "اعرض الرمز المستخدم" },
  "arg.token": { en: "token file (from: pollkit commission token)", ar: "ملف الرمز (من: pollkit commission token)" },
  "opt.key": { en: "the technician key the token was issued for (default: the one from token keygen)", ar: "مفتاح الفني الذي صدر له الرمز (الافتراضي: مفتاح token keygen)" },
  "opt.force": { en: "replace an existing key", ar: "استبدل المفتاح الموجود" },
  "keygen.done": { en: "Technician key written: {key}. Give {pub} to the commission to get a token.", ar: "كُتب مفتاح الفني: {key}. أعطِ {pub} للمفوضية للحصول على رمز." },
  "use.done": { en: "Token in use: {technician} at site {site}, valid {from} to {until}", ar: "الرمز المستخدم: {technician} في الموقع {site}، صالح من {from} إلى {until}" },
  "show.none": { en: "No token in use ({home})", ar: "لا يوجد رمز مستخدم ({home})" },
  "show.expired": { en: " (expired)", ar: " (منتهي الصلاحية)" },
  "err.noKey": { en: "no technician key in {home}", ar: "لا يوجد مفتاح فني في {home}" },
  "err.key": { en: "{file} is not a usable key: {detail}", ar: "{file} ليس مفتاحاً صالحاً: {detail}" },
  "err.token": { en: "{file} is not a usable token: {detail}", ar: "{file} ليس رمزاً صالحاً: {detail}" },
  "err.write": { en: "cannot write in {home}: {detail}", ar: "تعذرت الكتابة في {home}: {detail}" },
  "hint.keygen": { en: "Create one with: pollkit token keygen", ar: "أنشئ واحداً بالأمر: pollkit token keygen" },
  "hint.token": { en: "Ask the commission for a token issued for your technician.pub", ar: "اطلب من المفوضية رمزاً صادراً لملف technician.pub الخاص بك" },
} as const;

function tx(key: keyof typeof TEXT, params: Record<string, string | number> = {}): string {
  const s: string = TEXT[key][currentLang()];
  return s.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

function detail(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const iso = (ms: number): string => new Date(ms).toISOString();

export async function tokenKeygenCommand(ctx: CliContext, env: NodeJS.ProcessEnv, o: { force?: boolean }): Promise<ExitCode> {
  const home = pollkitHome(env);
  const key = technicianKey();
  let files: { keyFile: string; pubFile: string };
  try {
    files = writeKeyPair(join(home, TECHNICIAN_KEY.replace(/\.key$/, "")), key, o.force === true);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.write", { home, detail: detail(e) }));
  }
  if (ctx.json) ctx.printJson({ keyFile: files.keyFile, pubFile: files.pubFile, publicKey: publicKeyHex(key.publicKey) });
  else ctx.print(tx("keygen.done", { key: files.keyFile, pub: join(home, TECHNICIAN_PUB) }));
  return EXIT.ok;
}

export async function tokenUseCommand(ctx: CliContext, env: NodeJS.ProcessEnv, tokenFile: string, o: { key?: string }): Promise<ExitCode> {
  const home = pollkitHome(env);
  let key: P256Key | null;
  const keyFile = o.key ?? join(home, TECHNICIAN_KEY);
  try {
    key = o.key !== undefined ? readPrivateKeyFile(o.key) : homeTechnicianKey(home);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.key", { file: keyFile, detail: detail(e) }), tx("hint.keygen"));
  }
  if (key === null) throw new CliError(EXIT.error, tx("err.noKey", { home }), tx("hint.keygen"));
  let token: Uint8Array;
  try {
    token = new Uint8Array(readFileSync(tokenFile));
    readToken(token);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.token", { file: tokenFile, detail: detail(e) }), tx("hint.token"));
  }
  let body;
  try {
    body = useToken(home, token, key);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.token", { file: tokenFile, detail: detail(e) }), tx("hint.token"));
  }
  const info = { technician: body.technicianId ?? "", site: body.site ?? "", from: iso(body.notBeforeMs ?? 0), until: iso(body.expiresMs ?? 0) };
  if (ctx.json) ctx.printJson(info);
  else ctx.print(tx("use.done", info));
  return EXIT.ok;
}

export async function tokenShowCommand(ctx: CliContext, env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const home = pollkitHome(env);
  let creds;
  try {
    creds = loadCredentials(home);
  } catch (e) {
    throw new CliError(EXIT.error, tx("err.token", { file: join(home, "token.bin"), detail: detail(e) }), tx("hint.token"));
  }
  if (creds === null) {
    if (ctx.json) ctx.printJson({ home, token: null });
    else ctx.print(tx("show.none", { home }));
    return EXIT.ok;
  }
  const b = creds.body;
  const expired = (b.expiresMs ?? 0) <= ctx.now();
  const info = { technician: b.technicianId ?? "", site: b.site ?? "", from: iso(b.notBeforeMs ?? 0), until: iso(b.expiresMs ?? 0) };
  if (ctx.json) ctx.printJson({ home, ...info, expired });
  else ctx.print(tx("use.done", info) + (expired ? tx("show.expired") : ""));
  return EXIT.ok;
}

/** Adds `pollkit token keygen|use|show` to the program. */
export function registerTokenCommands(program: Command, run: Run, env: NodeJS.ProcessEnv): void {
  const c = program.command("token").description(tx("cmd.token"));
  c.command("keygen")
    .description(tx("cmd.keygen"))
    .option("--force", tx("opt.force"))
    .action((o: { force?: boolean }, cmd: Command) => run((ctx) => tokenKeygenCommand(ctx, env, o), cmd));
  c.command("use")
    .description(tx("cmd.use"))
    .argument("<token-file>", tx("arg.token"))
    .option("--key <file>", tx("opt.key"))
    .action((file: string, o: { key?: string }, cmd: Command) => run((ctx) => tokenUseCommand(ctx, env, file, o), cmd));
  c.command("show")
    .description(tx("cmd.show"))
    .action((_o: unknown, cmd: Command) => run((ctx) => tokenShowCommand(ctx, env), cmd));
}
