// The bridge target: the firmware core with a Platform whose hardware lives in the host process,
// reached through xsnap's synchronous `issueCommand`. The engine tests run this bundle on XS and,
// unchanged, on Node (with a JS `issueCommand`), driving both with the same script and comparing
// every byte the device sends. Time is virtual: the host advances it.
// Engine subset.
//
// Device -> host (issueCommand), first byte:
//   1 i2c write   [addr, data...]            reply [1 ack | 0 nack]
//   2 i2c read    [addr, len]                reply [1, data...] | [0]
//   3 flash read  [page u16, off u32, len u32] reply data
//   4 flash prog  [page u16, off u32, data...] reply [0 | 1 power cut]
//   5 flash erase [page u16]                 reply [0 | 1]
//   6 link write  [bytes...]                 reply []
//   7 log         [latin1 text...]           reply []
//   8 reboot      [reason]                   reply []
//   9 random32    []                         reply 4 bytes
//  10 now         [ms u32 x2]                informs the host's chip models of the time; reply []
// Host -> device (handleCommand), first byte:
//   1 deliver link bytes  2 advance ms (u32)  3 connection [0|1]
//   4 boot [reset cause, wall ms hi u32, lo u32, pages u16, page size u16, role, serial...]
//   5 record [kind, payload...] (test hook)   6 health report now
// Replies to the host: [0] ok, or [1, text...] on an error.

import { DeviceFirmware as Firmware } from "../../roles/all_roles.ts";
import type { ByteLink, Platform, Screen } from "../../platform/platform.ts";

declare const issueCommand: (msg: ArrayBuffer) => ArrayBuffer;

interface Timer {
  id: number;
  at: number;
  cb: () => void;
}

const g = globalThis as unknown as { handleCommand: (msg: ArrayBuffer) => ArrayBuffer };

let now = 0;
let timerSeq = 0;
let timers: Timer[] = [];
let wallBase = 0;
let wallAt = 0;
let fw: Firmware | null = null;
let linkData: ((d: Uint8Array) => void) | null = null;
let linkConn: ((c: boolean) => void) | null = null;
let connected = true;

function call(op: number, body: Uint8Array): Uint8Array {
  const msg = new Uint8Array(body.length + 1);
  msg[0] = op;
  msg.set(body, 1);
  return new Uint8Array(issueCommand(msg.buffer));
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 255;
  b[at + 1] = (v >>> 16) & 255;
  b[at + 2] = (v >>> 8) & 255;
  b[at + 3] = v & 255;
}

function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i] = c < 256 ? c : 63;
  }
  return out;
}

function tellTime(): void {
  const b = new Uint8Array(8);
  putU32(b, 0, Math.floor(now / 4294967296));
  putU32(b, 4, now % 4294967296);
  call(10, b);
}

function pageAddr(page: number, off: number, extra: number): Uint8Array {
  const b = new Uint8Array(6 + extra);
  b[0] = page >> 8;
  b[1] = page & 255;
  putU32(b, 2, off);
  return b;
}

function makePlatform(reset: number, pages: number, pageSize: number, role: number, serial: string): Platform {
  const link: ByteLink = {
    write: function (d: Uint8Array) {
      call(6, d);
    },
    onData: function (cb: (d: Uint8Array) => void) {
      linkData = cb;
    },
    onConnection: function (cb: (c: boolean) => void) {
      linkConn = cb;
      if (connected) cb(true);
    },
  };
  return {
    identity: { serial: serial, hardwareModel: "pollkit-bridge", role: role },
    timers: {
      now: function () {
        return now;
      },
      setTimeout: function (cb: () => void, ms: number) {
        timerSeq++;
        timers.push({ id: timerSeq, at: now + (ms > 0 ? ms : 0), cb: cb });
        return timerSeq;
      },
      clearTimeout: function (id: number) {
        for (let i = 0; i < timers.length; i++) {
          if (timers[i].id === id) {
            timers.splice(i, 1);
            return;
          }
        }
      },
    },
    clock: {
      wallMs: function () {
        return wallBase === 0 ? 0 : wallBase + (now - wallAt);
      },
      setWallMs: function (ms: number) {
        wallBase = ms;
        wallAt = now;
      },
    },
    hostLink: link,
    uarts: {},
    i2c: {
      write: function (address: number, data: Uint8Array) {
        tellTime();
        const b = new Uint8Array(data.length + 1);
        b[0] = address;
        b.set(data, 1);
        return call(1, b)[0] === 1;
      },
      read: function (address: number, length: number) {
        tellTime();
        const r = call(2, new Uint8Array([address, length]));
        return r[0] === 1 ? r.slice(1) : null;
      },
    },
    flash: {
      pageSize: pageSize,
      pageCount: pages,
      read: function (page: number, offset: number, length: number) {
        const b = pageAddr(page, offset, 4);
        putU32(b, 6, length);
        return call(3, b);
      },
      program: function (page: number, offset: number, data: Uint8Array) {
        const b = pageAddr(page, offset, data.length);
        b.set(data, 6);
        if (call(4, b)[0] !== 0) throw { powerCut: true };
      },
      erase: function (page: number) {
        if (call(5, new Uint8Array([page >> 8, page & 255]))[0] !== 0) throw { powerCut: true };
      },
    },
    display: {
      show: function (s: Screen) {
        call(7, latin1("screen " + s.key));
      },
    },
    buttons: {
      onPress: function () {},
    },
    system: {
      resetCause: function () {
        return reset;
      },
      reboot: function (reason: number) {
        call(8, new Uint8Array([reason]));
      },
      enableWatchdog: function () {},
      kickWatchdog: function () {},
      freeMemory: function () {
        return 65536;
      },
      random32: function () {
        return u32(call(9, new Uint8Array(0)), 0);
      },
    },
    log: function (text: string) {
      call(7, latin1(text));
    },
  };
}

/** Runs every timer due up to now + ms, in time order (ties in the order they were set). */
function advance(ms: number): void {
  const end = now + ms;
  for (;;) {
    let best = -1;
    for (let i = 0; i < timers.length; i++) {
      if (timers[i].at > end) continue;
      if (best < 0 || timers[i].at < timers[best].at || (timers[i].at === timers[best].at && timers[i].id < timers[best].id)) best = i;
    }
    if (best < 0) break;
    const t = timers.splice(best, 1)[0];
    if (t.at > now) now = t.at;
    t.cb();
  }
  now = end;
}

function ok(): ArrayBuffer {
  return new Uint8Array([0]).buffer;
}

function fail(text: string): ArrayBuffer {
  const t = latin1(text);
  const out = new Uint8Array(t.length + 1);
  out[0] = 1;
  out.set(t, 1);
  return out.buffer;
}

function boot(b: Uint8Array): void {
  // A boot starts from nothing but flash and the chips: drop every timer of the previous run.
  timers = [];
  linkData = null;
  linkConn = null;
  const reset = b[1];
  wallBase = u32(b, 2) * 4294967296 + u32(b, 6);
  wallAt = now;
  const pages = (b[10] << 8) | b[11];
  const pageSize = (b[12] << 8) | b[13];
  const role = b[14];
  let serial = "";
  for (let i = 15; i < b.length; i++) serial += String.fromCharCode(b[i]);
  fw = new Firmware({
    platform: makePlatform(reset, pages, pageSize, role, serial),
    firmwareVersion: "1.0.0",
    healthIntervalMs: 60000,
    linkResendMs: 3000,
  });
  fw.start();
}

g.handleCommand = function (msg: ArrayBuffer): ArrayBuffer {
  const b = new Uint8Array(msg);
  const op = b[0];
  try {
    if (op === 1) {
      if (linkData !== null) linkData(b.slice(1));
    } else if (op === 2) advance(u32(b, 1));
    else if (op === 3) {
      connected = b[1] === 1;
      if (linkConn !== null) linkConn(connected);
    } else if (op === 4) boot(b);
    else if (op === 5) {
      if (fw === null) return fail("not booted");
      fw.record(b[1], b.slice(2));
    } else if (op === 6) {
      if (fw === null) return fail("not booted");
      fw.telemetry.report();
    } else return fail("unknown op " + op);
  } catch (e) {
    return fail("firmware threw: " + String(e));
  }
  return ok();
};
