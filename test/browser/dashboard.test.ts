// The operations dashboard in a real browser: Debian chromium driven by playwright-core, against
// the real server and a real SQLite store file. Skipped (with the reason) when /usr/bin/chromium
// is missing; scripts/setup.sh installs it.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { MAINTENANCE_CSV_HEADER } from "../../host/ops/reports/maintenance.ts";
import { SqliteOpsStore } from "../../host/ops/store/sqlite_store.ts";
import { startOpsWeb, type OpsWeb } from "../../host/ops/web/server.ts";
import { parseElectionFile, storeElections } from "../../host/ops/election/election.ts";
import { verifySignedResults } from "../../host/ops/export/signed_results.ts";
import { makeRecord, payload, RecordKind } from "../../host/ops/testing/signed.ts";
import { FIXTURE_ELECTION, health, seedElection, seedFleet, type ElectionFixture } from "./fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (Debian package chromium; scripts/setup.sh installs it)`;
const SHOTS = new URL("../../artifacts/screenshots/", import.meta.url).pathname;
const DEVICES = 300;
const STATIONS_VOTING = 40;

type Doc = { document: { querySelector(s: string): { textContent: string | null; getAttribute(n: string): string | null; className: string } | null; querySelectorAll(s: string): ArrayLike<{ textContent: string | null; className: string }>; documentElement: { dir: string } } };

describe("operations dashboard in chromium", { skip: SKIP }, () => {
  let dir: string;
  let store: SqliteOpsStore;
  let web: OpsWeb;
  let context: BrowserContext;
  let page: Page;
  const ingest = new EventEmitter();
  const nowMs = Date.now();
  let election: ElectionFixture;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "opsweb-"));
    store = new SqliteOpsStore(join(dir, "ops.sqlite"));
    const fleet = seedFleet(store, DEVICES, nowMs, { historySamples: 60, historyDevices: 20 });
    // Polls closed 7 hours ago: stations without a result are past the 6-hour deadline.
    election = seedElection(store, fleet, STATIONS_VOTING, nowMs - 7 * 3_600_000);
    storeElections(store, parseElectionFile(Buffer.from(JSON.stringify({ ...FIXTURE_ELECTION, polls_close_ms: election.closeMs })), "election.json"));
    web = await startOpsWeb({ store, ingest, port: 0 });
    // A fresh user data dir per run (playwright takes it as launchPersistentContext's argument).
    context = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      acceptDownloads: true,
      viewport: { width: 1400, height: 900 },
    });
    page = await context.newPage();
    mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    await context?.close();
    await web?.close();
    store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("loads and shows the fleet from the store", async () => {
    await page.goto(web.url);
    await page.waitForSelector("#fleet-body tr");
    assert.equal(await page.locator("#fleet-body tr").count(), 200, "one page of 200 rows");
    assert.match((await page.textContent("#fleet-count")) ?? "", new RegExp(`200 of ${DEVICES} devices`));
    const first = await page.getAttribute("#fleet-body tr:first-child", "data-device");
    assert.ok(first && store.device(first), "rows are devices of the store");
    await page.waitForSelector("#live.on");
  });

  it("shows a new health sample live, without a reload", async () => {
    await page.evaluate("window.__noReload = 1");
    const id = (await page.getAttribute("#fleet-body tr:nth-child(3)", "data-device")) ?? "";
    const d = store.device(id);
    assert.ok(d);
    const sample = { deviceId: id, receivedMs: Date.now(), site: d.site, health: health({ socPermille: 333, mv: 3612 }) };
    store.putHealth([sample]);
    ingest.emit("health", [sample]);
    const cell = page.locator(`#fleet-body tr[data-device="${id}"] td[data-col="battery"]`);
    await cell.filter({ hasText: "33.3 %" }).waitFor({ timeout: 5000 });
    assert.match((await cell.textContent()) ?? "", /3612 mV/);
    assert.equal(await page.evaluate("window.__noReload"), 1, "the page did not reload");
  });

  it("filters by status, governorate and office", async () => {
    await page.selectOption("#f-status", "faulty");
    await page.waitForFunction(() => {
      const d = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> } }).document;
      const badges = Array.from(d.querySelectorAll("#fleet-body tr td:last-child span"));
      return badges.length > 0 && badges.every((b) => b.textContent === "faulty");
    });
    const api = (await (await fetch(`${web.url}/api/fleet?status=faulty`)).json()) as { total: number };
    assert.match((await page.textContent("#fleet-count")) ?? "", new RegExp(`of ${api.total} devices`));
    await page.selectOption("#f-status", "");
    await page.selectOption("#f-governorate", "Basra");
    await page.waitForFunction(() => {
      const d = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> } }).document;
      const cells = Array.from(d.querySelectorAll("#fleet-body tr td:nth-child(3)"));
      return cells.length > 0 && cells.every((c) => c.textContent === "Basra");
    });
    const offices = await page.locator("#f-office option").allTextContents();
    assert.ok(offices.slice(1).every((o) => o.startsWith("Basra-")), `offices of Basra only: ${offices.join(",")}`);
    await page.selectOption("#f-office", offices[1]);
    await page.waitForFunction((office) => {
      const d = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> } }).document;
      const cells = Array.from(d.querySelectorAll("#fleet-body tr td:nth-child(4)"));
      return cells.length > 0 && cells.every((c) => c.textContent === office);
    }, offices[1]);
    assert.match(page.url(), /governorate=Basra/);
    await page.selectOption("#f-governorate", "");
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }).document.querySelectorAll("#fleet-body tr").length === 200);
  });

  it("opens a device with its health history plot", async () => {
    await page.click('#fleet-body tr[data-device="VVD-000000"] button');
    await page.waitForSelector("#plot svg polyline");
    assert.equal(await page.locator("#plot svg polyline").count(), 2, "battery mV and state of charge");
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(SHOTS, "dashboard-en.png"), fullPage: false });
  });

  it("switches to Arabic: right to left, Arabic headings", async () => {
    await page.click('#lang button[data-lang="ar"]');
    await page.waitForFunction(() => (globalThis as unknown as { document: { documentElement: { dir: string } } }).document.documentElement.dir === "rtl");
    assert.equal(await page.getAttribute("html", "lang"), "ar");
    assert.equal((await page.textContent("#fleet-heading"))?.trim(), "أسطول الأجهزة");
    assert.equal((await page.textContent("#tab-status"))?.trim(), "الحالة التشغيلية");
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(SHOTS, "dashboard-ar.png"), fullPage: false });
    // A fresh load with ?lang=ar is right to left from the server's first byte.
    const p2 = await context.newPage();
    await p2.goto(`${web.url}/?lang=ar&tab=status`);
    assert.equal(await p2.getAttribute("html", "dir"), "rtl");
    await p2.waitForSelector("#status-grid tr.total");
    await p2.screenshot({ path: join(SHOTS, "dashboard-ar-status.png") });
    await p2.close();
    await page.click('#lang button[data-lang="en"]');
    await page.waitForFunction(() => (globalThis as unknown as { document: { documentElement: { dir: string } } }).document.documentElement.dir === "ltr");
  });

  it("shows alerts, the new power and result-overdue ones among them", async () => {
    await page.click("#tab-alerts");
    await page.waitForSelector("#alerts-list tr[data-alert]");
    const text = (await page.textContent("#alerts-list")) ?? "";
    assert.match(text, /battery low/);
    assert.match(text, /ageing cell: state of health 76 %/);
    assert.match(text, new RegExp(`station ${election.missingResult[0]}: no result 7(\\.0)? h after close`));
    // A station's alert opens the station.
    await page.click(`#alerts-list td[data-station="${election.missingResult[0]}"] button`);
    await page.waitForSelector("#station #station-alerts");
    assert.match((await page.textContent("#station-alerts")) ?? "", /hand count/);
    await page.click("#station-close");
    // The fleet shows each battery's state of health and cycles; an ageing cell stands out.
    await page.click("#tab-fleet");
    const ageing = page.locator('#fleet-body tr[data-device="RAD-000004"] td[data-col="soh"]');
    assert.equal((await ageing.textContent())?.trim(), "76 %");
    assert.match((await ageing.getAttribute("class")) ?? "", /warn/);
    assert.match((await page.textContent('#fleet-body tr[data-device="RAD-000004"]')) ?? "", /640/);
  });

  it("turnout per station, with totals per governorate and office", async () => {
    await page.click("#tab-turnout");
    await page.waitForSelector("#turnout-body tr");
    assert.equal(await page.locator("#turnout-body tr").count(), STATIONS_VOTING);
    const api = (await (await fetch(`${web.url}/api/turnout?q=${election.stations[1]}`)).json()) as { rows: Array<{ verified: number; exempted: number }> };
    const row = page.locator(`#turnout-body tr[data-station="${election.stations[1]}"] td`);
    assert.equal((await row.nth(4).textContent())?.trim(), String(api.rows[0].verified));
    assert.equal((await row.nth(5).textContent())?.trim(), String(api.rows[0].exempted));
    assert.match((await page.textContent("#turnout-grid tr.total")) ?? "", /total/);
  });

  it("results view: option names, totals summed per option, a conflicting result flagged", async () => {
    await page.click("#tab-results");
    await page.waitForSelector("#results-body tr");
    const caption = await page.locator('#results-totals table[data-contest="council"] caption').textContent();
    assert.equal(caption?.trim(), "Provincial council (council)");
    // List A nationally: the sum over the stations' results (the first one where two conflict).
    let listA = 0;
    const totals = (await (await fetch(`${web.url}/api/results`)).json()) as { totals: { contests: Array<{ contestId: string; options: Array<{ votes: number }> }> }; rows: Array<{ contests: Array<{ contestId: string; options: Array<{ votes: number }> }> }> };
    for (const r of totals.rows) listA += r.contests.find((c) => c.contestId === "council")?.options[0].votes ?? 0;
    const cell = page.locator('#results-totals table[data-contest="council"] tbody tr').first().locator("td").nth(1);
    assert.equal((await cell.textContent())?.trim(), String(listA));
    assert.equal(totals.totals.contests.find((c) => c.contestId === "council")?.options[0].votes, listA);
    const conflict = page.locator(`#results-body tr[data-station="${election.conflicts[0]}"]`);
    assert.match((await conflict.getAttribute("class")) ?? "", /flagged/);
    assert.match((await conflict.textContent()) ?? "", /conflicting signed results/);
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(SHOTS, "dashboard-results-en.png"), fullPage: false });
  });

  it("reconciliation view: a disagreement and a missing result are flagged", async () => {
    await page.click("#tab-reconciliation");
    await page.waitForSelector("#recon-body tr");
    const bad = page.locator(`#recon-body tr[data-station="${election.mismatched[0]}"]`);
    assert.equal(await bad.getAttribute("data-status"), "mismatch");
    assert.match((await bad.getAttribute("class")) ?? "", /flagged/);
    assert.equal((await bad.locator(".rs").textContent())?.trim(), "disagree");
    assert.equal((await bad.locator("td").nth(8).textContent())?.trim(), "+2");
    const missing = page.locator(`#recon-body tr[data-station="${election.missingResult[0]}"]`);
    assert.equal(await missing.getAttribute("data-status"), "missing-result");
    const good = page.locator(`#recon-body tr[data-station="${election.stations[0]}"]`);
    assert.equal(await good.getAttribute("data-status"), "match");
    assert.doesNotMatch((await good.getAttribute("class")) ?? "", /flagged/);
    await page.check("#s-flagged");
    await page.waitForFunction(() => {
      const d = (globalThis as unknown as Doc).document;
      const rows = Array.from(d.querySelectorAll("#recon-body tr"));
      return rows.length > 0 && rows.every((r) => r.className.includes("flagged"));
    });
    const flagged = await page.locator("#recon-body tr").count();
    assert.equal(flagged, election.mismatched.length + election.missingResult.length + election.conflicts.length);
    await page.uncheck("#s-flagged");
    await page.waitForFunction((n) => (globalThis as unknown as Doc).document.querySelectorAll("#recon-body tr").length === n, STATIONS_VOTING);
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(SHOTS, "dashboard-reconciliation-en.png"), fullPage: false });
  });

  it("a result arriving now updates the reconciliation live, without a reload", async () => {
    await page.evaluate("window.__noReload = 2");
    const station = election.missingResult[0];
    const rad = election.rad.get(station);
    const vvdTurnout = (await (await fetch(`${web.url}/api/turnout?q=${station}`)).json()) as { rows: Array<{ admitted: number }> };
    assert.ok(rad);
    const admitted = vvdTurnout.rows[0].admitted;
    const t = election.closeMs + 3_600_000;
    const bytes = makeRecord(rad, RecordKind.RESULT, payload.result({ electionId: "GE-2026", stationId: station, closedMs: election.closeMs, ballotsCounted: admitted, contests: [{ contestId: "council", votes: [admitted, 0, 0] }, { contestId: "mayor", votes: [admitted, 0] }], verifiedVoters: admitted, verifiedVotersKnown: true }), t);
    const rec = { deviceId: rad.deviceId, seq: rad.nextSeq - 1, prevSeq: rad.prevSeq - 1, timeMs: t, kind: RecordKind.RESULT, bytes, receivedMs: Date.now(), site: rad.entry.site };
    store.putRecords([rec]);
    ingest.emit("records", [rec]);
    await page.waitForSelector(`#recon-body tr[data-station="${station}"][data-status="match"]`, { timeout: 5000 });
    assert.equal(await page.evaluate("window.__noReload"), 2, "the page did not reload");
  });

  it("opens a station: hourly turnout, rejections by reason, both signed results", async () => {
    await page.click(`#recon-body tr[data-station="${election.conflicts[0]}"] button`);
    await page.waitForSelector("#station #hourly svg rect");
    assert.equal(await page.locator("#hourly svg rect").count(), 5, "four hourly reports and the final one");
    assert.match((await page.textContent("#station-reasons")) ?? "", /fingerprint did not match/);
    assert.equal(await page.locator("#station-versions tbody tr").count(), 2);
    assert.match(page.url(), new RegExp(`sid=${election.conflicts[0]}`));
    await page.click("#station-close");
    await page.waitForSelector("#station", { state: "hidden" });
  });

  it("reconciliation in Arabic, right to left", async () => {
    await page.click('#lang button[data-lang="ar"]');
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.documentElement.dir === "rtl");
    assert.equal((await page.textContent("#tab-reconciliation"))?.trim(), "المطابقة");
    assert.equal((await page.textContent("#recon-heading"))?.trim(), "المطابقة: الناخبون المقبولون مقابل الأوراق المعدودة");
    const bad = page.locator(`#recon-body tr[data-station="${election.mismatched[0]}"] .rs`);
    await bad.filter({ hasText: "غير متطابق" }).waitFor({ timeout: 5000 });
    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(SHOTS, "dashboard-reconciliation-ar.png"), fullPage: false });
    const p2 = await context.newPage();
    await p2.goto(`${web.url}/?lang=ar&tab=results`);
    assert.equal(await p2.getAttribute("html", "dir"), "rtl");
    await p2.waitForSelector("#results-body tr");
    assert.match((await p2.textContent(`#results-body tr[data-station="${election.conflicts[0]}"]`)) ?? "", /نتائج موقّعة متعارضة/);
    await p2.screenshot({ path: join(SHOTS, "dashboard-results-ar.png") });
    await p2.close();
    await page.click('#lang button[data-lang="en"]');
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.documentElement.dir === "ltr");
    await page.click("#tab-fleet");
  });

  it("exports the signed results, which verify on their own", async () => {
    const text = await (await fetch(`${web.url}/api/export/results.signed.json`)).text();
    const outcomes = verifySignedResults(text, store.devices());
    assert.equal(outcomes.length, STATIONS_VOTING - election.missingResult.length + election.conflicts.length + 1);
    assert.ok(outcomes.every((o) => o.ok && o.keyChecked), JSON.stringify(outcomes.filter((o) => !o.ok).slice(0, 2)));
    const csv = await (await fetch(`${web.url}/api/export/results.csv`)).text();
    assert.match(csv.split("\r\n")[0], /^station,governorate,office,device,record_seq,election,contest,contest_name,option_number,option,votes/);
    assert.match(csv, /,council,Provincial council,1,List A,/);
  });

  it("downloads the maintenance report CSV with its header", async () => {
    const site = store.device("VVD-000000")?.site ?? "";
    await page.goto(`${web.url}/reports/maintenance?site=${encodeURIComponent(site)}`);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(`a[href^="/api/reports/maintenance"]`)]);
    assert.match(download.suggestedFilename(), /^maintenance-WH-Baghdad-1-\d{4}-\d{2}-\d{2}\.csv$/);
    const path = join(dir, "report.csv");
    await download.saveAs(path);
    const lines = readFileSync(path, "utf8").split("\r\n");
    assert.equal(lines[0], MAINTENANCE_CSV_HEADER.join(","));
    assert.ok(lines.length > 3);
    assert.ok(lines.slice(1, -1).every((l) => l.startsWith(site + ",")), "only the site's devices");
  });
});
