// The demo's timeline: the day before the election at the warehouse racks (storage mode set with
// a technician's token, a charger fault, the maintenance charge, station data uploaded through the
// agents), the night, then election day at every station in parallel (polls opening, voters at
// the verification device: genuine, an impostor, someone not on the register, a repeat voter;
// ballots into the result device; a cable pulled and put back; a power cut mid-count), polls
// closing, results transmitted and reconciled at the operations console. Every step says what it
// did; what the console shows is read back from its API.

import { ChargeMode, ChargeState, PollsState } from "../../protocol/generated/device_codec.ts";
import { uploadThroughAgent, type KitVoter } from "../scenario/station_kit.ts";
import type { SimBallot } from "../models/ballot_scanner.ts";
import { hhmm, StoryStopped, type StoryClock } from "./clock.ts";
import type { BatteryPhysics } from "./physics.ts";
import { batteryText, chargeModeName, contestLines, type ConsoleApi } from "./console_api.ts";
import { waitReal, type DemoDevice, type DemoStation, type World } from "./world.ts";

const MIN = 60000;
const HOUR = 60 * MIN;
/** Midnight (UTC) before the day before the election, and of election day. */
export const EVE_MIDNIGHT = Date.UTC(2026, 4, 9);
export const DAY_MIDNIGHT = EVE_MIDNIGHT + 24 * HOUR;
export const STORY_START = EVE_MIDNIGHT + 8 * HOUR - 10 * MIN;
const eve = (h: number, m = 0): number => EVE_MIDNIGHT + h * HOUR + m * MIN;
const day = (h: number, m = 0): number => DAY_MIDNIGHT + h * HOUR + m * MIN;

export interface StoryContext {
  world: World;
  console: ConsoleApi;
  clock: StoryClock;
  physics: BatteryPhysics;
  out: (line: string) => void;
}

export interface StoryOutcome {
  /** What did not happen as it should (empty when all went well). */
  problems: string[];
}

/** A small seeded generator, so two runs cast the same ballots. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

class Story {
  readonly problems: string[] = [];
  constructor(private readonly c: StoryContext) {}

  say(t: number, text: string): void {
    this.c.out(`${hhmm(t)}  ${text}`);
  }

  note(text: string): void {
    this.c.out(`       ${text}`);
  }

  section(title: string): void {
    this.c.out("");
    this.c.out(`== ${title} ==`);
  }

  problem(text: string): void {
    this.problems.push(text);
    this.c.out(`!!     ${text}`);
  }

  /** Waits for something to show; a problem (not an exception) if it does not come. */
  async observe<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T | null> {
    try {
      return await waitReal(what, ms, async () => {
        if (this.c.clock.isStopped) throw new StoryStopped();
        return probe();
      }, 200);
    } catch (e) {
      if (e instanceof StoryStopped) throw e;
      this.problem(e instanceof Error ? e.message : String(e));
      return null;
    }
  }

  private get w(): World {
    return this.c.world;
  }

  private get api(): ConsoleApi {
    return this.c.console;
  }

  /**
   * The console's battery line for these devices, from health reports sent after this moment
   * (the power services sample now; the next reports carry it).
   */
  async batteries(devices: DemoDevice[]): Promise<string> {
    this.c.physics.sample();
    const since = Date.now() + 50;
    const rows =
      (await this.observe("fresh health reports at the console", 10000, async () => {
        const r = await this.api.fleet();
        return devices.every((d) => r.some((x) => x.deviceId === d.serial && x.lastSeenMs >= since)) ? r : null;
      })) ?? (await this.api.fleet());
    return devices
      .map((d) => rows.find((r) => r.deviceId === d.serial))
      .filter((r) => r !== undefined)
      .map((r) => batteryText(r))
      .join(" | ");
  }

  /** Every device charging (or full) at the console. */
  async allCharging(): Promise<true | null> {
    const rows = await this.api.fleet();
    const on = [ChargeState.PRE_CHARGE, ChargeState.FAST_CHARGE, ChargeState.DONE];
    return this.w.devices.every((d) => rows.some((r) => r.deviceId === d.serial && r.socPercent !== null && on.includes(r.chargeState ?? -1))) ? true : null;
  }

  async command(d: DemoDevice, body: Record<string, unknown>): Promise<{ ok: boolean; text: string }> {
    const r = await d.site.client.command(d.serial, body);
    const ok = (r.status ?? 0) === 0;
    const names: Record<number, string> = { 1: "ERROR", 2: "DENIED", 3: "UNSUPPORTED", 4: "BAD_ARGUMENT", 5: "BUSY" };
    return { ok, text: ok ? "OK" : `${names[r.status ?? 1] ?? r.status}${r.message ? `: ${r.message}` : ""}` };
  }

  // ---- the day before ------------------------------------------------------------------------

  async warehouse(): Promise<void> {
    const w = this.w;
    const tech = w.commission.technician;
    const clock = this.c.clock;
    this.section("The day before the election: devices on the warehouse rack chargers");
    await clock.at(eve(8));
    this.say(eve(8), `${w.devices.length} devices come out of storage onto the rack chargers at ${w.sites.map((s) => s.id).join(" and ")}`);
    await this.observe("every device ready at its site's agent", 30000, async () => {
      for (const s of w.sites) {
        const list = await s.client.devices();
        const mine = w.devices.filter((d) => d.site === s);
        if (!mine.every((d) => list.some((x) => x.deviceId === d.serial && x.state === "ready" && x.health !== null))) return null;
      }
      return true;
    });
    await this.observe("the console hears every device charging", 20000, () => this.allCharging());
    this.note(`console: ${await this.batteries(w.devices)}`);

    // Storage mode needs a technician's authority: the agent relays, the device checks.
    await clock.at(eve(8, 10));
    const first = w.devices[0];
    const denied = await this.command(first, { setChargeMode: { mode: ChargeMode.STORAGE } });
    this.say(eve(8, 10), `storage mode for ${first.serial} without a technician's token: ${denied.text}`);
    if (denied.ok) this.problem(`${first.serial} accepted an unsigned storage-mode command`);
    await clock.at(eve(8, 15));
    const results: string[] = [];
    for (const d of w.devices) {
      const r = await this.command(d, tech.commandJson({ setChargeMode: { mode: ChargeMode.STORAGE } }, d.serial));
      results.push(`${d.serial} ${r.text}`);
      if (!r.ok) this.problem(`storage mode refused by ${d.serial}: ${r.text}`);
    }
    this.say(eve(8, 15), `technician ${tech.id} (token signed by the commission) sets storage mode: ${results.join(", ")}`);
    this.note("storage mode holds a cell at 40-60 % for months: below, a gentle top-up; above, no charge (these cells keep real time in the demo)");
    const flagged = await this.observe("storage mode and its alerts at the console", 20000, async () => {
      const rows = await this.api.fleet();
      if (!w.devices.every((d) => rows.some((r) => r.deviceId === d.serial && r.chargeMode === ChargeMode.STORAGE))) return null;
      const alerts = await this.api.alerts();
      const out = alerts.filter((a) => (a.kind === "storage-window" || a.kind === "battery-low") && w.devices.some((d) => d.serial === a.deviceId));
      const expected = w.devices.filter((d) => d.startSoc < 40 || d.startSoc > 60).length;
      return out.length >= Math.min(1, expected) ? out : null;
    });
    if (flagged !== null) {
      this.note(`console: every device in ${chargeModeName(ChargeMode.STORAGE)} mode; alerts: ${flagged.map((a) => `${a.deviceId} ${a.kind} (${a.severity})`).join(", ") || "none"}`);
    }

    await clock.at(eve(8, 45));
    this.say(eve(8, 45), `console: ${await this.batteries(w.devices)}`);

    // A charger fault on the rack: the device reports it, the console raises a critical alert.
    await clock.at(eve(9));
    const faulty = w.stations[0].rad;
    const charger = faulty.running.device.power?.charger;
    if (charger) {
      charger.injectFault("input");
      this.say(eve(9), `${faulty.serial}'s rack slot fails: the charger reports an input fault (injected into its BQ25895)`);
      const a = await this.observe(`charger-fault alert for ${faulty.serial}`, 20000, async () => (await this.api.alerts(faulty.serial)).find((x) => x.kind === "charger-fault") ?? null);
      if (a) this.note(`console: ${a.severity} alert ${a.kind} on ${a.deviceId} (${Object.entries(a.params).map(([k, v]) => `${k} ${v}`).join(", ")})`);
      await clock.at(eve(9, 40));
      charger.injectFault("input", false);
      this.say(eve(9, 40), `the technician moves ${faulty.serial} to a good slot`);
      const gone = await this.observe(`charger-fault alert of ${faulty.serial} cleared`, 20000, async () => ((await this.api.alerts(faulty.serial)).some((x) => x.kind === "charger-fault") ? null : true));
      if (gone) this.note("console: the charger-fault alert is cleared");
    }

    await clock.at(eve(9, 50));
    this.say(eve(9, 50), `console: ${await this.batteries(w.devices)}`);

    // Before election day every device is charged to full: back to normal mode.
    await clock.at(eve(10));
    const normal: string[] = [];
    for (const d of w.devices) {
      const r = await this.command(d, tech.commandJson({ setChargeMode: { mode: ChargeMode.NORMAL } }, d.serial));
      normal.push(`${d.serial} ${r.text}`);
      if (!r.ok) this.problem(`normal mode refused by ${d.serial}: ${r.text}`);
    }
    this.say(eve(10), `maintenance charge before election day, normal mode (charge to full): ${normal.join(", ")}`);
    for (const t of [eve(10, 30), eve(11), eve(11, 30), eve(11, 50)]) {
      await clock.at(t);
      const rows = await this.api.fleet();
      this.say(t, `console: ${await this.batteries(w.devices)}`);
      if (w.devices.every((d) => rows.some((r) => r.deviceId === d.serial && r.chargeState === ChargeState.DONE))) break;
    }

    // Station data: the register to each VVD, the election definition to each RAD, signed by the
    // commission, uploaded through the site's agent under the technician's token.
    await clock.at(eve(12));
    this.say(eve(12), `technician ${tech.id} uploads each station's signed data through its site's agent`);
    for (const st of w.stations) {
      for (const [d, kind, bytes, what] of [
        [st.vvd, "configuration", st.data.configurationArtifact, `configuration (station ${st.id}, site ${st.site.id})`],
        [st.rad, "configuration", st.data.configurationArtifact, `configuration (station ${st.id}, site ${st.site.id})`],
        [st.vvd, "station-data", st.data.registerArtifact, `register of ${st.id} (${st.data.voters.length} voters, fingerprint templates)`],
        [st.rad, "election-definition", st.data.electionArtifact, `election definition of ${st.id} (${st.data.definition.contests?.length ?? 0} contests)`],
      ] as const) {
        const r = await uploadThroughAgent({ controlUrl: d.site.agent.controlUrl }, d.serial, kind, bytes, { technician: tech, name: `${st.id}-${kind}.bin` });
        if (!r.ok || r.outcome === undefined) {
          this.problem(`${d.serial} refused the ${what}: ${r.error ?? "?"}`);
          continue;
        }
        const size = r.outcome.bytes < 1024 ? `${r.outcome.bytes} B` : `${(r.outcome.bytes / 1024).toFixed(1)} KB`;
        if (kind === "configuration") {
          this.note(`${d.serial} <- ${what}: ${size}, signature checked`);
          continue;
        }
        const state = d.kit.pollsState();
        this.note(`${d.serial} <- ${what}: ${size} in ${(r.outcome.ms / 1000).toFixed(1)} s, signature checked, polls ${state === PollsState.READY ? "ready" : `state ${state}`}`);
        if (state !== PollsState.READY) this.problem(`${d.serial} is not ready after its data (polls state ${state})`);
      }
    }
    const ready = await this.observe("every device ready for the polls at the console", 20000, async () => {
      const rows = await this.api.fleet();
      return w.devices.every((d) => rows.some((r) => r.deviceId === d.serial && r.pollsState === PollsState.READY)) ? true : null;
    });
    if (ready) this.note(`console: all ${w.devices.length} devices hold their station's data, polls ready`);

    await clock.at(eve(13));
    this.say(eve(13), "the devices stay on the racks overnight");
    clock.jump(day(6));
    this.c.physics.sample();
    await this.observe("the console sees the night's charge", 20000, async () => {
      const rows = await this.api.fleet();
      return w.devices.every((d) => rows.some((r) => r.deviceId === d.serial && (r.socPercent ?? 0) >= 90)) ? true : null;
    });
    this.say(day(6), `next morning, console: ${await this.batteries(w.devices)}`);
  }

  // ---- election day ----------------------------------------------------------------------------

  async electionDay(): Promise<void> {
    const w = this.w;
    const clock = this.c.clock;
    this.section("Election day");
    await clock.at(day(6, 30));
    for (const d of w.devices) d.running.device.power?.setCharger(false);
    this.say(day(6, 30), "the devices leave the racks for their polling stations: on battery from now on");
    clock.enter(w.stations.length);
    await Promise.all(
      w.stations.map(async (st) => {
        try {
          await this.station(st);
        } finally {
          clock.leave();
        }
      }),
    );
  }

  private async station(st: DemoStation): Promise<void> {
    const clock = this.c.clock;
    const { vvd, rad, data } = st;
    const tag = st.id;
    const random = rng(7919 * (st.index + 1));
    const ballots: SimBallot[] = [];
    const newBallot = (): SimBallot => {
      const p = random() < 0.08 ? null : Math.floor(random() * 3);
      const a = Math.floor(random() * 5);
      const b = Math.floor(random() * 5);
      const council = random() < 0.5 || a === b ? [a] : [a, b];
      const ballot = data.ballot([p, council]);
      ballots.push(ballot);
      return ballot;
    };

    await clock.at(day(7));
    await vvd.kit.openPollsVvd(data.supervisorCard);
    await rad.kit.openPollsRad();
    this.say(day(7), `${tag}  polls open: the supervisor's card on ${vvd.serial}, the supervisor key on ${rad.serial}`);

    // The day's events at this station, in time order.
    const n = data.voters.length;
    const span = 9 * HOUR + 30 * MIN;
    const times = data.voters.map((_v, k) => day(7, 30) + Math.round((k * span) / Math.max(1, n - 1) / MIN) * MIN);
    type Ev = { t: number; run: () => Promise<void> };
    const events: Ev[] = [];
    data.voters.forEach((v, k) => events.push({ t: times[k], run: () => this.voter(st, v, k + 1, times[k], newBallot) }));
    const first = st.index === 0;
    const cutAt = this.w.stations.length > 1 ? 1 : 0;
    if (first) {
      const victim = data.voters[Math.min(1, n - 1)];
      const vk = Math.min(1, n - 1) + 1;
      events.push({
        t: day(8, 15),
        run: async () => {
          const o = await vvd.kit.presentVoter(victim.card, [victim.impostor]);
          this.say(day(8, 15), `${tag}  someone presents voter ${vk}'s card with another person's finger: ${verdictText(o.verdict)} after ${o.attempts} captures`);
          if (o.verified) this.problem(`${tag}: an impostor was verified`);
        },
      });
      events.push({
        t: day(9, 10),
        run: async () => {
          const o = await vvd.kit.presentVoter(data.outsider.card, [data.outsider.live]);
          this.say(day(9, 10), `${tag}  a voter registered elsewhere comes with a genuine card and finger: ${verdictText(o.verdict)}`);
          if (o.verified) this.problem(`${tag}: a voter from another register was verified`);
        },
      });
      events.push({
        t: day(15, 20),
        run: async () => {
          const o = await vvd.kit.presentVoter(data.voters[0].card, [data.voters[0].live]);
          this.say(day(15, 20), `${tag}  voter 1 comes back to vote again: ${verdictText(o.verdict)}`);
          if (o.verified) this.problem(`${tag}: a repeat voter was verified`);
        },
      });
      const mid = Math.floor(n / 2);
      const out = times[mid] - 50 * MIN;
      const back = times[mid] + 40 * MIN;
      events.push({ t: out, run: () => this.unplug(st, out) });
      events.push({ t: back, run: () => this.replug(st, back) });
    }
    if (st.index === cutAt) {
      const k = Math.min(1, n - 1);
      const t = times[k] + 20 * MIN;
      events.push({ t, run: () => this.powerCut(st, t) });
    }
    events.sort((a, b) => a.t - b.t);
    for (const e of events) {
      await clock.at(e.t);
      await e.run();
    }

    // Polls close: the VVD's signed final turnout report, the RAD's signed station result.
    await clock.at(day(18));
    const turnout = await vvd.kit.closePollsVvd(data.supervisorCard);
    const result = await rad.kit.closePollsRad();
    this.say(
      day(18),
      `${tag}  polls close: ${vvd.serial} signs its final turnout report (${turnout.verified ?? 0} verified, ${turnout.rejected ?? 0} refused); ` +
        `${rad.serial} signs the station result (${result.ballotsCounted ?? 0} ballots) and prints the receipt`,
    );
    if (st.index === 0) {
      try {
        const receipts = await rad.kit.waitVoucher();
        this.note(`${tag}  ${rad.serial}'s receipt for the station's wall:`);
        const lines = (receipts[receipts.length - 1] ?? []).slice();
        while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
        for (const l of lines) this.note(`${tag}    | ${l}`);
      } catch (e) {
        this.problem(`${tag}: no receipt printed (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    if ((result.ballotsCounted ?? 0) !== ballots.length) this.problem(`${tag}: ${ballots.length} ballots cast, ${result.ballotsCounted ?? 0} counted`);

    const row = await this.observe(`the result of ${tag} at the console`, 30000, () => this.api.result(tag));
    if (row) {
      this.note(`${tag}  result transmitted: at the console ${Math.max(0, row.receivedMs - row.signedMs)} ms after signing, ${row.ballotsCounted} ballots, from ${row.deviceId} (signed, record ${row.seq})${row.flags.length ? `, flags: ${row.flags.join(", ")}` : ""}`);
      for (const l of contestLines(row)) this.note(`${tag}    ${l}`);
    }
    const recon = await this.observe(`the reconciliation of ${tag}`, 30000, async () => {
      const r = await this.api.reconciliation(tag);
      return r !== null && r.status !== "open" && r.status !== "missing-result" && r.status !== "missing-turnout" ? r : null;
    });
    if (recon) {
      this.note(`${tag}  reconciliation: ${recon.admitted ?? "?"} voters admitted, ${recon.ballotsCounted ?? "?"} ballots counted: ${recon.status}`);
      if (recon.status !== "match") this.problem(`${tag}: reconciliation ${recon.status} (${recon.flags.join(", ")})`);
    }
  }

  private async voter(st: DemoStation, v: KitVoter, k: number, t: number, newBallot: () => SimBallot): Promise<void> {
    const o = await st.vvd.kit.presentVoter(v.card, [v.live]);
    if (!o.verified) {
      this.say(t, `${st.id}  voter ${k}: ${verdictText(o.verdict)}`);
      this.problem(`${st.id}: genuine voter ${k} was not verified (${o.verdict})`);
      return;
    }
    const fed = await st.rad.kit.feed([newBallot()]);
    const counted = st.rad.kit.tallyCounts().counted;
    this.say(t, `${st.id}  voter ${k}: card and finger match the register, verified; the ballot is ${fed.accepted.length === 1 ? "counted" : "NOT counted"} by ${st.rad.serial} (${counted} so far)`);
    if (fed.accepted.length !== 1) this.problem(`${st.id}: a ballot was not accepted`);
  }

  private async unplug(st: DemoStation, t: number): Promise<void> {
    await st.vvd.running.unplug();
    this.say(t, `${st.id}  ${st.vvd.serial}'s USB cable is pulled; it keeps verifying, its records wait in its journal`);
  }

  private async replug(st: DemoStation, t: number): Promise<void> {
    const d = st.vvd;
    const onDevice = d.kit.turnout().verified ?? 0;
    const before = (await this.api.turnout(st.id))?.verified ?? 0;
    await d.running.replug();
    this.say(t, `${st.id}  ${d.serial} is plugged back in (it verified ${onDevice} voters, the console has heard of ${before})`);
    const back = await this.observe(`${d.serial} back online at ${d.site.agentId}`, 20000, async () =>
      (await d.site.client.devices()).some((x) => x.deviceId === d.serial && x.state === "ready") ? true : null,
    );
    if (back) this.note(`${d.serial} back online at ${d.site.agentId}: the agent reopened its port`);
    const caught = await this.observe(`the console catches up with ${d.serial}`, 20000, async () => {
      const r = await this.api.turnout(st.id);
      return r !== null && r.verified >= onDevice ? r : null;
    });
    if (caught) this.note(`console: ${st.id} now shows ${caught.verified} verified: the journal's backlog was resent and delivered once`);
  }

  private async powerCut(st: DemoStation, t: number): Promise<void> {
    const d = st.rad;
    const before = d.kit.tallyCounts().counted;
    d.kit.powerCut();
    this.say(t, `${st.id}  power cut on ${d.serial} mid-count (${before} ballots counted so far)`);
    await this.c.clock.sleepReal(1000);
    await d.kit.start();
    const after = d.kit.tallyCounts().counted;
    const open = d.kit.pollsState() === PollsState.OPEN;
    this.note(`${st.id}  ${d.serial} powers up again: polls ${open ? "still open" : `state ${d.kit.pollsState()}`}, ${after} ballots counted: ${after === before ? "none lost" : "BALLOTS LOST"}`);
    if (after !== before || !open) this.problem(`${st.id}: after the power cut ${after} ballots (was ${before}), polls ${open ? "open" : "not open"}`);
  }

  // ---- after the polls -------------------------------------------------------------------------

  async epilogue(): Promise<void> {
    const w = this.w;
    const counts = await this.api.reconciliationCounts();
    this.section("After the polls");
    this.say(day(19), `console: ${w.stations.length} station${w.stations.length === 1 ? "" : "s"}, reconciliation ${Object.entries(counts).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`);
    for (const d of w.devices) d.running.device.power?.setCharger(true);
    this.say(day(19), "the devices go back on the rack chargers");
    await this.observe("the devices charging again at the console", 20000, () => this.allCharging());
    this.note(`console: ${await this.batteries(w.devices)}`);
    this.c.clock.runFree();
  }
}

function verdictText(key: string): string {
  const m: Record<string, string> = {
    "verify.verified": "verified",
    "verify.rejected.finger_mismatch": "refused, the finger does not match",
    "verify.rejected.not_in_register": "refused, not on this station's register",
    "verify.rejected.already_voted": "refused, already voted",
    "verify.rejected.card_mismatch": "refused, the card does not match the register",
  };
  return m[key] ?? key;
}

/** Plays the whole story; resolves when it is over (or throws StoryStopped on Ctrl-C). */
export async function playStory(c: StoryContext): Promise<StoryOutcome> {
  const s = new Story(c);
  await s.warehouse();
  await s.electionDay();
  await s.epilogue();
  return { problems: s.problems };
}
