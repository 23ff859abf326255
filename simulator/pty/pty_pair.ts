// A pair of real pseudo-terminals joined by socat: the simulated device opens one end, the host
// agent opens the other with the real serialport bindings, exactly as it would open /dev/ttyACM0.
// Node side only.
//
//   host agent ── hostPath (/dev/pts/N, or the `link` symlink) ══ socat ══ devicePath ── simulator
//
// socat is started as
//   socat -d -d pty,rawer,b115200[,link=LINK] pty,rawer,b115200
// - `-d -d` makes socat log "N PTY is /dev/pts/N" for each address (first = host end, second =
//   device end) and "N starting data transfer loop" once both exist: we parse those from stderr.
// - `rawer` is cfmakeraw() plus echo off (the man page calls `raw` obsolete): no CR/LF mapping,
//   no echo, no XON/XOFF, no signal characters, no canonical line editing. The serialport bindings
//   set the same raw termios when they open an end, but socat's settings are what apply before
//   anybody opens it; without echo=0 the bytes that arrive in that window would be echoed straight
//   back to the sender.
// - `b115200` only makes the pty report a plausible speed (`rawer` alone leaves it at B0, the
//   "hang up" speed). A pty ignores speed: data moves as fast as the two processes copy it.
//   Use the link's `bytesPerSecond` throttle (serial_link.ts) to emulate a UART's pace.
// Not used: `wait-slave` (would block socat until the device opens its end, and then hold the
// host end back), `ignoreeof` (a pty end that nobody has open does not end socat; checked),
// `crnl` (the opposite of transparent).
//
// Unplug / replug (needs `link`): unplug() kills socat, which hangs up both ptys. The host's open
// port sees the same thing as a vanished ttyACM (serialport emits 'close' with a disconnected
// error) and the link symlink is removed, like /dev/serial/by-id/... disappearing. replug()
// starts a new socat with the same `link`: a host that reopens its configured path (the symlink)
// finds the device again, although the /dev/pts numbers may differ (that is why `link` is
// required). The device end is a new pty too: the simulator reopens `pair.devicePath` (see
// SerialByteLink.reopen, which keeps the firmware's ByteLink object and callbacks).
//
// Lifetime: close() kills socat and waits for it to exit. A process exit hook kills every socat
// still running, and where util-linux `setpriv` exists socat also gets PR_SET_PDEATHSIG=SIGTERM,
// so that a Node process killed by a signal does not leave socat behind either. The child
// process is unref'd while idle: a forgotten pair does not keep Node alive.

import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, lstatSync, readlinkSync, unlinkSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface PtyPairOptions {
  /** Symlink path created for the host end (stable across replug). Needed for unplug/replug. */
  link?: string;
  /** Receives socat's diagnostic lines and lifecycle notes. */
  log?: (line: string) => void;
  /** How long to wait for socat to create both ptys (ms). Default 5000. */
  startTimeoutMs?: number;
}

export interface PtyPair {
  /** The device end (/dev/pts/N): what the simulated device opens. Changes at replug. */
  readonly devicePath: string;
  /** What the host agent opens: the `link` symlink when given, else the host pty itself. */
  readonly hostPath: string;
  /** The host end's real /dev/pts/N. Changes at replug. */
  readonly hostPtsPath: string;
  /** socat's pid (changes at replug; -1 while unplugged or closed). */
  readonly pid: number;
  /** socat is running (false after unplug(), close(), or if socat died). */
  readonly plugged: boolean;
  /** Kills socat: both ends hang up and the link symlink goes away. Needs `link`. */
  unplug(): Promise<void>;
  /** Starts a new socat with the same link. Needs `link`; the pair must be unplugged. */
  replug(): Promise<void>;
  /** Kills socat (if running), waits for it to exit, removes the link. Idempotent. */
  close(): Promise<void>;
}

const SOCAT_PACKAGE_HINT =
  "socat is not installed: install the Debian package 'socat' (apt-get install socat), " +
  "or run scripts/setup.sh";
const PTY_OPTIONS = "pty,rawer,b115200";
const KILL_GRACE_MS = 2000;

/** Running socat processes, killed by the exit hook. */
const live = new Set<Running>();
let exitHookInstalled = false;

interface Running {
  child: ChildProcess;
  link: string | undefined;
  hostPts: string;
  devicePts: string;
  exited: Promise<void>;
  hasExited: boolean;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const r of live) {
      if (!r.hasExited) {
        try {
          r.child.kill("SIGTERM");
        } catch {
          // already gone
        }
      }
      removeLink(r.link, r.hostPts);
    }
    live.clear();
  });
}

function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(delimiter)) {
    if (dir === "") continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** Removes `link` if it is a symlink (to `target`, when given); never touches anything else. */
function removeLink(link: string | undefined, target?: string): void {
  if (link === undefined) return;
  try {
    if (!lstatSync(link).isSymbolicLink()) return;
    if (target !== undefined && target !== "" && readlinkSync(link) !== target) return;
    unlinkSync(link);
  } catch {
    // already gone
  }
}

function startSocat(link: string | undefined, log: (line: string) => void, timeoutMs: number): Promise<Running> {
  const socat = findExecutable("socat");
  if (socat === null) return Promise.reject(new Error(SOCAT_PACKAGE_HINT));
  if (link !== undefined) {
    try {
      if (!lstatSync(link).isSymbolicLink()) {
        return Promise.reject(new Error(`pty link ${link} exists and is not a symlink; refusing to replace it`));
      }
    } catch {
      // does not exist: fine
    }
  }
  const socatArgs = ["-d", "-d", link === undefined ? PTY_OPTIONS : `${PTY_OPTIONS},link=${link}`, PTY_OPTIONS];
  const setpriv = findExecutable("setpriv");
  const [cmd, args] =
    setpriv === null ? [socat, socatArgs] : [setpriv, ["--pdeathsig", "TERM", "--", socat, ...socatArgs]];

  return new Promise<Running>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    installExitHook();
    const ptys: string[] = [];
    let ready = false;
    let settled = false;
    let stderrText = "";
    let partial = "";
    let resolveExited!: () => void;
    const running: Running = {
      child,
      link,
      hostPts: "",
      devicePts: "",
      exited: new Promise<void>((r) => (resolveExited = r)),
      hasExited: false,
    };
    live.add(running);

    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!running.hasExited) child.kill("SIGKILL");
      removeLink(link, running.hostPts);
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(new Error(`socat did not create the ptys within ${timeoutMs} ms; stderr:\n${stderrText}`));
    }, timeoutMs);

    const onLine = (line: string): void => {
      log(`socat[${child.pid ?? "?"}]: ${line}`);
      if (!ready) {
        if (stderrText.length < 8000) stderrText += line + "\n";
        const m = / N PTY is (\S+)/.exec(line);
        if (m !== null) ptys.push(m[1]!);
        if (/ N starting data transfer loop/.test(line)) {
          if (ptys.length !== 2) {
            fail(new Error(`socat reported ${ptys.length} ptys instead of 2; stderr:\n${stderrText}`));
            return;
          }
          ready = true;
          settled = true;
          clearTimeout(timer);
          running.hostPts = ptys[0]!;
          running.devicePts = ptys[1]!;
          // Idle: keep reading stderr (so socat never blocks on it) but let Node exit.
          child.unref();
          unrefStream(child.stderr);
          resolve(running);
        }
      }
    };
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) if (line !== "") onLine(line);
    });
    child.on("error", (err: NodeJS.ErrnoException) => {
      // spawn failed (the executable vanished between the PATH check and the spawn)
      running.hasExited = true;
      live.delete(running);
      resolveExited();
      fail(err.code === "ENOENT" ? new Error(`${SOCAT_PACKAGE_HINT} (${err.message})`) : err);
    });
    child.on("exit", (code, signal) => {
      running.hasExited = true;
      live.delete(running);
      resolveExited();
      if (partial !== "") onLine(partial);
      partial = "";
      log(`socat[${child.pid ?? "?"}] exited (${signal ?? `code ${code}`})`);
      // socat leaves its link behind when it dies from a signal (or dies on its own).
      if (ready) removeLink(link, running.hostPts);
      if (!settled) {
        const hint = code === 127 ? `${SOCAT_PACKAGE_HINT}\n` : "";
        fail(new Error(`${hint}socat exited (${signal ?? `code ${code}`}) before the ptys were ready; stderr:\n${stderrText}`));
      }
    });
  });
}

function unrefStream(s: unknown): void {
  const u = s as { unref?: () => void } | null;
  if (u !== null && typeof u.unref === "function") u.unref();
}

function refStream(s: unknown): void {
  const u = s as { ref?: () => void } | null;
  if (u !== null && typeof u.ref === "function") u.ref();
}

/** Kills one socat (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
async function stopSocat(r: Running): Promise<void> {
  if (!r.hasExited) {
    // Keep the event loop alive while we wait, even though the child is unref'd when idle.
    r.child.ref();
    refStream(r.child.stderr);
    r.child.kill("SIGTERM");
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      r.exited,
      new Promise<void>((resolve) => {
        grace = setTimeout(() => {
          if (!r.hasExited) r.child.kill("SIGKILL");
          resolve();
        }, KILL_GRACE_MS);
      }),
    ]);
    clearTimeout(grace);
    await r.exited;
  }
  // socat leaves its link behind when it dies from a signal.
  removeLink(r.link, r.hostPts);
  live.delete(r);
}

/** Starts socat with two raw ptys; resolves once both exist (and the link, if asked for). */
export async function createPtyPair(options: PtyPairOptions = {}): Promise<PtyPair> {
  const link = options.link;
  const log = options.log ?? (() => {});
  const timeoutMs = options.startTimeoutMs ?? 5000;
  let current: Running | null = await startSocat(link, log, timeoutMs);
  let last: Running = current;
  let closed = false;
  let busy: Promise<void> = Promise.resolve();

  // Serializes unplug/replug/close so that overlapping calls cannot leave two socats.
  const serial = (op: () => Promise<void>): Promise<void> => {
    const next = busy.then(op);
    busy = next.catch(() => {});
    return next;
  };
  const needLink = (what: string): void => {
    if (link === undefined) {
      throw new Error(`${what}() needs createPtyPair({ link }): the host must find the replugged device at a stable path`);
    }
  };

  return {
    get devicePath() {
      return last.devicePts;
    },
    get hostPath() {
      return link ?? last.hostPts;
    },
    get hostPtsPath() {
      return last.hostPts;
    },
    get pid() {
      return current !== null && !current.hasExited ? (current.child.pid ?? -1) : -1;
    },
    get plugged() {
      return current !== null && !current.hasExited;
    },
    unplug() {
      return serial(async () => {
        needLink("unplug");
        if (closed) throw new Error("pty pair is closed");
        if (current === null) return;
        const r = current;
        current = null;
        log(`unplug: stopping socat[${r.child.pid ?? "?"}]`);
        await stopSocat(r);
      });
    },
    replug() {
      return serial(async () => {
        needLink("replug");
        if (closed) throw new Error("pty pair is closed");
        if (current !== null && !current.hasExited) throw new Error("replug(): the pair is still plugged");
        if (current !== null) await stopSocat(current); // died on its own: tidy up
        current = await startSocat(link, log, timeoutMs);
        last = current;
        log(`replug: host ${current.hostPts}, device ${current.devicePts}`);
      });
    },
    close() {
      return serial(async () => {
        if (closed) return;
        closed = true;
        if (current !== null) {
          const r = current;
          current = null;
          await stopSocat(r);
        }
      });
    },
  };
}
