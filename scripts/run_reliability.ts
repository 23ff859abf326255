// The reliability suite (npm run test:reliability): election-day and warehouse scenarios under the
// fault catalogue, each asserting by counting and printing its counts as one JSON line. The long
// profile by default (hundreds of devices, several faults of each kind, a few minutes); CI runs
// the short one as part of the normal tests (test/reliability/reliability.test.ts).
//
// Usage: tsx scripts/run_reliability.ts [--profile long|short] [--only warehouse,agent-kill,...]
//          [--quiet]
// Exit status 0 when every scenario's counts hold, 1 otherwise.

import { SCENARIOS, type ScenarioName } from "../test/reliability/scenarios.ts";

const args = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const profile = value("profile") ?? "long";
if (profile !== "long" && profile !== "short") {
  console.error(`run_reliability: --profile is long or short, not ${profile}`);
  process.exit(2);
}
const names = Object.keys(SCENARIOS) as ScenarioName[];
const only = value("only")?.split(",").filter((s) => s !== "") ?? names;
for (const n of only) {
  if (!names.includes(n as ScenarioName)) {
    console.error(`run_reliability: no scenario "${n}" (there are ${names.join(", ")})`);
    process.exit(2);
  }
}
const quiet = args.includes("--quiet");

let failed = 0;
for (const name of only as ScenarioName[]) {
  const t0 = performance.now();
  if (!quiet) console.error(`[reliability] ${name} (${profile})`);
  try {
    const counts = await SCENARIOS[name](profile, quiet ? undefined : (s) => console.error(`[reliability:${name}] ${s}`));
    console.log(JSON.stringify({ ...counts, seconds: Math.round((performance.now() - t0) / 100) / 10 }));
    if (!counts.ok) {
      failed++;
      console.error(`[reliability] ${name} FAILED: ${counts.problems.join("; ")}`);
    }
  } catch (e) {
    failed++;
    console.log(JSON.stringify({ scenario: name, profile, ok: false, problems: [String(e)] }));
    console.error(e);
  }
}
console.error(`[reliability] ${only.length - failed}/${only.length} scenarios passed`);
process.exit(failed === 0 ? 0 : 1);
