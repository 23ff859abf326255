// Pins the XS harness's behaviour and the facts about XS inside xsnap that firmware relies on.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  decodeText,
  encodeText,
  startXs,
  startXsBundle,
  XsError,
  type XsOptions,
  type XsWorker,
} from "./xs_harness.ts";

const opened: XsWorker[] = [];
after(async () => {
  await Promise.all(opened.map((worker) => worker.close()));
});

async function open(options?: XsOptions): Promise<XsWorker> {
  const worker = await startXs(options);
  opened.push(worker);
  return worker;
}

async function openBundle(code: string, options?: XsOptions): Promise<XsWorker> {
  const worker = await startXsBundle(code, options);
  opened.push(worker);
  return worker;
}

/** True while the process runs; a zombie (nobody reaps it in some containers) counts as gone. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return process.platform !== "linux";
  }
}

async function waitUntilGone(pid: number, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isRunning(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return !isRunning(pid);
}

async function rejection(promise: Promise<unknown>): Promise<XsError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof XsError, `expected an XsError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected a rejection");
}

// Reverses the bytes it is given.
const REVERSE = `
function handleCommand(buffer) {
  var input = new Uint8Array(buffer);
  var output = new Uint8Array(input.length);
  for (var i = 0; i < input.length; i++) output[i] = input[input.length - 1 - i];
  return output.buffer;
}`;

describe("XS globals inside xsnap", () => {
  test("are what firmware may rely on", async () => {
    const worker = await openBundle(`
      var names = ["setTimeout", "setInterval", "setImmediate", "queueMicrotask", "console", "print",
        "TextEncoder", "TextDecoder", "Base64", "btoa", "atob", "issueCommand", "harden", "gc",
        "performance", "Compartment", "lockdown", "structuredClone", "SharedArrayBuffer"];
      function handleCommand() {
        var found = {};
        for (var i = 0; i < names.length; i++) found[names[i]] = typeof globalThis[names[i]];
        return new TextEncoder().encode(JSON.stringify(found)).buffer;
      }`);
    const { reply } = await worker.command(new Uint8Array(0));
    assert.deepEqual(JSON.parse(decodeText(reply)), {
      setTimeout: "undefined",
      setInterval: "undefined",
      setImmediate: "function",
      queueMicrotask: "undefined",
      console: "undefined",
      print: "function",
      TextEncoder: "function",
      TextDecoder: "function",
      Base64: "object",
      btoa: "undefined",
      atob: "undefined",
      issueCommand: "function",
      harden: "function",
      gc: "function",
      performance: "object",
      Compartment: "function",
      lockdown: "undefined",
      structuredClone: "undefined",
      SharedArrayBuffer: "function",
    });
  });

  test("print reaches onPrint, one call per line", async () => {
    const lines: string[] = [];
    const worker = await open({ onPrint: (line) => lines.push(line) });
    await worker.evaluate('print("vote", 1, true); print("second")');
    // stdout is a separate pipe from the replies: wait for it rather than assume ordering.
    for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(lines, ["vote 1 true", "second"]);
  });

  test("promise jobs and setImmediate callbacks run before the call returns", async () => {
    const worker = await openBundle(`
      var order = [];
      function handleCommand() {
        setImmediate(function () { order.push("immediate"); });
        Promise.resolve().then(function () { order.push("job"); });
        order.push("sync");
        return new ArrayBuffer(0);
      }
      function report() { return new TextEncoder().encode(order.join()).buffer; }`);
    await worker.command(new Uint8Array(0));
    await worker.evaluate("handleCommand = report");
    const { reply } = await worker.command(new Uint8Array(0));
    assert.equal(decodeText(reply), "sync,job,immediate");
  });

  test("top-level let/const do not outlive their evaluation, var and functions do", async () => {
    const worker = await open();
    await worker.evaluate("var kept = 1; function alsoKept() {} const local = 2;");
    await worker.evaluate('if (kept !== 1 || typeof alsoKept !== "function") throw new Error("lost")');
    const error = await rejection(worker.evaluate("local"));
    assert.match(error.xsMessage ?? "", /^ReferenceError: .*local/);
  });

  test("a typed array returned by handleCommand comes back as zero bytes", async () => {
    const worker = await openBundle("function handleCommand() { return new Uint8Array([1, 2, 3]); }");
    const { reply } = await worker.command(new Uint8Array(0));
    assert.equal(reply.length, 0);
  });
});

describe("meter", () => {
  const code = "var total = 0; for (var i = 0; i < 100; i++) total += i * 2;";

  test("compute is positive and identical for the same code in two fresh workers", async () => {
    const [a, b] = await Promise.all([open(), open()]);
    const [meterA, meterB] = await Promise.all([a.evaluate(code), b.evaluate(code)]);
    assert.ok(meterA.compute > 0);
    assert.equal(meterA.compute, meterB.compute);
    assert.deepEqual(Object.keys(meterA).sort(), ["allocate", "compute", "currentHeapCount"]);
    assert.ok(meterA.allocate > 0 && meterA.currentHeapCount > 0);
  });

  test("compute grows with the work done and repeats for a repeated command", async () => {
    const worker = await open();
    const small = await worker.evaluate("for (var j = 0; j < 10; j++);");
    const large = await worker.evaluate("for (var k = 0; k < 1000; k++);");
    assert.ok(large.compute > small.compute * 50, `${small.compute} vs ${large.compute}`);

    await worker.evaluate(REVERSE);
    const message = new Uint8Array(64).fill(7);
    const first = await worker.command(message);
    const second = await worker.command(message);
    assert.equal(first.meter.compute, second.meter.compute);
  });

  test("a call over meteringLimit ends the worker instead of hanging", async () => {
    const worker = await open({ meteringLimit: 100_000, name: "spinner" });
    const error = await rejection(worker.evaluate("for (;;) {}"));
    assert.match(error.message, /spinner: .*too much computation/);
    assert.ok(await waitUntilGone(worker.pid));
    await rejection(worker.evaluate("1"));
  });
});

describe("commands", () => {
  test("handleCommand round-trips bytes, including netstring delimiters and large messages", async () => {
    const worker = await openBundle(REVERSE);
    const { reply, meter } = await worker.command(Uint8Array.of(1, 2, 0x3a, 0x2c, 0, 255));
    assert.deepEqual(reply, Uint8Array.of(255, 0, 0x2c, 0x3a, 2, 1));
    assert.ok(meter.compute > 0);

    const big = new Uint8Array(300_000).map((_, i) => (i * 31) & 0xff);
    const bigReply = await worker.command(big);
    assert.deepEqual(bigReply.reply, big.slice().reverse());
  });

  test("issueCommand reaches the host and the host's answer is visible in XS", async () => {
    const seen: string[] = [];
    const worker = await openBundle(
      `function handleCommand(buffer) {
        var question = new TextDecoder().decode(buffer);
        var answer = issueCommand(new TextEncoder().encode(question).buffer);
        if (!(answer instanceof ArrayBuffer)) throw new TypeError("not an ArrayBuffer");
        var n = JSON.parse(new TextDecoder().decode(answer)).n;
        return new TextEncoder().encode(JSON.stringify({ n: n + 1 })).buffer;
      }`,
      {
        onHostCommand: (message) => {
          seen.push(decodeText(message));
          return encodeText(JSON.stringify({ n: 41 }));
        },
      },
    );
    const { reply } = await worker.command(encodeText("number?"));
    assert.deepEqual(JSON.parse(decodeText(reply)), { n: 42 });
    assert.deepEqual(seen, ["number?"]);
  });

  test("queued calls run one at a time, in order, with async host answers in between", async () => {
    let active = 0;
    const worker = await openBundle(
      `var calls = 0;
      function handleCommand(buffer) {
        calls++;
        var fromHost = new TextDecoder().decode(issueCommand(buffer));
        return new TextEncoder().encode(calls + ":" + fromHost).buffer;
      }`,
      {
        onHostCommand: async (message) => {
          active++;
          assert.equal(active, 1);
          await new Promise((resolve) => setTimeout(resolve, 5 - message[0]!));
          active--;
          return encodeText(`host${message[0]}`);
        },
      },
    );
    const replies = await Promise.all(
      [0, 1, 2, 3, 4].map((i) => worker.command(Uint8Array.of(i)).then((r) => decodeText(r.reply))),
    );
    assert.deepEqual(replies, ["1:host0", "2:host1", "3:host2", "4:host3", "5:host4"]);
  });

  test("a failing host handler rejects the call with its own message; the worker survives", async () => {
    const worker = await openBundle(
      "function handleCommand(b) { issueCommand(b); return b; }",
      {
        onHostCommand: () => {
          throw new Error("no such host function");
        },
      },
    );
    const error = await rejection(worker.command(Uint8Array.of(1)));
    assert.match(error.message, /onHostCommand failed: no such host function/);
    assert.ok(error.cause instanceof Error);
    await worker.evaluate("handleCommand = function (b) { return b; }");
    assert.deepEqual((await worker.command(Uint8Array.of(9))).reply, Uint8Array.of(9));
  });

  test("issueCommand without onHostCommand rejects instead of hanging", async () => {
    const worker = await open();
    const error = await rejection(worker.evaluate("issueCommand(new ArrayBuffer(1))"));
    assert.match(error.message, /no onHostCommand/);
  });
});

describe("errors", () => {
  test("an exception thrown in XS rejects with its text; the worker survives", async () => {
    const worker = await openBundle(
      'function handleCommand() { throw new RangeError("ballot " + 7 + " out of range"); }',
    );
    const evalError = await rejection(worker.evaluate('throw new Error("boom")'));
    assert.equal(evalError.xsMessage, "Error: boom");
    assert.match(evalError.message, /uncaught exception in XS: Error: boom/);

    const commandError = await rejection(worker.command(new Uint8Array(0)));
    assert.equal(commandError.xsMessage, "RangeError: ballot 7 out of range");

    const thrownValue = await rejection(worker.evaluate("throw 42"));
    assert.equal(thrownValue.xsMessage, "42");
    assert.ok((await worker.evaluate("1 + 1")).compute > 0);
  });

  test("a syntax error rejects", async () => {
    const worker = await open();
    const error = await rejection(worker.evaluate("function ( {"));
    assert.match(error.xsMessage ?? "", /^SyntaxError: /);
  });

  test("a command with no handleCommand defined rejects", async () => {
    const worker = await open();
    const error = await rejection(worker.command(Uint8Array.of(1)));
    assert.match(error.xsMessage ?? "", /^TypeError: .*no function/);
  });

  test("startXsBundle rejects a bundle without handleCommand and closes its worker", async () => {
    const error = await rejection(startXsBundle("var notIt = 1;"));
    assert.match(error.message, /defines no global handleCommand/);
  });
});

describe("lifetime", () => {
  test("close() ends the process and later calls reject", async () => {
    const worker = await startXs();
    assert.ok(isRunning(worker.pid));
    await worker.close();
    assert.equal(isRunning(worker.pid), false);
    const error = await rejection(worker.evaluate("1"));
    assert.match(error.message, /closed/);
    await worker.close();
  });

  test("close() kills a worker that is busy and rejects its call", async () => {
    const worker = await startXs({ meteringLimit: 0 });
    const busy = rejection(worker.evaluate("for (;;) {}"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await worker.close();
    assert.match((await busy).message, /closed/);
    assert.equal(isRunning(worker.pid), false);
  });

  test("workers die when the test process exits, even a busy one", async () => {
    const harness = fileURLToPath(new URL("./xs_harness.ts", import.meta.url));
    const script = `
      import { startXs } from ${JSON.stringify(harness)};
      const idle = await startXs();
      const busy = await startXs({ meteringLimit: 0 });
      busy.evaluate("for (;;) {}").catch(() => {});
      await idle.evaluate("1");
      console.log(JSON.stringify([idle.pid, busy.pid]));
      setTimeout(() => process.exit(0), 100);`;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const pids: unknown = JSON.parse(child.stdout.trim());
    assert.ok(Array.isArray(pids) && pids.length === 2);
    for (const pid of pids) assert.ok(await waitUntilGone(Number(pid)), `worker ${pid} still running`);
  });

  test("an idle worker left open does not keep the process alive", () => {
    const harness = fileURLToPath(new URL("./xs_harness.ts", import.meta.url));
    const script = `
      import { startXs } from ${JSON.stringify(harness)};
      const worker = await startXs();
      await worker.evaluate("var x = 1");
      console.log(worker.pid);`;
    const started = Date.now();
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(child.status, 0, child.stderr);
    assert.ok(Date.now() - started < 15_000);
    assert.ok(Number(child.stdout.trim()) > 0);
  });
});
