// The embedded MQTT broker (aedes 1.x) on a plain TCP server: the default broker for a
// single-laptop setup, the demo and the tests. Mosquitto is used where interoperability with a
// separate broker must be proven (test/helpers/mosquitto.ts).
//
// Persistence. With `dataDir`, sessions (subscriptions of clients connected with clean: false),
// the QoS 1 messages queued for them, retained messages and wills are kept on disk (LevelDB
// through aedes-persistence-level and classic-level) and survive a restart of the broker, so the
// operations console misses nothing published while it or the broker was down: aedes writes a
// message into each subscriber's queue before it acknowledges the publisher. LevelDB hands every
// write to the operating system before it completes (a killed broker loses nothing) but does not
// fsync it (a power cut can lose the last writes). Without `dataDir` all of it is in memory and
// gone when the broker stops.
//
// aedes skips a message for a client when its broker counter is not above the last one it sent
// that client (a "dedupe" meant for clusters, where a message can arrive by two paths). With the
// LevelDB persistence, queueing messages for persistent sessions completes out of order (writes
// finish on a thread pool), so a later message goes out first and the earlier one is then skipped
// on the live connection, left queued until the client reconnects: 39 of 3,000 QoS 1 messages to a
// connected subscriber, measured. A single broker has no second path, so that check is switched off
// for its clients when it persists to disk (noDedupe).
//
// Order on resume. When a client resumes a persistent session, aedes sends the messages queued for
// it while it was away (read from the store, one by one) and, at the same time, the messages
// published from then on: a message published after the client came back reached it before one
// queued for it while it was away, even on the same topic from the same publisher (a device's
// "online" status before its earlier "offline", which reached the console 9 s later, after a broker
// restart in the reliability suite: the console then showed the device offline). MQTT 3.1.1 (4.6)
// wants a topic's messages in the order they were published. So, for such a client, what aedes
// would send it between its CONNECT and the end of its queue is held back and sent after the queue,
// in order (orderedResume); a held message the queue already sent is not sent twice. The
// publisher's PUBACK does not wait for that: the message is already in the session's queue.
//
// Retained messages. aedes handles the packets of one read from a socket concurrently, and with
// the LevelDB persistence two writes of one topic's retained message can complete in either
// order: of 1,000 device statuses set offline then online at once by an agent, 8 to 26 kept
// "offline" as the retained message, measured. Writes of a topic's retained message are made one
// after another here, and one older (by broker counter) than one already written is skipped
// (orderedRetain).
//
// Across restarts. aedes keys a queued message by its broker's id, then that broker's counter, and
// sends a queue in key order; its default id is a random UUID, so after a restart what the new
// broker queued went out before what the old one had queued in about half the restarts, measured.
// With `dataDir` the broker's id is therefore the data directory's generation, counted up at each
// start (file "generation"), zero-padded so that a later broker's messages sort after an earlier's.
import type { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Aedes, type AedesOptions, type Client } from "aedes";
import aedesPersistenceLevel, { type LevelPersistence } from "aedes-persistence-level";
import { ClassicLevel } from "classic-level";

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on (default 127.0.0.1: not reachable from other machines). */
  host?: string;
  /**
   * Directory for the broker's persistent state (made if missing): sessions, queued QoS 1
   * messages, retained messages, wills. One broker at a time per directory. Default: none, all in
   * memory, lost when the broker stops.
   */
  dataDir?: string;
  /** Passed to Aedes.createBroker (authenticate, authorizePublish, ...). */
  aedes?: AedesOptions;
  /** A broker-level error (the data directory failing, say); default: a process warning. Ignored once close() has begun. */
  onError?: (error: Error) => void;
}

export interface EmbeddedBroker {
  /** mqtt://host:port */
  url: string;
  port: number;
  aedes: Aedes;
  /** The persistent state's directory, or null (in memory). */
  dataDir: string | null;
  /** Disconnects every client abruptly (no will suppression: wills fire), stops listening, closes the store. */
  close(): Promise<void>;
}

export class EmbeddedBrokerError extends Error {}

/** A client's "last broker counter sent" table that remembers nothing: every message goes out. */
const NOTHING_SENT: Record<string, number> = new Proxy(Object.create(null) as Record<string, number>, {
  get: () => undefined,
  set: () => true,
  deleteProperty: () => true,
});

/** Switches aedes's per-client dedupe off (see the head of this file); before it reads a packet. */
function noDedupe(client: Client): void {
  (client as unknown as { duplicates: Record<string, number> }).duplicates = NOTHING_SENT;
}

/** The part of an aedes packet that orderedResume reads. */
interface QueuedPacket {
  brokerId?: string | null;
  brokerCounter?: number;
}

type Deliver = (packet: QueuedPacket, done: () => void) => void;

/** A queued message's identity (the key aedes stores it under): its broker and that broker's counter. */
function queueKey(p: QueuedPacket): string | null {
  return p.brokerId ? `${p.brokerId}\u0000${p.brokerCounter ?? 0}` : null;
}

/**
 * Per client resuming a persistent session: the queued messages its resume has sent so far. Filled
 * by the persistence's outgoingStream (the queue aedes sends on a resume), read by orderedResume.
 */
type Resuming = WeakMap<Client, Set<string>>;

/** Makes the persistence's queue stream note, for a resuming client, each queued message it yields. */
function tapQueue(aedes: Aedes, resuming: Resuming): void {
  const persistence = (aedes as unknown as { persistence: { outgoingStream(client: Client): Readable } }).persistence;
  const outgoingStream = persistence.outgoingStream.bind(persistence);
  persistence.outgoingStream = (client: Client): Readable => {
    const source = outgoingStream(client);
    const sent = resuming.get(client);
    if (sent === undefined) return source;
    return Readable.from(
      (async function* (): AsyncGenerator<QueuedPacket> {
        for await (const packet of source as AsyncIterable<QueuedPacket>) {
          const key = queueKey(packet);
          if (key !== null) sent.add(key);
          yield packet;
        }
      })(),
    );
  };
}

/**
 * Holds back what aedes sends (QoS > 0) a client of a persistent session until the messages queued
 * for it have been sent (aedes emits "connected" on the client then), and sends the held ones
 * after them, one at a time and in order. Before its CONNECT is read (clean not known yet) nothing
 * is sent to a client; a clean session has no queue and is not held.
 */
function orderedResume(client: Client, socket: Socket, resuming: Resuming): void {
  const c = client as unknown as { deliverQoS: Deliver; clean?: boolean };
  const deliver = c.deliverQoS;
  const sent = new Set<string>();
  resuming.set(client, sent);
  let held: QueuedPacket[] | null = [];
  const stop = (): void => {
    held = null;
    resuming.delete(client);
  };
  const releaseNext = (): void => {
    for (;;) {
      if (held === null) return;
      const packet = held.shift();
      if (packet === undefined) {
        stop();
        return;
      }
      const key = queueKey(packet);
      // Sent by the resume already (it was queued before the queue was read).
      if (key !== null && sent.has(key)) continue;
      deliver(packet, releaseNext);
      return;
    }
  };
  c.deliverQoS = (packet, done) => {
    if (held === null || c.clean !== false) {
      deliver(packet, done);
      return;
    }
    held.push(packet);
    // What a persistent session is sent is in its queue before this: the publisher need not wait.
    setImmediate(done);
  };
  client.once("connected", releaseNext);
  // Connection gone (or the CONNECT refused): what was held stays in the session's queue.
  socket.once("close", stop);
}

/** Stores each topic's retained messages one at a time, newest (broker counter) last. */
function orderedRetain(aedes: Aedes): void {
  type Retained = QueuedPacket & { topic: string };
  const persistence = (aedes as unknown as { persistence: { storeRetained(packet: Retained): Promise<void> } }).persistence;
  const storeRetained = persistence.storeRetained.bind(persistence);
  const writing = new Map<string, { counter: number; done: Promise<void> }>();
  persistence.storeRetained = (packet: Retained): Promise<void> => {
    const counter = packet.brokerCounter ?? 0;
    const before = writing.get(packet.topic);
    if (before !== undefined && counter < before.counter) return Promise.resolve();
    const result = (before?.done ?? Promise.resolve()).then(() => storeRetained(packet));
    // (Kept per topic, like the retained message itself: a packet held up in an asynchronous
    // authorizePublish may come much later.)
    writing.set(packet.topic, { counter, done: result.then(noop, noop) });
    return result;
  };
}

function noop(): void {}

/**
 * The next broker id of a data directory (held by this broker: its LevelDB is open): generation n
 * sorts after generation n - 1 (see the head of this file).
 */
function nextBrokerId(dir: string): string {
  const file = join(dir, "generation");
  let generation = 0;
  try {
    generation = Number.parseInt(readFileSync(file, "utf8"), 10);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOENT") throw new EmbeddedBrokerError(`embedded broker: cannot read ${file}: ${(e as Error).message}`);
  }
  if (!Number.isSafeInteger(generation) || generation < 0) throw new EmbeddedBrokerError(`embedded broker: ${file} does not hold a generation number`);
  generation++;
  writeFileSync(file, `${generation}\n`);
  return `pollkit-${String(generation).padStart(12, "0")}-${randomUUID().slice(0, 8)}`;
}

/** Opens the LevelDB store of `dir`; a clear error when another broker holds it. */
async function openPersistence(dir: string): Promise<LevelPersistence> {
  mkdirSync(dir, { recursive: true });
  const db = new ClassicLevel(dir);
  try {
    await db.open();
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const code = (e as { code?: string }).code;
    if (code === "LEVEL_LOCKED" || cause?.code === "LEVEL_LOCKED") {
      throw new EmbeddedBrokerError(`embedded broker: ${dir} is in use by another broker (its LevelDB is locked)`);
    }
    throw new EmbeddedBrokerError(`embedded broker: cannot open the data directory ${dir}: ${cause?.message ?? (e as Error).message}`);
  }
  return aedesPersistenceLevel(db);
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? "127.0.0.1";
  // Deliveries in flight are not capped (aedes's default caps them at 100 and queues the rest in
  // mqemitter, whose queue is drained by recursion: a backlog of thousands, e.g. 10,000 devices'
  // statuses while the console holds its acknowledgements, overflows the stack and kills the
  // broker). Backpressure stays with TCP and each client's in-flight window.
  const aedesOptions: AedesOptions = { concurrency: 0, ...options.aedes };
  let persistence: LevelPersistence | null = null;
  if (options.dataDir !== undefined) {
    if (aedesOptions.persistence !== undefined) throw new EmbeddedBrokerError("embedded broker: give dataDir or aedes.persistence, not both");
    persistence = await openPersistence(options.dataDir);
    aedesOptions.persistence = persistence;
    try {
      aedesOptions.id ??= nextBrokerId(options.dataDir);
    } catch (e) {
      await persistence.destroy();
      throw e;
    }
  }
  let aedes: Aedes;
  try {
    aedes = await Aedes.createBroker(aedesOptions);
  } catch (e) {
    await persistence?.destroy();
    throw e;
  }
  let closing: Promise<void> | null = null;
  // aedes emits "error" when its persistence fails (its typings leave that event out); unheard, it
  // would end the process.
  (aedes as unknown as EventEmitter).on("error", (e: Error) => {
    if (closing !== null) return;
    if (options.onError) options.onError(e);
    else process.emitWarning(`embedded broker: ${e.message}`);
  });
  const resuming: Resuming = new WeakMap();
  tapQueue(aedes, resuming);
  orderedRetain(aedes);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const client = aedes.handle(socket);
    if (persistence !== null) noDedupe(client);
    orderedResume(client, socket, resuming);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await persistence?.destroy();
    throw e;
  }
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("embedded broker: no TCP address");
  const port = address.port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `mqtt://${urlHost}:${port}`,
    port,
    aedes,
    dataDir: options.dataDir ?? null,
    close(): Promise<void> {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await serverClosed;
        // After aedes: what it was writing completes or fails (then it never acknowledged it).
        await persistence?.destroy();
      })();
      return closing;
    },
  };
}
