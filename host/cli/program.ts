// The `pollkit` command line: commander wiring, global options, and the one place where failures
// become messages and exit codes (see EXIT in messages.ts).

import { Command, CommanderError, Option } from "commander";
import { DEFAULT_CONTROL_PORT, TRANSFER_KINDS, isTransferKind, type TransferKindName } from "../control/api.ts";
import { agentCommand } from "./commands/agent.ts";
import { opsCommand } from "./commands/ops.ts";
import { decodeCommand } from "./commands/decode.ts";
import { devicesCommand } from "./commands/devices.ts";
import { dfuCommand } from "./commands/dfu.ts";
import { diagCommand } from "./commands/diag.ts";
import { logsCommand } from "./commands/logs.ts";
import { rebootCommand } from "./commands/reboot.ts";
import { chargeModeCommand } from "./commands/charge_mode.ts";
import { registerCommissionCommands } from "./commands/commission.ts";
import { registerTokenCommands } from "./commands/token.ts";
import { importElectionCommand, importElectionDescription } from "../ops/election/import_command.ts";
import { statusCommand } from "./commands/status.ts";
import { timeSyncCommand } from "./commands/time_sync.ts";
import { uploadCommand } from "./commands/upload.ts";
import { verifyResultArgText, verifyResultCommand, verifyResultDescription, verifyResultRegistryText } from "./commands/verify_result.ts";
import { processContext, type CliContext } from "./context.ts";
import { CliError, EXIT, exitCodeLines, langFromEnv, parseLang, setLang, t, type ExitCode, type Lang, type MessageKey } from "./messages.ts";

export const BUILTIN_AGENT_URL = `http://127.0.0.1:${DEFAULT_CONTROL_PORT}`;

interface GlobalOptions {
  agent?: string;
  json?: boolean;
  lang?: Lang;
}

/** The language for this run, before commander parses anything (help text depends on it). */
export function chooseLang(argv: readonly string[], env: NodeJS.ProcessEnv): Lang {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = a === "--lang" ? argv[i + 1] : a.startsWith("--lang=") ? a.slice("--lang=".length) : undefined;
    const lang = value === undefined ? null : parseLang(value);
    if (lang !== null) return lang;
  }
  return langFromEnv(env);
}

/** A usage error; main() adds the hint naming the command's --help. */
function usage(message: string): CliError {
  return new CliError(EXIT.usage, message);
}

/** "logs " for `pollkit logs x --lines 0`: which command's --help to point at. */
function helpTarget(program: Command, argv: readonly string[]): string {
  const path: string[] = [];
  let cmd: Command | undefined = program;
  for (const a of argv) {
    const sub: Command | undefined = cmd?.commands.find((c) => c.name() === a);
    if (sub === undefined) continue;
    path.push(a);
    cmd = sub;
  }
  return path.map((p) => p + " ").join("");
}

function intOption(option: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw usage(t("usage.badNumber", { option, min, max, value }));
    return n;
  };
}

function parseAgentUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usage(t("usage.badUrl", { value }));
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usage(t("usage.badUrl", { value }));
  return value;
}

const KIND_NAMES = Object.keys(TRANSFER_KINDS).join(", ");

function parseKind(value: string): TransferKindName {
  if (!isTransferKind(value)) throw usage(t("usage.badKind", { kinds: KIND_NAMES, value }));
  return value;
}

function parseLangOption(value: string): Lang {
  const lang = parseLang(value);
  if (lang === null) throw usage(t("usage.badLang", { value }));
  return lang;
}

const HELP_TITLES: Record<string, MessageKey> = {
  "Usage:": "help.usage",
  "Options:": "help.options",
  "Commands:": "help.commands",
  "Arguments:": "help.arguments",
  "Global Options:": "help.globalOptions",
};

/** Builds the program; `run` receives each command's work and the options it was given. */
export function defaultAgentUrl(env: NodeJS.ProcessEnv): string {
  return env.POLLKIT_AGENT || BUILTIN_AGENT_URL;
}

/** How a command with subcommands shows in the command list: "time <sync>". */
function subcommandTerm(cmd: Command): string {
  const subs = cmd.commands.map((c) => c.name()).filter((n) => n !== "help");
  const args = cmd.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}${a.variadic ? "..." : ""}]`));
  const options = cmd.options.length > 0 ? ["[options]"] : [];
  return [cmd.name(), ...(subs.length > 0 ? [`<${subs.join("|")}>`] : []), ...options, ...args].join(" ");
}

export function buildProgram(env: NodeJS.ProcessEnv, run: (work: (ctx: CliContext) => Promise<ExitCode>, cmd: Command) => Promise<void>): Command {
  const defaultAgent = defaultAgentUrl(env);
  const program = new Command();
  // Settings first: subcommands copy them when they are created.
  program
    .name("pollkit")
    .description(t("program.description"))
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .configureHelp({ styleTitle: (title: string) => (HELP_TITLES[title] ? t(HELP_TITLES[title]) : title), showGlobalOptions: true, subcommandTerm })
    .helpOption("-h, --help", t("help.option"))
    .helpCommand("help [command]", t("help.option"))
    .addOption(new Option("--agent <url>", t("opt.agent", { url: defaultAgent, builtin: BUILTIN_AGENT_URL })).argParser(parseAgentUrl))
    .option("--json", t("opt.json"))
    .addOption(new Option("--lang <lang>", t("opt.lang")).argParser(parseLangOption))
    .addHelpText("after", `\n${t("help.exitCodes")}\n${exitCodeLines().join("\n")}`);

  program
    .command("agent")
    .description(t("cmd.agent"))
    .requiredOption("--config <file>", t("opt.config"))
    .action((o: { config: string }, cmd: Command) => run((ctx) => agentCommand(ctx, o.config, defaultAgent), cmd));

  const ops = program
    .command("ops")
    .description(t("cmd.ops"))
    .requiredOption("--config <file>", t("opt.config"))
    .action((o: { config: string }, cmd: Command) => run((ctx) => opsCommand(ctx, o.config), cmd));
  ops
    .command("import-election")
    .description(importElectionDescription())
    .argument("<file>", t("arg.file"))
    .action((file: string, _o: unknown, cmd: Command) =>
      run((ctx) => importElectionCommand(ctx, cmd.optsWithGlobals<{ config: string }>().config, file), cmd),
    );

  program
    .command("devices")
    .description(t("cmd.devices"))
    .action((_o: unknown, cmd: Command) => run((ctx) => devicesCommand(ctx), cmd));

  program
    .command("status")
    .description(t("cmd.status"))
    .argument("<device>", t("arg.device"))
    .action((device: string, _o: unknown, cmd: Command) => run((ctx) => statusCommand(ctx, device), cmd));

  program
    .command("logs")
    .description(t("cmd.logs"))
    .argument("<device>", t("arg.device"))
    .option("-f, --follow", t("opt.follow"))
    .addOption(new Option("-n, --lines <n>", t("opt.lines")).argParser(intOption("--lines", 1, 500)))
    .action((device: string, o: { follow?: boolean; lines?: number }, cmd: Command) =>
      run((ctx) => logsCommand(ctx, device, { follow: o.follow === true, lines: o.lines }), cmd),
    );

  const time = program.command("time").description(t("cmd.time"));
  time
    .command("sync")
    .description(t("cmd.timeSync"))
    .option("--device <id...>", t("opt.syncDevice"))
    .action((o: { device?: string[] }, cmd: Command) => run((ctx) => timeSyncCommand(ctx, o.device), cmd));

  program
    .command("diag")
    .description(t("cmd.diag"))
    .argument("<device>", t("arg.device"))
    .action((device: string, _o: unknown, cmd: Command) => run((ctx) => diagCommand(ctx, device), cmd));

  program
    .command("reboot")
    .description(t("cmd.reboot"))
    .argument("<device>", t("arg.device"))
    .action((device: string, _o: unknown, cmd: Command) => run((ctx) => rebootCommand(ctx, device), cmd));

  program
    .command("charge-mode")
    .description(t("cmd.chargeMode"))
    .argument("<device-and-mode...>", t("arg.chargeTargets"))
    .option("--all", t("opt.allDevices"))
    .action((args: string[], o: { all?: boolean }, cmd: Command) =>
      // `pollkit charge-mode VVD-1 VVD-2 storage` or `pollkit charge-mode --all storage`.
      run((ctx) => chargeModeCommand(ctx, args.slice(0, -1), args[args.length - 1], o), cmd),
    );

  program
    .command("upload")
    .description(t("cmd.upload"))
    .argument("<device>", t("arg.device"))
    .argument("<file>", t("arg.file"))
    .addOption(new Option("--kind <kind>", t("opt.kind", { kinds: KIND_NAMES })).argParser(parseKind).makeOptionMandatory())
    .option("--name <name>", t("opt.name"))
    .action((device: string, file: string, o: { kind: TransferKindName; name?: string }, cmd: Command) =>
      run((ctx) => uploadCommand(ctx, device, file, { kind: o.kind, name: o.name }), cmd),
    );

  program
    .command("decode")
    .description(t("cmd.decode"))
    .argument("[frame...]", t("arg.frame"))
    .option("--hex <payload>", t("opt.hex"))
    .action((frames: string[], o: { hex?: string }, cmd: Command) => run((ctx) => decodeCommand(ctx, frames, { hex: o.hex }), cmd));

  program
    .command("dfu")
    .description(t("cmd.dfu"))
    .requiredOption("--image <file>", t("opt.image"))
    .addOption(new Option("--transfer-size <n>", t("opt.transferSize")).argParser(intOption("--transfer-size", 1, 65535)))
    .option("--device <serial>", t("opt.dfuDevice"))
    .action((o: { image: string; transferSize?: number; device?: string }, cmd: Command) =>
      run((ctx) => dfuCommand(ctx, { image: o.image, transferSize: o.transferSize, device: o.device }), cmd),
    );

  program
    .command("verify-result")
    .description(verifyResultDescription())
    .argument("<file>", verifyResultArgText())
    .option("--registry <file>", verifyResultRegistryText())
    .action((file: string, o: { registry?: string }, cmd: Command) => run((ctx) => verifyResultCommand(ctx, file, { registry: o.registry }), cmd));

  registerCommissionCommands(program, run);
  registerTokenCommands(program, run, env);

  return program;
}

/** The quoted name in a commander message ("error: unknown option '--x'"). */
function quoted(message: string): string {
  return /'([^']+)'/.exec(message)?.[1] ?? "";
}

function commanderUsage(e: CommanderError): CliError {
  const name = quoted(e.message);
  switch (e.code) {
    case "commander.unknownCommand":
      return usage(t("usage.unknownCommand", { name }));
    case "commander.unknownOption":
      return usage(t("usage.unknownOption", { name }));
    case "commander.missingArgument":
      return usage(t("usage.missingArgument", { name }));
    case "commander.optionMissingArgument":
      return usage(t("usage.missingOptionValue", { name }));
    case "commander.missingMandatoryOptionValue":
      return usage(t("usage.missingMandatory", { name }));
    case "commander.excessArguments":
      return usage(t("usage.excessArguments"));
    default:
      return usage(t("usage.invalid", { detail: e.message.replace(/^error: /, "") }));
  }
}

function report(e: CliError, json: boolean): void {
  if (json) {
    process.stderr.write(JSON.stringify({ error: e.message, hint: e.hint, exitCode: e.exitCode }) + "\n");
    return;
  }
  process.stderr.write(`pollkit: ${e.message}\n`);
  if (e.hint) process.stderr.write(`${e.hint}\n`);
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  setLang(chooseLang(argv, env));
  let code: number = EXIT.ok;
  const program = buildProgram(env, async (work, cmd) => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    code = await work(processContext({ agentUrl: g.agent ?? defaultAgentUrl(env), json: g.json === true }));
  });
  const json = argv.includes("--json");
  const withHelpHint = (e: CliError): CliError =>
    e.exitCode === EXIT.usage && e.hint === undefined ? new CliError(e.exitCode, e.message, t("hint.help", { command: helpTarget(program, argv) })) : e;
  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CliError) {
      report(withHelpHint(e), json);
      return e.exitCode;
    }
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      // Help shown because a command needs a subcommand (`pollkit time`): a usage error.
      if (e.code === "commander.help") return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
      report(withHelpHint(commanderUsage(e)), json);
      return EXIT.usage;
    }
    report(new CliError(EXIT.error, t("error.unexpected", { detail: e instanceof Error ? e.message : String(e) }), t("hint.report")), json);
    return EXIT.error;
  }
}
