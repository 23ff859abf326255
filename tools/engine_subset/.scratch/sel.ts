import esquery from "esquery";
import * as acorn from "acorn";
import { SYNTAX_RULES } from "/work/main/tools/engine_subset/rules.ts";
for (const r of SYNTAX_RULES) {
  try { esquery.parse(r.selector); } catch (e) { console.log("BAD", r.id, (e as Error).message); }
}
const code = `
const {a, b: [c]} = o; f(...x); function g(p = 1, ...r) {} const q = {[k]: 1, ...z}; a?.b; x ??= 1; y = 2 ** 3;
async function h() { await 1; for await (const v of w) {} } function* gen() { yield 1; }
tag\`x\`; lbl: for (;;) break lbl; class C extends Error { #p = 1; static { } [k]() {} } /ab+/.test(s); new RegExp("x");
10n; 1_000; function nt() { new.target; } import("x"); for (const [k, v] of m.entries()) {}
Array.from(x); Array["of"](1); Uint8Array.from(x); Object.freeze(o); Math.imul(1,2); Number.isInteger(1); Number.EPSILON;
p.finally(f); a.flat(); a.at(-1); e.at; a.lastIndexOf(1); s.replaceAll("a","b"); JSON.stringify(x, null, 2); JSON.stringify(x, r); JSON.parse(s, rv); JSON.stringify(x, undefined, 1);
Promise.race([]); Math.log10(3);
`;
const ast = acorn.parse(code, { ecmaVersion: "latest", sourceType: "script", locations: true, allowAwaitOutsideFunction: false });
for (const r of SYNTAX_RULES) {
  const hits = esquery.query(ast as never, r.selector);
  console.log(r.id, hits.map((h) => code.slice((h as unknown as {start:number}).start, (h as unknown as {end:number}).end).slice(0, 25)));
}
