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
import { health, seedFleet } from "./fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (Debian package chromium; scripts/setup.sh installs it)`;
const SHOTS = new URL("../../artifacts/screenshots/", import.meta.url).pathname;
const DEVICES = 300;

describe("operations dashboard in chromium", { skip: SKIP }, () => {
  let dir: string;
  let store: SqliteOpsStore;
  let web: OpsWeb;
  let context: BrowserContext;
  let page: Page;
  const ingest = new EventEmitter();
  const nowMs = Date.now();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "opsweb-"));
    store = new SqliteOpsStore(join(dir, "ops.sqlite"));
    seedFleet(store, DEVICES, nowMs, { historySamples: 60, historyDevices: 20 });
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

  it("shows alerts and the turnout stub", async () => {
    await page.click("#tab-alerts");
    await page.waitForSelector("#alerts-list tr[data-alert]");
    assert.match((await page.textContent("#alerts-list")) ?? "", /battery low/);
    await page.click("#tab-turnout");
    assert.equal((await page.textContent("#turnout-note"))?.trim(), "no turnout or results reported yet");
    await page.click("#tab-fleet");
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
