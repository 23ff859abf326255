// A throwaway PostgreSQL server for tests (the Debian package's binaries: postgresql-15, or any
// /usr/lib/postgresql/<version>/bin): initdb into a temp dir, the server on 127.0.0.1 and a free
// port with its unix socket in the same temp dir, trust authentication for the superuser
// "pollkit", and a fresh database per createDatabase(). stop() shuts it down and removes the dir.
//
// PostgreSQL refuses to run as root (CI containers run as root): then initdb and the server run as
// the Debian package's "postgres" user (or "nobody") and the temp dir is given to that user.
//
// The server is started in the foreground (the postgres binary, what `pg_ctl start` runs) so this
// process owns it and knows its pid: it is killed when the test process exits, however it exits: an
// exit handler for normal exits and, for SIGKILL or a crash, a watchdog shell that holds a pipe from
// this process and kills the server (and removes its dir) when the pipe closes.
//
// Durability is off (fsync, synchronous_commit, full_page_writes): a test server loses nothing it
// needs when it stops cleanly, and the tests run faster.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./mosquitto.ts";

export interface Postgres {
  /** postgres://pollkit@127.0.0.1:PORT/pollkit (the default database, created at start). */
  url: string;
  port: number;
  /** The unix socket directory (inside the temp dir). */
  socketDir: string;
  /** The server's version line, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
  version: string;
  /** The postmaster's process id. */
  readonly pid: number;
  /** Creates an empty database (createdb) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown (SIGINT; SIGQUIT after 5 s), then the temp dir is removed. */
  stop(): Promise<void>;
  /** Recent server output (stderr), for failure messages. */
  log(): string;
}

/** The directory holding initdb and postgres, or null with the reason. */
export function postgresBinDir(): { dir: string } | { missing: string } {
  const base = "/usr/lib/postgresql";
  const fromEnv = process.env.POLLKIT_PG_BIN;
  if (fromEnv) return existsSync(join(fromEnv, "postgres")) ? { dir: fromEnv } : { missing: `POLLKIT_PG_BIN=${fromEnv} has no postgres binary` };
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, "bin", "initdb")) && existsSync(join(base, v, "bin", "postgres")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length > 0) return { dir: join(base, versions[0], "bin") };
  }
  for (const d of (process.env.PATH ?? "").split(":")) {
    if (d && existsSync(join(d, "initdb")) && existsSync(join(d, "postgres"))) return { dir: d };
  }
  return { missing: "PostgreSQL server binaries not found (Debian: apt-get install postgresql; they land in /usr/lib/postgresql/<version>/bin)" };
}

/** For `test(..., { skip: postgresSkip() })`: false when a server can be started, else the reason. */
export function postgresSkip(): false | string {
  const b = postgresBinDir();
  if ("missing" in b) return b.missing;
  if (process.getuid?.() === 0 && runAsUser() === null) return "running as root and neither a 'postgres' nor a 'nobody' user exists to run the server as";
  return false;
}

/** As root: the uid/gid to run PostgreSQL as ("postgres" from the Debian package, else "nobody"). */
function runAsUser(): { uid: number; gid: number; name: string } | null {
  let passwd = "";
  try {
    passwd = readFileSync("/etc/passwd", "utf8");
  } catch {
    return null;
  }
  const users = new Map<string, { uid: number; gid: number }>();
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f.length >= 4) users.set(f[0], { uid: Number(f[2]), gid: Number(f[3]) });
  }
  for (const name of ["postgres", "nobody"]) {
    const u = users.get(name);
    if (u && u.uid !== 0) return { ...u, name };
  }
  return null;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s: Socket = connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Running processes and the signal that ends each at exit (SIGQUIT: the server's immediate shutdown). */
const live = new Map<ChildProcess, NodeJS.Signals>();
const tempDirs = new Set<string>();
let exitHook = false;

export const PG_SUPERUSER = "pollkit";

export async function startPostgres(): Promise<Postgres> {
  const bins = postgresBinDir();
  if ("missing" in bins) throw new Error(bins.missing);
  const bin = (name: string): string => join(bins.dir, name);
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? runAsUser() : null;
  if (asRoot && user === null) throw new Error("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as");
  const ids = user ? { uid: user.uid, gid: user.gid } : {};
  // Short path: the socket path (dir + "/.s.PGSQL.<port>") must fit in 107 bytes.
  const dir = mkdtempSync(join(tmpdir(), "pollkit-pg-"));
  tempDirs.add(dir);
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, "data");
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const [c, signal] of live) c.kill(signal);
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    });
  }

  const version = execFileSync(bin("postgres"), ["--version"], { encoding: "utf8" }).trim();
  const env = { ...process.env, LC_ALL: "C", LANG: "C", TZ: "UTC", PGTZ: "UTC" };
  try {
    execFileSync(bin("initdb"), ["-D", data, "-U", PG_SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], {
      ...ids,
      env,
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`initdb failed: ${err.stderr?.toString() || err.message}`);
  }

  const port = await freePort();
  const settings = [
    "listen_addresses=127.0.0.1",
    `port=${port}`,
    `unix_socket_directories=${dir}`,
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=50",
    "shared_buffers=32MB",
    "log_min_messages=warning",
    // Deadlocks between console instances are found after this long (the store retries).
    "deadlock_timeout=200ms",
  ];
  const child = spawn(bin("postgres"), ["-D", data, ...settings.flatMap((s) => ["-c", s])], { ...ids, env, cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  live.set(child, "SIGQUIT");
  let output = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (s: string) => {
    output = (output + s).slice(-8000);
  });
  let exited = false;
  child.once("exit", () => {
    exited = true;
    live.delete(child);
  });
  child.unref();
  (child.stderr as unknown as Socket | null)?.unref();
  // The watchdog reads its stdin (a pipe from us) until EOF, i.e. until this process is gone, then
  // shuts the server down at once (SIGQUIT) and removes its dir.
  const watchdog = spawn("/bin/sh", ["-c", 'read _ ; kill -QUIT "$0" 2>/dev/null; sleep 1; kill -9 "$0" 2>/dev/null; rm -rf "$1"', String(child.pid), dir], {
    stdio: ["pipe", "ignore", "ignore"],
  });
  watchdog.unref();
  (watchdog.stdin as unknown as Socket | null)?.unref();

  const stop = async (): Promise<void> => {
    if (watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill("SIGKILL");
    if (!exited) {
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGINT"); // fast shutdown: disconnects clients, no checkpoint wait for them
      const t = setTimeout(() => child.kill("SIGQUIT"), 5000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  };

  try {
    const deadline = Date.now() + 20000;
    for (;;) {
      if (exited) throw new Error(`postgres exited at start:\n${output}`);
      if (await canConnect(port)) break;
      if (Date.now() > deadline) throw new Error(`postgres did not listen on ${port} within 20 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const createDatabase = async (name: string): Promise<string> => {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)}: use [a-z_][a-z0-9_]*`);
    await new Promise<void>((resolve, reject) => {
      const c = spawn(bin("createdb"), ["-h", dir, "-p", String(port), "-U", PG_SUPERUSER, name], { env, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      c.stderr?.setEncoding("utf8");
      c.stderr?.on("data", (s: string) => (err += s));
      c.once("error", reject);
      c.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`createdb ${name} failed (${code}): ${err.trim()}`))));
    });
    return `postgres://${PG_SUPERUSER}@127.0.0.1:${port}/${name}`;
  };

  // Startup can still refuse connections for a moment after the port opens ("the database system
  // is starting up"): createdb retries until it works.
  const ready = Date.now() + 10000;
  for (;;) {
    try {
      await createDatabase("pollkit");
      break;
    } catch (e) {
      if (Date.now() > ready || exited) {
        await stop();
        throw new Error(`${(e as Error).message}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    url: `postgres://${PG_SUPERUSER}@127.0.0.1:${port}/pollkit`,
    port,
    socketDir: dir,
    version,
    get pid(): number {
      return child.pid ?? -1;
    },
    createDatabase,
    stop,
    log: () => output,
  };
}
