// The MQTT side of the host agent: drains the durable outbox to the operations broker with QoS 1
// and removes a row only when the broker's PUBACK for it has arrived.
//
// Topics: pollkit/v1/<site>/<device>/<channel> (channel record, health, hello, log; payload as
// stored: protobuf bytes, or UTF-8 text for log), pollkit/v1/<site>/<device>/status (retained
// {"state":"online"|"offline","at":<ms>}, set with setDeviceStatus), and the agent's own retained
// status pollkit/v1/<site>/_agent/<agentId>/status: "online" published on every connect, "offline"
// published by close() and, when the agent dies or its connection breaks, by the broker from the
// MQTT will ({"state":"offline","at":null,"reason":"connection lost"}).
//
// Delivery. Each connection is a fresh mqtt.js client (clean session, reconnectPeriod 0): rows
// that were in flight when a connection dropped stay pending in the outbox and are published again
// on the next connection; mqtt.js's own in-memory resend store dies with its client, so nothing is
// resent twice by two mechanisms. A row whose PUBLISH reached the broker but whose PUBACK was lost
// is therefore delivered twice downstream; at most maxInFlight rows per dropped connection. That is
// the at-least-once half of the contract; the other half is the receiver dropping duplicates by
// (device, seq) (DESIGN.md, Protocol: Reliability). A persistent session (clean false) would not
// remove that window either (the broker's dedupe covers QoS 2 only) and is not used.
//
// Ordering: rows are published in outbox order (id) on one connection, so each device's records
// reach the broker in sequence order; after a reconnect the unacknowledged tail is republished from
// its start, so first deliveries stay in order and repeats come only from that tail.
//
// Reconnect: our own exponential backoff with jitter between reconnectMinMs (default 500) and
// reconnectMaxMs (default 30 s). A connection that stayed up at least stableMs (default 10 s)
// resets the backoff, so a broker that accepts and drops connections is not hammered either.
//
// The client id defaults to "pollkit-agent-<agentId>" and must be stable: when a network cut
// leaves a half-open old connection at the broker, the new connection with the same id takes it
// over at once (instead of the old one's will firing "offline" much later, over our "online").
// Two agents must not share an agentId.
//
// TLS: use an mqtts:// URL; `ca`, `cert` and `key` are each PEM text (anything containing
// "-----BEGIN") or a path to a PEM file, read once in the constructor. `rejectUnauthorized`
// defaults to true (mqtt.js and Node's default); do not turn it off outside tests.
//
// Protocol version: MQTT 3.1.1, because aedes does not implement MQTT 5. Note that in 3.1.1 a
// broker that refuses a PUBLISH by ACL still acknowledges it (Mosquitto does): an ACL mistake at
// the broker drops rows silently; check the ACL when setting a site up.
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { Outbox, OutboxRow } from "../outbox/outbox.ts";

export interface MqttBridgeOptions {
  /** mqtt://host:port, mqtts://host:port (TLS), ws://, wss:// */
  url: string;
  site: string;
  agentId: string;
  outbox: Outbox;
  username?: string;
  password?: string;
  /** PEM text or a path to a PEM file. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  /** Default "pollkit-agent-<agentId>". */
  clientId?: string;
  /**
   * QoS 1 publishes awaiting their PUBACK, at most (default 256). PUBACKs are read once per turn of
   * the event loop, so this caps the rows published per turn: 64 held 256 devices (2,800 rows/s)
   * to about 2,500 rows/s on a busy agent (BENCHMARKS.md, "Agent"). It is also the most rows a
   * dropped connection can deliver twice downstream.
   */
  maxInFlight?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** A connection up this long resets the backoff (default 10 s). */
  stableMs?: number;
  /** CONNECT to CONNACK, at most (default 10 s). */
  connectTimeoutMs?: number;
  /** MQTT keepalive in seconds (default 30). */
  keepaliveS?: number;
  /** Look for rows put without notify() this often while connected (default 1 s; 0: never). */
  pollMs?: number;
  /** close(): how long to wait for in-flight PUBACKs and the offline status (default 3 s). */
  closeTimeoutMs?: number;
}

export interface MqttBridgeStats {
  connected: boolean;
  /** TCP/MQTT connection attempts made, successful or not. */
  connectAttempts: number;
  /** Connections that reached CONNACK. */
  connects: number;
  /** Rows acknowledged by the broker and removed from the outbox. */
  published: number;
  /** PUBLISH packets sent for rows, first tries and retries. */
  publishes: number;
  inFlight: number;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Delay before the next connection attempt, while one is scheduled. */
  retryInMs: number | null;
}

export interface MqttBridgeEvents {
  connected: [];
  disconnected: [reason: string];
  /** Rows acknowledged by the broker (and removed from the outbox). */
  acked: [count: number];
  /** Everything is acknowledged and nothing is pending (emitted once per busy spell). */
  idle: [];
  /** A connection or publish problem; the bridge keeps going. */
  problem: [error: Error];
}

export const DEFAULT_MAX_IN_FLIGHT = 256;
/** Longest wait before acknowledged rows are removed from the outbox in one transaction. */
const ACK_DELAY_MS = 2;

// eslint-disable-next-line no-control-regex
const BAD_LEVEL = /[/+#\u0000-\u001f\u007f]/;

function checkLevel(what: string, v: string): void {
  if (typeof v !== "string" || v.length === 0 || BAD_LEVEL.test(v)) {
    throw new Error(`mqtt bridge: ${what} ${JSON.stringify(v)} must be a non-empty topic level without '/', '+', '#' or control characters`);
  }
}

function pem(what: string, v: string | Buffer | undefined): string | Buffer | undefined {
  if (v === undefined || Buffer.isBuffer(v) || v.includes("-----BEGIN")) return v;
  try {
    return readFileSync(v);
  } catch (e) {
    throw new Error(`mqtt bridge: cannot read the ${what} file ${v}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function statusPayload(online: boolean, at: number | null, reason?: string): Buffer {
  const body: { state: string; at: number | null; reason?: string } = { state: online ? "online" : "offline", at };
  if (reason !== undefined) body.reason = reason;
  return Buffer.from(JSON.stringify(body));
}

interface Connection {
  client: MqttClient;
  alive: boolean;
  connected: boolean;
  upSince: number;
}

export class MqttBridge extends EventEmitter<MqttBridgeEvents> {
  readonly agentStatusTopic: string;
  private readonly o: Required<
    Pick<
      MqttBridgeOptions,
      "maxInFlight" | "reconnectMinMs" | "reconnectMaxMs" | "stableMs" | "connectTimeoutMs" | "keepaliveS" | "pollMs" | "closeTimeoutMs" | "clientId"
    >
  >;
  private readonly outbox: Outbox;
  private readonly url: string;
  private readonly prefix: string;
  private readonly mqttOptions: IClientOptions;
  private conn: Connection | null = null;
  private readonly inFlight = new Set<number>();
  /**
   * Highest outbox id published on the current connection: rows at or below it are in flight or
   * acknowledged, so the drain reads only rows after it (0: read from the oldest, after a
   * reconnect or a failed markSent).
   */
  private cursor = 0;
  private acked: number[] = [];
  private drainScheduled = false;
  private ackTimer: NodeJS.Timeout | null = null;
  private idle = false;
  private readonly ackBatch: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private retryAt: number | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private started = false;
  private closing = false;
  private closed: Promise<void> | null = null;
  private readonly devices = new Map<string, { online: boolean; at: number }>();
  private readonly s = { connectAttempts: 0, connects: 0, published: 0, publishes: 0, lastError: null as string | null, lastErrorAt: null as number | null };

  constructor(options: MqttBridgeOptions) {
    super();
    checkLevel("site", options.site);
    checkLevel("agentId", options.agentId);
    const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 65_000) {
      throw new Error(`mqtt bridge: maxInFlight must be an integer in 1..65000, not ${maxInFlight}`);
    }
    const reconnectMinMs = options.reconnectMinMs ?? 500;
    const reconnectMaxMs = Math.max(options.reconnectMaxMs ?? 30_000, reconnectMinMs);
    if (!(reconnectMinMs > 0)) throw new Error("mqtt bridge: reconnectMinMs must be positive");
    this.o = {
      maxInFlight,
      reconnectMinMs,
      reconnectMaxMs,
      stableMs: options.stableMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      keepaliveS: options.keepaliveS ?? 30,
      pollMs: options.pollMs ?? 1000,
      closeTimeoutMs: options.closeTimeoutMs ?? 3000,
      clientId: options.clientId ?? `pollkit-agent-${options.agentId}`,
    };
    this.ackBatch = Math.max(1, Math.floor(maxInFlight / 4));
    this.outbox = options.outbox;
    this.prefix = `pollkit/v1/${options.site}/`;
    this.agentStatusTopic = `${this.prefix}_agent/${options.agentId}/status`;
    this.mqttOptions = {
      clientId: this.o.clientId,
      clean: true,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: this.o.connectTimeoutMs,
      keepalive: this.o.keepaliveS,
      will: { topic: this.agentStatusTopic, payload: statusPayload(false, null, "connection lost"), qos: 1, retain: true },
      username: options.username,
      password: options.password,
      ca: pem("ca", options.ca),
      cert: pem("cert", options.cert),
      key: pem("key", options.key),
      rejectUnauthorized: options.rejectUnauthorized ?? true,
    };
    this.url = options.url;
  }

  /** Starts connecting (and reconnecting until close()). */
  start(): this {
    if (this.started) return this;
    this.started = true;
    this.attempt();
    if (this.o.pollMs > 0) {
      this.pollTimer = setInterval(() => this.scheduleDrain(), this.o.pollMs);
      this.pollTimer.unref();
    }
    return this;
  }

  get connected(): boolean {
    return this.conn?.connected ?? false;
  }

  /** Rows were put in the outbox: publish them now rather than at the next poll. */
  notify(): void {
    this.scheduleDrain();
  }

  /**
   * Sets the retained status of a device (pollkit/v1/<site>/<device>/status). Published now when
   * connected, and again (latest state only) after every reconnect.
   */
  setDeviceStatus(deviceId: string, online: boolean): void {
    checkLevel("deviceId", deviceId);
    const st = { online, at: Date.now() };
    this.devices.set(deviceId, st);
    if (this.conn?.connected && !this.closing) this.publishStatus(this.conn, deviceId, st);
  }

  stats(): MqttBridgeStats {
    return {
      connected: this.connected,
      connectAttempts: this.s.connectAttempts,
      connects: this.s.connects,
      published: this.s.published,
      publishes: this.s.publishes,
      inFlight: this.inFlight.size,
      lastError: this.s.lastError,
      lastErrorAt: this.s.lastErrorAt,
      retryInMs: this.retryAt === null ? null : Math.max(0, this.retryAt - Date.now()),
    };
  }

  /**
   * Waits (up to closeTimeoutMs) for in-flight PUBACKs, publishes the retained "offline" status of
   * the agent (and of devices marked online), disconnects cleanly (no will) and stops reconnecting.
   * Unacknowledged rows stay in the outbox for the next run. Does not close the outbox.
   */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.reconnectTimer = null;
    this.pollTimer = null;
    this.retryAt = null;
    const c = this.conn;
    if (!c) return;
    const deadline = Date.now() + this.o.closeTimeoutMs;
    if (c.connected) {
      while (this.inFlight.size > 0 && c.connected && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
        this.flushAcked();
      }
      if (c.connected) {
        const at = Date.now();
        const acks: Promise<void>[] = [];
        for (const [deviceId, st] of this.devices) {
          if (st.online) acks.push(this.publishAcked(c, `${this.prefix}${deviceId}/status`, statusPayload(false, at, "agent closed"), true));
        }
        acks.push(this.publishAcked(c, this.agentStatusTopic, statusPayload(false, at, "closed"), true));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(acks), new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
        clearTimeout(timer);
      }
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.client.end(true);
        resolve();
      }, Math.max(100, deadline - Date.now()));
      c.client.end(!c.connected, {}, () => {
        clearTimeout(t);
        resolve();
      });
    });
    this.flushAcked();
    c.alive = false;
    c.connected = false;
    this.inFlight.clear();
  }

  private problem(err: Error): void {
    this.s.lastError = err.message;
    this.s.lastErrorAt = Date.now();
    this.emit("problem", err);
  }

  private attempt(): void {
    this.reconnectTimer = null;
    this.retryAt = null;
    if (this.closing) return;
    this.s.connectAttempts++;
    const client = connect(this.url, this.mqttOptions);
    const c: Connection = { client, alive: true, connected: false, upSince: 0 };
    this.conn = c;
    client.on("connect", () => {
      if (!c.alive) return;
      c.connected = true;
      c.upSince = Date.now();
      this.cursor = 0;
      this.s.connects++;
      this.publishStatusOnline(c);
      for (const [deviceId, st] of this.devices) this.publishStatus(c, deviceId, st);
      this.emit("connected");
      this.scheduleDrain();
    });
    client.on("error", (err: Error) => {
      if (c.alive) this.problem(err);
    });
    client.on("close", () => this.lost(c, "connection closed"));
  }

  private lost(c: Connection, reason: string): void {
    if (!c.alive) return;
    // PUBACKs that arrived before the close count: their rows are at the broker.
    this.flushAcked();
    c.alive = false;
    const wasConnected = c.connected;
    c.connected = false;
    // Published, never acknowledged: counted on the row (only failures are written, so a row
    // that goes through first time costs no extra transaction).
    try {
      this.outbox.recordAttempts([...this.inFlight]);
    } catch (e) {
      this.problem(e instanceof Error ? e : new Error(String(e)));
    }
    this.inFlight.clear();
    this.cursor = 0;
    c.client.end(true);
    if (wasConnected) this.emit("disconnected", reason);
    if (this.closing) return;
    if (wasConnected && Date.now() - c.upSince >= this.o.stableMs) this.failures = 0;
    const base = Math.min(this.o.reconnectMaxMs, this.o.reconnectMinMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this.retryAt = Date.now() + delay;
    this.reconnectTimer = setTimeout(() => this.attempt(), delay);
  }

  private publishStatusOnline(c: Connection): void {
    c.client.publish(this.agentStatusTopic, statusPayload(true, Date.now()), { qos: 1, retain: true }, (err) => {
      if (err && c.alive) this.problem(err);
    });
  }

  private publishStatus(c: Connection, deviceId: string, st: { online: boolean; at: number }): void {
    c.client.publish(`${this.prefix}${deviceId}/status`, statusPayload(st.online, st.at), { qos: 1, retain: true }, (err) => {
      if (err && c.alive) this.problem(err);
    });
  }

  private publishAcked(c: Connection, topic: string, payload: Buffer, retain: boolean): Promise<void> {
    return new Promise((resolve) => {
      c.client.publish(topic, payload, { qos: 1, retain }, (err) => {
        if (err && c.alive) this.problem(err);
        resolve();
      });
    });
  }

  private scheduleAckFlush(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.scheduleDrain();
    }, ACK_DELAY_MS);
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Removes acknowledged rows from the outbox, in one transaction per batch. */
  private flushAcked(): void {
    if (this.acked.length === 0) return;
    const ids = this.acked;
    this.acked = [];
    try {
      this.outbox.markSent(ids);
      this.s.published += ids.length;
    } catch (e) {
      // Not removed: they will be published again (the receiver drops the repeats).
      this.cursor = 0;
      this.problem(e instanceof Error ? e : new Error(String(e)));
    }
    for (const id of ids) this.inFlight.delete(id);
    this.emit("acked", ids.length);
  }

  private drain(): void {
    this.flushAcked();
    const c = this.conn;
    if (!c || !c.connected || this.closing) return;
    const room = this.o.maxInFlight - this.inFlight.size;
    if (room <= 0) return;
    let rows: OutboxRow[];
    try {
      rows = this.outbox.pending(room, this.inFlight, this.cursor);
    } catch (e) {
      this.problem(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (rows.length === 0) {
      if (this.inFlight.size === 0 && !this.idle) {
        this.idle = true;
        this.emit("idle");
      }
      return;
    }
    this.idle = false;
    for (const row of rows) {
      const id = row.id;
      this.inFlight.add(id);
      if (id > this.cursor) this.cursor = id;
      this.s.publishes++;
      const payload = Buffer.isBuffer(row.payload)
        ? row.payload
        : Buffer.from(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength);
      c.client.publish(`${this.prefix}${row.deviceId}/${row.channel}`, payload, { qos: 1 }, (err) => {
        if (!c.alive) return; // that connection is gone; the row is pending again
        if (err) {
          // Refused locally (e.g. a bad topic): keep it out of the drain until the next
          // connection instead of spinning on it.
          this.problem(new Error(`publish of outbox row ${id} failed: ${err.message}`));
          return;
        }
        this.acked.push(id);
        // One transaction (one fsync) per batch of acknowledgements: flush at once when a quarter
        // of the window is acknowledged or nothing else is outstanding, else within ACK_DELAY_MS.
        if (this.acked.length >= this.ackBatch || this.acked.length >= this.inFlight.size) this.scheduleDrain();
        else this.scheduleAckFlush();
      });
    }
  }
}
