import { checkBundle } from "../../bundle_check.ts";
import { readFileSync } from "node:fs";
const code = readFileSync(process.argv[2], "utf8");
const t = performance.now();
const v = checkBundle(code, process.argv[2]);
console.log(performance.now() - t, "ms");
for (const x of v) console.log(x.line, x.column, x.rule, x.source.slice(0, 100));
