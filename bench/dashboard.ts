// Dashboard load time with a 60,000-device fleet: a real SQLite store file, the real server, Debian
// chromium through playwright-core. dashboardLoadMs is the time from navigation to the fleet
// table's first page rendered (median of the warm runs; the first, cold run is reported apart).
// Prints one JSON line. Usage: npx tsx bench/dashboard.ts [devices] [runs]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { SqliteOpsStore } from "../host/ops/store/sqlite_store.ts";
import { startOpsWeb } from "../host/ops/web/server.ts";
import { seedFleet } from "../test/browser/fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const devices = Number(process.argv[2] ?? 60_000);
const runs = Number(process.argv[3] ?? 5);
if (!existsSync(CHROMIUM)) {
  console.error(`bench/dashboard: ${CHROMIUM} is missing (scripts/setup.sh installs Debian chromium)`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "opsbench-"));
const store = new SqliteOpsStore(join(dir, "ops.sqlite"));
let t = performance.now();
seedFleet(store, devices, Date.now(), { historySamples: 60, historyDevices: 100 });
const seedMs = performance.now() - t;
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
    goalMs: 1000,
  }),
);
