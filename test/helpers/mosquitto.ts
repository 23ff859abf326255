// Mosquitto (the Debian package) as a separate broker for interoperability tests: a temporary
// config with one listener on 127.0.0.1 and a free port, anonymous access, no persistence unless
// asked. The process is killed when the test process exits, however it exits: an exit handler for
// normal exits and, for SIGKILL or a crash, a watchdog shell that holds a pipe from this process and
// kills the broker when the pipe closes.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface MosquittoOptions {
  /** 0 or absent: a free port. */
  port?: number;
  /** Keep sessions and queued QoS 1 messages across stop()/restart() (saved on SIGTERM). */
  persistence?: boolean;
  /** Extra lines for mosquitto.conf. */
  extraConfig?: string[];
}

export interface Mosquitto {
  url: string;
  port: number;
  /** The current broker process id (changes on restart). */
  readonly pid: number;
  /** Stops the broker (SIGTERM, SIGKILL after 3 s); the port is free afterwards. */
  stop(): Promise<void>;
  /** Starts it again on the same port; stop() first when it runs. */
  restart(): Promise<void>;
  /** Recent broker output (stderr), for failure messages. */
  log(): string;
}

export function mosquittoPath(): string {
  if (existsSync("/usr/sbin/mosquitto")) return "/usr/sbin/mosquitto";
  for (const d of (process.env.PATH ?? "").split(":")) {
    if (d && existsSync(join(d, "mosquitto"))) return join(d, "mosquitto");
  }
  throw new Error("mosquitto not found (apt-get install mosquitto)");
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const a = srv.address();
      const port = a !== null && typeof a === "object" ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
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

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHook = false;

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const bin = mosquittoPath();
  const port = options.port || (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "pollkit-mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  const lines = [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    // Run as root (as in CI containers), mosquitto would drop to the user "mosquitto", which
    // cannot write the persistence file in a private temp dir.
    "user root",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "log_type notice",
  ];
  if (options.persistence) {
    lines.push("persistence true", `persistence_location ${dir}/`, "autosave_interval 0");
  } else {
    lines.push("persistence false");
  }
  lines.push(...(options.extraConfig ?? []));
  writeFileSync(conf, lines.join("\n") + "\n");

  tempDirs.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const c of live) c.kill("SIGKILL");
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
    });
  }

  let child: ChildProcess | null = null;
  let watchdog: ChildProcess | null = null;
  let output = "";

  const start = async (): Promise<void> => {
    const c = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
    child = c;
    live.add(c);
    c.stderr?.setEncoding("utf8");
    c.stderr?.on("data", (s: string) => {
      output = (output + s).slice(-8000);
    });
    let exited = false;
    c.once("exit", () => {
      exited = true;
      live.delete(c);
    });
    c.unref();
    (c.stderr as unknown as Socket | null)?.unref();
    // The watchdog reads its stdin (a pipe from us) until EOF, i.e. until this process is gone.
    const w = spawn("/bin/sh", ["-c", 'read _ ; kill -9 "$0" 2>/dev/null', String(c.pid)], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    watchdog = w;
    live.add(w);
    w.once("exit", () => live.delete(w));
    w.unref();
    (w.stdin as unknown as Socket | null)?.unref();

    const deadline = Date.now() + 5000;
    for (;;) {
      if (exited) throw new Error(`mosquitto exited at start:\n${output}`);
      if (await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within 5 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const stop = async (): Promise<void> => {
    const c = child;
    const w = watchdog;
    child = null;
    watchdog = null;
    if (w && w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill("SIGTERM");
    const t = setTimeout(() => c.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(t);
  };

  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    get pid(): number {
      return child?.pid ?? -1;
    },
    stop: async () => {
      await stop();
    },
    restart: async () => {
      await stop();
      await start();
    },
    log: () => output,
  } satisfies Mosquitto;
}
