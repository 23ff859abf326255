// The demo (README quick start, `npm start`): the embedded MQTT broker, the operations console
// (dashboard and JSON API), one host agent per site (two sites), and per polling station a
// verification device and a result device, each on its own pseudo-terminal, all real parts (the
// firmware, the chip models, the agent's sessions, outbox and MQTT, the console's ingest and
// views). It plays an accelerated story (simulator/demo/story.ts): warehouse racks, a charger
// fault, station data uploaded, election day with genuine and refused voters, a cable pulled, a
// power cut mid-count, polls closing, results transmitted and reconciled. Then it keeps running,
// so the dashboard can be explored, until Ctrl-C (or --seconds).

import { startWorld, type World } from "../demo/world.ts";
import { StoryClock, StoryStopped } from "../demo/clock.ts";
import { BatteryPhysics } from "../demo/physics.ts";
import { ConsoleApi } from "../demo/console_api.ts";
import { playStory, STORY_START } from "../demo/story.ts";

export interface DemoOptions {
  /** Polling stations (one VVD and one RAD each), spread over the two sites. */
  stations: number;
  /** Voters on each station's register. */
  voters: number;
  /** Simulated seconds per real second (battery physics and the story's pacing). */
  speed: number;
  /** The dashboard's port (0: any free port). */
  port: number;
  /** Stop after this many seconds (default: at Ctrl-C). */
  seconds?: number;
  /** Print every device's console lines too. */
  verbose?: boolean;
}

export const DEFAULT_SPEED = 720;
export const MAX_VOTERS = 30;

/** Checks the options; returns an error for a person, or null. */
export function demoOptionsError(o: DemoOptions): string | null {
  if (!Number.isInteger(o.stations) || o.stations < 1 || o.stations > 20) return "--stations must be a whole number from 1 to 20";
  if (!Number.isInteger(o.voters) || o.voters < 2 || o.voters > MAX_VOTERS) return `--voters must be a whole number from 2 to ${MAX_VOTERS}`;
  if (!Number.isFinite(o.speed) || o.speed < 1 || o.speed > 1e6) return "--speed must be a number from 1 to 1000000";
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) return "--port must be a port number (0: any free port)";
  if (o.seconds !== undefined && !(Number.isFinite(o.seconds) && o.seconds > 0)) return "--seconds must be a positive number";
  return null;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  const err = demoOptionsError(o);
  if (err !== null) {
    console.error(`pollkit-sim demo: ${err}`);
    process.exit(2);
  }
  const t0 = performance.now();
  const out = (line: string): void => console.log(line);
  const say = (line: string): void => out(`demo: ${line}`);
  const minutes = o.speed / 60;
  say(`an election day on simulated devices, ${o.speed}x faster than real time (one second here is ${minutes >= 1 ? `${+minutes.toFixed(1)} minutes` : `${o.speed} seconds`})`);

  let world: World | null = null;
  let clock: StoryClock | null = null;
  let sampler: NodeJS.Timeout | null = null;
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    out("");
    say(`stopping (${why})`);
    clock?.stop();
    if (sampler !== null) clearInterval(sampler);
    const forced = setTimeout(() => {
      say("did not stop within 10 s; exiting anyway");
      process.exit(0);
    }, 10000);
    forced.unref();
    await world?.stop();
    say(`stopped after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("Ctrl-C"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  if (o.seconds !== undefined) setTimeout(() => void stop(`--seconds ${o.seconds}`), o.seconds * 1000).unref();

  try {
    world = await startWorld({
      stations: o.stations,
      voters: o.voters,
      port: o.port,
      say,
      onDeviceLog: o.verbose ? (serial, line) => out(`  [${serial}] ${line}`) : undefined,
    });
  } catch (e) {
    if (stopping) return;
    console.error(`pollkit-sim demo: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  }
  if (stopping) return;
  const w = world;
  say(`dashboard: ${w.ops.url}   (fleet, alerts, turnout, results, reconciliation; ?lang=ar for Arabic)`);
  for (const s of w.sites) say(`host agent ${s.agentId} (site ${s.id}, ${s.governorate} / ${s.office}): ${s.agent.controlUrl}   try: POLLKIT_AGENT=${s.agent.controlUrl} npx tsx host/cli/bin.ts devices`);
  say("Ctrl-C stops");

  const physics = new BatteryPhysics(() => w.devices.map((d) => d.running.device));
  clock = new StoryClock({ speed: o.speed, startMs: STORY_START, onAdvance: (sim, real) => physics.onAdvance(sim, real) });
  clock.start();
  sampler = setInterval(() => physics.sample(), 500);
  try {
    const r = await playStory({ world: w, console: new ConsoleApi(w.ops.url), clock, physics, out });
    out("");
    say(
      `story complete in ${((performance.now() - t0) / 1000).toFixed(0)} s${r.problems.length ? ` with ${r.problems.length} problem(s): ${r.problems.join("; ")}` : ", everything as it should be"}`,
    );
    say(`the devices keep running and reporting; the dashboard stays at ${w.ops.url}; Ctrl-C stops`);
  } catch (e) {
    if (e instanceof StoryStopped || stopping) return;
    out(`!!     the story stopped: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    say(`the devices keep running; the dashboard stays at ${w.ops.url}; Ctrl-C stops`);
  }
}
