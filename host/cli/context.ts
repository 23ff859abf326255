// What every CLI command gets: the global options, where output goes, and the control API client.
// Results go to stdout; notes for the person (hints, progress) go to stderr so pipes stay clean.

import { ControlClient } from "./client.ts";

export interface CliContext {
  agentUrl: string;
  json: boolean;
  /** stdout is a terminal: box-drawn tables and colour; otherwise plain ASCII. */
  tty: boolean;
  /** stderr is a terminal: progress bars there; otherwise progress as plain lines. */
  stderrTty?: boolean;
  now(): number;
  client(): ControlClient;
  /** One line (or block) of the command's result, on stdout. */
  print(text: string): void;
  /** A value as pretty JSON, on stdout. */
  printJson(value: unknown): void;
  /** A note for the person, on stderr. */
  note(text: string): void;
}

export function processContext(o: { agentUrl: string; json: boolean }): CliContext {
  let client: ControlClient | null = null;
  return {
    agentUrl: o.agentUrl,
    json: o.json,
    tty: process.stdout.isTTY === true,
    stderrTty: process.stderr.isTTY === true,
    now: () => Date.now(),
    client: () => (client ??= new ControlClient(o.agentUrl)),
    print: (text) => void process.stdout.write(text + "\n"),
    printJson: (value) => void process.stdout.write(JSON.stringify(value, null, 2) + "\n"),
    note: (text) => void process.stderr.write(text + "\n"),
  };
}
