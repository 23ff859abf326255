// The hello exchange on a line that eats messages: a simulated device running the real firmware,
// an in-process link whose host-to-device direction can be silenced, and a real DeviceSession.
// Whichever hello is lost (the agent's answer to a reboot, the device's greeting), the exchange
// completes once the line is clean again and the device's records flow to the store.

import { test } from "node:test";
import assert from "node:assert/strict";
import { SimDevice } from "../../simulator/device/sim_device.ts";
import { createMemoryLink } from "../../simulator/links/memory_link.ts";
import { memoryHostLink } from "../link/memory_host_link.ts";
import { FrameDecoder } from "../../protocol/framing.ts";
import { decodeEnvelope, RebootReason, type Hello } from "../../protocol/generated/device_codec.ts";
import { DeviceSession } from "./device_session.ts";
import { ArrayStore } from "../../test/helpers/array_store.ts";
import { waitFor } from "../../test/helpers/wait.ts";

interface Line {
  sd: SimDevice;
  session: DeviceSession;
  store: ArrayStore;
  /** Hellos the device sent, in order. */
  deviceHellos: Hello[];
  /** Host-to-device writes swallowed by the line. */
  eaten: () => number;
  silence(on: boolean): void;
  stop(): void;
}

function line(serial: string): Line {
  let silent = false;
  let eaten = 0;
  const deviceHellos: Hello[] = [];
  const watch = new FrameDecoder({
    onFrame: (p) => {
      const env = decodeEnvelope(p);
      if (env.hello) deviceHellos.push(env.hello);
    },
    onConsole: () => {},
    onError: () => {},
  });
  const link = createMemoryLink({
    deferred: true,
    impair: {
      toDevice: (d) => {
        if (!silent) return d;
        eaten++;
        return new Uint8Array(0);
      },
      toHost: (d) => {
        watch.pushBytes(d);
        return d;
      },
    },
  });
  // A short link resend keeps the greetings' back-off within a test's patience.
  const sd = new SimDevice({ serial, role: "result", hostLink: link.device, healthIntervalMs: 60_000, wallMs: Date.now(), linkResendMs: 300, dataFlashPages: 0 });
  const store = new ArrayStore();
  sd.powerOn();
  const session = new DeviceSession({ link: memoryHostLink(link.host, `mem:${serial}`), agentId: "agent-test", site: "TEST-SITE", store, helloTimeoutMs: 300 });
  return {
    sd,
    session,
    store,
    deviceHellos,
    eaten: () => eaten,
    silence: (on) => {
      silent = on;
    },
    stop: () => {
      void session.close();
      if (sd.running) sd.powerOff();
    },
  };
}

const inSession = (l: Line): boolean => l.sd.firmware?.link?.inSession() === true;

test("a reboot whose host Hello is lost: the agent resends until the device answers, and records flow", async () => {
  const l = line("RAD-HELLO-1");
  try {
    await waitFor("the first session", () => l.session.state === "ready" && inSession(l));
    const answers = l.deviceHellos.filter((h) => h.answer === true).length;
    assert.ok(answers >= 1, "the device answered the agent's hello");
    const bootBefore = l.session.deviceHello()?.bootId;

    // The line to the device goes deaf across a reboot: the agent's hello for the new boot is lost.
    l.silence(true);
    l.sd.powerOff();
    l.sd.powerOn(RebootReason.BROWN_OUT);
    await waitFor("the new boot's greeting at the agent", () => l.session.deviceHello()?.bootId !== bootBefore);
    await waitFor("a lost host hello", () => l.eaten() >= 1);
    await new Promise((r) => setTimeout(r, 800)); // greetings and resends meet a deaf line
    assert.equal(inSession(l), false, "no host hello reached the device while the line was deaf");
    const greetings = l.deviceHellos.filter((h) => h.answer !== true && h.bootId === l.session.deviceHello()?.bootId).length;
    assert.ok(greetings >= 2, `the device repeats its greeting while nobody answers (${greetings})`);

    l.silence(false);
    await waitFor("the session of the new boot", () => inSession(l));
    const seq = await new Promise<number>((resolve) => l.sd.firmware?.record(1, new Uint8Array([1, 2, 3]), resolve));
    assert.ok(seq > 0);
    await waitFor(`record ${seq} stored`, () => l.store.items.some((i) => i.channel === "record" && i.seq === seq));
    await waitFor("its acknowledgement", () => (l.sd.firmware?.journal.ackedSeq() ?? 0) >= seq);
  } finally {
    l.stop();
  }
});

test("greetings back off while no host answers, and stop once one does", async () => {
  const l = line("RAD-HELLO-2");
  try {
    l.silence(true);
    await waitFor("the agent's first hello eaten", () => l.eaten() >= 1);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 2500));
    const greetings = l.deviceHellos.filter((h) => h.answer !== true).length;
    // 300 ms doubling: 0, 0.3, 0.9, 2.1 s (4 or 5 with scheduling) - not one every 300 ms (9).
    assert.ok(greetings >= 3 && greetings <= 6, `greetings in ${Date.now() - t0} ms: ${greetings}`);
    assert.notEqual(l.session.state, "ready");
    l.silence(false);
    await waitFor("the session", () => l.session.state === "ready" && inSession(l));
    const after = l.deviceHellos.length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(l.deviceHellos.length, after, "no more hellos once the session is on");
  } finally {
    l.stop();
  }
});
