// `pollkit ops`: the operations console as one service: the store, the device registry, ingest
// from the broker (verified in worker threads), the dashboard and its JSON API, and the
// scheduled maintenance status reports.

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { SqliteOpsStore } from "./store/sqlite_store.ts";
import { PgStore } from "./store/pg_store.ts";
import type { OpsStore } from "./store/store.ts";
import { importRegistry } from "./registry/registry.ts";
import { Ingest } from "./ingest/ingest.ts";
import { startOpsWeb, type OpsWeb } from "./web/server.ts";
import { scheduleReports, type ReportSchedule } from "./reports/maintenance.ts";
import { commissionKeyHex, ElectionImportError, importElection } from "./election/election.ts";
import { RESULT_DEADLINE_MS } from "./views/stations.ts";

export interface OpsConfig {
  /**
   * `clientId`: the console's MQTT client id, the same from run to run, so that its session (its
   * subscription and the QoS 1 messages queued for it while it is away) persists at the broker.
   * From `mqtt.clientId`, else `pollkit-ops-<name>` (consoleClientId).
   */
  mqtt: { url: string; clientId: string; shared?: string; username?: string; password?: string };
  /** `path`: a SQLite file (the default store); `postgres`: a PostgreSQL URL (store/pg_store.ts). */
  store: { path: string } | { postgres: string };
  /** Provisioning file (JSON or CSV) imported at start; later imports add or update devices. */
  registry?: string;
  /** Election definitions (a file or a directory, see election/election.ts) imported at start. */
  election?: string;
  /** The commission's P-256 public key (X || Y hex): signed definitions must verify against it. */
  commissionKeyHex: string | null;
  /** `importToken` allows POST /api/elections with "Authorization: Bearer <token>". */
  web: { host: string; port: number; lang: "en" | "ar"; importToken: string | null };
  /** A station's result must arrive this long after its close (default 6 h), else "result overdue". */
  resultDeadlineMs: number;
  reports: { everyMs: number; outDir: string };
  /** Health report interval the fleet is configured with (for "silent" alerts). */
  healthIntervalMs: number;
}

export class OpsConfigError extends Error {}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The console's MQTT client id when the config names none: `pollkit-ops-<name>` with the config's
 * `name`, else with this host's name and a short hash of where this console keeps its data (the
 * store and the reports directory), so two consoles on one host sharing a stream differ, and one
 * console keeps its id across restarts. A console moved to another host (or a container given a
 * new host name) gets a new id and a new session: give it a `name`.
 */
export function consoleClientId(name: string | undefined, store: OpsConfig["store"], reportsDir: string): string {
  if (name !== undefined) return `pollkit-ops-${name}`;
  const where = "postgres" in store ? `postgres ${store.postgres}` : `sqlite ${store.path}`;
  const hash = createHash("sha256").update(`${where}\n${reportsDir}`).digest("hex").slice(0, 8);
  const host = hostname().replace(/[^A-Za-z0-9-]/g, "-").slice(0, 32) || "host";
  return `pollkit-ops-${host}-${hash}`;
}

export function parseOpsConfig(raw: unknown, baseDir: string): OpsConfig {
  if (typeof raw !== "object" || raw === null) throw new OpsConfigError("config must be a JSON object");
  const c = raw as Record<string, Record<string, unknown> | string | number | undefined>;
  const sect = (name: string): Record<string, unknown> => {
    const v = c[name];
    if (v === undefined) return {};
    if (typeof v !== "object" || v === null) throw new OpsConfigError(`${name} must be an object`);
    return v;
  };
  const rel = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const mqtt = sect("mqtt");
  const store = sect("store");
  const web = sect("web");
  const reports = sect("reports");
  if (typeof mqtt.url !== "string" || !/^(mqtts?|wss?):\/\//.test(mqtt.url)) throw new OpsConfigError("mqtt.url must be an mqtt://, mqtts://, ws:// or wss:// URL");
  if (store.postgres !== undefined) {
    if (store.path !== undefined) throw new OpsConfigError("store: give path (a SQLite file) or postgres (a PostgreSQL URL), not both");
    if (typeof store.postgres !== "string" || !/^postgres(ql)?:\/\/./.test(store.postgres)) {
      throw new OpsConfigError("store.postgres must be a postgres:// URL (postgres://user:password@host:5432/database)");
    }
  } else if (typeof store.path !== "string" || store.path === "") throw new OpsConfigError("store.path must name the SQLite file (or store.postgres a PostgreSQL URL)");
  const port = web.port ?? 8080;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) throw new OpsConfigError("web.port must be a port number");
  const lang = web.lang ?? "en";
  if (lang !== "en" && lang !== "ar") throw new OpsConfigError('web.lang must be "en" or "ar"');
  const everyMs = reports.everyMs ?? 3600000;
  if (c.name !== undefined && (typeof c.name !== "string" || !NAME.test(c.name))) {
    throw new OpsConfigError("name (this console's instance name) must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (mqtt.clientId !== undefined && (typeof mqtt.clientId !== "string" || !/^[\x21-\x7e]{1,128}$/.test(mqtt.clientId))) {
    throw new OpsConfigError("mqtt.clientId must be 1 to 128 printable ASCII characters without spaces");
  }
  let commissionKey: string | null = null;
  if (c.commissionKey !== undefined) {
    if (typeof c.commissionKey !== "string") throw new OpsConfigError("commissionKey must be the commission's public key in hex");
    try {
      commissionKey = commissionKeyHex(c.commissionKey);
    } catch (e) {
      throw new OpsConfigError(`commissionKey: ${(e as Error).message}`);
    }
  }
  const deadline = c.resultDeadlineMs ?? RESULT_DEADLINE_MS;
  if (typeof deadline !== "number" || !Number.isFinite(deadline) || deadline < 0) throw new OpsConfigError("resultDeadlineMs must be a number of milliseconds");
  if (web.importToken !== undefined && (typeof web.importToken !== "string" || web.importToken.length < 16)) {
    throw new OpsConfigError("web.importToken must be a string of at least 16 characters");
  }
  if (typeof everyMs !== "number" || everyMs < 1000) throw new OpsConfigError("reports.everyMs must be at least 1000");
  const storeConfig: OpsConfig["store"] = typeof store.postgres === "string" ? { postgres: store.postgres } : { path: rel(store.path as string) };
  const outDir = rel(typeof reports.outDir === "string" ? reports.outDir : "reports");
  return {
    mqtt: {
      url: mqtt.url,
      clientId: typeof mqtt.clientId === "string" ? mqtt.clientId : consoleClientId(c.name as string | undefined, storeConfig, outDir),
      shared: typeof mqtt.shared === "string" ? mqtt.shared : undefined,
      username: typeof mqtt.username === "string" ? mqtt.username : undefined,
      password: typeof mqtt.password === "string" ? mqtt.password : undefined,
    },
    store: storeConfig,
    registry: typeof c.registry === "string" ? rel(c.registry) : undefined,
    election: typeof c.election === "string" ? rel(c.election) : undefined,
    commissionKeyHex: commissionKey,
    web: { host: typeof web.host === "string" ? web.host : "127.0.0.1", port, lang, importToken: typeof web.importToken === "string" ? web.importToken : null },
    resultDeadlineMs: deadline,
    reports: { everyMs, outDir },
    healthIntervalMs: typeof c.healthIntervalMs === "number" ? c.healthIntervalMs : 60000,
  };
}

export function loadOpsConfig(path: string): OpsConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new OpsConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseOpsConfig(raw, dirname(resolve(path)));
}

export interface RunningOps {
  store: OpsStore;
  ingest: Ingest;
  web: OpsWeb;
  reports: ReportSchedule;
  url: string;
  stop(): Promise<void>;
}

/** The configured store: a SQLite file (its directory made if missing) or a PostgreSQL database. */
export function openOpsStore(config: OpsConfig["store"]): OpsStore {
  if ("postgres" in config) return new PgStore(config.postgres);
  mkdirSync(dirname(config.path), { recursive: true });
  return new SqliteOpsStore(config.path);
}

export async function startOps(config: OpsConfig): Promise<RunningOps> {
  mkdirSync(config.reports.outDir, { recursive: true });
  const store = openOpsStore(config.store);
  if (config.registry) importRegistry(store, config.registry);
  if (config.election) {
    try {
      importElection(store, config.election, { commissionKeyHex: config.commissionKeyHex });
    } catch (e) {
      store.close();
      if (e instanceof ElectionImportError) throw new OpsConfigError(`election: ${e.message}`);
      throw e;
    }
  }
  const ingest = new Ingest({
    url: config.mqtt.url,
    store,
    shared: config.mqtt.shared,
    // A persistent session: the broker queues for this console while it is away.
    clientId: config.mqtt.clientId,
    mqtt: { username: config.mqtt.username, password: config.mqtt.password },
    // Only a console that is the store's sole writer may trust its own memory of what is stored.
    soleWriter: !(config.mqtt.shared !== undefined || "postgres" in config.store),
  });
  const web = await startOpsWeb({
    store,
    ingest,
    host: config.web.host,
    port: config.web.port,
    lang: config.web.lang,
    alertOptions: { healthIntervalMs: config.healthIntervalMs },
    resultDeadlineMs: config.resultDeadlineMs,
    // A PostgreSQL database is there to be shared by several consoles.
    sharedStore: config.mqtt.shared !== undefined || "postgres" in config.store,
    commissionKeyHex: config.commissionKeyHex,
    importToken: config.web.importToken,
  });
  await ingest.start();
  const reports = scheduleReports({ store, everyMs: config.reports.everyMs, outDir: config.reports.outDir, lang: config.web.lang, alertOptions: { healthIntervalMs: config.healthIntervalMs } });
  return {
    store,
    ingest,
    web,
    reports,
    url: web.url,
    async stop() {
      reports.stop();
      await ingest.close();
      await web.close();
      store.close();
    },
  };
}
