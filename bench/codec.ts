// Codec figures for a typical Health report (the "typical 1" Health vector sent as
// Envelope{health}): encodes and decodes per second on Node for the generated device codec and
// for protobufjs, the size of the message as protobuf, as a frame on the wire and as JSON, and
// the XS compute meter of one encode, one decode and one encodeFrame inside XS.
// Prints a table, then (last line) one JSON object. Run: npm run bench:codec
//
// Node timing: the machine is small and noisy (2 cores shared with other work), so every figure
// is the median of ROUNDS rounds of ROUND_MS each, after a warm-up; the device and protobufjs
// rounds of one operation are interleaved (and their order alternates) so that a slow spell hits
// both. Each measured operation has its own loop function, so every call site stays monomorphic
// and the loops differ only in the call they make. Ratios are device / protobufjs, the median of
// the per-round ratios (paired rounds), with their min–max; a speed goal counts as met only when
// every paired round agrees.
//
// XS compute (deterministic, see test/helpers/xs_harness.ts): the entry of the XS codec test
// (test/engines/codec_xs_entry.ts) is bundled as firmware is and evaluated in xsnap. One command
// stashes the revived Envelope object (or the encoded bytes, or the frame payload) in the
// worker; then the metered command RUN (op, dry = 0) does only `encodeEnvelope(stash)` (resp.
// `decodeEnvelope(stash)`, `encodeFrame(stash)`) and returns its buffer, and the same command
// with dry = 1 takes exactly the same dispatch path but skips the work. The figure is
// compute(RUN) - compute(RUN dry): the encode/decode itself plus the call into it and handing
// back the result buffer (a couple of bytecodes), without the request parsing or any JSON.

import os from "node:os";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { decodeEnvelope, encodeEnvelope, type Envelope as DeviceEnvelope } from "../protocol/generated/device_codec.ts";
import { encodeFrame } from "../protocol/framing.ts";
import { Envelope, toDeviceObject } from "../protocol/node/schema.ts";
import { startXs } from "../test/helpers/xs_harness.ts";
import { asciiJson, buildCodecBundle, plain, request } from "../test/engines/codec_xs_transport.ts";

const ROUNDS = 7;
const ROUND_MS = 300;
const WARMUP_MS = 300;
/** Goal from the issue: a framed Health report fits in 96 bytes on the wire. */
const FRAME_GOAL_BYTES = 96;

type Json = Record<string, unknown>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// ---------------------------------------------------------------------------------------------
// The message

const healthFile = JSON.parse(
  readFileSync(fileURLToPath(new URL("../protocol/vectors/Health.json", import.meta.url)), "utf8"),
) as { vectors: { name: string; value: Json; hex: string }[] };
const healthVector = healthFile.vectors.find((v) => v.name === "typical 1");
if (!healthVector) throw new Error('no "typical 1" Health vector');
const envelopeJson: Json = { health: healthVector.value };

const deviceObject = toDeviceObject(Envelope, envelopeJson) as DeviceEnvelope;
const pbMessage = Envelope.fromObject(envelopeJson);
const payload = encodeEnvelope(deviceObject);
const pbPayload = Envelope.encode(pbMessage).finish();
if (hex(payload) !== hex(pbPayload)) throw new Error("device codec and protobufjs disagree on the bench message");
if (hex(payload) !== "12" + (healthVector.hex.length / 2).toString(16).padStart(2, "0") + healthVector.hex) {
  throw new Error("the bench Envelope does not wrap the Health vector's bytes");
}
const frame = encodeFrame(payload);
/** JSON of the same message as the protobuf payload: the Envelope, i.e. {"health": {...}}. */
const jsonText = JSON.stringify(envelopeJson);
const bareJsonText = JSON.stringify(healthVector.value);

// ---------------------------------------------------------------------------------------------
// Node loops: one function per operation (monomorphic), each returning a value that depends on
// every result so that nothing can be optimised away.

function deviceEncodeLoop(n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) sink += encodeEnvelope(deviceObject).length;
  return sink;
}

function protobufjsEncodeLoop(n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) sink += Envelope.encode(pbMessage).finish().length;
  return sink;
}

function deviceDecodeLoop(n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) sink += (decodeEnvelope(payload).health?.batteryMv ?? 0) & 1;
  return sink;
}

interface PbEnvelope {
  health?: { batteryMv?: number } | null;
}

function protobufjsDecodeLoop(n: number): number {
  let sink = 0;
  for (let i = 0; i < n; i++) sink += ((Envelope.decode(payload) as PbEnvelope).health?.batteryMv ?? 0) & 1;
  return sink;
}

interface Case {
  name: string;
  loop: (n: number) => number;
  /** Iterations per timed call, set in the warm-up so that a call takes about 5 ms. */
  batch: number;
  rates: number[];
}

let globalSink = 0;

/** Runs the loop for about `ms`; returns operations per second. */
function timeFor(c: Case, ms: number): number {
  let ops = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  do {
    globalSink += c.loop(c.batch);
    ops += c.batch;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return ops / (Number(elapsed) / 1e9);
}

function warmUp(c: Case): void {
  c.batch = 100;
  const end = performance.now() + WARMUP_MS;
  while (performance.now() < end) {
    const t = performance.now();
    globalSink += c.loop(c.batch);
    const dt = performance.now() - t;
    if (dt < 5) c.batch = Math.min(c.batch * 2, 1 << 20);
  }
}

/** Paired rounds: device and protobufjs alternate which goes first. */
function measurePair(device: Case, pbjs: Case): void {
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [device, pbjs] : [pbjs, device];
    for (const c of order) c.rates.push(timeFor(c, ROUND_MS));
  }
}

function pairedRatios(device: Case, pbjs: Case): number[] {
  return device.rates.map((rate, i) => rate / pbjs.rates[i]);
}

// ---------------------------------------------------------------------------------------------
// XS

interface XsFigures {
  encode: number;
  decode: number;
  frame: number;
  /** The first encode, decode and encodeFrame in a fresh worker (lazy initialisation included). */
  firstCalls: { encode: number; decode: number; frame: number };
  xsVersion: string;
}

async function measureXs(): Promise<XsFigures> {
  const code = await buildCodecBundle();
  const xs = await startXs({ name: "bench-codec" });
  try {
    await xs.evaluate(code);
    const stash = async (op: number, body: Uint8Array): Promise<void> => {
      const { reply } = await xs.command(request(op, "Envelope", body));
      if (reply.length !== 0) throw new Error(`XS stash op ${op} failed: ${Buffer.from(reply).toString("latin1")}`);
    };
    /**
     * compute(RUN) - compute(RUN dry) in the steady state: the first call is reported apart
     * (lazy tables: the CRC and base64 tables of the framing are built on first use), then two
     * more must agree.
     */
    const cost = async (op: number): Promise<{ compute: number; first: number; reply: Uint8Array }> => {
      const values: number[] = [];
      let reply: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < 3; i++) {
        const run = await xs.command(Uint8Array.of(op, 0));
        const dry = await xs.command(Uint8Array.of(op, 1));
        values.push(run.meter.compute - dry.meter.compute);
        reply = run.reply;
      }
      if (values[1] !== values[2]) throw new Error(`XS compute not repeatable for op ${op}: ${values.join(" vs ")}`);
      return { compute: values[1], first: values[0], reply };
    };
    await stash(10, Buffer.from(asciiJson(plain(deviceObject)), "latin1"));
    const enc = await cost(11);
    if (hex(enc.reply) !== hex(payload)) throw new Error(`XS encode gave ${hex(enc.reply)}, Node ${hex(payload)}`);
    await stash(12, payload);
    const dec = await cost(13);
    await stash(14, payload);
    const fr = await cost(15);
    if (hex(fr.reply) !== hex(frame)) throw new Error("XS encodeFrame differs from Node's");
    const pkg = createRequire(import.meta.url)("@agoric/xsnap/package.json") as { version: string };
    return {
      encode: enc.compute,
      decode: dec.compute,
      frame: fr.compute,
      firstCalls: { encode: enc.first, decode: dec.first, frame: fr.first },
      xsVersion: `@agoric/xsnap ${pkg.version}` };
  } finally {
    await xs.close();
  }
}

// ---------------------------------------------------------------------------------------------

function fmtRate(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

function fmtCase(c: Case): string {
  const lo = Math.min(...c.rates);
  const hi = Math.max(...c.rates);
  return `${fmtRate(median(c.rates)).padStart(11)}  (${fmtRate(lo)}–${fmtRate(hi)})`;
}

async function main(): Promise<void> {
  const started = performance.now();
  const xsFigures = await measureXs();

  const cases = {
    deviceEncode: { name: "device encode", loop: deviceEncodeLoop, batch: 0, rates: [] } as Case,
    protobufjsEncode: { name: "protobufjs encode", loop: protobufjsEncodeLoop, batch: 0, rates: [] } as Case,
    deviceDecode: { name: "device decode", loop: deviceDecodeLoop, batch: 0, rates: [] } as Case,
    protobufjsDecode: { name: "protobufjs decode", loop: protobufjsDecodeLoop, batch: 0, rates: [] } as Case,
  };
  for (const c of Object.values(cases)) warmUp(c);
  measurePair(cases.deviceEncode, cases.protobufjsEncode);
  measurePair(cases.deviceDecode, cases.protobufjsDecode);

  const encodeRatios = pairedRatios(cases.deviceEncode, cases.protobufjsEncode);
  const decodeRatios = pairedRatios(cases.deviceDecode, cases.protobufjsDecode);
  const encodeRatio = median(encodeRatios);
  const decodeRatio = median(decodeRatios);
  const range = (xs: number[]): [number, number] => [Number(Math.min(...xs).toFixed(2)), Number(Math.max(...xs).toFixed(2))];
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    /** Other work on the machine while the bench ran (1-minute load average at the end). */
    loadAvg1m: Number(os.loadavg()[0].toFixed(2)),
  };
  const pbVersion = (createRequire(import.meta.url)("protobufjs/package.json") as { version: string }).version;

  const line = "-".repeat(78);
  console.log(`Codec bench: Envelope{health: Health "typical 1"}, ${payload.length} bytes as protobuf`);
  console.log(`${machine.cpu}, ${machine.cores} cores (load ${machine.loadAvg1m}), Node ${machine.node}; protobufjs ${pbVersion}; ${xsFigures.xsVersion}`);
  console.log(`Node: median of ${ROUNDS} rounds x ${ROUND_MS} ms (min–max in brackets), device/protobufjs rounds interleaved`);
  console.log(line);
  console.log(`${"ops/s".padEnd(10)}${"device codec".padStart(32)}${"protobufjs".padStart(30)}   device/pbjs`);
  const fmtRatio = (r: number, rs: number[]): string => `${r.toFixed(2)}x (${range(rs).join("–")})`;
  console.log(`${"encode".padEnd(10)}${fmtCase(cases.deviceEncode).padStart(32)}${fmtCase(cases.protobufjsEncode).padStart(30)}   ${fmtRatio(encodeRatio, encodeRatios)}`);
  console.log(`${"decode".padEnd(10)}${fmtCase(cases.deviceDecode).padStart(32)}${fmtCase(cases.protobufjsDecode).padStart(30)}   ${fmtRatio(decodeRatio, decodeRatios)}`);
  console.log(line);
  console.log(`size      protobuf ${payload.length} B | framed on the wire ${frame.length} B (goal <= ${FRAME_GOAL_BYTES}) | JSON ${Buffer.byteLength(jsonText)} B (Health alone ${Buffer.byteLength(bareJsonText)} B)`);
  console.log(`XS compute (one call, deterministic): encode ${xsFigures.encode} | decode ${xsFigures.decode} | encodeFrame ${xsFigures.frame}`);
  const first = xsFigures.firstCalls;
  console.log(`          first call in a fresh worker:  encode ${first.encode} | decode ${first.decode} | encodeFrame ${first.frame}`);
  console.log(line);
  const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");
  // A speed goal is only decided when every paired round agrees; otherwise say so.
  const speedVerdict = (rs: number[]): string =>
    Math.min(...rs) >= 1 ? "met" : Math.max(...rs) < 1 ? "NOT met" : `too close to call (paired rounds ${range(rs).join("–")})`;
  console.log(`goals: encode >= protobufjs ${speedVerdict(encodeRatios)}; decode >= protobufjs ${speedVerdict(decodeRatios)}; framed <= ${FRAME_GOAL_BYTES} B ${verdict(frame.length <= FRAME_GOAL_BYTES)}`);
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);

  const result = {
    bench: "codec",
    message: 'Envelope{health: Health "typical 1"}',
    rounds: ROUNDS,
    roundMs: ROUND_MS,
    deviceEncodePerSec: Math.round(median(cases.deviceEncode.rates)),
    deviceDecodePerSec: Math.round(median(cases.deviceDecode.rates)),
    protobufjsEncodePerSec: Math.round(median(cases.protobufjsEncode.rates)),
    protobufjsDecodePerSec: Math.round(median(cases.protobufjsDecode.rates)),
    encodeRatio: Number(encodeRatio.toFixed(3)),
    decodeRatio: Number(decodeRatio.toFixed(3)),
    encodeRatioRange: range(encodeRatios),
    decodeRatioRange: range(decodeRatios),
    healthProtoBytes: payload.length,
    healthFrameBytes: frame.length,
    healthJsonBytes: Buffer.byteLength(jsonText),
    healthJsonBareBytes: Buffer.byteLength(bareJsonText),
    xsComputeHealthEncode: xsFigures.encode,
    xsComputeHealthDecode: xsFigures.decode,
    xsComputeHealthFrame: xsFigures.frame,
    xsComputeFirstCalls: xsFigures.firstCalls,
    protobufjs: pbVersion,
    xs: xsFigures.xsVersion,
    machine,
    sink: globalSink % 2,
  };
  console.log(JSON.stringify(result));
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
