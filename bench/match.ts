// Matcher benchmark: error rates under the FVC protocol and the XS compute cost of a match.
// Run: npm run bench:match [-- --data <dir>] [--xs-pairs <n>] [--no-xs]
//
// Data: every sub-folder of --data holding `<finger>_<impression>.iso` records is a database
// (default: simulator/data/fingerprints/fvc2002, FVC2002 DB1_B..DB4_B).
// Pairs (see match_data.ts): genuine = every pair of impressions of the same finger (280 per
// database); impostor = every pair of impressions of two different fingers (2,880 per database:
// the data README's "2,800" miscounts 80 x 72 / 2). Each pair is scored once, the first record
// (lower finger, then lower impression) as the enrolled template, the second as the probe.
//
// Error rates: all pairs scored on Node (the same code as the firmware). EER as FVC reports it;
// FNMR at FMR 0.1 %: the share of genuine pairs below the lowest threshold at which at most
// 0.1 % of the impostor pairs match; and both rates at DEFAULT_MATCH_THRESHOLD.
//
// XS compute: device/biometrics/xs_entry.ts bundled as firmware is (bench/match_xs.ts) and run
// in xsnap. For each sampled pair the enrolled record is parsed and prepared beforehand (not
// counted); the metered call then parses the probe's ISO bytes, prepares it and scores it
// against the enrolled template; a dry run of the same call that skips the work is
// subtracted, so the figure is the match alone (see test/helpers/xs_harness.ts on the meter).
// The sample is --xs-pairs pairs per database (default 240), half genuine, half impostor,
// spread evenly over each list; XS must give the same score as Node for every one.
//
// Output: a table, then ONE JSON line: the averages over the databases of eerPct,
// fnmrAtFmr1e3Pct, xsComputeMedian and xsComputeP99, and the same per database.

import { resolve } from "node:path";
import { errorRates, loadDatabases, type Database } from "./match_data.ts";
import { MatchXs } from "./match_xs.ts";
import { DEFAULT_MATCH_THRESHOLD, prepare, scorePrepared } from "../device/biometrics/matcher.ts";
import { FVC2002_DIR } from "../simulator/data/fingerprints.ts";

const GOALS = { eerPct: 2.0, fnmrAtFmr1e3Pct: 5.0, xsComputeMedian: 1_000_000, xsComputeP99: 2_500_000 };

interface Args {
  data: string;
  xsPairs: number;
  xs: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { data: FVC2002_DIR, xsPairs: 240, xs: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--data") args.data = resolve(process.cwd(), argv[++i] ?? "");
    else if (a === "--xs-pairs") args.xsPairs = Number(argv[++i]);
    else if (a === "--no-xs") args.xs = false;
    else throw new Error(`unknown argument ${a} (use --data <dir>, --xs-pairs <n>, --no-xs)`);
  }
  if (!Number.isInteger(args.xsPairs) || args.xsPairs < 2) throw new Error("--xs-pairs needs an integer >= 2");
  return args;
}

/** Nearest-rank percentile. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** `count` items spread evenly over `list` (all of them if it is shorter). */
function spread<T>(list: T[], count: number): T[] {
  if (list.length <= count) return list.slice();
  const out: T[] = [];
  for (let k = 0; k < count; k++) out.push(list[Math.floor(((k + 0.5) * list.length) / count)]);
  return out;
}

interface DbResult {
  genuinePairs: number;
  impostorPairs: number;
  eerPct: number;
  fnmrAtFmr1e3Pct: number;
  thresholdAtFmr1e3: number;
  fnmrAtZeroFmrPct: number;
  fmrAtDefaultPct: number;
  fnmrAtDefaultPct: number;
  xsPairs?: number;
  xsComputeMedian?: number;
  xsComputeP99?: number;
  xsComputeMax?: number;
}

function scoreAll(db: Database): { genuine: number[]; impostor: number[] } {
  const prepared = db.impressions.map((im) => prepare(im.template));
  const genuine = db.genuine.map(([a, b]) => scorePrepared(prepared[a], prepared[b]));
  const impostor = db.impostor.map(([a, b]) => scorePrepared(prepared[a], prepared[b]));
  return { genuine, impostor };
}

async function main(): Promise<void> {
  const started = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const dbs = loadDatabases(args.data);
  if (dbs.length === 0) throw new Error(`no database (folder of <finger>_<impression>.iso records) in ${args.data}`);

  const results: Record<string, DbResult> = {};
  const nodeScores = new Map<string, { genuine: number[]; impostor: number[] }>();
  for (const db of dbs) {
    const s = scoreAll(db);
    nodeScores.set(db.name, s);
    const r = errorRates(s.genuine, s.impostor);
    results[db.name] = {
      genuinePairs: s.genuine.length,
      impostorPairs: s.impostor.length,
      eerPct: r.eerPct,
      fnmrAtFmr1e3Pct: r.fnmrAtFmr1e3Pct,
      thresholdAtFmr1e3: r.thresholdAtFmr1e3,
      fnmrAtZeroFmrPct: r.fnmrAtZeroFmrPct,
      fmrAtDefaultPct: (100 * s.impostor.filter((x) => x >= DEFAULT_MATCH_THRESHOLD).length) / s.impostor.length,
      fnmrAtDefaultPct: (100 * s.genuine.filter((x) => x < DEFAULT_MATCH_THRESHOLD).length) / s.genuine.length,
    };
  }
  const nodeSeconds = (performance.now() - started) / 1000;

  if (args.xs) {
    const xs = await MatchXs.start();
    try {
      for (const db of dbs) {
        const s = nodeScores.get(db.name);
        if (!s) continue;
        const half = Math.floor(args.xsPairs / 2);
        const sample: { pair: [number, number]; node: number }[] = [];
        for (const k of spread([...db.genuine.keys()], half)) sample.push({ pair: db.genuine[k], node: s.genuine[k] });
        for (const k of spread([...db.impostor.keys()], args.xsPairs - half)) sample.push({ pair: db.impostor[k], node: s.impostor[k] });
        const computes: number[] = [];
        let enrolled = -1;
        for (const { pair, node } of sample) {
          if (pair[0] !== enrolled) {
            await xs.enrol(db.impressions[pair[0]].bytes);
            enrolled = pair[0];
          }
          const m = await xs.match(db.impressions[pair[1]].bytes);
          if (m.score !== node) {
            throw new Error(`${db.name} ${db.impressions[pair[0]].file} vs ${db.impressions[pair[1]].file}: XS scored ${m.score}, Node ${node}`);
          }
          computes.push(m.compute);
        }
        computes.sort((a, b) => a - b);
        const r = results[db.name];
        r.xsPairs = computes.length;
        r.xsComputeMedian = percentile(computes, 50);
        r.xsComputeP99 = percentile(computes, 99);
        r.xsComputeMax = computes[computes.length - 1];
      }
    } finally {
      await xs.close();
    }
  }

  const names = Object.keys(results);
  const mean = (f: (r: DbResult) => number | undefined): number => {
    const v = names.map((n) => f(results[n])).filter((x): x is number => x !== undefined);
    return v.length === 0 ? NaN : v.reduce((a, b) => a + b, 0) / v.length;
  };
  const avg = {
    eerPct: mean((r) => r.eerPct),
    fnmrAtFmr1e3Pct: mean((r) => r.fnmrAtFmr1e3Pct),
    xsComputeMedian: args.xs ? Math.round(mean((r) => r.xsComputeMedian)) : null,
    xsComputeP99: args.xs ? Math.round(mean((r) => r.xsComputeP99)) : null,
  };

  const pct = (x: number): string => `${x.toFixed(2)} %`.padStart(9);
  const num = (x: number | undefined): string => (x === undefined ? "-" : Math.round(x).toLocaleString("en-US")).padStart(11);
  console.log(`Match bench: ${args.data}`);
  console.log(`threshold DEFAULT_MATCH_THRESHOLD = ${DEFAULT_MATCH_THRESHOLD}; Node scoring of all pairs took ${nodeSeconds.toFixed(1)} s`);
  console.log("db        pairs g/i    EER  FNMR@FMR.1%  (thr)  FNMR@FMR0  FMR@def  FNMR@def   XS median      XS p99      XS max");
  for (const n of names) {
    const r = results[n];
    console.log(
      `${n.padEnd(8)} ${`${r.genuinePairs}/${r.impostorPairs}`.padStart(9)} ${pct(r.eerPct)} ${pct(r.fnmrAtFmr1e3Pct)} ${String(r.thresholdAtFmr1e3).padStart(6)} ${pct(r.fnmrAtZeroFmrPct)} ${pct(r.fmrAtDefaultPct)} ${pct(r.fnmrAtDefaultPct)} ${num(r.xsComputeMedian)} ${num(r.xsComputeP99)} ${num(r.xsComputeMax)}`,
    );
  }
  console.log(
    `average            ${pct(avg.eerPct)} ${pct(avg.fnmrAtFmr1e3Pct)}                                       ${num(avg.xsComputeMedian ?? undefined)} ${num(avg.xsComputeP99 ?? undefined)}`,
  );
  const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");
  console.log(
    `goals: EER <= ${GOALS.eerPct} % ${verdict(avg.eerPct <= GOALS.eerPct)}; FNMR@FMR0.1% <= ${GOALS.fnmrAtFmr1e3Pct} % ${verdict(avg.fnmrAtFmr1e3Pct <= GOALS.fnmrAtFmr1e3Pct)}` +
      (args.xs
        ? `; XS median <= ${GOALS.xsComputeMedian} ${verdict((avg.xsComputeMedian ?? Infinity) <= GOALS.xsComputeMedian)}; XS p99 <= ${GOALS.xsComputeP99} ${verdict((avg.xsComputeP99 ?? Infinity) <= GOALS.xsComputeP99)}`
        : "; XS not measured (--no-xs)"),
  );
  console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);

  const round2 = (x: number): number => Math.round(x * 100) / 100;
  const databases: Record<string, object> = {};
  for (const n of names) {
    const r = results[n];
    databases[n] = {
      eerPct: round2(r.eerPct),
      fnmrAtFmr1e3Pct: round2(r.fnmrAtFmr1e3Pct),
      xsComputeMedian: r.xsComputeMedian ?? null,
      xsComputeP99: r.xsComputeP99 ?? null,
      genuinePairs: r.genuinePairs,
      impostorPairs: r.impostorPairs,
      thresholdAtFmr1e3: r.thresholdAtFmr1e3,
      fnmrAtZeroFmrPct: round2(r.fnmrAtZeroFmrPct),
      fmrAtDefaultThresholdPct: round2(r.fmrAtDefaultPct),
      fnmrAtDefaultThresholdPct: round2(r.fnmrAtDefaultPct),
      xsPairs: r.xsPairs ?? 0,
      xsComputeMax: r.xsComputeMax ?? null,
    };
  }
  console.log(
    JSON.stringify({
      bench: "match",
      eerPct: round2(avg.eerPct),
      fnmrAtFmr1e3Pct: round2(avg.fnmrAtFmr1e3Pct),
      xsComputeMedian: avg.xsComputeMedian,
      xsComputeP99: avg.xsComputeP99,
      threshold: DEFAULT_MATCH_THRESHOLD,
      databases,
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
