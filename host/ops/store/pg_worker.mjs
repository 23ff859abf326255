// The worker thread behind PgStore (pg_store.ts): it owns the `pg` clients and runs each OpsStore
// call as SQL, while the calling thread waits for the answer (synckit: Atomics.wait on a shared
// counter). Plain .mjs so it starts without a TypeScript loader. One worker serves every PgStore of
// the thread that made it (synckit keeps one worker per file); each store is a numbered handle here
// with its own client, so their transactions stay apart.
//
// Answers are already in the OpsStore shapes (StoredRecord, DeviceState, ...): bytes as exact-size
// Uint8Array copies (a `pg` Buffer may be a view into an 8 KB pool, which postMessage would copy
// whole), int8 columns as numbers (every value stored fits in 2^53: seqs are uint32, times are ms).
//
// Errors keep PostgreSQL's SQLSTATE in `code` (40P01 deadlock, 40001 serialization: PgStore retries
// the transaction) and say which call failed.

import { runAsWorker } from "synckit";

let pgModule = null;
async function pg() {
  if (pgModule === null) {
    try {
      pgModule = (await import("pg")).default;
    } catch (e) {
      throw new Error(`the npm package "pg" cannot be loaded: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return pgModule;
}

const SCHEMA_LOCK = 0x706f6c6c; // "poll": advisory lock so consoles starting together create the schema once

// Text keys use the "C" collation: byte order, as SQLite sorts, whatever the database's locale.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS devices (
  device_id text COLLATE "C" PRIMARY KEY,
  public_key_hex text NOT NULL,
  role text NOT NULL,
  governorate text NOT NULL,
  office text NOT NULL,
  station_id text COLLATE "C" NOT NULL,
  site text NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
  device_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  prev_seq bigint NOT NULL,
  time_ms bigint NOT NULL,
  kind integer NOT NULL,
  bytes bytea NOT NULL,
  received_ms bigint NOT NULL,
  site text NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE INDEX IF NOT EXISTS records_received ON records (received_ms);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, received_ms);
CREATE INDEX IF NOT EXISTS records_kind_device ON records (kind, device_id, seq);
CREATE TABLE IF NOT EXISTS health (
  id bigserial PRIMARY KEY,
  device_id text COLLATE "C" NOT NULL,
  received_ms bigint NOT NULL,
  site text NOT NULL,
  health jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS health_device_time ON health (device_id, received_ms);
CREATE TABLE IF NOT EXISTS device_state (
  device_id text COLLATE "C" PRIMARY KEY,
  online boolean NOT NULL DEFAULT false,
  last_seen_ms bigint NOT NULL DEFAULT 0,
  firmware_version text NOT NULL DEFAULT '',
  records bigint NOT NULL DEFAULT 0,
  chain_top bigint NOT NULL DEFAULT 0,
  last_health jsonb,
  last_health_ms bigint
);
CREATE TABLE IF NOT EXISTS quarantine (
  id bigserial PRIMARY KEY,
  received_ms bigint NOT NULL,
  topic text NOT NULL,
  device_id text COLLATE "C" NOT NULL,
  reason text COLLATE "C" NOT NULL,
  detail text NOT NULL,
  payload bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (reason, id);
CREATE TABLE IF NOT EXISTS elections (
  election_id text COLLATE "C" NOT NULL,
  station_id text COLLATE "C" NOT NULL,
  sha256 text NOT NULL,
  definition bytea NOT NULL,
  artifact bytea,
  signature_checked boolean NOT NULL,
  version bigint NOT NULL,
  imported_ms bigint NOT NULL,
  source text NOT NULL,
  PRIMARY KEY (election_id, station_id)
);
`;

const ROLES = ["verification", "result", "unknown"];

/** PostgreSQL text cannot hold NUL; quarantine details come from the outside. */
function text(s) {
  const v = String(s);
  return v.includes("\u0000") ? v.replace(/\u0000/g, "\uFFFD") : v;
}

function bytea(u) {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** An exact-size copy (never a view into pg's pool). */
function u8(b) {
  return new Uint8Array(b);
}

/** SQLite's LIMIT: a negative or missing limit is no limit (PostgreSQL: LIMIT NULL). */
function limitOf(n) {
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? Math.floor(n) : null;
}

function intKinds(kinds) {
  return kinds.filter((k) => Number.isInteger(k));
}

function deviceFromRow(r) {
  return {
    deviceId: r.device_id,
    publicKeyHex: r.public_key_hex,
    role: ROLES.includes(r.role) ? r.role : "unknown",
    governorate: r.governorate,
    office: r.office,
    stationId: r.station_id,
    site: r.site,
  };
}

function recordFromRow(r) {
  return {
    deviceId: r.device_id,
    seq: r.seq,
    prevSeq: r.prev_seq,
    timeMs: r.time_ms,
    kind: r.kind,
    bytes: u8(r.bytes),
    receivedMs: r.received_ms,
    site: r.site,
  };
}

/** Keeps the last of each key (what sequential INSERT OR REPLACE / upserts leave in SQLite). */
function lastPerKey(list, key) {
  const m = new Map();
  for (const x of list) {
    const k = key(x);
    m.delete(k);
    m.set(k, x);
  }
  return [...m.values()];
}

/** Is the connection unusable after this error? (not a statement's own SQL error) */
function connectionLost(e) {
  const code = e && typeof e.code === "string" ? e.code : "";
  if (!/^[0-9A-Z]{5}$/.test(code)) return true; // ECONNRESET, "Connection terminated", ...
  return code.startsWith("08") || code.startsWith("57P"); // connection exception, admin shutdown
}

// --- connections ----------------------------------------------------------------------------------

const conns = new Map();
let nextHandle = 1;

async function connect(conn) {
  const { Client, types } = await pg();
  const client = new Client({
    connectionString: conn.url,
    application_name: conn.applicationName,
    connectionTimeoutMillis: conn.connectTimeoutMs,
    // A schema of its own: every statement of the session finds the tables there.
    ...(conn.schema ? { options: `-c search_path=${conn.schema}` } : {}),
    types: {
      getTypeParser(oid, format) {
        if (oid === 20 && format !== "binary") return (v) => Number(v); // int8
        return types.getTypeParser(oid, format);
      },
    },
  });
  // An idle connection that breaks emits "error": remember it, reconnect on the next call.
  client.on("error", (e) => {
    conn.broken = e;
  });
  client.on("end", () => {
    if (conn.client === client && !conn.broken) conn.broken = new Error("the server closed the connection");
  });
  try {
    await client.connect();
  } catch (e) {
    client.end().catch(() => {});
    throw e;
  }
  conn.client = client;
  conn.broken = null;
}

/**
 * One statement. With a `name` it is a prepared statement on this connection (parsed and planned
 * once: the hot calls take about half the time of an unnamed query); names go with fixed SQL only.
 */
async function q(conn, sql, params, name) {
  try {
    return await conn.client.query(name ? { name, text: sql, values: params } : { text: sql, values: params });
  } catch (e) {
    if (connectionLost(e)) conn.broken = e;
    throw e;
  }
}

// --- device state: applied once per transaction, locks in one order --------------------------------
//
// The device_state rows are what consoles sharing a database contend for (every batch touches the
// state of its devices). Within a transaction the calls only note their effect on the states
// (conn.pending: new records per device, the newest health sample, online/offline); flushState
// applies all of it just before COMMIT: it locks every touched row in one statement, in device id
// order, then updates them in at most three statements. Two consoles' transactions therefore never
// deadlock on state rows, and hold their locks only for the end of the transaction. The chain top is
// computed after the lock, so it sees every record another console committed before.

function pendingOf(conn) {
  conn.pending ??= { records: new Map(), health: new Map(), online: new Map() };
  return conn.pending;
}

function clonePending(p) {
  if (!p) return null;
  const copy = (m) => new Map([...m].map(([k, v]) => [k, { ...v }]));
  return { records: copy(p.records), health: copy(p.health), online: copy(p.online) };
}

async function flushState(conn) {
  const p = conn.pending;
  conn.pending = null;
  if (!p) return;
  const ids = [...new Set([...p.records.keys(), ...p.health.keys(), ...p.online.keys()])];
  if (ids.length === 0) return;
  await q(
    conn,
    `INSERT INTO device_state (device_id) SELECT d FROM unnest($1::text[]) AS d ORDER BY d
     ON CONFLICT (device_id) DO UPDATE SET device_id = excluded.device_id`,
    [ids],
    "lock_states",
  );
  if (p.records.size > 0) {
    // Counts, last seen, and the chain top: from the stored top, follow the next record whose
    // prev_seq <= top (the SQLite store's loop), over the new records and those stored earlier.
    const rid = [...p.records.keys()];
    await q(
      conn,
      `WITH RECURSIVE s AS (
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS s(device_id, n, last_seen)
       ), chain(device_id, top) AS (
         SELECT d.device_id, d.chain_top FROM device_state d JOIN s ON s.device_id = d.device_id
         UNION ALL
         SELECT c.device_id, nx.seq FROM chain c CROSS JOIN LATERAL (
           SELECT r.seq FROM records r
           WHERE r.device_id = c.device_id AND r.seq > c.top AND r.prev_seq <= c.top
           ORDER BY r.seq LIMIT 1
         ) nx
       ), tops AS (
         SELECT device_id, max(top) AS top FROM chain GROUP BY device_id
       )
       UPDATE device_state d
       SET records = d.records + s.n, chain_top = t.top, last_seen_ms = greatest(d.last_seen_ms, s.last_seen)
       FROM s JOIN tops t ON t.device_id = s.device_id
       WHERE d.device_id = s.device_id`,
      [rid, rid.map((id) => p.records.get(id).n), rid.map((id) => p.records.get(id).last)],
      "advance_chains",
    );
  }
  if (p.health.size > 0) {
    // The device's latest health by receive time (not by arrival), and its last seen time.
    const latest = [...p.health.values()];
    await q(
      conn,
      `UPDATE device_state st SET
         last_health = x.h, last_health_ms = x.r, last_seen_ms = greatest(st.last_seen_ms, x.r)
       FROM unnest($1::text[], $2::jsonb[], $3::bigint[]) AS x(d, h, r)
       WHERE st.device_id = x.d AND (st.last_health_ms IS NULL OR st.last_health_ms <= x.r)`,
      [latest.map((s) => text(s.deviceId)), latest.map((s) => text(JSON.stringify(s))), latest.map((s) => s.receivedMs)],
      "latest_health",
    );
  }
  if (p.online.size > 0) {
    const oid = [...p.online.keys()];
    const v = oid.map((id) => p.online.get(id));
    await q(
      conn,
      `UPDATE device_state st SET online = x.o, last_seen_ms = greatest(st.last_seen_ms, x.at), firmware_version = coalesce(x.fw, st.firmware_version)
       FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::text[]) AS x(d, o, at, fw)
       WHERE st.device_id = x.d`,
      [oid, v.map((o) => o.online), v.map((o) => o.atMs), v.map((o) => o.fw)],
      "set_online_many",
    );
  }
}

/** One transaction per call, or part of the caller's (PgStore.transaction): then state waits for its commit. */
async function tx(conn, fn) {
  if (conn.depth > 0) return fn();
  await q(conn, "BEGIN");
  try {
    const out = await fn();
    await flushState(conn);
    await q(conn, "COMMIT");
    return out;
  } catch (e) {
    conn.pending = null;
    if (!conn.broken) await conn.client.query("ROLLBACK").catch(() => {});
    throw e;
  }
}

// --- the OpsStore methods ---------------------------------------------------------------------------

const methods = {
  async upsertDevices(conn, devices) {
    if (devices.length === 0) return;
    const list = lastPerKey(devices, (d) => d.deviceId);
    const col = (f) => list.map((d) => text(f(d)));
    await tx(conn, async () => {
      await q(
        conn,
        `INSERT INTO devices (device_id, public_key_hex, role, governorate, office, station_id, site)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (device_id) DO UPDATE SET public_key_hex = excluded.public_key_hex, role = excluded.role,
           governorate = excluded.governorate, office = excluded.office, station_id = excluded.station_id, site = excluded.site`,
        [col((d) => d.deviceId), col((d) => d.publicKeyHex), col((d) => d.role), col((d) => d.governorate), col((d) => d.office), col((d) => d.stationId), col((d) => d.site)],
        "upsert_devices",
      );
      await q(conn, "INSERT INTO device_state (device_id) SELECT d FROM unnest($1::text[]) AS d ORDER BY d ON CONFLICT DO NOTHING", [col((d) => d.deviceId)], "ensure_states");
    });
  },

  async device(conn, deviceId) {
    const r = await q(conn, "SELECT * FROM devices WHERE device_id = $1", [text(deviceId)], "device");
    return r.rows.length ? deviceFromRow(r.rows[0]) : null;
  },

  async devices(conn) {
    return (await q(conn, "SELECT * FROM devices ORDER BY device_id")).rows.map(deviceFromRow);
  },

  async putRecords(conn, records) {
    if (records.length === 0) return { inserted: 0, duplicates: 0 };
    return tx(conn, async () => {
      // All rows in one statement; (device, seq) already stored (or twice in this call: the first
      // stays) is skipped and counted as a duplicate. The devices' counts and chain tops follow in
      // flushState, before COMMIT.
      const ins = await q(
        conn,
        `INSERT INTO records (device_id, seq, prev_seq, time_ms, kind, bytes, received_ms, site)
         SELECT d, s, p, t, k, b, r, si
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::integer[], $6::bytea[], $7::bigint[], $8::text[])
           WITH ORDINALITY AS x(d, s, p, t, k, b, r, si, n)
         ORDER BY n
         ON CONFLICT (device_id, seq) DO NOTHING
         RETURNING device_id, received_ms`,
        [
          records.map((r) => text(r.deviceId)),
          records.map((r) => r.seq),
          records.map((r) => r.prevSeq),
          records.map((r) => r.timeMs),
          records.map((r) => r.kind),
          records.map((r) => bytea(r.bytes)),
          records.map((r) => r.receivedMs),
          records.map((r) => text(r.site)),
        ],
        "insert_records",
      );
      const inserted = ins.rows.length;
      const per = pendingOf(conn).records;
      for (const row of ins.rows) {
        const e = per.get(row.device_id);
        if (e) {
          e.n++;
          if (row.received_ms > e.last) e.last = row.received_ms;
        } else per.set(row.device_id, { n: 1, last: Math.max(0, row.received_ms) });
      }
      return { inserted, duplicates: records.length - inserted };
    });
  },

  async recordBytes(conn, deviceId, seq) {
    const r = await q(conn, "SELECT bytes FROM records WHERE device_id = $1 AND seq = $2", [text(deviceId), seq], "record_bytes");
    return r.rows.length ? u8(r.rows[0].bytes) : null;
  },

  async maxSeq(conn, deviceId) {
    const r = await q(conn, "SELECT max(seq) AS m FROM records WHERE device_id = $1", [text(deviceId)], "max_seq");
    return r.rows[0].m ?? 0;
  },

  async records(conn, filter) {
    const where = [];
    const args = [];
    if (filter.deviceId !== undefined) {
      args.push(text(filter.deviceId));
      where.push(`device_id = $${args.length}`);
    }
    if (filter.kind !== undefined) {
      args.push(filter.kind);
      where.push(`kind = $${args.length}`);
    }
    if (filter.sinceMs !== undefined) {
      args.push(filter.sinceMs);
      where.push(`received_ms >= $${args.length}`);
    }
    const order = filter.deviceId !== undefined ? "seq" : "received_ms, device_id, seq";
    let sql = `SELECT * FROM records${where.length ? " WHERE " + where.join(" AND ") : ""} ORDER BY ${order}`;
    if (filter.limit !== undefined) {
      args.push(limitOf(filter.limit));
      sql += ` LIMIT $${args.length}`;
    }
    return (await q(conn, sql, args)).rows.map(recordFromRow);
  },

  async latestRecordPerDevice(conn, kinds, deviceIds) {
    const list = intKinds(kinds);
    if (list.length === 0) return [];
    if (deviceIds !== null) {
      // Each asked device, newest first through the primary key, in the order asked.
      const r = await q(
        conn,
        `SELECT r.* FROM unnest($1::text[]) WITH ORDINALITY AS a(device_id, n)
         CROSS JOIN LATERAL (
           SELECT * FROM records r WHERE r.device_id = a.device_id AND r.kind = ANY($2::integer[]) ORDER BY r.seq DESC LIMIT 1
         ) r
         ORDER BY a.n`,
        [deviceIds.map(text), list],
        "latest_of_devices",
      );
      return r.rows.map(recordFromRow);
    }
    const r = await q(conn, "SELECT DISTINCT ON (device_id) * FROM records WHERE kind = ANY($1::integer[]) ORDER BY device_id, seq DESC", [list]);
    return r.rows.map(recordFromRow);
  },

  async recordsAfter(conn, deviceId, afterSeq, kinds) {
    const list = intKinds(kinds);
    if (list.length === 0) return [];
    const r = await q(conn, "SELECT * FROM records WHERE device_id = $1 AND seq > $2 AND kind = ANY($3::integer[]) ORDER BY seq", [text(deviceId), afterSeq, list], "records_after");
    return r.rows.map(recordFromRow);
  },

  async putElections(conn, elections) {
    if (elections.length === 0) return;
    const list = lastPerKey(elections, (e) => `${e.electionId}\u0000${e.stationId}`);
    await q(
      conn,
      `INSERT INTO elections (election_id, station_id, sha256, definition, artifact, signature_checked, version, imported_ms, source)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::boolean[], $7::bigint[], $8::bigint[], $9::text[])
       ON CONFLICT (election_id, station_id) DO UPDATE SET sha256 = excluded.sha256, definition = excluded.definition,
         artifact = excluded.artifact, signature_checked = excluded.signature_checked, version = excluded.version,
         imported_ms = excluded.imported_ms, source = excluded.source`,
      [
        list.map((e) => text(e.electionId)),
        list.map((e) => text(e.stationId)),
        list.map((e) => text(e.sha256)),
        list.map((e) => bytea(e.definition)),
        list.map((e) => (e.artifact ? bytea(e.artifact) : null)),
        list.map((e) => Boolean(e.signatureChecked)),
        list.map((e) => e.version),
        list.map((e) => e.importedMs),
        list.map((e) => text(e.source)),
      ],
      "put_elections",
    );
  },

  async elections(conn) {
    const r = await q(conn, "SELECT * FROM elections ORDER BY election_id, station_id");
    return r.rows.map((e) => ({
      electionId: e.election_id,
      stationId: e.station_id,
      sha256: e.sha256,
      definition: u8(e.definition),
      artifact: e.artifact ? u8(e.artifact) : null,
      signatureChecked: e.signature_checked,
      version: e.version,
      importedMs: e.imported_ms,
      source: e.source,
    }));
  },

  async putHealth(conn, samples) {
    if (samples.length === 0) return;
    await tx(conn, async () => {
      await q(
        conn,
        `INSERT INTO health (device_id, received_ms, site, health)
         SELECT d, r, s, h FROM unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS x(d, r, s, h, n) ORDER BY n`,
        [samples.map((s) => text(s.deviceId)), samples.map((s) => s.receivedMs), samples.map((s) => text(s.site)), samples.map((s) => text(JSON.stringify(s.health)))],
        "insert_health",
      );
      // Per device, the newest sample (the later one on a tie, as sequential updates do).
      const newest = pendingOf(conn).health;
      for (const s of samples) {
        const id = text(s.deviceId);
        const cur = newest.get(id);
        if (!cur || s.receivedMs >= cur.receivedMs) newest.set(id, s);
      }
    });
  },

  async healthHistory(conn, deviceId, sinceMs, limit) {
    const r = await q(
      conn,
      "SELECT device_id, received_ms, site, health FROM health WHERE device_id = $1 AND received_ms >= $2 ORDER BY received_ms, id LIMIT $3",
      [text(deviceId), sinceMs, limitOf(limit)],
      "health_history",
    );
    return r.rows.map((h) => ({ deviceId: h.device_id, receivedMs: h.received_ms, site: h.site, health: h.health }));
  },

  async setOnline(conn, deviceId, online, atMs, firmwareVersion) {
    const fw = firmwareVersion === undefined || firmwareVersion === null ? null : text(firmwareVersion);
    if (conn.depth > 0) {
      // In a transaction: noted, applied with the other state changes before COMMIT.
      const m = pendingOf(conn).online;
      const id = text(deviceId);
      const cur = m.get(id);
      m.set(id, { online: Boolean(online), atMs: cur ? Math.max(cur.atMs, atMs) : atMs, fw: fw ?? (cur ? cur.fw : null) });
      return;
    }
    await q(
      conn,
      `INSERT INTO device_state AS st (device_id, online, last_seen_ms, firmware_version) VALUES ($1, $2, greatest($3::bigint, 0), coalesce($4::text, ''))
       ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, last_seen_ms = greatest(st.last_seen_ms, $3::bigint),
         firmware_version = CASE WHEN $4::text IS NULL THEN st.firmware_version ELSE excluded.firmware_version END`,
      [text(deviceId), Boolean(online), atMs, fw],
      "set_online",
    );
  },

  async deviceStates(conn) {
    if (conn.pending) await flushState(conn); // read this transaction's own changes
    const r = await q(conn, "SELECT * FROM device_state ORDER BY device_id");
    return r.rows.map((s) => ({
      deviceId: s.device_id,
      online: s.online,
      lastSeenMs: s.last_seen_ms,
      lastHealth: s.last_health ?? null,
      firmwareVersion: s.firmware_version,
      records: s.records,
      chainTop: s.chain_top,
    }));
  },

  async quarantine(conn, entries) {
    if (entries.length === 0) return;
    await q(
      conn,
      `INSERT INTO quarantine (received_ms, topic, device_id, reason, detail, payload)
       SELECT r, t, d, re, de, p FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
         WITH ORDINALITY AS x(r, t, d, re, de, p, n)
       ORDER BY n`,
      [
        entries.map((e) => e.receivedMs),
        entries.map((e) => text(e.topic)),
        entries.map((e) => text(e.deviceId)),
        entries.map((e) => text(e.reason)),
        entries.map((e) => text(e.detail)),
        entries.map((e) => bytea(e.payload)),
      ],
      "insert_quarantine",
    );
  },

  async quarantined(conn, filter) {
    const limit = limitOf(filter.limit);
    const r =
      filter.reason !== undefined
        ? await q(conn, "SELECT received_ms, topic, device_id, reason, detail, payload FROM quarantine WHERE reason = $1 ORDER BY id LIMIT $2", [text(filter.reason), limit], "quarantined_reason")
        : await q(conn, "SELECT received_ms, topic, device_id, reason, detail, payload FROM quarantine ORDER BY id LIMIT $1", [limit], "quarantined");
    return r.rows.map((e) => ({ receivedMs: e.received_ms, topic: e.topic, deviceId: e.device_id, reason: e.reason, detail: e.detail, payload: u8(e.payload) }));
  },

  async quarantineCounts(conn) {
    const out = {};
    for (const r of (await q(conn, "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason")).rows) out[r.reason] = r.n;
    return out;
  },
};

// --- transactions ---------------------------------------------------------------------------------

async function begin(conn) {
  // A nested transaction is a savepoint, as better-sqlite3 does it; the state changes noted so far
  // are kept to return to.
  if (conn.depth === 0) {
    conn.pending = null;
    conn.saved = [];
    await q(conn, "BEGIN");
  } else {
    await q(conn, `SAVEPOINT pollkit_${conn.depth}`);
    conn.saved.push(clonePending(conn.pending));
  }
  conn.depth++;
}

async function commit(conn) {
  if (conn.depth === 0) throw new Error("commit without a transaction");
  conn.depth--;
  if (conn.broken) {
    conn.pending = null;
    throw new Error(`the connection was lost inside the transaction: ${conn.broken.message}`);
  }
  if (conn.depth > 0) {
    conn.saved.pop();
    await q(conn, `RELEASE SAVEPOINT pollkit_${conn.depth}`);
    return;
  }
  try {
    await flushState(conn);
  } catch (e) {
    conn.pending = null;
    if (!conn.broken) await conn.client.query("ROLLBACK").catch(() => {});
    throw e;
  }
  const r = await q(conn, "COMMIT");
  // PostgreSQL answers COMMIT of a transaction that an error aborted with ROLLBACK, not an error.
  if (r.command === "ROLLBACK") throw Object.assign(new Error("the transaction was rolled back: a statement in it failed earlier"), { code: "25P02" });
}

async function rollback(conn) {
  if (conn.depth === 0) return;
  conn.depth--;
  if (conn.depth === 0) conn.pending = null;
  else conn.pending = conn.saved.pop() ?? null;
  if (conn.broken) return; // the server dropped the transaction with the connection
  if (conn.depth > 0) {
    await q(conn, `ROLLBACK TO SAVEPOINT pollkit_${conn.depth}`);
    await q(conn, `RELEASE SAVEPOINT pollkit_${conn.depth}`);
  } else await q(conn, "ROLLBACK");
}

// --- the entry point ------------------------------------------------------------------------------

async function open(url, options) {
  const schema = options.schema ?? null;
  if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema ${JSON.stringify(schema)}: use lower-case letters, digits and _`);
  const conn = {
    schema,
    url,
    applicationName: options.applicationName ?? "pollkit-ops",
    connectTimeoutMs: options.connectTimeoutMs ?? 10000,
    client: null,
    broken: null,
    depth: 0,
    /** State changes of the open transaction, applied before COMMIT (flushState). */
    pending: null,
    /** pending as it was at each open savepoint. */
    saved: [],
  };
  await connect(conn);
  try {
    await q(conn, "BEGIN");
    await q(conn, "SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
    if (schema) await q(conn, `CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await q(conn, SCHEMA);
    await q(conn, "COMMIT");
  } catch (e) {
    await conn.client.end().catch(() => {});
    throw e;
  }
  const handle = nextHandle++;
  conns.set(handle, conn);
  return handle;
}

async function close(conn, handle) {
  conns.delete(handle);
  const client = conn.client;
  conn.client = null;
  await client.end().catch(() => {});
}

function describe(op, e) {
  const inner = e instanceof Error ? e : new Error(String(e));
  const err = new Error(`PostgreSQL store ${op}: ${inner.message}`);
  for (const k of ["code", "detail", "hint", "constraint", "table", "column", "severity"]) {
    if (inner[k] !== undefined) err[k] = inner[k];
  }
  return err;
}

runAsWorker(async (op, handle, args) => {
  try {
    if (op === "open") return await open(args[0], args[1] ?? {});
    const conn = conns.get(handle);
    if (!conn) throw new Error("the store is closed");
    if (op === "close") return await close(conn, handle);
    if (conn.broken && conn.depth === 0) {
      const old = conn.client;
      conn.client = null;
      if (old) await old.end().catch(() => {});
      await connect(conn); // reconnect between transactions; throws if the server is still gone
    }
    if (op === "begin") return await begin(conn);
    if (op === "commit") return await commit(conn);
    if (op === "rollback") return await rollback(conn);
    const m = methods[op];
    if (!m) throw new Error(`unknown call ${op}`);
    if (conn.broken) throw new Error(`the connection was lost inside a transaction: ${conn.broken.message}`);
    return await m(conn, ...args);
  } catch (e) {
    throw describe(op, e);
  }
});
