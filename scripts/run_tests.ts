// Runs every *.test.ts in the tree with Node's test runner (through tsx), two files at a time.
// Arguments narrow the run to files whose path contains one of them.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const skip = new Set(["node_modules", ".git", "artifacts"]);

function find(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith(".test.ts")) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find(root, [])
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error("run_tests: no test files matched");
  process.exit(1);
}
// A test without its own timeout gets 5 minutes; the whole run 30 (a hung file fails the run
// clearly instead of holding CI until its limit).
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", "--test-timeout=300000", ...files],
  { cwd: root, stdio: "inherit", timeout: 30 * 60 * 1000, killSignal: "SIGKILL" },
);
if (result.error) console.error(`run_tests: ${result.error.message}`);
process.exit(result.status ?? 1);
