// Runs firmware bundles on Moddable XS by driving @agoric/xsnap's `xsnap-worker` binary directly.
// Its Node API wants SES `harden`/`assert` globals (lockdown) in the test process; the wire
// protocol is small, so we speak it here instead.
//
// Protocol (xsnap-worker.c): the parent writes netstrings to the child's fd 3 and reads
// netstrings from its fd 4. The first byte of each message says what it is:
//   parent -> child  `e<source>` indirect (global) eval; `?<bytes>` call the global
//                    `handleCommand(ArrayBuffer)`; `R` ready probe; `q` quit;
//                    `/<bytes>` answer to the child's pending `issueCommand`.
//   child -> parent  `.<meter json>\x01<bytes>` success, the bytes being the ArrayBuffer the
//                    script returned (or its `.result`), anything else gives no bytes;
//                    `!<text>` the uncaught exception as `String(e)`, no meter;
//                    `?<bytes>` a synchronous `issueCommand(ArrayBuffer)` from the script,
//                    which blocks inside XS until the parent answers `/<bytes>`.
// The `R` reply is a bare `.`. Promise jobs and `setImmediate` callbacks run before the reply.
//
// Meter: `compute` counts XS bytecodes executed plus work units that built-ins charge in
// proportion to their input (string building, array sorts and copies, RegExp steps, BigInt,
// DataView). Parsing is not charged: a function declaration costs the same whatever its body.
// It is reset for every evaluate/command and is deterministic: the same code from the same
// state gives the same count, in one worker or in two (pinned by xs_harness.test.ts), so it is
// a repeatable cost measure, not a time. `allocate` is the bytes the XS heap has reserved in
// total (about 42 MB at start, it only grows), and `currentHeapCount` the slots in use: both
// describe the machine, not the call. The worker also reports wall-clock `timestamps`; they are
// not deterministic and are dropped.
//
// Inside the worker: `print(...)` writes a line to the worker's stdout (see `onPrint`);
// `issueCommand`, `setImmediate`, `TextEncoder`/`TextDecoder`, `Base64`, `harden`, `gc`,
// `performance.now` and `Compartment` exist; `setTimeout`, `console`, `btoa`/`atob` and
// `queueMicrotask` do not. Timers and I/O therefore come from the host through issueCommand.
// Top-level `let`/`const` in an evaluated script stay local to that evaluation (indirect eval):
// a bundle publishes `handleCommand` with `var`, a function declaration or `globalThis`.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { dirname, join } from "node:path";

export interface XsMeter {
  /** Deterministic work units of the call (see the top of this file). */
  compute: number;
  /** Bytes reserved by the XS heap after the call (a machine total, not the call's). */
  allocate: number;
  /** Heap slots in use after the call. */
  currentHeapCount: number;
  /** Any other numeric field a later worker reports. */
  [field: string]: number;
}

export interface XsWorker {
  /** Process id of the worker, for tests that check it is gone. */
  readonly pid: number;
  /** Evaluates a script (a firmware bundle) in the global scope; resolves with the meter; rejects with the XS exception text. */
  evaluate(code: string): Promise<XsMeter>;
  /**
   * Calls the script's global `handleCommand(ArrayBuffer)` with bytes; resolves with its
   * returned bytes and the meter. `handleCommand` must return an ArrayBuffer (or an object
   * whose `result` is one): a typed array comes back as zero bytes.
   */
  command(message: Uint8Array): Promise<{ reply: Uint8Array; meter: XsMeter }>;
  /** Ends the worker process (killing it if a call is running); pending calls reject. */
  close(): Promise<void>;
}

export interface XsOptions {
  /** Answers the script's synchronous `issueCommand(ArrayBuffer)` calls (host functions). May be sync. */
  onHostCommand?: (message: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /** Name for error messages. */
  name?: string;
  /**
   * Per-call compute limit; going over it ends the worker ("too much computation") instead of
   * hanging the test. 0 means none. Default 1e8, as in @agoric/xsnap.
   */
  meteringLimit?: number;
  /** Receives each line the script `print`s. Without it the worker's stdout is discarded. */
  onPrint?: (line: string) => void;
}

/** The XS exception (or worker failure) behind a rejected call. */
export class XsError extends Error {
  /** The exception text exactly as XS rendered it (`String(e)`), when XS threw. */
  readonly xsMessage: string | undefined;
  constructor(message: string, xsMessage?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "XsError";
    this.xsMessage = xsMessage;
  }
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of a string: the convention for passing JSON between Node and XS. */
export function encodeText(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** The string in UTF-8 bytes; throws on malformed input rather than guessing. */
export function decodeText(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Starts a worker and waits until it answers, so a missing binary fails here. */
export async function startXs(options: XsOptions = {}): Promise<XsWorker> {
  const worker = new XsnapWorker(options);
  try {
    await worker.ready();
  } catch (error) {
    await worker.close();
    throw error;
  }
  return worker;
}

/**
 * Convenience: starts a worker, evaluates a bundle in it and checks that the bundle defined a
 * global `handleCommand`. Use startXs + evaluate when the bundle's own meter matters.
 */
export async function startXsBundle(code: string, options: XsOptions = {}): Promise<XsWorker> {
  const worker = await startXs(options);
  try {
    await worker.evaluate(code);
    await worker.evaluate(
      'if (typeof handleCommand !== "function") throw new TypeError("the bundle defines no global handleCommand");',
    );
  } catch (error) {
    await worker.close();
    throw error;
  }
  return worker;
}

/** Path of the xsnap-worker binary built by @agoric/xsnap's postinstall (release preferred). */
export function xsnapWorkerPath(): string {
  const packageDir = dirname(createRequire(import.meta.url).resolve("@agoric/xsnap/package.json"));
  const platform = process.platform === "darwin" ? "mac" : "lin";
  const candidates = ["release", "debug"].map((flavor) =>
    join(packageDir, "xsnap-native/xsnap/build/bin", platform, flavor, "xsnap-worker"),
  );
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(`xsnap-worker is not built; looked for ${candidates.join(" and ")}`);
  }
  return found;
}

const CHAR = {
  evaluate: 0x65, // e
  command: 0x3f, // ?
  ready: 0x52, // R
  quit: 0x71, // q
  hostReply: 0x2f, // /
  ok: 0x2e, // .
  error: 0x21, // !
} as const;
const METER_SEPARATOR = 0x01;
const NO_BYTES = new Uint8Array(0);
// xsnap-worker reads the length with "%9lu".
const MAX_NETSTRING = 999_999_999;
const EXIT_REASONS: Record<number, string> = {
  1: "bad argument usage",
  2: "I/O error",
  11: "not enough memory",
  12: "stack overflow",
  15: "unhandled exception",
  16: "property key space exhausted",
  17: "too much computation",
};
const CLOSE_GRACE_MS = 2000;

// Workers still running, killed by an 'exit' hook (normal end or process.exit). If the test
// process dies by a signal instead, the closed fd 3 still ends any worker that is not busy.
const liveWorkers = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackWorker(child: ChildProcess): void {
  liveWorkers.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const worker of liveWorkers) worker.kill("SIGKILL");
    });
  }
}

/** Splits a byte stream into netstring payloads. */
class NetstringReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the messages they complete. Throws on a malformed stream. */
  push(chunk: Buffer): Uint8Array[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: Uint8Array[] = [];
    for (;;) {
      const colon = this.pending.indexOf(0x3a);
      if (colon < 0) {
        if (this.pending.length > 10) throw new Error("netstring length prefix too long");
        return messages;
      }
      const digits = this.pending.toString("latin1", 0, colon);
      if (!/^\d{1,10}$/.test(digits)) throw new Error(`bad netstring length "${digits}"`);
      const length = Number(digits);
      const end = colon + 1 + length;
      if (this.pending.length < end + 1) return messages;
      if (this.pending[end] !== 0x2c) throw new Error("netstring not terminated by a comma");
      messages.push(new Uint8Array(this.pending.subarray(colon + 1, end)));
      this.pending = this.pending.subarray(end + 1);
    }
  }
}

function netstring(prefix: number, payload: Uint8Array): Buffer {
  const length = payload.length + 1;
  if (length > MAX_NETSTRING) throw new Error(`message of ${length} bytes is too long for xsnap`);
  return Buffer.concat([Buffer.from(`${length}:`), Uint8Array.of(prefix), payload, Buffer.from(",")]);
}

function parseMeter(json: string): XsMeter {
  const raw: unknown = JSON.parse(json);
  if (typeof raw !== "object" || raw === null) throw new Error(`bad meter ${json}`);
  const meter: XsMeter = { compute: NaN, allocate: NaN, currentHeapCount: NaN };
  for (const [field, value] of Object.entries(raw)) {
    if (typeof value === "number") meter[field] = value;
  }
  if (!Number.isInteger(meter.compute)) throw new Error(`meter without compute: ${json}`);
  return meter;
}

function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}

interface Completion {
  meter: XsMeter | undefined;
  bytes: Uint8Array;
}

interface InFlight {
  resolve(completion: Completion): void;
  reject(error: Error): void;
}

class XsnapWorker implements XsWorker {
  readonly pid: number;
  private readonly name: string;
  private readonly child: ChildProcess;
  private readonly toXs: Socket;
  private readonly fromXs: Socket;
  private readonly options: XsOptions;
  private readonly reader = new NetstringReader();
  private readonly ended: Promise<void>;
  // Serializes calls: xsnap handles one at a time and answers in order.
  private queue: Promise<void> = Promise.resolve();
  private inFlight: InFlight | undefined;
  // Why the current call failed on the host side (its issueCommand handler threw).
  private hostError: Error | undefined;
  // Set once the worker can take no more calls.
  private gone: Error | undefined;
  private closing: Promise<void> | undefined;
  private shuttingDown = false;
  private stderrTail = "";

  constructor(options: XsOptions) {
    this.options = options;
    this.name = options.name ?? "xs";
    const limit = options.meteringLimit ?? 1e8;
    // The worker ignores arguments without a leading dash; the first one names it in `ps`.
    const args = [`xs-${this.name.replace(/[^\w.-]/g, "_")}`];
    if (limit > 0) args.push("-l", String(Math.floor(limit)));
    this.child = spawn(xsnapWorkerPath(), args, {
      stdio: ["ignore", options.onPrint ? "pipe" : "ignore", "pipe", "pipe", "pipe", "ignore", "ignore"],
    });
    const toXs = this.child.stdio[3];
    const fromXs = this.child.stdio[4];
    if (!(toXs instanceof Socket) || !(fromXs instanceof Socket)) {
      this.child.kill("SIGKILL");
      throw new Error("xsnap-worker spawned without pipes on fds 3 and 4");
    }
    this.toXs = toXs;
    this.fromXs = fromXs;
    this.pid = this.child.pid ?? -1;
    trackWorker(this.child);

    // Write failures (EPIPE) and read resets surface as the process ending; report that instead.
    toXs.on("error", () => {});
    fromXs.on("error", () => {});
    fromXs.on("data", (chunk: Buffer) => this.receive(chunk));
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-2000);
    });
    const onPrint = options.onPrint;
    if (onPrint && this.child.stdout) {
      let partial = "";
      this.child.stdout.setEncoding("utf8");
      this.child.stdout.on("data", (text: string) => {
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) onPrint(line);
      });
    }

    this.ended = new Promise<void>((resolve) => {
      this.child.once("error", (error) => {
        this.fail(new XsError(`${this.name}: cannot run xsnap-worker: ${error.message}`));
        liveWorkers.delete(this.child);
        resolve();
      });
      // "close" rather than "exit": a reply written just before exiting is read first.
      this.child.once("close", (code, signal) => {
        const how = signal
          ? `was killed by ${signal}`
          : `exited with code ${code}${code !== null && EXIT_REASONS[code] ? ` (${EXIT_REASONS[code]})` : ""}`;
        const stderr = this.stderrTail.trim();
        this.fail(new XsError(`${this.name}: xsnap-worker ${how}${stderr ? `; stderr: ${stderr}` : ""}`));
        liveWorkers.delete(this.child);
        resolve();
      });
    });
    // An idle worker must not keep the test process alive; calls in flight re-reference it.
    this.setReferenced(false);
  }

  async evaluate(code: string): Promise<XsMeter> {
    return this.meterOf(await this.call(CHAR.evaluate, encodeText(code)));
  }

  async command(message: Uint8Array): Promise<{ reply: Uint8Array; meter: XsMeter }> {
    const completion = await this.call(CHAR.command, message);
    return { reply: completion.bytes, meter: this.meterOf(completion) };
  }

  async ready(): Promise<void> {
    await this.call(CHAR.ready, NO_BYTES);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.shuttingDown = true;
    if (!this.gone) {
      const busy = this.inFlight !== undefined;
      this.fail(new XsError(`${this.name}: worker closed`));
      this.setReferenced(true);
      if (busy) {
        this.child.kill("SIGKILL");
      } else {
        this.toXs.end(netstring(CHAR.quit, NO_BYTES));
        const timer = setTimeout(() => this.child.kill("SIGKILL"), CLOSE_GRACE_MS);
        timer.unref();
        void this.ended.then(() => clearTimeout(timer));
      }
    }
    await this.ended;
  }

  private meterOf(completion: Completion): XsMeter {
    if (!completion.meter) throw new XsError(`${this.name}: reply carried no meter`);
    return completion.meter;
  }

  private call(prefix: number, payload: Uint8Array): Promise<Completion> {
    const run = (): Promise<Completion> =>
      new Promise<Completion>((resolve, reject) => {
        if (this.gone) {
          reject(this.gone);
          return;
        }
        this.inFlight = { resolve, reject };
        this.hostError = undefined;
        this.setReferenced(true);
        this.toXs.write(netstring(prefix, payload));
      }).finally(() => {
        this.inFlight = undefined;
        this.setReferenced(false);
      });
    const result = this.queue.then(run);
    this.queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private receive(chunk: Buffer): void {
    let messages: Uint8Array[];
    try {
      messages = this.reader.push(chunk);
    } catch (error) {
      this.protocolError(asError(error).message);
      return;
    }
    for (const message of messages) this.dispatch(message);
  }

  private dispatch(message: Uint8Array): void {
    const inFlight = this.inFlight;
    if (!inFlight) {
      this.protocolError(`unexpected message from the worker: ${message.length} bytes`);
      return;
    }
    const kind = message[0];
    const body = message.subarray(1);
    if (kind === CHAR.command) {
      void this.answerHostCommand(body);
    } else if (kind === CHAR.ok) {
      let completion: Completion;
      const separator = body.indexOf(METER_SEPARATOR);
      try {
        completion =
          separator < 0
            ? { meter: undefined, bytes: body }
            : { meter: parseMeter(decodeText(body.subarray(0, separator))), bytes: body.slice(separator + 1) };
      } catch (error) {
        this.protocolError(asError(error).message);
        return;
      }
      if (this.hostError) inFlight.reject(this.hostError);
      else inFlight.resolve(completion);
    } else if (kind === CHAR.error) {
      const text = new TextDecoder().decode(body);
      inFlight.reject(this.hostError ?? new XsError(`${this.name}: uncaught exception in XS: ${text}`, text));
    } else {
      this.protocolError(`unknown reply kind ${kind ?? "(empty)"}`);
    }
  }

  private async answerHostCommand(request: Uint8Array): Promise<void> {
    let reply: Uint8Array;
    try {
      const handler = this.options.onHostCommand;
      if (!handler) throw new Error("the script called issueCommand but no onHostCommand was given");
      reply = await handler(request);
      if (!(reply instanceof Uint8Array)) throw new TypeError("onHostCommand must return a Uint8Array");
    } catch (error) {
      // Any answer other than `/` makes issueCommand throw inside XS, so the script unwinds;
      // the call then rejects with this error, which says more than XS can.
      const cause = asError(error);
      this.hostError ??= new XsError(`${this.name}: onHostCommand failed: ${cause.message}`, undefined, { cause });
      if (!this.gone) this.toXs.write(netstring(CHAR.error, encodeText(cause.message)));
      return;
    }
    if (!this.gone) this.toXs.write(netstring(CHAR.hostReply, reply));
  }

  private protocolError(detail: string): void {
    this.fail(new XsError(`${this.name}: xsnap protocol error: ${detail}`));
    this.child.kill("SIGKILL");
  }

  private fail(error: XsError): void {
    this.gone ??= error;
    const inFlight = this.inFlight;
    this.inFlight = undefined;
    inFlight?.reject(this.gone);
  }

  private setReferenced(referenced: boolean): void {
    // While closing, the exit must still be awaited even if no call is running.
    const keep = referenced || this.shuttingDown;
    if (keep) this.child.ref();
    else this.child.unref();
    for (const stream of [this.fromXs, this.toXs, this.child.stderr, this.child.stdout]) {
      if (stream instanceof Socket) {
        if (keep) stream.ref();
        else stream.unref();
      }
    }
  }
}
