// Dashboard load time with a 60,000-device fleet: a real SQLite store file, the real server, Debian
// chromium through playwright-core. dashboardLoadMs is the time from navigation to the fleet
// table's first page rendered (median of the warm runs; the first, cold run is reported apart).
// The fleet's stations also hold an election day (turnout, results, a definition; see
// test/browser/fixture.ts seedElection): resultsLoadMs and reconciliationLoadMs are the same
// measure for the results and reconciliation tabs (first page of 200 stations, totals included).
// Prints one JSON line. Usage: npx tsx bench/dashboard.ts [devices] [runs] [stations with results]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { SqliteOpsStore } from "../host/ops/store/sqlite_store.ts";
import { startOpsWeb } from "../host/ops/web/server.ts";
import { FIXTURE_ELECTION, seedElection, seedFleet } from "../test/browser/fixture.ts";
import { parseElectionFile, storeElections } from "../host/ops/election/election.ts";

const CHROMIUM = "/usr/bin/chromium";
const devices = Number(process.argv[2] ?? 60_000);
const runs = Number(process.argv[3] ?? 5);
const voting = Number(process.argv[4] ?? Math.floor(devices / 2));
if (!existsSync(CHROMIUM)) {
  console.error(`bench/dashboard: ${CHROMIUM} is missing (scripts/setup.sh installs Debian chromium)`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "opsbench-"));
const store = new SqliteOpsStore(join(dir, "ops.sqlite"));
let t = performance.now();
const now = Date.now();
const fleet = seedFleet(store, devices, now, { historySamples: 60, historyDevices: 100 });
const seedMs = performance.now() - t;
t = performance.now();
seedElection(store, fleet, voting, now - 3 * 3_600_000, { sharedKey: true });
storeElections(store, parseElectionFile(Buffer.from(JSON.stringify({ ...FIXTURE_ELECTION, polls_close_ms: now - 3 * 3_600_000 })), "election.json"));
const electionSeedMs = performance.now() - t;
t = performance.now();
const web = await startOpsWeb({ store, port: 0 });
const serverStartMs = performance.now() - t;
const context = await chromium.launchPersistentContext(join(dir, "profile"), {
  executablePath: CHROMIUM,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1400, height: 900 },
});
const page = await context.newPage();
const times: number[] = [];
for (let i = 0; i < runs + 1; i++) {
  await page.goto("about:blank");
  const start = performance.now();
  await page.goto(web.url, { waitUntil: "commit" });
  await page.waitForSelector("#fleet-body tr:nth-child(200)");
  times.push(performance.now() - start);
}
const rows = await page.locator("#fleet-body tr").count();
/** Median warm time from navigation to the tab's first row. */
async function tabLoad(tab: string, selector: string): Promise<{ median: number; cold: number }> {
  const ts: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    await page.goto("about:blank");
    const start = performance.now();
    await page.goto(`${web.url}/?tab=${tab}`, { waitUntil: "commit" });
    await page.waitForSelector(selector);
    ts.push(performance.now() - start);
  }
  const w = ts.slice(1).sort((a, b) => a - b);
  return { median: w[Math.floor(w.length / 2)], cold: ts[0] };
}
const resultsTab = voting > 0 ? await tabLoad("results", "#results-body tr") : { median: 0, cold: 0 };
const reconTab = voting > 0 ? await tabLoad("reconciliation", "#recon-body tr") : { median: 0, cold: 0 };
await context.close();
await web.close();
store.close();
rmSync(dir, { recursive: true, force: true });
const warm = times.slice(1).sort((a, b) => a - b);
const median = warm[Math.floor(warm.length / 2)];
console.log(
  JSON.stringify({
    bench: "dashboard",
    devices,
    rowsRendered: rows,
    dashboardLoadMs: Math.round(median),
    coldLoadMs: Math.round(times[0]),
    maxWarmMs: Math.round(warm[warm.length - 1]),
    serverStartMs: Math.round(serverStartMs),
    seedMs: Math.round(seedMs),
    stationsWithResults: voting,
    resultsLoadMs: Math.round(resultsTab.median),
    resultsColdLoadMs: Math.round(resultsTab.cold),
    reconciliationLoadMs: Math.round(reconTab.median),
    electionSeedMs: Math.round(electionSeedMs),
    goalMs: 1000,
  }),
);
