// Tuning helper for the matcher (not a benchmark): scores every pair of every database on Node
// with some of MATCH_PARAMS overridden and prints the error rates; optionally writes each
// pair's score features (matchFeatures) as CSV, which is what the score weights of matcher.ts
// were fitted to (a logistic regression on the logarithms of the features, each database left
// out in turn to check the fit).
// Usage: tsx bench/match_tune.ts [name=value ...] [--data <dir>] [--features <out.csv>]
//   CSV columns: database index, genuine (1/0), score, then the 9 features in matchFeatures order.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { errorRates, loadDatabases } from "./match_data.ts";
import { MATCH_PARAMS, matchFeatures, prepare, scorePrepared } from "../device/biometrics/matcher.ts";
import { FVC2002_DIR } from "../simulator/data/fingerprints.ts";

const params = MATCH_PARAMS as unknown as Record<string, number>;
let dir = FVC2002_DIR;
let featuresOut = "";
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === "--data") dir = resolve(argv[++i] ?? "");
  else if (arg === "--features") featuresOut = argv[++i] ?? "";
  else {
    const eq = arg.indexOf("=");
    const name = arg.slice(0, eq);
    if (eq < 0 || !(name in params)) throw new Error(`unknown parameter ${arg} (known: ${Object.keys(params).join(", ")})`);
    params[name] = Number(arg.slice(eq + 1));
  }
}
const started = performance.now();
const rows: string[] = [];
let sumEer = 0;
let sumFnmr = 0;
const dbs = loadDatabases(dir);
dbs.forEach((db, d) => {
  const prepared = db.impressions.map((im) => prepare(im.template));
  const score = (pair: [number, number], genuine: number): number => {
    const s = scorePrepared(prepared[pair[0]], prepared[pair[1]]);
    if (featuresOut) rows.push([d, genuine, s, ...matchFeatures].join(","));
    return s;
  };
  const r = errorRates(
    db.genuine.map((p) => score(p, 1)),
    db.impostor.map((p) => score(p, 0)),
  );
  sumEer += r.eerPct;
  sumFnmr += r.fnmrAtFmr1e3Pct;
  console.log(`${db.name}: EER ${r.eerPct.toFixed(2)} %  FNMR@FMR0.1% ${r.fnmrAtFmr1e3Pct.toFixed(2)} % (threshold ${r.thresholdAtFmr1e3})  FNMR@FMR0 ${r.fnmrAtZeroFmrPct.toFixed(2)} %`);
});
if (featuresOut) writeFileSync(featuresOut, rows.join("\n") + "\n");
console.log(`average EER ${(sumEer / dbs.length).toFixed(2)} %  FNMR@FMR0.1% ${(sumFnmr / dbs.length).toFixed(2)} %  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
