// XS side of the target tests (test/engines/targets_xs.test.ts): what both engine shims share.
// Runs inside xsnap only (bundled by esbuild into the shim prelude), never on a device, so it may
// use anything XS has. It gives the shims:
// - `host(op, body)`: a synchronous call to the Node test through xsnap's issueCommand;
// - a virtual clock and timer queue, advanced only by the Node test ("A" command);
// - the global `handleCommand` that the Node test calls: A advance, D deliver serial bytes,
//   P power on again after a reboot, S the shim's state as JSON.
// Wire format of the calls to Node (first byte = op) is in targets_host.ts.

declare function issueCommand(message: ArrayBuffer): ArrayBuffer;

export const OP = {
  SERIAL_OUT: 1,
  I2C_WRITE: 2,
  I2C_READ: 3,
  LOG: 4,
  STORAGE: 5,
  FLASH: 6,
  REBOOT: 7,
  ERROR: 8,
} as const;

export const COMMAND = {
  ADVANCE: 0x41, // "A" u32 ms
  DELIVER: 0x44, // "D" bytes
  POWER_ON: 0x50, // "P"
  STATE: 0x53, // "S"
} as const;

export function host(op: number, body: Uint8Array): Uint8Array {
  const message = new Uint8Array(1 + body.length);
  message[0] = op;
  message.set(body, 1);
  return new Uint8Array(issueCommand(message.buffer));
}

export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[i] = c < 256 ? c : 63;
  }
  return out;
}

export function textOf(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

export function u32(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
}

// ---------------------------------------------------------------------------------------------
// Virtual time

interface Pending {
  id: number;
  at: number;
  cb: () => void;
}

/** Thrown by a shim's reboot: unwinds the firmware's call stack as a real reset would. */
export const REBOOT_SIGNAL = { pollkitReboot: true };

export const clock = {
  now: 0,
  seq: 0,
  queue: [] as Pending[],
  /** After a reboot: nothing runs until the Node test powers the device on again. */
  halted: false,
  set(cb: () => void, ms: number): number {
    const id = ++clock.seq;
    const delay = typeof ms === "number" && ms > 0 ? ms : 0;
    clock.queue.push({ id, at: clock.now + delay, cb });
    return id;
  },
  /** False when no such timer is pending. */
  clear(id: number): boolean {
    const i = clock.queue.findIndex((p) => p.id === id);
    if (i < 0) return false;
    clock.queue.splice(i, 1);
    return true;
  },
  advance(ms: number): void {
    const end = clock.now + ms;
    while (!clock.halted) {
      let best = -1;
      for (let i = 0; i < clock.queue.length; i++) {
        const p = clock.queue[i];
        if (p.at > end) continue;
        if (best < 0 || p.at < clock.queue[best].at || (p.at === clock.queue[best].at && p.id < clock.queue[best].id)) best = i;
      }
      if (best < 0) break;
      const p = clock.queue.splice(best, 1)[0];
      if (p.at > clock.now) clock.now = p.at;
      runGuarded(p.cb);
    }
    if (!clock.halted) clock.now = end;
  },
};

/** Runs device code as the engine's event loop would: an exception is reported, not fatal. */
export function runGuarded(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e === REBOOT_SIGNAL) return;
    const stack = e instanceof Error && typeof e.stack === "string" ? "\n" + e.stack : "";
    host(OP.ERROR, ascii(String(e) + stack));
  }
}

/** The device asked for a reset: every timer and callback of this boot is gone. */
export function haltForReboot(): never {
  clock.halted = true;
  clock.queue.length = 0;
  for (const reset of resetHooks) reset();
  host(OP.REBOOT, new Uint8Array(0));
  throw REBOOT_SIGNAL;
}

const resetHooks: (() => void)[] = [];
let deliverHook: (bytes: Uint8Array) => void = () => {};
let stateHook: () => unknown = () => ({});

export function installShim(options: {
  deliver: (bytes: Uint8Array) => void;
  reset: () => void;
  state: () => unknown;
}): void {
  deliverHook = options.deliver;
  resetHooks.push(options.reset);
  stateHook = options.state;
  const g = globalThis as unknown as { handleCommand: (b: ArrayBuffer) => ArrayBuffer };
  g.handleCommand = function (buffer: ArrayBuffer): ArrayBuffer {
    const req = new Uint8Array(buffer);
    const empty = new ArrayBuffer(0);
    if (req[0] === COMMAND.ADVANCE) {
      clock.advance(new DataView(buffer).getUint32(1, true));
      return empty;
    }
    if (req[0] === COMMAND.DELIVER) {
      if (!clock.halted) runGuarded(() => deliverHook(req.slice(1)));
      return empty;
    }
    if (req[0] === COMMAND.POWER_ON) {
      clock.halted = false;
      for (const reset of resetHooks) reset();
      return empty;
    }
    if (req[0] === COMMAND.STATE) {
      const out = ascii(JSON.stringify({ now: clock.now, pendingTimers: clock.queue.length, shim: stateHook() }));
      return out.buffer as ArrayBuffer;
    }
    throw new Error("shim: unknown command " + req[0]);
  };
}
