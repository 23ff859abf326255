// The fingerprint module driver against the UniFinger module model over a simulated UART, on a
// virtual clock: the driver's timers, the model's timers and the line's byte times all read the
// same scheduler, so every test is deterministic and fast (a 10 s finger timeout costs nothing).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { VirtualClock } from "../../simulator/clock/timers.ts";
import { FingerprintModuleModel, sfmPacket, SFM_PARAM, type FingerprintModuleModelOptions } from "../../simulator/models/fingerprint_module.ts";
import {
  FingerprintModule,
  ufRequest,
  ufChecksum,
  FP_ERR_BAD_ARGUMENT,
  FP_ERR_BUSY,
  FP_ERR_CANCELLED,
  FP_ERR_CLOSED,
  FP_ERR_MODULE,
  FP_ERR_NO_FINGER,
  FP_ERR_NO_MODULE,
  FP_ERR_POOR_IMAGE,
  FP_ERR_PROTOCOL,
  FP_ERR_TIMEOUT,
  UF_CMD_ST,
  UF_RET_SUCCESS,
  UF_TEMPLATE_ISO,
  type FingerprintModuleOptions,
  type FpError,
} from "./fingerprint_module.ts";
import { FINGERPRINTS_DIR } from "../../simulator/data/fingerprints.ts";

const DATA = FINGERPRINTS_DIR;

function record(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(DATA + rel));
}

interface Rig {
  clock: VirtualClock;
  model: FingerprintModuleModel;
  fp: FingerprintModule;
}

function rig(modelOpts?: Partial<FingerprintModuleModelOptions>, driverOpts?: Partial<FingerprintModuleOptions>): Rig {
  const clock = new VirtualClock();
  const model = new FingerprintModuleModel({ timers: clock.timers(), ...modelOpts });
  const fp = new FingerprintModule({ uart: model.uart, timers: clock.timers(), ...driverOpts });
  return { clock, model, fp };
}

/** Runs `start`, advances the clock until its callback has run (or `maxMs`), returns its arguments and when. */
function run<A extends unknown[]>(clock: VirtualClock, start: (cb: (...args: A) => void) => void, maxMs = 120_000): { args: A; at: number } {
  let got: { args: A; at: number } | null = null;
  const t0 = clock.now();
  start((...args: A) => {
    assert.equal(got, null, "callback ran twice");
    got = { args, at: clock.now() - t0 };
  });
  for (let waited = 0; got === null && waited < maxMs; waited += 5) clock.advance(5);
  assert.ok(got, "callback never ran");
  // Let the tail (probes, late packets) play out, and check the callback did not run again.
  clock.advance(50);
  return got;
}

function open(r: Rig): void {
  const res = run(r.clock, (cb: (err: FpError | null) => void) => r.fp.open(cb));
  assert.equal(res.args[0], null);
}

function capture(r: Rig): { err: FpError | null; iso?: Uint8Array; at: number } {
  const res = run(r.clock, (cb: (err: FpError | null, iso?: Uint8Array) => void) => r.fp.capture(cb));
  return { err: res.args[0], iso: res.args[1], at: res.at };
}

test("packets: the manual's worked example and checksum", () => {
  // ES (0x05) with user id 0x9929: 40 05 29 99 00 00 00 00 00 00 00 07 0A.
  const p = ufRequest(0x05, 0x9929, 0, 0, null);
  assert.deepEqual([...p], [0x40, 0x05, 0x29, 0x99, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x0a]);
  assert.equal(ufChecksum(p), 0x07);
  const withData = ufRequest(0x37, 0, 2, 2, Uint8Array.of(0xaa, 0xbb));
  assert.equal(withData.length, 16);
  assert.deepEqual([...withData.subarray(13)], [0xaa, 0xbb, 0x0a]);
  // The model's packets agree with the driver's.
  assert.deepEqual([...sfmPacket(0x21, 7, 180, 0x61)], [...ufRequest(0x21, 7, 180, 0x61, null)]);
});

test("open reads the firmware version and sets ISO templates and the finger timeout", () => {
  const r = rig({ firmwareVersion: "2.1B" }, { scanSeconds: 7 });
  assert.equal(r.model.parameter(SFM_PARAM.TEMPLATE_TYPE), 0x30, "the module ships with Suprema templates");
  open(r);
  assert.equal(r.fp.firmwareVersion, "2.1B");
  assert.equal(r.model.parameter(SFM_PARAM.TEMPLATE_TYPE), UF_TEMPLATE_ISO);
  assert.equal(r.model.parameter(SFM_PARAM.TIMEOUT), 0x30 + 7);
});

test("capture returns exactly the bytes of real ISO 19794-2 records", () => {
  const r = rig();
  open(r);
  const files = ["fvc2002/DB1_B/101_1.iso", "fvc2002/DB2_B/105_3.iso", "fvc2002/DB4_B/110_8.iso", "samples/iso19794-2-2005-annex-c2.raw"];
  for (const f of files) {
    const iso = record(f);
    r.model.present({ iso });
    const c = capture(r);
    assert.equal(c.err, null, f);
    assert.deepEqual(c.iso, iso, f);
    // Scan (300 ms) + extraction (200 ms) + the bytes at 115200 bit/s.
    assert.ok(c.at >= 500 && c.at < 700, `${f}: took ${c.at} ms`);
  }
  assert.equal(r.fp.stats.damaged, 0);
  assert.equal(r.model.stats.templatesSent, files.length);
});

test("capture waits for the finger, with the LED lit while it waits", () => {
  const r = rig();
  open(r);
  const led = run(r.clock, (cb: (err: FpError | null) => void) => r.fp.led(true, cb));
  assert.equal(led.args[0], null);
  assert.ok(r.model.ledArmed);
  assert.equal(r.model.ledLit, false, "not lit while idle");
  const iso = record("fvc2002/DB3_B/102_4.iso");
  let got = null as { err: FpError | null; iso?: Uint8Array } | null;
  r.fp.capture((err, t) => {
    got = { err, iso: t };
  });
  r.clock.advance(3000);
  assert.equal(got === null, true, "no answer before the finger");
  assert.equal(r.model.ledLit, true, "lit while waiting for a finger");
  r.model.present({ iso });
  r.clock.advance(1000);
  assert.ok(got);
  assert.equal(got!.err, null);
  assert.deepEqual(got!.iso, iso);
  assert.equal(r.model.ledLit, false);
  const off = run(r.clock, (cb: (err: FpError | null) => void) => r.fp.led(false, cb));
  assert.equal(off.args[0], null);
  assert.equal(r.model.ledArmed, false);
});

test("no finger within the module's timeout gives FP_ERR_NO_FINGER", () => {
  const r = rig({}, { scanSeconds: 5 });
  open(r);
  r.model.present({ fault: "no-finger" });
  const c = capture(r);
  assert.equal(c.err?.code, FP_ERR_NO_FINGER);
  assert.ok(c.at >= 5000 && c.at < 5100, `answered after ${c.at} ms`);
  // Nothing presented at all: the same.
  const c2 = capture(r);
  assert.equal(c2.err?.code, FP_ERR_NO_FINGER);
});

test("poor image and scan failure give FP_ERR_POOR_IMAGE; BUSY gives FP_ERR_BUSY", () => {
  const r = rig();
  open(r);
  r.model.present({ fault: "poor-image" });
  const a = capture(r);
  assert.equal(a.err?.code, FP_ERR_POOR_IMAGE);
  assert.match(a.err!.message, /TRY_AGAIN/);
  r.model.present({ fault: "scan-fail" });
  const b = capture(r);
  assert.equal(b.err?.code, FP_ERR_POOR_IMAGE);
  assert.match(b.err!.message, /SCAN_FAIL/);
  r.model.present({ fault: "busy" });
  assert.equal(capture(r).err?.code, FP_ERR_BUSY);
  // The module is usable afterwards.
  const iso = record("fvc2002/DB1_B/103_2.iso");
  r.model.present({ iso });
  assert.deepEqual(capture(r).iso, iso);
});

test("a hung module (ST never answered, CA answered) gives FP_ERR_TIMEOUT, then recovers", () => {
  const r = rig({}, { scanSeconds: 3 });
  open(r);
  r.model.present({ fault: "timeout" });
  const c = capture(r);
  assert.equal(c.err?.code, FP_ERR_TIMEOUT);
  assert.match(c.err!.message, /answers CA/);
  // Deadline: 3 s finger timeout + 2 s extraction + 1 s answer, then the CA probe.
  assert.ok(c.at >= 6000 && c.at < 6200, `after ${c.at} ms`);
  const iso = record("fvc2002/DB2_B/101_1.iso");
  r.model.present({ iso });
  assert.deepEqual(capture(r).iso, iso);
});

test("an unplugged module gives FP_ERR_NO_MODULE; replugged, it needs open() again", () => {
  const r = rig({}, { scanSeconds: 2 });
  r.model.setConnected(false);
  const o = run(r.clock, (cb: (err: FpError | null) => void) => r.fp.open(cb));
  assert.equal(o.args[0]?.code, FP_ERR_NO_MODULE);
  assert.ok(o.at >= 2000 && o.at < 2100, "SR timeout then CA probe timeout");
  r.model.setConnected(true);
  open(r);
  // Unplugged in the middle of a capture.
  let got: FpError | null | undefined;
  r.fp.capture((err) => {
    got = err;
  });
  r.clock.advance(500);
  r.model.setConnected(false);
  r.clock.advance(10_000);
  assert.equal(got?.code, FP_ERR_NO_MODULE);
  // Power came back: the module lost the ISO setting (RAM parameters), so its template is refused.
  r.model.setConnected(true);
  assert.equal(r.model.parameter(SFM_PARAM.TEMPLATE_TYPE), 0x30);
  r.model.present({ iso: record("fvc2002/DB1_B/104_1.iso") });
  const c = capture(r);
  assert.equal(c.err?.code, FP_ERR_PROTOCOL);
  assert.match(c.err!.message, /not an ISO\/IEC 19794-2 record/);
  open(r);
  const iso = record("fvc2002/DB1_B/104_1.iso");
  r.model.present({ iso });
  assert.deepEqual(capture(r).iso, iso);
});

test("unplugged in the middle of the template: FP_ERR_NO_MODULE, and a clean start after", () => {
  const r = rig({ chunkBytes: 16 }, { scanSeconds: 2 });
  open(r);
  const iso = record("fvc2002/DB1_B/106_2.iso");
  const before = r.model.line.counters.toDevice;
  let got: FpError | null | undefined;
  r.fp.capture((err) => {
    got = err;
  });
  r.clock.advance(10);
  r.model.present({ iso });
  // The template leaves the module 500 ms later and takes about 16 ms on the line.
  r.clock.advance(505);
  assert.equal(got === undefined, true, "still receiving");
  const delivered = r.model.line.counters.toDevice - before;
  r.model.setConnected(false);
  r.clock.advance(5000);
  assert.equal(got?.code, FP_ERR_NO_MODULE);
  assert.ok(r.model.line.counters.lost > 0, "part of the template was lost on the line");
  assert.ok(delivered > 13 + 13 && delivered < 13 + 13 + iso.length, `part of it had arrived: ${delivered} bytes`);
  r.model.setConnected(true);
  open(r);
  r.model.present({ iso });
  assert.deepEqual(capture(r).iso, iso);
});

test("a damaged answer (bad checksum) gives FP_ERR_PROTOCOL; the next capture works", () => {
  const r = rig();
  open(r);
  r.model.present({ fault: "garbled" });
  const c = capture(r);
  assert.equal(c.err?.code, FP_ERR_PROTOCOL);
  assert.match(c.err!.message, /bad checksum/);
  assert.ok(r.fp.stats.damaged >= 1);
  const iso = record("fvc2002/DB4_B/102_2.iso");
  r.model.present({ iso });
  assert.deepEqual(capture(r).iso, iso);
  // A damaged answer to a simple command too.
  r.model.corruptNextResponse();
  const p = run(r.clock, (cb: (err: FpError | null, v?: number) => void) => r.fp.readParameter(SFM_PARAM.TIMEOUT, cb));
  assert.equal(p.args[0]?.code, FP_ERR_PROTOCOL);
});

test("line noise before the answer is skipped and the packet still found", () => {
  for (const chunkBytes of [1, 5, 32]) {
    const r = rig({ chunkBytes });
    open(r);
    const iso = record("fvc2002/DB3_B/107_5.iso");
    let got = null as { err: FpError | null; iso?: Uint8Array } | null;
    r.fp.capture((err, t) => {
      got = { err, iso: t };
    });
    r.clock.advance(100);
    // Garbage with start codes in it, one candidate with an end code in the right place but the
    // wrong checksum would be damage; keep this noise clear of that.
    r.model.injectNoise(Uint8Array.of(0x00, 0x40, 0x21, 0x40, 0x40, 0xff, 0x13, 0x0b, 0x40, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x40, 0x40));
    r.clock.advance(10);
    r.model.present({ iso });
    r.clock.advance(1000);
    assert.ok(got, `chunk ${chunkBytes}`);
    assert.equal(got!.err, null);
    assert.deepEqual(got!.iso, iso);
    assert.ok(r.fp.stats.garbage > 0);
  }
});

test("noise right before a good answer does not hide it (resync inside a candidate)", () => {
  const r = rig({ chunkBytes: 1 });
  open(r);
  const iso = record("fvc2002/DB1_B/108_3.iso");
  let got = null as { err: FpError | null; iso?: Uint8Array } | null;
  r.fp.capture((err, t) => {
    got = { err, iso: t };
  });
  // Noise lands 3 bytes before the SCAN_SUCCESS packet (scan takes 300 ms): the candidate that
  // starts in the noise swallows the real start code, and the driver must find it again.
  r.clock.advance(299);
  r.model.injectNoise(Uint8Array.of(0x40, 0x99, 0x98));
  r.model.present({ iso });
  r.clock.advance(2000);
  assert.ok(got);
  assert.equal(got!.err, null);
  assert.deepEqual(got!.iso, iso);
  assert.equal(r.fp.stats.garbage, 3, "exactly the noise was skipped");
  assert.equal(r.fp.stats.damaged, 0);
});

test("an oversized or unterminated template is refused", () => {
  // A real 180-byte record over a 100-byte limit.
  const r = rig({}, { maxTemplateBytes: 100 });
  open(r);
  r.model.present({ iso: record("fvc2002/DB1_B/101_1.iso") });
  const c = capture(r);
  assert.equal(c.err?.code, FP_ERR_PROTOCOL);
  assert.match(c.err!.message, /data length 180 refused/);
  assert.equal(r.fp.stats.oversize, 1);

  // A forged header announcing 2^31 bytes, with a good checksum, while the capture waits.
  const r2 = rig();
  open(r2);
  let got: FpError | null | undefined;
  const t0 = r2.clock.now();
  let at = 0;
  r2.fp.capture((err) => {
    got = err;
    at = r2.clock.now() - t0;
  });
  r2.clock.advance(100);
  r2.model.injectNoise(sfmPacket(UF_CMD_ST, 0, 0x80000000, UF_RET_SUCCESS));
  r2.clock.advance(50);
  assert.equal(got?.code, FP_ERR_PROTOCOL);
  assert.match(got!.message, /2147483648 refused/);
  assert.ok(at < 150, "refused at once, not after the data would have come");

  // Data not closed by 0x0A.
  const r3 = rig();
  open(r3);
  let got3: FpError | null | undefined;
  r3.fp.capture((err) => {
    got3 = err;
  });
  r3.clock.advance(100);
  const bad = sfmPacket(UF_CMD_ST, 0, 4, UF_RET_SUCCESS, Uint8Array.of(0x46, 0x4d, 0x52, 0x00));
  bad[bad.length - 1] = 0x00;
  r3.model.injectNoise(bad);
  r3.clock.advance(200);
  assert.equal(got3?.code, FP_ERR_PROTOCOL);
  assert.match(got3!.message, /not closed by 0x0A/);
});

test("cancel() ends a waiting capture with FP_ERR_CANCELLED and a queued one too", () => {
  const r = rig();
  open(r);
  const results: (FpError | null)[] = [];
  r.fp.capture((err) => results.push(err));
  r.fp.capture((err) => results.push(err));
  r.clock.advance(1000);
  assert.equal(r.model.scanState, "wait");
  r.fp.cancel();
  r.clock.advance(100);
  assert.equal(results.length, 2);
  assert.equal(results[0]?.code, FP_ERR_CANCELLED);
  assert.equal(results[1]?.code, FP_ERR_CANCELLED);
  assert.equal(r.model.scanState, "idle");
  assert.equal(r.fp.stats.stale, 1, "ST's CANCELED arrives after the wait moved to CA");
  const iso = record("fvc2002/DB2_B/110_1.iso");
  r.model.present({ iso });
  assert.deepEqual(capture(r).iso, iso);
});

test("system parameters: read, write, unknown, bad arguments", () => {
  const r = rig();
  open(r);
  const v = run(r.clock, (cb: (err: FpError | null, v?: number) => void) => r.fp.readParameter(SFM_PARAM.TEMPLATE_SIZE, cb));
  assert.deepEqual(v.args, [null, 384]);
  const w = run(r.clock, (cb: (err: FpError | null) => void) => r.fp.writeParameter(SFM_PARAM.TIMEOUT, 0x35, cb));
  assert.equal(w.args[0], null);
  assert.equal(r.model.parameter(SFM_PARAM.TIMEOUT), 0x35);
  const u = run(r.clock, (cb: (err: FpError | null, v?: number) => void) => r.fp.readParameter(0x01, cb));
  assert.equal(u.args[0]?.code, FP_ERR_MODULE);
  assert.match(u.args[0]!.message, /NOT_FOUND/);
  const ro = run(r.clock, (cb: (err: FpError | null) => void) => r.fp.writeParameter(SFM_PARAM.FIRMWARE_VERSION, 1, cb));
  assert.equal(ro.args[0]?.code, FP_ERR_MODULE);
  const bad = run(r.clock, (cb: (err: FpError | null, v?: number) => void) => r.fp.readParameter(300, cb));
  assert.equal(bad.args[0]?.code, FP_ERR_BAD_ARGUMENT);
  const badLed = rig({}, { ledGpio: 9 });
  const l = run(badLed.clock, (cb: (err: FpError | null) => void) => badLed.fp.led(true, cb));
  assert.equal(l.args[0]?.code, FP_ERR_BAD_ARGUMENT);
});

test("close() fails what is pending and ignores the line afterwards", () => {
  const r = rig();
  open(r);
  const results: (FpError | null)[] = [];
  r.fp.capture((err) => results.push(err));
  r.fp.led(true, (err) => results.push(err));
  r.clock.advance(100);
  r.fp.close();
  r.model.present({ iso: record("fvc2002/DB1_B/101_1.iso") });
  r.clock.advance(2000);
  assert.deepEqual(
    results.map((e) => e?.code),
    [FP_ERR_CLOSED, FP_ERR_CLOSED],
  );
  r.fp.capture((err) => results.push(err));
  r.clock.advance(10);
  assert.equal(results[2]?.code, FP_ERR_CLOSED);
});
