// One host session per device connection: the hello exchange, time sync, journal records stored
// durably and only then acknowledged, health and console text kept, commands paired with their
// results by id. Driven by a HostLink (any transport); a new connection gets a new session.
// Node only (host agent).
//
// States:
//   connecting ──start()──> hello-wait ──device Hello──> ready ──link closed / close()──> closed
//        └──────────────────────────┴─────────────link closed / close()──────────────────┘
// "device Hello" is the device's answer to ours (Hello.answer). A device greets (answer false) on
// connect and after every boot and repeats the greeting until a host Hello reaches it; every
// greeting gets our Hello, resent with back-off until the answer comes, in hello-wait and in ready
// alike (a device that rebooted under a noisy line), and never given up by itself: a device that
// is silent or still booting is reported (an "error" event), not disconnected.
//
// Acknowledgement rule (the device's journal acks cumulatively, "everything up to seq"):
//   ack = min(chain top,                             the last record of an unbroken chain,
//             lowest seq whose store.put failed - 1,  never past a record the store lost,
//             highest seq the device has announced)   never a seq the device did not send.
// The chain starts at the device's journal_acked_seq (its hello) and each stored record whose
// prev_seq is at or below the top extends it: a record lost in transit breaks the chain, so
// nothing past it is acknowledged and the device resends it; a number the journal skipped after
// a power cut does not (the next record's prev_seq steps over it).
// The ack goes out only after store.put() has returned, never when it threw.

import { randomInt } from "node:crypto";
import protobuf from "protobufjs";
import type { HostLink } from "../link/host_link.ts";
import { encodeFrame, FrameDecoder } from "../../protocol/framing.ts";
import { Envelope, type } from "../../protocol/node/schema.ts";
import { ErrorCode } from "../../protocol/generated/device_codec.ts";
import { commitTogether } from "../outbox/outbox.ts";

// ---------------------------------------------------------------------------------------------
// The store a session writes to (host/outbox/outbox.ts implements it with SQLite).

export type StoreChannel = "record" | "health" | "hello" | "log";

export interface StoreItem {
  deviceId: string;
  channel: StoreChannel;
  /** The journal sequence number (records only). */
  seq: number | null;
  /** Records: the Record's protobuf bytes exactly as the device sent them (signatures cover them). */
  payload: Uint8Array;
  receivedMs: number;
}

export interface SessionStore {
  /** Stores durably (one transaction) and returns only after commit; returns how many were new (duplicates by (device, seq) are dropped). */
  put(items: StoreItem[]): number;
  highestSeq(deviceId: string): number;
}

// ---------------------------------------------------------------------------------------------
// What a session reports.

export type SessionState = "connecting" | "hello-wait" | "ready" | "closed";

export interface DeviceHello {
  protocolVersion: number;
  deviceId: string;
  role: number;
  hardwareModel: string;
  firmwareVersion: string;
  bootId: number;
  capabilities: number[];
  /** P-256, uncompressed X || Y (64 bytes). */
  publicKey: Uint8Array;
  journalNextSeq: number;
  /** Every record up to here was acknowledged by some host: the chain starts there. */
  journalAckedSeq: number;
  /** This hello answers one of ours (the device's session is on); false: a greeting. */
  answer: boolean;
}

export interface HealthReport {
  batteryMv: number;
  stateOfChargePermille: number;
  currentMa: number;
  temperatureDecic: number;
  chargeState: number;
  chargerFaults: number;
  uptimeS: number;
  rebootReason: number;
  freeMemoryBytes: number;
  freeStorageBytes: number;
  journalBacklog: number;
  peripheralFaults: number;
  clockMs: number;
  chargeMode: number;
  errorCount: number;
}

export interface ReceivedHealth {
  health: HealthReport;
  receivedMs: number;
}

/** A journal record, reported once store.put() has committed it (new or duplicate). */
export interface StoredRecord {
  deviceId: string;
  seq: number;
  kind: number;
  timeMs: number;
  payload: Uint8Array;
  signature: Uint8Array;
  /** The Record's bytes as sent by the device (what was stored). */
  bytes: Uint8Array;
}

export interface LogLine {
  receivedMs: number;
  text: string;
}

export type SessionErrorKind =
  | "frame" // framing: bad CRC, malformed line, frame cut short
  | "decode" // a frame whose protobuf did not decode
  | "device" // an Error envelope from the device
  | "protocol" // a message out of place, a hello that does not fit, no hello at all
  | "store" // store.put() or highestSeq() threw: nothing acknowledged
  | "link" // a write failed
  | "listener"; // an event listener threw

export interface SessionError {
  kind: SessionErrorKind;
  /** An ErrorCode from the schema where one applies, else 0. */
  code: number;
  detail: string;
}

/**
 * Why a command failed without a CommandResult: the session was or became closed, the device did
 * not answer (after one resend), or it answered with an Error envelope (code from ErrorCode).
 */
export type CommandFailure = "closed" | "timeout" | "refused";

export class CommandError extends Error {
  constructor(
    readonly failure: CommandFailure,
    message: string,
    /** The device's ErrorCode when `failure` is "refused", else 0. */
    readonly code = 0,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

export interface TimeSyncResult {
  /** The device clock before the sync (0: never set; the device then took the host's time). */
  deviceTimeMs: number;
  hostTimeMs: number;
  roundTripMs: number;
  /** Device clock minus host clock, estimated at the midpoint; null when the device had no time. */
  offsetMs: number | null;
}

export interface PartVerdict {
  part: number;
  verdict: number;
  detail: string;
}

/** A CommandResult (protobufjs object, defaults filled, 64-bit as numbers). */
export interface CommandReply {
  id: number;
  status: number;
  message: string;
  /** Which result body is set, if any. */
  body?: "info" | "diagnostics" | "log" | "transfer";
  info?: Record<string, unknown>;
  diagnostics?: { parts: PartVerdict[] };
  log?: { lines: string[] };
  transfer?: { receivedBytes: number; complete: boolean };
  /** Times sent (2 when the first answer did not come in time). */
  attempts: number;
  /** Milliseconds from the first send to the answer. */
  roundTripMs: number;
}

export interface SessionCounters {
  /** Records received (resends included). */
  records: number;
  /** Records that store.put() reported as new. */
  recordsStored: number;
  /** Records the store (or this session, within one batch) already had. */
  duplicates: number;
  /** Every error event. */
  errors: number;
  frameErrors: number;
  decodeErrors: number;
  deviceErrors: number;
  storeErrors: number;
  /** Records whose protobufjs decode/encode round trip differed from the device's bytes. */
  reencodeMismatches: number;
  health: number;
  logLines: number;
  acksSent: number;
  commands: number;
  commandRetries: number;
  commandTimeouts: number;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
}

export interface SessionInfo {
  address: string;
  kind: string;
  agentId: string;
  site: string;
  state: SessionState;
  deviceId: string | null;
  role: number | null;
  firmwareVersion: string | null;
  hardwareModel: string | null;
  bootId: number | null;
  /** The last health report, and when it came. */
  lastHealth: ReceivedHealth | null;
  health: HealthReport | null;
  publicKey: Uint8Array | null;
  timeSync: TimeSyncResult | null;
  /** The last Ack sent (0: none). */
  ackedSeq: number;
  counters: SessionCounters;
}

export type SessionEvents = {
  hello: DeviceHello;
  health: ReceivedHealth;
  record: StoredRecord;
  /** A console line (logs() has it with its time). */
  log: string;
  error: SessionError;
  state: { from: SessionState; to: SessionState };
  time: TimeSyncResult;
  close: string;
};

export interface DeviceSessionOptions {
  link: HostLink;
  /** This agent's id, sent as the host Hello's device_id. */
  agentId: string;
  site: string;
  store: SessionStore;
  /** Wall clock, Unix ms (receivedMs, TimeSync). Default Date.now. */
  clock?: () => number;
  /** Resend the host Hello when the device has not answered within this long. Default 2000. */
  helloTimeoutMs?: number;
  /** Default per-command timeout (each of the two attempts). Default 5000. */
  commandTimeoutMs?: number;
  /**
   * Records are collected at most this long before one store.put and one Ack. Default 20. The
   * timed flushes of every session with the same value run together, in one transaction of the
   * Outbox (commitTogether): one fsync for all the devices, not one each.
   */
  ackBatchMs?: number;
  /** ... or until this many are waiting. Default 32. */
  ackBatchMax?: number;
  /** Send TimeSync after each device Hello (new boot). Default true. */
  timeSync?: boolean;
  /** A frame left half received this long is dropped and reported. Default 1000. */
  frameTimeoutMs?: number;
  /** Console lines kept in memory. Default 500. */
  logRingLines?: number;
}

// ---------------------------------------------------------------------------------------------

const PROTOCOL_VERSION = 1;
const ROLE_HOST = 3;
const MAX_HELLO_BACKOFF_MS = 30000;
/** A device greeting this soon after our Hello crossed it on the line: ours is on its way. */
const GREETING_CROSSES_MS = 500;
/** Items kept for storage while the device's id is not known yet (console text before hello). */
const MAX_HELD_ITEMS = 500;
/** Error envelopes sent to the device at most this often. */
const ERROR_REPLY_MS = 1000;
/** Envelope field numbers (protocol/pollkit.proto). */
const FIELD_HELLO = 1;
const FIELD_HEALTH = 2;
const FIELD_RECORD = 3;

const HelloType = type("Hello");
const HealthType = type("Health");
const RecordType = type("Record");
const TimeSyncType = type("TimeSync");
const CommandType = type("Command");
const CommandResultType = type("CommandResult");
const ErrorType = type("Error");
const COMMAND_BODIES: readonly string[] = CommandType.oneofs.body!.oneof;

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: Number, defaults: true };

/**
 * The bytes of a length-delimited top-level field (`field`) of a protobuf message, sliced out of
 * `message` without decoding them; null when the field is absent or occurs more than once
 * (protobuf would merge the occurrences, so no single slice is the value).
 */
export function sliceField(message: Uint8Array, field: number): Uint8Array | null {
  const r = protobuf.Reader.create(message);
  let found: Uint8Array | null = null;
  let count = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const wire = tag & 7;
    if (tag >>> 3 === field && wire === 2) {
      const len = r.uint32();
      if (r.pos + len > r.len) throw new RangeError("field runs past the end of the message");
      found = message.subarray(r.pos, r.pos + len);
      count++;
      r.skip(len);
    } else r.skipType(wire);
  }
  return count === 1 ? found : null;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

type Listener<T> = (value: T) => void;

/** A small typed event emitter; a listener that throws does not break the emitter's owner. */
class TypedEmitter<E extends Record<string, unknown>> {
  private readonly listeners: { [K in keyof E]?: Listener<E[K]>[] } = {};
  constructor(private readonly onListenerError: (event: keyof E, e: unknown) => void) {}

  on<K extends keyof E>(event: K, cb: Listener<E[K]>): () => void {
    const list = (this.listeners[event] ??= []);
    list.push(cb);
    return () => {
      const i = list.indexOf(cb);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof E>(event: K, value: E[K]): void {
    const list = this.listeners[event];
    if (list === undefined) return;
    for (const cb of [...list]) {
      try {
        cb(value);
      } catch (e) {
        this.onListenerError(event, e);
      }
    }
  }
}

/** A session in a flush group: stores what it has (store.put) and returns what to do once committed. */
interface FlushMember {
  store(timed: boolean): ((committed: boolean) => void) | null;
}

/**
 * The sessions with items waiting and the same batch delay, flushed together: one timer for all
 * of them, and their store.put calls inside one commitTogether() (one Outbox transaction, one
 * fsync); each session acknowledges only after that commit. An early flush (the device's window
 * is full) runs the group at the end of the current turn of the event loop.
 */
class FlushGroup {
  private readonly members = new Set<FlushMember>();
  private early = new Set<FlushMember>();
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  constructor(private readonly delayMs: number) {}

  add(m: FlushMember, now: boolean): void {
    this.members.add(m);
    if (now) {
      this.early.add(m);
      this.immediate ??= setImmediate(() => this.run());
    } else if (this.timer === null && this.immediate === null) {
      this.timer = setTimeout(() => this.run(), this.delayMs);
    }
  }

  remove(m: FlushMember): void {
    this.members.delete(m);
    this.early.delete(m);
    if (this.members.size === 0) this.cancel();
  }

  private cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private run(): void {
    this.cancel();
    const list = [...this.members];
    const early = this.early;
    this.members.clear();
    this.early = new Set();
    const done: ((committed: boolean) => void)[] = [];
    let ok: boolean;
    try {
      ok = commitTogether(() => {
        for (const m of list) {
          const d = m.store(!early.has(m));
          if (d !== null) done.push(d);
        }
      });
    } catch {
      ok = false;
    }
    for (const d of done) d(ok);
  }
}

const flushGroups = new Map<number, FlushGroup>();

function flushGroup(delayMs: number): FlushGroup {
  let g = flushGroups.get(delayMs);
  if (g === undefined) flushGroups.set(delayMs, (g = new FlushGroup(delayMs)));
  return g;
}

interface PendingRecord {
  item: StoreItem;
  prevSeq: number;
  kind: number;
  timeMs: number;
  payload: Uint8Array;
  signature: Uint8Array;
}

/** A non-record item waiting for a store.put; deviceId is filled in at flush time. */
type HeldItem = Omit<StoreItem, "deviceId">;

interface PendingCommand {
  id: number;
  name: string;
  frame: Uint8Array;
  timeoutMs: number;
  attempts: number;
  sentAt: number;
  timer: NodeJS.Timeout | null;
  resolve: (r: CommandReply) => void;
  reject: (e: Error) => void;
}

export class DeviceSession {
  readonly link: HostLink;
  private readonly o: DeviceSessionOptions;
  private readonly clock: () => number;
  private readonly emitter: TypedEmitter<SessionEvents>;
  private readonly decoder: FrameDecoder;
  private _state: SessionState = "connecting";
  private hello: DeviceHello | null = null;
  private lastHealth: ReceivedHealth | null = null;
  private time: TimeSyncResult | null = null;
  private timeSyncSentAt = 0;
  private batch: PendingRecord[] = [];
  private held: HeldItem[] = [];
  private readonly member: FlushMember = { store: (timed) => this.storeBatch(timed, true) };
  /** Seqs whose store.put failed and that have not been stored since: the ack stays below them. */
  private readonly failedSeqs = new Set<number>();
  private maxSeqSeen = 0;
  /** Last record of the unbroken chain of stored records (see the acknowledgement rule). */
  private chainTop = 0;
  /** Stored records not yet chained: seq -> prev_seq. */
  private readonly unchained = new Map<number, number>();
  /**
   * Early flush: the device keeps at most a window of records unacknowledged (8 in this firmware)
   * and then waits. Learned at each timed flush as the records outstanding then; once that many
   * are outstanding again, the device is waiting for us and the batch goes at once.
   */
  private recvTop = 0;
  private ackBase = -1;
  private windowSeen = 0;
  private lastAck = 0;
  private helloTimer: NodeJS.Timeout | null = null;
  private helloAttempts = 0;
  private lastHelloAt = -Infinity;
  /** Our Hello went to a device that greeted; its answer has not come yet. */
  private awaitingAnswer = false;
  private frameTimer: NodeJS.Timeout | null = null;
  private lastErrorReply = -Infinity;
  private readonly pending = new Map<number, PendingCommand>();
  private nextId: number;
  private readonly ring: LogLine[] = [];
  private readonly counters: SessionCounters = {
    records: 0,
    recordsStored: 0,
    duplicates: 0,
    errors: 0,
    frameErrors: 0,
    decodeErrors: 0,
    deviceErrors: 0,
    storeErrors: 0,
    reencodeMismatches: 0,
    health: 0,
    logLines: 0,
    acksSent: 0,
    commands: 0,
    commandRetries: 0,
    commandTimeouts: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesIn: 0,
    framesOut: 0,
  };

  constructor(options: DeviceSessionOptions) {
    this.o = options;
    this.link = options.link;
    this.clock = options.clock ?? Date.now;
    this.nextId = randomInt(1, 0x80000000);
    this.emitter = new TypedEmitter<SessionEvents>((event, e) => {
      if (event !== "error") this.report("listener", 0, `a "${String(event)}" listener threw: ${errorText(e)}`);
    });
    this.decoder = new FrameDecoder({
      onFrame: (p) => this.frame(p),
      onConsole: (t) => this.console(t),
      onError: (code, detail) => {
        this.counters.frameErrors++;
        this.report("frame", code, detail);
      },
    });
    this.link.onLine((line) => this.line(line));
    this.link.onBytes((chunk) => {
      this.counters.bytesIn += chunk.length;
      this.decoder.pushBytes(chunk);
      this.watchFrame();
    });
    this.link.onClose((reason) => this.finish(reason));
    // Says hello by itself once the code that created it has installed its listeners.
    queueMicrotask(() => this.start());
  }

  get state(): SessionState {
    return this._state;
  }

  on<K extends keyof SessionEvents>(event: K, cb: Listener<SessionEvents[K]>): () => void {
    return this.emitter.on(event, cb);
  }

  /** Says hello to the device now (otherwise done in a microtask after construction). Idempotent. */
  start(): void {
    if (this._state !== "connecting") return;
    this.setState("hello-wait");
    this.sendHello();
  }

  info(): SessionInfo {
    const h = this.hello;
    return {
      address: this.link.address,
      kind: this.link.kind,
      agentId: this.o.agentId,
      site: this.o.site,
      state: this._state,
      deviceId: h?.deviceId ?? null,
      role: h?.role ?? null,
      firmwareVersion: h?.firmwareVersion ?? null,
      hardwareModel: h?.hardwareModel ?? null,
      bootId: h?.bootId ?? null,
      lastHealth: this.lastHealth,
      health: this.lastHealth?.health ?? null,
      publicKey: h?.publicKey ?? null,
      timeSync: this.time,
      ackedSeq: this.lastAck,
      counters: { ...this.counters },
    };
  }

  /** The device's Hello, once received. */
  deviceHello(): DeviceHello | null {
    return this.hello;
  }

  /** The device's console lines, oldest first (at most logRingLines). */
  logs(): LogLine[] {
    return [...this.ring];
  }

  /** The last `max` console lines, oldest first. */
  logLines(max = 50): string[] {
    return this.ring.slice(Math.max(0, this.ring.length - max)).map((l) => l.text);
  }

  /**
   * Sends a command (one member of Command's `body` oneof, e.g. `{ diagnostics: {} }`, plus an
   * optional `authority`) and resolves with its result, whatever its status. Sent again with the
   * same id if no answer comes within timeoutMs (the device answers a repeated id from its cache
   * without running the command twice); rejects after the second timeout or when the link closes.
   */
  command(body: Record<string, unknown>, timeoutMs?: number): Promise<CommandReply> {
    if (this._state === "closed") return Promise.reject(new CommandError("closed", `session ${this.describe()} is closed`));
    const names = Object.keys(body).filter((k) => k !== "authority" && k !== "id" && body[k] !== undefined);
    if (names.length !== 1 || !COMMAND_BODIES.includes(names[0]!)) {
      return Promise.reject(new TypeError(`a command needs exactly one of ${COMMAND_BODIES.join(", ")}; got ${names.join(", ") || "none"}`));
    }
    const name = names[0]!;
    // A command signed by a technician covers its id: it travels with the id it was signed with.
    const given = body.id;
    if (given !== undefined && (typeof given !== "number" || !Number.isInteger(given) || given < 1 || given > 0xffffffff)) {
      return Promise.reject(new TypeError(`bad command id ${String(given)}: an integer from 1 to 2^32-1`));
    }
    if (typeof given === "number" && this.pending.has(given)) {
      return Promise.reject(new TypeError(`command id ${given} is already waiting for an answer`));
    }
    const id = typeof given === "number" ? given : this.allocId();
    const command = { ...body, id };
    const invalid = CommandType.verify(command);
    if (invalid !== null) return Promise.reject(new TypeError(`bad ${name} command: ${invalid}`));
    const frame = encodeFrame(Envelope.encode(Envelope.fromObject({ command })).finish());
    if (frame.length === 0) return Promise.reject(new RangeError(`${name} command too large for one frame`));
    this.counters.commands++;
    return new Promise<CommandReply>((resolve, reject) => {
      const p: PendingCommand = {
        id,
        name,
        frame,
        timeoutMs: timeoutMs ?? this.o.commandTimeoutMs ?? 5000,
        attempts: 0,
        sentAt: performance.now(),
        timer: null,
        resolve,
        reject,
      };
      this.pending.set(id, p);
      this.sendCommand(p);
    });
  }

  /** Closes the link; the session ends in "closed" (pending commands rejected). */
  async close(): Promise<void> {
    if (this._state === "closed") return;
    try {
      await this.link.close();
    } catch (e) {
      this.report("link", 0, `close failed: ${errorText(e)}`);
    }
    this.finish("closed by host");
  }

  // -------------------------------------------------------------------------------------------
  // Incoming

  private line(line: string): void {
    this.counters.bytesIn += line.length + 1;
    if (this._state === "closed") return;
    this.decoder.pushLine(line);
    this.watchFrame();
  }

  /** A device that stops mid-frame must not leave the decoder waiting forever. */
  private watchFrame(): void {
    if (this.frameTimer !== null) clearTimeout(this.frameTimer);
    this.frameTimer = null;
    if (!this.decoder.inFrame() || this._state === "closed") return;
    this.frameTimer = setTimeout(() => {
      this.frameTimer = null;
      if (!this.decoder.inFrame()) return;
      this.decoder.reset();
      this.counters.frameErrors++;
      this.report("frame", ErrorCode.MALFORMED_FRAME, `frame cut short: nothing more for ${this.frameTimeoutMs()} ms`);
    }, this.frameTimeoutMs());
  }

  private frameTimeoutMs(): number {
    return this.o.frameTimeoutMs ?? 1000;
  }

  private frame(payload: Uint8Array): void {
    this.counters.framesIn++;
    let env: protobuf.Message;
    let which: string | undefined;
    try {
      env = Envelope.decode(payload);
      which = (env as unknown as { msg?: string }).msg;
    } catch (e) {
      this.counters.decodeErrors++;
      this.report("decode", ErrorCode.DECODE_FAILED, `envelope did not decode: ${errorText(e)}`);
      return;
    }
    const member = (env as unknown as Record<string, protobuf.Message | undefined>)[which ?? ""];
    try {
      switch (which) {
        case "hello":
          this.onHello(member!, sliceField(payload, FIELD_HELLO));
          break;
        case "health":
          this.onHealth(member!, sliceField(payload, FIELD_HEALTH));
          break;
        case "record":
          this.onRecord(member!, sliceField(payload, FIELD_RECORD));
          break;
        case "timeSync":
          this.onTimeSync(member!);
          break;
        case "commandResult":
          this.onCommandResult(member!);
          break;
        case "error":
          this.onDeviceError(member!);
          break;
        case "ack":
        case "command":
          this.refuse(ErrorCode.UNEXPECTED_MESSAGE, `a host does not accept ${which} from a device`);
          break;
        default:
          this.refuse(ErrorCode.UNKNOWN_MESSAGE, "no known message in the envelope");
      }
    } catch (e) {
      this.counters.decodeErrors++;
      this.report("decode", ErrorCode.DECODE_FAILED, `${which ?? "envelope"}: ${errorText(e)}`);
    }
  }

  private onHello(msg: protobuf.Message, raw: Uint8Array | null): void {
    const o = HelloType.toObject(msg, { ...TO_OBJECT, arrays: true });
    const h: DeviceHello = {
      protocolVersion: o.protocolVersion as number,
      deviceId: o.deviceId as string,
      role: o.role as number,
      hardwareModel: o.hardwareModel as string,
      firmwareVersion: o.firmwareVersion as string,
      bootId: o.bootId as number,
      capabilities: o.capabilities as number[],
      publicKey: new Uint8Array(o.publicKey as Uint8Array),
      journalNextSeq: o.journalNextSeq as number,
      journalAckedSeq: o.journalAckedSeq as number,
      answer: o.answer === true,
    };
    if (h.deviceId === "") {
      this.refuse(ErrorCode.UNEXPECTED_MESSAGE, "a device hello without a device id");
      return;
    }
    if (h.role === ROLE_HOST) {
      this.report("protocol", ErrorCode.UNEXPECTED_MESSAGE, "the peer says it is a host, not a device");
      return;
    }
    if (h.protocolVersion !== PROTOCOL_VERSION) {
      this.report("protocol", ErrorCode.VERSION_MISMATCH, `device speaks protocol ${h.protocolVersion}, this agent ${PROTOCOL_VERSION}`);
    }
    const prev = this.hello;
    const newIdentity = prev === null || prev.deviceId !== h.deviceId;
    const rebooted = prev !== null && !newIdentity && prev.bootId !== h.bootId;
    if (prev !== null && newIdentity) this.flush(false); // items queued under the old id
    this.hello = h;
    if (h.journalNextSeq - 1 > this.maxSeqSeen) this.maxSeqSeen = h.journalNextSeq - 1;
    if (newIdentity) this.chainTop = 0;
    this.extendChain(h.journalAckedSeq);
    // A device greets (answer false) on connect and after every boot, and repeats its greeting
    // until a host Hello reaches it; it answers that Hello (answer true), which ends the exchange.
    // Either may be lost on a noisy line: a greeting is answered even from a boot we know (our
    // earlier Hello was lost), and ours is resent until the answer comes.
    if (!newIdentity && !rebooted) {
      if (h.answer) this.ready();
      else this.answerGreeting();
      return;
    }
    this.holdItem("hello", raw ?? HelloType.encode(msg).finish());
    this.checkSequence(h);
    if (h.answer) this.ready();
    else this.answerGreeting(true);
    this.emitter.emit("hello", h);
    if (this.o.timeSync ?? true) {
      this.timeSyncSentAt = performance.now();
      this.send({ timeSync: { hostTimeMs: this.clock() } });
    }
    this.scheduleFlush();
  }

  /**
   * Says hello to a device that greeted, and waits for its answer (resending with back-off). A
   * greeting that crosses our own fresh Hello (sent on connect) needs no second one.
   */
  private answerGreeting(newBoot = false): void {
    const fresh = performance.now() - this.lastHelloAt < GREETING_CROSSES_MS;
    this.awaitingAnswer = true;
    if (fresh && !newBoot && this.helloTimer !== null) return;
    this.helloAttempts = 0;
    this.sendHello();
  }

  /** Sequence numbers never repeat on a device; a store ahead of the journal means they did. */
  private checkSequence(h: DeviceHello): void {
    let top: number;
    try {
      top = this.o.store.highestSeq(h.deviceId);
    } catch (e) {
      this.counters.storeErrors++;
      this.report("store", 0, `highestSeq failed: ${errorText(e)}`);
      return;
    }
    if (top >= h.journalNextSeq) {
      this.report(
        "protocol",
        0,
        `${h.deviceId}: the store already holds seq ${top} but the device's next record is ${h.journalNextSeq}: ` +
          "its journal numbering restarted, and records with reused numbers would be dropped as duplicates",
      );
    }
  }

  private ready(): void {
    if (this.helloTimer !== null) clearTimeout(this.helloTimer);
    this.helloTimer = null;
    this.helloAttempts = 0;
    this.awaitingAnswer = false;
    if (this._state !== "closed") this.setState("ready");
  }

  private onHealth(msg: protobuf.Message, raw: Uint8Array | null): void {
    const health = HealthType.toObject(msg, TO_OBJECT) as unknown as HealthReport;
    const r: ReceivedHealth = { health, receivedMs: this.clock() };
    this.counters.health++;
    this.lastHealth = r;
    this.holdItem("health", raw ?? HealthType.encode(msg).finish());
    this.emitter.emit("health", r);
    this.scheduleFlush();
  }

  private onRecord(msg: protobuf.Message, raw: Uint8Array | null): void {
    const o = RecordType.toObject(msg, TO_OBJECT);
    const seq = o.seq as number;
    this.counters.records++;
    if (this.hello === null) {
      // Its hello was lost (noise): no id to store under. Not acknowledged; the device resends.
      this.report("protocol", ErrorCode.UNEXPECTED_MESSAGE, `record ${seq} before the device's hello: dropped, asking for hello`);
      if (performance.now() - this.lastHelloAt > 500) this.sendHello();
      return;
    }
    if (!(seq > 0)) {
      this.report("protocol", ErrorCode.UNEXPECTED_MESSAGE, "a record without a sequence number");
      return;
    }
    // Signatures cover the device's bytes: store those, not a re-encoding (see the test suite:
    // protobufjs drops unknown fields, so a newer firmware's records would not round-trip).
    const reencoded = RecordType.encode(msg).finish();
    if (raw === null || !bytesEqual(raw, reencoded)) this.counters.reencodeMismatches++;
    const bytes = new Uint8Array(raw ?? reencoded); // a copy: the frame buffer is not ours to keep
    if (seq > this.maxSeqSeen) this.maxSeqSeen = seq;
    if (this.ackBase < 0) this.ackBase = seq - 1;
    if (seq > this.recvTop) this.recvTop = seq;
    if (this.batch.some((b) => b.item.seq === seq)) {
      this.counters.duplicates++;
      return;
    }
    this.batch.push({
      prevSeq: (o.prevSeq as number | undefined) ?? 0,
      item: { deviceId: this.hello.deviceId, channel: "record", seq, payload: bytes, receivedMs: this.clock() },
      kind: o.kind as number,
      timeMs: o.timeMs as number,
      payload: new Uint8Array(o.payload as Uint8Array),
      signature: new Uint8Array(o.signature as Uint8Array),
    });
    if (this.batch.length >= (this.o.ackBatchMax ?? 32)) this.scheduleFlush(true);
    else if (this.windowSeen >= 2 && this.outstanding() >= this.windowSeen) this.scheduleFlush(true);
    else this.scheduleFlush();
  }

  /** Records received above what the device knows to be acknowledged. */
  private outstanding(): number {
    return this.recvTop - Math.max(this.ackBase, this.lastAck);
  }

  private onTimeSync(msg: protobuf.Message): void {
    const o = TimeSyncType.toObject(msg, TO_OBJECT);
    const rtt = this.timeSyncSentAt > 0 ? performance.now() - this.timeSyncSentAt : 0;
    const deviceTimeMs = o.deviceTimeMs as number;
    const hostTimeMs = o.hostTimeMs as number;
    this.time = {
      deviceTimeMs,
      hostTimeMs,
      roundTripMs: rtt,
      offsetMs: deviceTimeMs > 0 ? deviceTimeMs - (hostTimeMs + rtt / 2) : null,
    };
    this.emitter.emit("time", this.time);
  }

  private onCommandResult(msg: protobuf.Message): void {
    const o = CommandResultType.toObject(msg, { ...TO_OBJECT, oneofs: true, arrays: true });
    const p = this.pending.get(o.id as number);
    if (p === undefined) return; // the second answer to a retried command, or after a timeout
    this.pending.delete(p.id);
    if (p.timer !== null) clearTimeout(p.timer);
    p.resolve({ ...(o as Omit<CommandReply, "attempts" | "roundTripMs">), attempts: p.attempts, roundTripMs: performance.now() - p.sentAt });
  }

  private onDeviceError(msg: protobuf.Message): void {
    const o = ErrorType.toObject(msg, TO_OBJECT);
    const code = o.code as number;
    const detail = o.detail as string;
    this.counters.deviceErrors++;
    this.report("device", code, detail);
    const p = this.pending.get(o.commandId as number);
    if (p !== undefined && p.id !== 0) {
      this.pending.delete(p.id);
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(new CommandError("refused", `${this.describe()}: ${p.name} command ${p.id} refused: ${detail} (error ${code})`, code));
    }
  }

  private console(text: string): void {
    const l: LogLine = { receivedMs: this.clock(), text };
    this.ring.push(l);
    if (this.ring.length > (this.o.logRingLines ?? 500)) this.ring.shift();
    this.counters.logLines++;
    this.holdItem("log", new Uint8Array(Buffer.from(text, "latin1")));
    this.emitter.emit("log", text);
    this.scheduleFlush();
  }

  // -------------------------------------------------------------------------------------------
  // Storing and acknowledging

  private holdItem(channel: StoreChannel, payload: Uint8Array): void {
    this.held.push({ channel, seq: null, payload: new Uint8Array(payload), receivedMs: this.clock() });
    if (this.held.length > MAX_HELD_ITEMS) this.held.shift();
  }

  private flushGroup(): FlushGroup {
    return flushGroup(this.o.ackBatchMs ?? 20);
  }

  /** Flushes with the other sessions of the group: after ackBatchMs, or (`now`) this turn. */
  private scheduleFlush(now = false): void {
    if (this._state === "closed") return;
    this.flushGroup().add(this.member, now);
  }

  /** One store.put for everything waiting; then (if `ack`) one Ack. */
  private flush(ack: boolean): void {
    this.storeBatch(false, ack)?.(true);
  }

  /**
   * store.put of everything waiting; returns what to do once the put is committed (counters,
   * chain, "record" events, the Ack), or null when there was nothing or the put failed.
   * `timed`: the batch delay ran out (the outstanding count then teaches the device's window).
   */
  private storeBatch(timed: boolean, ack: boolean): ((committed: boolean) => void) | null {
    if (timed && this.batch.length > 0) this.windowSeen = Math.max(this.windowSeen, this.outstanding());
    const h = this.hello;
    if (h === null) return null; // items wait for the device's id
    const records = this.batch;
    const held = this.held;
    if (records.length === 0 && held.length === 0) return null;
    this.batch = [];
    this.held = [];
    const items: StoreItem[] = held.map((i) => ({ ...i, deviceId: h.deviceId }));
    for (const r of records) items.push(r.item);
    let fresh: number;
    try {
      fresh = this.o.store.put(items);
    } catch (e) {
      this.storeFailed(records, held.length, errorText(e));
      return null;
    }
    return (committed) => {
      if (!committed) this.storeFailed(records, held.length, "the transaction did not commit");
      else this.stored(h.deviceId, records, held.length, fresh, ack);
    };
  }

  private storeFailed(records: PendingRecord[], held: number, why: string): void {
    for (const r of records) this.failedSeqs.add(r.item.seq!);
    this.counters.storeErrors++;
    this.report(
      "store",
      0,
      `store.put failed for ${records.length} record(s) and ${held} other item(s): ${why}; ` + "nothing acknowledged, the device will resend",
    );
  }

  private stored(deviceId: string, records: PendingRecord[], held: number, fresh: number, ack: boolean): void {
    // Items without a seq are never duplicates: what is not new among the rest is.
    const freshRecords = Math.max(0, Math.min(records.length, fresh - held));
    this.counters.recordsStored += freshRecords;
    this.counters.duplicates += records.length - freshRecords;
    for (const r of records) if (r.item.seq! > this.chainTop) this.unchained.set(r.item.seq!, r.prevSeq);
    this.extendChain(this.chainTop);
    for (const r of records) {
      this.failedSeqs.delete(r.item.seq!);
      this.emitter.emit("record", {
        deviceId: r.item.deviceId,
        seq: r.item.seq!,
        kind: r.kind,
        timeMs: r.timeMs,
        payload: r.payload,
        signature: r.signature,
        bytes: r.item.payload,
      });
    }
    if (ack && records.length > 0 && this._state !== "closed") this.sendAck(deviceId);
  }

  /** Raises the chain top to `base`, then follows stored records whose prev_seq it reaches. */
  private extendChain(base: number): void {
    if (base > this.chainTop) this.chainTop = base;
    for (;;) {
      let next = -1;
      for (const [seq, prev] of this.unchained) {
        if (seq <= this.chainTop) this.unchained.delete(seq);
        else if (prev <= this.chainTop && (next < 0 || seq < next)) next = seq;
      }
      if (next < 0) return;
      this.chainTop = next;
      this.unchained.delete(next);
    }
  }

  private sendAck(deviceId: string): void {
    let top: number;
    try {
      top = this.o.store.highestSeq(deviceId);
    } catch (e) {
      this.counters.storeErrors++;
      this.report("store", 0, `highestSeq failed: ${errorText(e)}; nothing acknowledged`);
      return;
    }
    let seq = Math.min(top, this.maxSeqSeen, this.chainTop);
    for (const f of this.failedSeqs) {
      // A duplicate of a record already stored (inside the chain) that failed to store again
      // holds nothing back: the first copy is durable.
      if (f <= this.chainTop) {
        this.failedSeqs.delete(f);
        continue;
      }
      if (f - 1 < seq) seq = f - 1;
    }
    if (seq <= 0) return;
    this.lastAck = seq;
    this.counters.acksSent++;
    this.send({ ack: { seq } });
  }

  // -------------------------------------------------------------------------------------------
  // Outgoing

  private sendHello(): void {
    if (this._state === "closed") return;
    this.helloAttempts++;
    this.lastHelloAt = performance.now();
    this.send({ hello: { protocolVersion: PROTOCOL_VERSION, deviceId: this.o.agentId, role: ROLE_HOST } });
    if (this.helloTimer !== null) clearTimeout(this.helloTimer);
    const base = this.o.helloTimeoutMs ?? 2000;
    const wait = Math.min(MAX_HELLO_BACKOFF_MS, base * 2 ** (this.helloAttempts - 1));
    this.helloTimer = setTimeout(() => {
      this.helloTimer = null;
      if (this._state !== "hello-wait" && !this.awaitingAnswer) return;
      if (this.helloAttempts === 1) {
        this.report("protocol", 0, `no hello from the device at ${this.link.address} within ${base} ms; asking again`);
      }
      this.sendHello();
    }, wait);
  }

  private sendCommand(p: PendingCommand): void {
    p.attempts++;
    this.writeFrame(p.frame);
    p.timer = setTimeout(() => {
      p.timer = null;
      if (!this.pending.has(p.id)) return;
      if (p.attempts < 2) {
        this.counters.commandRetries++;
        this.sendCommand(p);
        return;
      }
      this.pending.delete(p.id);
      this.counters.commandTimeouts++;
      p.reject(new CommandError("timeout", `${this.describe()}: ${p.name} command ${p.id} got no answer (sent ${p.attempts} times, ${p.timeoutMs} ms each)`));
    }, p.timeoutMs);
  }

  /** Answers what a host cannot use with an Error, at most once a second. */
  private refuse(code: number, detail: string): void {
    this.report("protocol", code, detail);
    const now = performance.now();
    if (now - this.lastErrorReply < ERROR_REPLY_MS) return;
    this.lastErrorReply = now;
    this.send({ error: { code, detail } });
  }

  private send(env: Record<string, unknown>): void {
    this.writeFrame(encodeFrame(Envelope.encode(Envelope.fromObject(env)).finish()));
  }

  private writeFrame(frame: Uint8Array): void {
    if (this._state === "closed") return;
    this.counters.framesOut++;
    this.counters.bytesOut += frame.length;
    this.link.write(frame).catch((e: unknown) => {
      if (this._state !== "closed") this.report("link", 0, `write failed: ${errorText(e)}`);
    });
  }

  private allocId(): number {
    const id = this.nextId;
    this.nextId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  // -------------------------------------------------------------------------------------------

  private report(kind: SessionErrorKind, code: number, detail: string): void {
    this.counters.errors++;
    this.emitter.emit("error", { kind, code, detail });
  }

  private setState(to: SessionState): void {
    const from = this._state;
    if (from === to) return;
    this._state = to;
    this.emitter.emit("state", { from, to });
  }

  private describe(): string {
    return this.hello !== null ? `${this.hello.deviceId} at ${this.link.address}` : this.link.address;
  }

  private finish(reason: string): void {
    if (this._state === "closed") return;
    // Keep what arrived (durable before anything else); no ack: the link is gone.
    this.flush(false);
    this.flushGroup().remove(this.member);
    for (const t of [this.helloTimer, this.frameTimer]) if (t !== null) clearTimeout(t);
    this.helloTimer = this.frameTimer = null;
    this.setState("closed");
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(new CommandError("closed", `${this.describe()}: connection closed (${reason}) before ${p.name} command ${p.id} was answered`));
    }
    this.emitter.emit("close", reason);
  }
}
