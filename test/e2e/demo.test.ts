// The README's first command, as a person runs it: `pollkit-sim demo` in a child process (fast
// story, any free port). Its output must tell the whole story (charger fault, storage mode refused
// without a token, data uploaded, voters verified and refused, a cable pulled and put back, a power
// cut with no ballot lost, results transmitted and reconciled), the dashboard it names must answer
// with the election day in it, and Ctrl-C must stop it cleanly with exit code 0.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ReconRow, ResultRow, TurnoutRow } from "../../host/ops/views/stations.ts";

const root = new URL("../../", import.meta.url).pathname;
const STATIONS = ["ST-BGD-001", "ST-BSR-001"];

test("npm start's demo: the story at a glance, the dashboard answering, Ctrl-C exits 0", { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "simulator/cli/bin.ts", "demo", "--speed", "100000", "--port", "0", "--seconds", "100"], {
    cwd: root,
    env: { ...process.env, FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  const waitFor = async (re: RegExp, ms: number): Promise<RegExpMatchArray> => {
    const end = Date.now() + ms;
    for (;;) {
      const m = out.match(re);
      if (m) return m;
      if (done) assert.fail(`the demo exited before ${re}:\n${out}\n${err}`);
      if (Date.now() > end) assert.fail(`no ${re} within ${ms} ms:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const getJson = async <T>(url: string): Promise<T> => {
    const res = await fetch(url);
    assert.equal(res.status, 200, url);
    return (await res.json()) as T;
  };
  try {
    const url = (await waitFor(/dashboard: (http:\/\/127\.0\.0\.1:\d+)/, 40_000))[1];
    // The dashboard answers from the start, with the registered devices in its fleet.
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const fleet = await getJson<{ rows: { deviceId: string }[] }>(`${url}/api/fleet`);
    assert.deepEqual(fleet.rows.map((r) => r.deviceId).sort(), ["RAD-BGD-001", "RAD-BSR-001", "VVD-BGD-001", "VVD-BSR-001"]);

    await waitFor(/story complete in \d+ s/, 75_000);
    assert.match(out, /story complete in \d+ s, everything as it should be/, out);
    assert.doesNotMatch(out, /^!!/m, "no problem reported");

    // The story, as printed.
    assert.match(out, /storage mode for VVD-BGD-001 without a technician's token: DENIED/);
    assert.match(out, /console: critical alert charger-fault on RAD-BGD-001/);
    assert.match(out, /the charger-fault alert is cleared/);
    assert.match(out, /RAD-BSR-001 <- election definition of ST-BSR-001 .* signature checked, polls ready/);
    assert.match(out, /ST-BGD-001 {2}voter 1: card and finger match the register, verified/);
    assert.match(out, /voter 2's card with another person's finger: refused, the finger does not match/);
    assert.match(out, /registered elsewhere .*: refused, not on this station's register/);
    assert.match(out, /voter 1 comes back to vote again: refused, already voted/);
    assert.match(out, /VVD-BGD-001's USB cable is pulled/);
    assert.match(out, /VVD-BGD-001 back online at agent-karkh/);
    assert.match(out, /ST-BGD-001 now shows \d+ verified/);
    assert.match(out, /power cut on RAD-BSR-001 mid-count \((\d+) ballots counted so far\)/);
    assert.match(out, /RAD-BSR-001 powers up again: polls still open, \d+ ballots counted: none lost/);
    for (const st of STATIONS) {
      assert.match(out, new RegExp(`${st} {2}result transmitted: at the console`));
      assert.match(out, new RegExp(`${st} {2}reconciliation: 4 voters admitted, 4 ballots counted: match`));
    }

    // The dashboard's API holds the election day.
    const results = await getJson<{ rows: ResultRow[] }>(`${url}/api/results`);
    const recon = await getJson<{ rows: ReconRow[]; counts: Record<string, number> }>(`${url}/api/reconciliation`);
    const turnout = await getJson<{ rows: TurnoutRow[] }>(`${url}/api/turnout`);
    for (const st of STATIONS) {
      const r = results.rows.find((x) => x.stationId === st);
      assert.ok(r, `result of ${st}`);
      assert.equal(r.ballotsCounted, 4);
      assert.equal(r.electionName, "General Election 2026");
      assert.equal(recon.rows.find((x) => x.stationId === st)?.status, "match", st);
      const t = turnout.rows.find((x) => x.stationId === st);
      assert.equal(t?.verified, 4, `turnout of ${st}`);
      assert.equal(t?.final, true);
    }
    assert.equal(recon.counts.match, 2);
    assert.equal(turnout.rows.find((x) => x.stationId === "ST-BGD-001")?.rejectedByReason["already-voted"], 1);

    // Ctrl-C: a clean stop, exit code 0.
    child.kill("SIGINT");
    let timer: NodeJS.Timeout | undefined;
    const end = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 20_000)))]);
    clearTimeout(timer);
    assert.ok(end !== null, `the demo did not stop after SIGINT:\n${out.slice(-2000)}`);
    assert.equal(end.code, 0, `exit code after SIGINT (signal ${end.signal}):\n${err}`);
    assert.match(out, /stopping \(Ctrl-C\)/);
    assert.match(out, /stopped after \d+ s/);
  } finally {
    if (!done) child.kill("SIGKILL");
  }
});
