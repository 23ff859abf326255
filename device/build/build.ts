// Builds one firmware bundle per engine with esbuild, runs the bundle check on each, and prints
// their sizes. Output goes to artifacts/firmware/<target>/ (not committed).
//
//   espruino  one minified script (iife) with the glue for Espruino's globals: the verification
//             device's (espruino) and the result acceleration device's (espruino-rad)
//   moddable  an ES module plus manifest.json for the Moddable SDK (ECMA-419 IO)
//   xs        the core with a platform bridged over xsnap's issueCommand, for the engine tests
//   node      the core and the Node platform glue as an ES module; the simulator hands it the
//             chip models (tests boot simulated devices from this bundle)
//
// Usage: tsx device/build/build.ts [--json] [target...]

import { build, type BuildOptions } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { checkBundle, type Violation } from "../../tools/bundle_check.ts";
import { ESBUILD_SUPPORTED } from "../../tools/engine_subset/rules.ts";

const root = new URL("../../", import.meta.url).pathname;
export const OUT_DIR = join(root, "artifacts/firmware");

export interface FirmwareTarget {
  name: string;
  entry: string;
  out: string;
  format: "iife" | "esm";
  minify: boolean;
  /** Engine subset applies (bundle check). */
  checked: boolean;
  /**
   * Size budget: the build fails above it. Espruino saves the script to Storage and runs it from
   * flash; 192 KB leaves the rest of an nRF52840's Storage area to the journal's page files and
   * the station data. (The verification bundle, with the matcher, is the larger: see
   * BENCHMARKS.md for both.)
   */
  maxBytes?: number;
  /** Modules provided by the engine itself (Moddable's embedded:* IO). */
  external?: string[];
  extraFiles?: { from: string; to: string }[];
}

export const TARGETS: FirmwareTarget[] = [
  {
    name: "espruino",
    entry: "device/targets/espruino/main.ts",
    out: "espruino/pollkit.min.js",
    format: "iife",
    minify: true,
    checked: true,
    maxBytes: 196608,
  },
  {
    name: "espruino-rad",
    entry: "device/targets/espruino/main_rad.ts",
    out: "espruino/pollkit-rad.min.js",
    format: "iife",
    minify: true,
    checked: true,
    maxBytes: 196608,
  },
  {
    name: "moddable",
    entry: "device/targets/moddable/main.ts",
    out: "moddable/main.js",
    format: "esm",
    minify: false,
    checked: true,
    external: ["embedded:*", "timer", "flash"],
    extraFiles: [{ from: "device/targets/moddable/manifest.json", to: "moddable/manifest.json" }],
  },
  {
    name: "node",
    entry: "device/targets/node/main.ts",
    out: "node/pollkit_node.mjs",
    format: "esm",
    minify: false,
    checked: true,
  },
  {
    name: "xs",
    entry: "device/targets/xs_bridge/main.ts",
    out: "xs/pollkit_xs.js",
    format: "iife",
    minify: false,
    checked: true,
  },
];

export interface BuiltBundle {
  target: string;
  file: string;
  bytes: number;
  code: string;
  violations: Violation[];
}

/** Method names the bundle check rejects on any object: the mangler must not produce them. */
const RESERVED_SHORT = ["at", "flat", "finally"];

function options(t: FirmwareTarget, mangleCache?: Record<string, string | false>): BuildOptions {
  return {
    entryPoints: [join(root, t.entry)],
    bundle: true,
    write: false,
    format: t.format,
    // Keep modern syntax as written (the source keeps to the subset); lowering would inject
    // helpers that Espruino cannot run. The bundle check proves the result.
    target: "esnext",
    // ...and the minifier must not introduce syntax the source avoided (`?.`, `catch {`).
    supported: ESBUILD_SUPPORTED,
    minify: t.minify,
    // Underscored members are internal to the firmware: short names save flash and, on
    // Espruino, variables (names over about 10 characters cost extra blocks).
    mangleProps: t.minify ? /^_/ : undefined,
    mangleCache: t.minify ? (mangleCache ?? {}) : undefined,
    legalComments: "none",
    charset: "utf8",
    external: t.external,
    logLevel: "silent",
  };
}

export async function buildTarget(t: FirmwareTarget): Promise<BuiltBundle> {
  let result = await build(options(t));
  const cache = result.mangleCache;
  if (cache && Object.values(cache).some((v) => typeof v === "string" && RESERVED_SHORT.includes(v))) {
    // Pin the unlucky names to others and build again.
    let n = 0;
    for (const k of Object.keys(cache)) if (typeof cache[k] === "string" && RESERVED_SHORT.includes(cache[k])) cache[k] = `$${n++}`;
    result = await build(options(t, cache));
  }
  const files = result.outputFiles ?? [];
  if (files.length === 0) throw new Error(`build: esbuild produced nothing for ${t.name}`);
  const code = files[0].text;
  const file = join(OUT_DIR, t.out);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, code);
  for (const x of t.extraFiles ?? []) {
    const to = join(OUT_DIR, x.to);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(join(root, x.from), to);
  }
  const violations = t.checked ? checkBundle(code, relative(root, file), { module: t.format === "esm" }) : [];
  return { target: t.name, file, bytes: Buffer.byteLength(code), code, violations };
}

export async function buildAll(names: string[] = []): Promise<BuiltBundle[]> {
  const chosen = TARGETS.filter((t) => names.length === 0 || names.includes(t.name));
  const out: BuiltBundle[] = [];
  for (const t of chosen) {
    if (!existsSync(join(root, t.entry))) throw new Error(`build: missing entry ${t.entry} for target ${t.name}`);
    out.push(await buildTarget(t));
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes("--json");
  const bundles = await buildAll(args.filter((a) => !a.startsWith("--")));
  let bad = 0;
  for (const b of bundles) {
    for (const v of b.violations) {
      bad++;
      console.error(`${relative(root, b.file)}:${v.line}:${v.column} ${v.rule} ${v.message}\n    ${v.source.trim().slice(0, 160)}`);
    }
  }
  for (const b of bundles) {
    const budget = TARGETS.find((t) => t.name === b.target)?.maxBytes;
    if (budget !== undefined && b.bytes > budget) {
      bad++;
      console.error(`${relative(root, b.file)}: ${b.bytes} bytes, over its budget of ${budget}`);
    }
  }
  if (json) console.log(JSON.stringify(bundles.map((b) => ({ target: b.target, bytes: b.bytes, violations: b.violations.length }))));
  else {
    for (const b of bundles) {
      console.log(`${b.target.padEnd(9)} ${String(b.bytes).padStart(8)} bytes  ${relative(root, b.file)}  ${b.violations.length === 0 ? "bundle check ok" : b.violations.length + " violation(s)"}`);
    }
  }
  if (bad > 0) process.exit(1);
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
