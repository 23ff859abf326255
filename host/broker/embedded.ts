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
import type { EventEmitter } from "node:events";
import { mkdirSync } from "node:fs";
import { createServer, type Socket } from "node:net";
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
  const aedesOptions: AedesOptions = { ...options.aedes };
  let persistence: LevelPersistence | null = null;
  if (options.dataDir !== undefined) {
    if (aedesOptions.persistence !== undefined) throw new EmbeddedBrokerError("embedded broker: give dataDir or aedes.persistence, not both");
    persistence = await openPersistence(options.dataDir);
    aedesOptions.persistence = persistence;
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
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const client = aedes.handle(socket);
    if (persistence !== null) noDedupe(client);
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
