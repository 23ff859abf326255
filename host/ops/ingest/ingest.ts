// Operations ingest: subscribes to everything the fleet's host agents publish (pollkit/v1/#, or
// $share/<group>/pollkit/v1/# to scale out over several consoles), trusts only what verifies,
// stores it once, and emits live events for the dashboard. Node only.
//
// Per channel (topic pollkit/v1/<site>/<device>/<channel>):
//   record  registered device? → well-formed Record (seq > 0)? → signed kind: signature present
//           (else missing-signature), 64 bytes and valid against the REGISTERED key (else
//           bad-signature); unsigned kinds are accepted from registered devices → store. A
//           (device, seq) already stored (or in flight) with the same bytes is a duplicate: counted,
//           dropped, not verified again; with different bytes it is verified like any record and,
//           if authentic, quarantined as replay-conflict (a forged one is bad-signature).
//   health  registered device → Health decoded → putHealth.
//   hello   registered device → Hello decoded; its device_id must match the topic
//           (device-mismatch) and its public key, when present, the registry (key-mismatch) →
//           online, firmware version.
//   status  retained JSON {"state":"online"|"offline","at":ms|null} → online/offline; a status
//           older (by `at`, the agent's time of the change) than the last one taken for the
//           device is dropped (staleStatuses): a broker may deliver a device's statuses out of
//           order (a retained copy sent on a re-subscription after a newer live one, a message
//           redelivered after a reconnect), and the newest must win.
//   log     the last `logLines` lines per device are kept in memory (logTail).
// pollkit/v1/<site>/_agent/<agentId>/status is an agent's own status (agents()).
// Anything else: quarantine (bad-topic, unknown-device, malformed, ...). Nothing unverified
// reaches records.
//
// Batching: items are collected for batchMs (default 5) or up to batchMax (default 512); while
// two batches or more already wait for verification or commit, a batch keeps growing (up to
// batchMax or 10 x batchMs). The batch's signatures go to the verify pool (worker threads), then
// the batch is committed in one store transaction. The replay check skips the store lookup for a
// seq the store knows is above everything stored (mayHaveRecord, when this is the only writer). Batches verify concurrently and commit in arrival order. Backpressure: when
// more than highWater items wait, the MQTT client stops reading, so the broker queues instead of
// this process.
//
// Acknowledgement. A QoS 1 message is acknowledged to the broker (PUBACK) only once the batch that
// holds it, and every batch before it, is committed, in the order the messages came: a console
// that dies between receiving and storing leaves the message unacknowledged, and the broker sends
// it again when the session resumes. With `clientId` the session is persistent (clean: false) and
// survives the console's absence: the broker queues what is published meanwhile. A batch whose
// commit fails is not acknowledged; the connection is dropped so that the broker redelivers it.
// Acknowledgements of messages that came on a connection since closed are not sent: the broker
// redelivers those too, and the store drops the second copy by (device, seq).

import { EventEmitter } from "node:events";
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { type } from "../../../protocol/node/schema.ts";
import { isSignedKind } from "../../../device/services/recorder.ts";
import type { HealthSample, OpsStore, QuarantineEntry, RegisteredDevice, StoredRecord } from "../store/store.ts";
import { readRecord, type RecordFields } from "./record_wire.ts";
import { VerifyPool, type VerifyItem } from "./verify_pool.ts";

const RecordType = type("Record");
const HealthType = type("Health");
const HelloType = type("Hello");

export const TOPIC_ROOT = "pollkit/v1";

export interface IngestOptions {
  /** mqtt://, mqtts://, ws://, wss:// */
  url: string;
  store: OpsStore;
  /** Subscribe as $share/<shared>/pollkit/v1/# (several consoles share the stream). */
  shared?: string;
  /**
   * MQTT client id, kept from run to run: the session is persistent (clean: false) and the broker
   * queues QoS 1 messages for this console while it is away. Each console of a shared subscription
   * needs its own. Default: a random id and a clean session (tests, one-off tools).
   */
  clientId?: string;
  /** A verify pool to use (not closed by close()); default: a new pool of poolSize workers. */
  pool?: VerifyPool;
  /** Default: available cores. */
  poolSize?: number;
  batchMs?: number;
  batchMax?: number;
  /** Items waiting (received, not committed) above which reading from the broker pauses (default 20000). */
  highWater?: number;
  /** Log lines kept per device (default 50; 0 ignores logs). */
  logLines?: number;
  /**
   * This console is the only one writing records to the store (default: no shared subscription).
   * Then the store's mayHaveRecord (if it has one) lets ingest skip the stored-copy lookup for
   * sequence numbers above what is stored; with other writers every check asks the store.
   */
  soleWriter?: boolean;
  /** Extra mqtt.js options (clientId, username, password, ca, cert, key, ...). */
  mqtt?: IClientOptions;
  clock?: () => number;
}

export interface DeviceEvent {
  deviceId: string;
  site: string;
  online: boolean;
  atMs: number;
  firmwareVersion?: string;
}

export interface AgentStatus {
  site: string;
  agentId: string;
  state: string;
  atMs: number;
}

export interface IngestStats {
  connected: boolean;
  /** MQTT messages received, every channel. */
  received: number;
  /** Records received on record topics. */
  records: number;
  /** Records newly stored. */
  stored: number;
  /** Records dropped as exact duplicates of a stored (or in-flight) record. */
  duplicates: number;
  healthStored: number;
  quarantined: Record<string, number>;
  quarantinedTotal: number;
  /** Signatures verified (valid or not). */
  verified: number;
  /** Signatures verified per second over the last completed window (about 1 s). */
  verifyPerSec: number;
  /** Items received and not yet committed. */
  pending: number;
  batches: number;
  /** Device statuses dropped as older than the one already taken for the device. */
  staleStatuses: number;
  lastError: string | null;
}

export interface IngestEvents {
  /** Newly stored records of one committed batch. */
  records: [records: StoredRecord[]];
  health: [samples: HealthSample[]];
  quarantine: [entries: QuarantineEntry[]];
  device: [event: DeviceEvent];
  agent: [status: AgentStatus];
  connected: [];
  /** A connection or store problem; ingest keeps going. */
  problem: [error: Error];
}

interface PendingRecord {
  rec: StoredRecord;
  key: string;
  topic: string;
  /** Index into the batch's verify list, or -1 (unsigned kind). */
  verifyIndex: number;
}

/** A QoS 1 message's PUBACK, held until what the message brought is committed. */
interface HeldAck {
  client: MqttClient;
  /** The connection the message came on: the PUBACK goes on that one or not at all. */
  stream: MqttClient["stream"];
  messageId: number;
}

interface Batch {
  records: PendingRecord[];
  verify: VerifyItem[];
  health: HealthSample[];
  quarantine: QuarantineEntry[];
  devices: DeviceEvent[];
  size: number;
  /** PUBACKs of the messages read since the previous batch was flushed, in arrival order. */
  acks: HeldAck[];
}

function newBatch(): Batch {
  return { records: [], verify: [], health: [], quarantine: [], devices: [], size: 0, acks: [] };
}

/**
 * Passed to mqtt.js's handleMessage callback for a QoS 1 message: mqtt.js then reads on without
 * sending its own PUBACK (handlers/publish.js), which ingest sends after the commit.
 */
const ACK_HELD = new Error("PUBACK held until the message is committed");

/** PUBACK of MQTT 3.1.1 (section 3.4; valid in MQTT 5 too, reason code 0 implied): type 4, length 2, packet id. */
function pubacks(ids: number[]): Buffer {
  const out = Buffer.allocUnsafe(ids.length * 4);
  ids.forEach((id, i) => {
    out[i * 4] = 0x40;
    out[i * 4 + 1] = 0x02;
    out.writeUInt16BE(id, i * 4 + 2);
  });
  return out;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.compare(a, b) === 0;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class Ingest extends EventEmitter<IngestEvents> {
  private readonly store: OpsStore;
  private readonly pool: VerifyPool;
  private readonly ownPool: boolean;
  private readonly clock: () => number;
  private readonly batchMs: number;
  private readonly batchMax: number;
  private readonly highWater: number;
  private readonly logLines: number;
  private readonly registry = new Map<string, RegisteredDevice>();
  /**
   * The store's "certainly not stored" shortcut (mayHaveRecord of SqliteOpsStore, PgStore), used
   * when this console is the only writer (options.soleWriter); otherwise every check asks the store.
   */
  private readonly mayHave: ((deviceId: string, seq: number) => boolean) | null;
  /** (device, seq) received and not yet committed → the bytes of the first copy. */
  private readonly inFlight = new Map<string, Uint8Array>();
  private readonly logs = new Map<string, string[]>();
  private readonly agentStates = new Map<string, AgentStatus>();
  /** Per device: the `at` of the newest status taken (statuses without one are not ordered). */
  private readonly statusAt = new Map<string, number>();
  private client: MqttClient | null = null;
  /** The client start() made (kept through close(), for breakAcks). */
  private started: MqttClient | null = null;
  private batch: Batch = newBatch();
  private timer: NodeJS.Timeout | null = null;
  private commitChain: Promise<void> = Promise.resolve();
  /** Batches flushed and not yet committed. */
  private batchesInChain = 0;
  private batchStartMs = 0;
  private pendingItems = 0;
  private readonly paused: (() => void)[] = [];
  /** Connections on which a commit failed: no PUBACK goes out on them any more. */
  private readonly brokenStreams = new WeakSet<object>();
  /** Settles when the PUBACKs written so far have left this process (or their connection failed). */
  private acksWritten: Promise<void> = Promise.resolve();
  /** close() has begun: reading from the broker stays paused. */
  private closing = false;
  private windowStart = 0;
  private windowCount = 0;
  private readonly s: IngestStats = {
    connected: false,
    received: 0,
    records: 0,
    stored: 0,
    duplicates: 0,
    healthStored: 0,
    quarantined: {},
    quarantinedTotal: 0,
    verified: 0,
    verifyPerSec: 0,
    pending: 0,
    batches: 0,
    staleStatuses: 0,
    lastError: null,
  };

  constructor(private readonly options: IngestOptions) {
    super();
    this.store = options.store;
    this.ownPool = options.pool === undefined;
    this.pool = options.pool ?? new VerifyPool({ size: options.poolSize });
    this.clock = options.clock ?? Date.now;
    this.batchMs = options.batchMs ?? 5;
    this.batchMax = options.batchMax ?? 512;
    this.highWater = options.highWater ?? 20000;
    this.logLines = options.logLines ?? 50;
    const withHint = this.store as OpsStore & { mayHaveRecord?: (deviceId: string, seq: number) => boolean };
    const soleWriter = options.soleWriter ?? options.shared === undefined;
    this.mayHave = soleWriter && typeof withHint.mayHaveRecord === "function" ? withHint.mayHaveRecord.bind(withHint) : null;
    this.reloadRegistry();
  }

  /** The topic filter this ingest subscribes to. */
  get topicFilter(): string {
    return this.options.shared ? `$share/${this.options.shared}/${TOPIC_ROOT}/#` : `${TOPIC_ROOT}/#`;
  }

  /** Re-reads the registry from the store (after an import). */
  reloadRegistry(): void {
    this.registry.clear();
    for (const d of this.store.devices()) this.registry.set(d.deviceId, d);
  }

  /** Connects and subscribes; resolves once the subscription is granted. */
  start(): Promise<void> {
    if (this.client) throw new Error("ingest already started");
    const clientId = this.options.clientId;
    const client = connect(this.options.url, {
      protocolVersion: 4,
      clean: clientId === undefined,
      reconnectPeriod: 1000,
      clientId: clientId ?? `pollkit-ops-${process.pid}-${Math.random().toString(16).slice(2, 10)}`,
      ...this.options.mqtt,
    });
    this.client = client;
    this.started = client;
    // mqtt.js calls this after the "message" event (so the message is already in a batch) and reads
    // the next packet only once its callback is called: holding the callback is the backpressure.
    // A QoS 1 message's PUBACK is held until its batch commits (ACK_HELD keeps mqtt.js from
    // sending it now).
    client.handleMessage = (packet: IPublishPacket, done: (error?: Error) => void): void => {
      let next: () => void = () => done();
      if (packet.qos === 1 && packet.messageId !== undefined) {
        this.holdAck({ client, stream: client.stream, messageId: packet.messageId });
        next = () => done(ACK_HELD);
      }
      if (this.closing || this.pendingItems > this.highWater) this.paused.push(next);
      else next();
    };
    client.on("message", (topic, payload) => this.onMessage(topic, payload));
    client.on("close", () => (this.s.connected = false));
    client.on("error", (e) => this.problem(e));
    return new Promise<void>((resolve, reject) => {
      let first = true;
      client.on("connect", () => {
        this.s.connected = true;
        client.subscribe(this.topicFilter, { qos: 1 }, (err, granted) => {
          const bad = granted?.find((g) => g.qos === 128);
          const e = err ?? (bad ? new Error(`subscription to ${this.topicFilter} refused`) : null);
          if (e) {
            this.problem(e);
            if (first) reject(e);
          } else {
            this.emit("connected");
            if (first) resolve();
          }
          first = false;
        });
      });
      client.once("error", (e) => {
        if (first) {
          first = false;
          reject(e);
        }
      });
    });
  }

  stats(): IngestStats {
    return { ...this.s, quarantined: { ...this.s.quarantined }, pending: this.pendingItems, verifyPerSec: this.currentVerifyRate() };
  }

  /** The last log lines of a device (newest last). */
  logTail(deviceId: string): string[] {
    return [...(this.logs.get(deviceId) ?? [])];
  }

  agents(): AgentStatus[] {
    return [...this.agentStates.values()];
  }

  /** Resolves when everything received so far is committed (and acknowledged to the broker). */
  async drain(): Promise<void> {
    for (;;) {
      this.flush();
      const chain = this.commitChain;
      await chain;
      if (chain === this.commitChain && this.batch.size === 0 && this.batch.acks.length === 0) return;
    }
  }

  /**
   * Stops reading, commits and acknowledges what was read, disconnects; closes the verify pool if
   * ingest created it. Messages the broker sent that were not read yet stay unacknowledged: with a
   * persistent session the broker delivers them on the next start.
   */
  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.closing = true;
    await this.drain();
    // The last PUBACKs leave before the socket is destroyed (unless the socket is stuck).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.acksWritten, new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    if (client) await client.endAsync(true).catch(() => undefined);
    // mqtt.js dropped the connection these would have read on.
    this.paused.length = 0;
    if (this.ownPool) await this.pool.close();
  }

  // -------------------------------------------------------------------------------------------

  /** Handles one message (exposed for tests and for feeding ingest without a broker). */
  onMessage(topic: string, payload: Buffer): void {
    this.s.received++;
    const now = this.clock();
    const parts = topic.split("/");
    if (parts.length < 5 || parts[0] !== "pollkit" || parts[1] !== "v1") {
      this.reject(now, topic, parts[3] ?? "", "bad-topic", `not pollkit/v1/<site>/<device>/<channel>`, payload);
      return;
    }
    const site = parts[2];
    if (parts[3] === "_agent" && parts.length === 6 && parts[5] === "status") {
      this.onAgentStatus(site, parts[4], payload, now);
      return;
    }
    if (parts.length !== 5) {
      this.reject(now, topic, parts[3], "bad-topic", `not pollkit/v1/<site>/<device>/<channel>`, payload);
      return;
    }
    const deviceId = parts[3];
    const channel = parts[4];
    if (channel === "log") {
      this.onLog(deviceId, payload);
      return;
    }
    if (channel !== "record" && channel !== "health" && channel !== "hello" && channel !== "status") {
      this.reject(now, topic, deviceId, "bad-topic", `unknown channel ${JSON.stringify(channel)}`, payload);
      return;
    }
    if (channel === "record") this.s.records++;
    const device = this.lookup(deviceId);
    if (!device) {
      this.reject(now, topic, deviceId, "unknown-device", `${deviceId} is not in the registry (${channel})`, payload);
      return;
    }
    switch (channel) {
      case "record":
        this.onRecord(topic, site, device, payload, now);
        break;
      case "health":
        this.onHealth(topic, site, deviceId, payload, now);
        break;
      case "hello":
        this.onHello(topic, site, device, payload, now);
        break;
      case "status":
        this.onStatus(topic, site, deviceId, payload, now);
        break;
    }
  }

  private lookup(deviceId: string): RegisteredDevice | null {
    let d = this.registry.get(deviceId);
    if (d === undefined) {
      // Registered since the last reload?
      const fromStore = this.store.device(deviceId);
      if (fromStore === null) return null;
      d = fromStore;
      this.registry.set(deviceId, d);
    }
    return d;
  }

  private onRecord(topic: string, site: string, device: RegisteredDevice, payload: Buffer, now: number): void {
    const deviceId = device.deviceId;
    let f: RecordFields;
    try {
      f = readRecord(payload);
    } catch (e) {
      this.reject(now, topic, deviceId, "malformed", `Record does not decode: ${protobufError(payload) ?? errorText(e)}`, payload);
      return;
    }
    if (f.seq === 0) {
      this.reject(now, topic, deviceId, "malformed", "Record without a sequence number", payload);
      return;
    }
    const signed = isSignedKind(f.kind);
    if (signed) {
      if (f.signature === null || f.signature.length === 0) {
        this.reject(now, topic, deviceId, "missing-signature", `seq ${f.seq}: kind ${f.kind} must be signed`, payload);
        return;
      }
      if (f.signature.length !== 64) {
        this.reject(now, topic, deviceId, "bad-signature", `seq ${f.seq}: signature is ${f.signature.length} bytes, expected 64 (r || s)`, payload);
        return;
      }
    }
    // Exact duplicates (agent resends) are dropped before verification: the stored copy verified.
    const key = `${deviceId}\u0000${f.seq}`;
    const seen = this.inFlight.get(key) ?? this.storedBytes(deviceId, f.seq);
    if (seen !== null && bytesEqual(seen, payload)) {
      this.s.duplicates++;
      return;
    }
    // The store must not keep a view into mqtt.js's packet buffer.
    const bytes = new Uint8Array(payload);
    if (seen === null) this.inFlight.set(key, bytes);
    const b = this.batch;
    let verifyIndex = -1;
    if (signed && f.signature !== null) {
      verifyIndex = b.verify.length;
      b.verify.push({ publicKeyHex: device.publicKeyHex, data: f.signingBytes, signature: f.signature });
    }
    b.records.push({
      rec: { deviceId, seq: f.seq, prevSeq: f.prevSeq, timeMs: f.timeMs, kind: f.kind, bytes, receivedMs: now, site },
      key,
      topic,
      verifyIndex,
    });
    this.added();
  }

  /** The stored bytes of (device, seq), or null; skips the query when the store knows it cannot be there. */
  private storedBytes(deviceId: string, seq: number): Uint8Array | null {
    if (this.mayHave !== null && !this.mayHave(deviceId, seq)) return null;
    return this.store.recordBytes(deviceId, seq);
  }

  private onHealth(topic: string, site: string, deviceId: string, payload: Buffer, now: number): void {
    let health: Record<string, number>;
    try {
      health = HealthType.toObject(HealthType.decode(payload), { longs: Number, enums: Number, defaults: true }) as Record<string, number>;
    } catch (e) {
      this.reject(now, topic, deviceId, "malformed", `Health does not decode: ${errorText(e)}`, payload);
      return;
    }
    this.batch.health.push({ deviceId, receivedMs: now, site, health });
    this.added();
  }

  private onHello(topic: string, site: string, device: RegisteredDevice, payload: Buffer, now: number): void {
    let hello: { deviceId: string; firmwareVersion: string; publicKey: Uint8Array };
    try {
      hello = HelloType.toObject(HelloType.decode(payload), { longs: Number, enums: Number, defaults: true }) as typeof hello;
    } catch (e) {
      this.reject(now, topic, device.deviceId, "malformed", `Hello does not decode: ${errorText(e)}`, payload);
      return;
    }
    if (hello.deviceId !== "" && hello.deviceId !== device.deviceId) {
      this.reject(now, topic, device.deviceId, "device-mismatch", `hello from ${JSON.stringify(hello.deviceId)} on ${device.deviceId}'s topic`, payload);
      return;
    }
    if (hello.publicKey.length > 0 && Buffer.from(hello.publicKey).toString("hex") !== device.publicKeyHex.toLowerCase()) {
      this.reject(now, topic, device.deviceId, "key-mismatch", `${device.deviceId} presents a public key that is not the registered one`, payload);
      return;
    }
    this.batch.devices.push({ deviceId: device.deviceId, site, online: true, atMs: now, firmwareVersion: hello.firmwareVersion });
    this.added();
  }

  private onStatus(topic: string, site: string, deviceId: string, payload: Buffer, now: number): void {
    const st = parseStatus(payload);
    if (typeof st === "string") {
      this.reject(now, topic, deviceId, "malformed", st, payload);
      return;
    }
    if (st.at !== null) {
      const newest = this.statusAt.get(deviceId);
      if (newest !== undefined && st.at < newest) {
        this.s.staleStatuses++;
        return;
      }
      this.statusAt.set(deviceId, st.at);
    }
    this.batch.devices.push({ deviceId, site, online: st.state === "online", atMs: st.at ?? now });
    this.added();
  }

  private onAgentStatus(site: string, agentId: string, payload: Buffer, now: number): void {
    const st = parseStatus(payload);
    const status: AgentStatus = { site, agentId, state: typeof st === "string" ? payload.toString("utf8").slice(0, 40) : st.state, atMs: typeof st === "string" ? now : (st.at ?? now) };
    this.agentStates.set(`${site}/${agentId}`, status);
    this.emit("agent", status);
  }

  private onLog(deviceId: string, payload: Buffer): void {
    if (this.logLines <= 0 || !this.registry.has(deviceId)) return;
    let lines = this.logs.get(deviceId);
    if (!lines) this.logs.set(deviceId, (lines = []));
    for (const line of payload.toString("utf8").split("\n")) if (line !== "") lines.push(line);
    if (lines.length > this.logLines) lines.splice(0, lines.length - this.logLines);
  }

  private reject(now: number, topic: string, deviceId: string, reason: string, detail: string, payload: Uint8Array): void {
    this.batch.quarantine.push({ receivedMs: now, topic, deviceId, reason, detail, payload: new Uint8Array(payload) });
    this.added();
  }

  private added(): void {
    this.batch.size++;
    this.pendingItems++;
    if (this.batch.size >= this.batchMax) this.flush();
    else this.armTimer();
  }

  /**
   * A message's PUBACK waits in the open batch: its item is in that batch or in one flushed before
   * (or it needed no storing: a log line, a duplicate), so it is committed when this batch is.
   */
  private holdAck(ack: HeldAck): void {
    this.batch.acks.push(ack);
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer !== null) return;
    this.batchStartMs = performance.now();
    this.timer = setTimeout(this.onBatchTimer, this.batchMs);
  }

  /** Sends the PUBACKs of committed messages, in order, on the connection each came on. */
  private sendAcks(acks: HeldAck[]): void {
    let i = 0;
    while (i < acks.length) {
      const { client, stream } = acks[i];
      const ids: number[] = [];
      for (; i < acks.length && acks[i].stream === stream; i++) ids.push(acks[i].messageId);
      // A connection closed since (or broken by a failed commit): the broker redelivers.
      if (this.brokenStreams.has(stream) || client.stream !== stream || !client.connected || stream.destroyed) continue;
      this.acksWritten = new Promise<void>((resolve) => stream.write(pubacks(ids), () => resolve()));
    }
  }

  /**
   * A batch could not be committed: none of its messages, nor any read after them on the same
   * connections, may be acknowledged. Dropping those connections (the current one too: a message
   * whose PUBACK waits in a later batch came on it or on one already closed) makes the broker send
   * them again (mqtt.js reconnects; the session is kept when clientId is set).
   */
  private breakAcks(acks: HeldAck[]): void {
    const streams = new Set<MqttClient["stream"]>(acks.map((a) => a.stream));
    if (this.started !== null) streams.add(this.started.stream);
    for (const stream of streams) {
      if (this.brokenStreams.has(stream)) continue;
      this.brokenStreams.add(stream);
      if (!stream.destroyed) stream.destroy();
    }
  }

  /**
   * The batch timer: flushes, unless two batches or more are already waiting for verification or
   * their commit; then the batch keeps growing (up to batchMax, or 10 x batchMs), since it would
   * only queue behind them: fewer, larger batches cost the store and the pool less per record.
   */
  private readonly onBatchTimer = (): void => {
    this.timer = null;
    if (this.batchesInChain >= 2 && performance.now() - this.batchStartMs < this.batchMs * 10) {
      this.timer = setTimeout(this.onBatchTimer, this.batchMs);
      return;
    }
    this.flush();
  };

  private flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const b = this.batch;
    if (b.size === 0 && b.acks.length === 0) return;
    this.batch = newBatch();
    if (b.size === 0) {
      // Only acknowledgements (log lines, duplicates, items of a batch flushed just before).
      this.commitChain = this.commitChain.then(() => this.sendAcks(b.acks));
      return;
    }
    this.s.batches++;
    this.batchesInChain++;
    const verdicts: Promise<boolean[]> = b.verify.length > 0 ? this.pool.verify(b.verify) : Promise.resolve([]);
    // Verification runs now (concurrently with other batches); commits keep arrival order.
    verdicts.catch(() => undefined);
    this.commitChain = this.commitChain.then(async () => {
      let ok: boolean[];
      try {
        ok = await verdicts;
      } catch (e) {
        // The pool failed: nothing of this batch is trusted; signed records are quarantined.
        this.problem(e);
        ok = b.verify.map(() => false);
      }
      this.countVerified(b.verify.length);
      try {
        this.commit(b, ok);
        this.sendAcks(b.acks);
      } catch (e) {
        this.problem(e);
        this.breakAcks(b.acks);
      } finally {
        for (const p of b.records) {
          if (this.inFlight.get(p.key) === p.rec.bytes) this.inFlight.delete(p.key);
        }
        this.pendingItems -= b.size;
        this.batchesInChain--;
        if (!this.closing && this.pendingItems <= this.highWater / 2) for (const done of this.paused.splice(0)) done();
      }
    });
  }

  private commit(b: Batch, ok: boolean[]): void {
    const toStore: StoredRecord[] = [];
    const quarantine = b.quarantine;
    const inBatch = new Map<string, Uint8Array>();
    for (const p of b.records) {
      const r = p.rec;
      if (p.verifyIndex >= 0 && !ok[p.verifyIndex]) {
        quarantine.push({
          receivedMs: r.receivedMs,
          topic: p.topic,
          deviceId: r.deviceId,
          reason: "bad-signature",
          detail: `seq ${r.seq}: the signature does not verify against ${r.deviceId}'s registered key`,
          payload: r.bytes,
        });
        continue;
      }
      const existing = inBatch.get(p.key) ?? this.storedBytes(r.deviceId, r.seq);
      if (existing !== null) {
        if (bytesEqual(existing, r.bytes)) this.s.duplicates++;
        else {
          quarantine.push({
            receivedMs: r.receivedMs,
            topic: p.topic,
            deviceId: r.deviceId,
            reason: "replay-conflict",
            detail: `seq ${r.seq} is already stored with different bytes (this copy ${p.verifyIndex >= 0 ? "has a valid signature" : "is of an unsigned kind"})`,
            payload: r.bytes,
          });
        }
        continue;
      }
      inBatch.set(p.key, r.bytes);
      toStore.push(r);
    }
    const write = (): number => {
      const res = this.store.putRecords(toStore);
      this.store.putHealth(b.health);
      this.store.quarantine(quarantine);
      for (const d of b.devices) this.store.setOnline(d.deviceId, d.online, d.atMs, d.firmwareVersion);
      this.s.duplicates += res.duplicates;
      return res.inserted;
    };
    const inserted = this.store.transaction ? this.store.transaction(write) : write();
    this.s.stored += inserted;
    this.s.healthStored += b.health.length;
    for (const q of quarantine) {
      this.s.quarantined[q.reason] = (this.s.quarantined[q.reason] ?? 0) + 1;
      this.s.quarantinedTotal++;
    }
    // (Checked against the store in this same tick, so all of toStore is new unless another console
    // writes the same database concurrently; then a few may be reported twice.)
    if (toStore.length > 0) this.emit("records", toStore);
    if (b.health.length > 0) this.emit("health", b.health);
    if (quarantine.length > 0) this.emit("quarantine", quarantine);
    for (const d of b.devices) this.emit("device", d);
  }

  private countVerified(n: number): void {
    this.s.verified += n;
    const now = this.clock();
    if (this.windowStart === 0) this.windowStart = now;
    this.windowCount += n;
    const span = now - this.windowStart;
    if (span >= 1000) {
      this.s.verifyPerSec = Math.round((this.windowCount * 1000) / span);
      this.windowStart = now;
      this.windowCount = 0;
    }
  }

  private currentVerifyRate(): number {
    // A window that has been idle for long reports 0, not the last busy second.
    return this.clock() - this.windowStart > 3000 ? 0 : this.s.verifyPerSec;
  }

  private problem(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.s.lastError = err.message;
    this.emit("problem", err);
  }
}

/** protobufjs's own error for bytes that are not a Record, when it has one. */
function protobufError(payload: Uint8Array): string | null {
  try {
    RecordType.decode(payload);
    return null;
  } catch (e) {
    return errorText(e);
  }
}

function parseStatus(payload: Buffer): { state: string; at: number | null } | string {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString("utf8"));
  } catch (e) {
    return `status is not JSON: ${errorText(e)}`;
  }
  if (v === null || typeof v !== "object") return "status is not a JSON object";
  const o = v as { state?: unknown; at?: unknown };
  if (o.state !== "online" && o.state !== "offline") return `status state ${JSON.stringify(o.state)} is not "online" or "offline"`;
  const at = typeof o.at === "number" && Number.isFinite(o.at) ? o.at : null;
  return { state: o.state, at };
}
