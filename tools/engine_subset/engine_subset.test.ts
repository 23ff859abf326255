// The engine subset in both layers: the ESLint plugin on firmware source (and not on host code),
// and the bundle checker on what esbuild makes of the same source, helpers included.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build, transform, type Plugin } from "esbuild";
import { ESLint, type Linter } from "eslint";
import esquery from "esquery";
import { checkBundle, type Violation } from "../bundle_check.ts";
import {
  ESBUILD_SUPPORTED,
  GLOBAL_RULES,
  SCOPE_RULES,
  SYNTAX_RULES,
  allRuleIds,
  formatMessage,
} from "./rules.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

interface Case {
  /** The table id expected to fire. */
  rule: string;
  code: string;
  /** Text on the offending line, in the source and in esbuild's output. */
  needle: string;
  /** For a global or scope rule: the name in its message. */
  name?: string;
}

const CASES: Case[] = [
  { rule: "destructuring", code: "const o = { a: 1 };\nconst { a } = o;\nexport const b = a;\n", needle: "{ a } = o" },
  { rule: "spread", code: "export function f(xs: number[]): number[] {\n  return [...xs, 1];\n}\n", needle: "...xs" },
  { rule: "async", code: "export async function f(): Promise<number> {\n  return 1;\n}\n", needle: "async function" },
  { rule: "map-set", code: "export const m = new Map<string, number>();\n", needle: "new Map", name: "Map" },
  {
    rule: "optional-chaining",
    code: "export function f(o: { a?: { b: number } }): number | undefined {\n  return o.a?.b;\n}\n",
    needle: "?.b",
  },
  { rule: "default-param", code: "export function f(x: number = 1): number {\n  return x;\n}\n", needle: "= 1)" },
  { rule: "computed-key", code: 'const k = "a";\nexport const o = { [k]: 1 };\n', needle: "[k]: 1" },
  { rule: "exponent", code: "export function f(x: number): number {\n  return x ** 2;\n}\n", needle: "x ** 2" },
  {
    rule: "logical-assignment",
    code: "export function f(o: { a?: number }): number {\n  o.a ??= 1;\n  return o.a;\n}\n",
    needle: "??=",
  },
  { rule: "generator", code: "export function* g(): Generator<number> {\n  yield 1;\n}\n", needle: "function*" },
  {
    rule: "labelled-statement",
    code:
      "export function f(): void {\n  outer: for (let i = 0; i < 2; i++) {\n    for (let j = 0; j < 2; j++) {\n      if (j === i) break outer;\n    }\n  }\n}\n",
    needle: "outer:",
  },
  { rule: "extends-builtin", code: "export class E extends Error {}\n", needle: "extends Error" },
  { rule: "array-from", code: "export const a = Array.from([1, 2]);\n", needle: "Array.from" },
  { rule: "math-imul", code: "export const x = Math.imul(3, 4);\n", needle: "Math.imul" },
  { rule: "number-is-integer", code: "export const y = Number.isInteger(3);\n", needle: "Number.isInteger" },
  { rule: "text-codec", code: "export const t = new TextEncoder();\n", needle: "TextEncoder", name: "TextEncoder" },
  {
    rule: "tagged-template",
    code: "function tag(s: TemplateStringsArray): string {\n  return s[0];\n}\nexport const v = tag`x`;\n",
    needle: "tag`x`",
  },
  {
    rule: "private-member",
    code: "export class P {\n  #x = 1;\n  get x(): number {\n    return this.#x;\n  }\n}\n",
    needle: "#x = 1",
  },
  { rule: "regex", code: "export const r = /ab+c/;\n", needle: "/ab+c/" },
  {
    rule: "loop-closure",
    code:
      "export function f(out: (() => number)[]): void {\n  for (let i = 0; i < 3; i++) {\n    out.push(() => i);\n  }\n}\n",
    needle: "() => i",
    name: "i",
  },
  { rule: "hoisting", code: "f();\nfunction f(): void {}\n", needle: "f();", name: "f" },
];

/** Engine-clean firmware: what the subset is meant to leave alone. */
const CLEAN = `export interface Reading {
  id: number;
  label: string;
}

export class Counter {
  private count = 0;
  readonly name: string;
  static instances = 0;

  constructor(name: string) {
    this.name = name;
    Counter.instances++;
  }

  get total(): number {
    return this.count;
  }

  add(values: readonly number[]): number {
    for (const v of values) this.count += v;
    return this.count;
  }

  describe(r: Reading | undefined): string {
    const label = (r !== undefined ? r.label : undefined) ?? "none";
    return \`\${this.name}: \${this.count} (\${label})\`;
  }
}

export const double = (x: number): number => x * 2;

export function checksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i++) sum = (sum + data[i]) & 0xff;
  return sum;
}

export const buf = new Uint8Array(4);
buf.set([1, 2], 0);
export const view = new DataView(buf.buffer);
export const words = new Uint32Array(buf.buffer, 0, 1);

export function keysOf(o: Record<string, number>): string[] {
  return Object.keys(o);
}

export function encode(o: object): string {
  return JSON.stringify(o, null, 2);
}

export const hasSymbol = typeof Symbol !== "undefined";
export type Callback = (...args: unknown[]) => void;
export let seen: Map<string, number> | undefined;
`;

function expectedMessage(c: Case): string {
  const syntax = SYNTAX_RULES.find((r) => r.id === c.rule);
  if (syntax !== undefined) return syntax.message;
  const global = GLOBAL_RULES.find((r) => r.id === c.rule);
  if (global !== undefined) return formatMessage(global.message, c.name ?? "");
  const scope = Object.values(SCOPE_RULES).find((r) => r.id === c.rule);
  assert.ok(scope, `no rule ${c.rule} in the table`);
  return formatMessage(scope.message, c.name ?? "");
}

/** The 1-based line of the first line containing the needle. */
function lineOf(code: string, needle: string): number {
  const index = code.split("\n").findIndex((l) => l.includes(needle));
  assert.notEqual(index, -1, `"${needle}" not found in:\n${code}`);
  return index + 1;
}

async function compile(code: string): Promise<string> {
  return (await transform(code, { loader: "ts", target: "esnext", format: "iife" })).code;
}

function describeViolations(vs: Violation[]): string {
  return vs.map((v) => `${v.line}:${v.column} ${v.rule}`).join(", ") || "(none)";
}

describe("the table", () => {
  test("ids are unique and every selector parses", () => {
    const ids = allRuleIds();
    assert.equal(new Set(ids).size, ids.length);
    for (const r of SYNTAX_RULES) {
      assert.doesNotThrow(() => esquery.parse(r.selector), r.id);
      assert.ok(r.message.length > 20, r.id);
    }
    for (const g of GLOBAL_RULES) assert.ok(g.names.length > 0, g.id);
  });
});

describe("ESLint on firmware source", () => {
  let eslint: ESLint;
  const lint = async (code: string, filePath: string): Promise<Linter.LintMessage[]> => {
    const [result] = await eslint.lintText(code, { filePath });
    return result.messages;
  };

  before(() => {
    eslint = new ESLint({ cwd: repoRoot });
  });

  for (const c of CASES) {
    test(`${c.rule} is an error under device/`, async () => {
      const messages = await lint(c.code, "device/core/x.ts");
      const hit = messages.find((m) => m.ruleId === `engine-subset/${c.rule}`);
      assert.ok(hit, `expected engine-subset/${c.rule}, got ${JSON.stringify(messages, null, 1)}`);
      assert.equal(hit.severity, 2);
      assert.equal(hit.message, expectedMessage(c));
      assert.equal(hit.line, lineOf(c.code, c.needle));
    });

    test(`${c.rule} is allowed in host code`, async () => {
      const messages = await lint(c.code, "host/x.ts");
      const subset = messages.filter((m) => (m.ruleId ?? "").startsWith("engine-subset/"));
      assert.deepEqual(subset, []);
    });
  }

  test("clean firmware has no errors at all", async () => {
    const messages = await lint(CLEAN, "device/core/x.ts");
    assert.deepEqual(messages, []);
  });

  test("Node-only files under device/ and protocol/ are not held to the subset", async () => {
    const code = "export const m = new Map<string, number>();\n";
    for (const filePath of [
      "device/core/x.test.ts",
      "device/build/x.ts",
      "device/targets/node/x.ts",
      "protocol/codegen/x.ts",
    ]) {
      assert.deepEqual(await lint(code, filePath), [], filePath);
    }
    const generated = await lint(code, "protocol/generated/x.ts");
    assert.deepEqual(
      generated.map((m) => m.ruleId),
      ["engine-subset/map-set"],
    );
  });

  test("types are not code: rest parameters in function types, Map in annotations", async () => {
    const code = [
      "export type F = (...args: unknown[]) => void;",
      "export interface I {",
      "  m({ a }: { a: number }): void;",
      "  n(...xs: number[]): void;",
      "}",
      "export declare function d(...a: string[]): void;",
      "export let cache: Map<string, Set<number>> | undefined;",
      "",
    ].join("\n");
    assert.deepEqual(await lint(code, "device/core/x.ts"), []);
  });

  test("a call inside a function declared earlier is not a hoisting error", async () => {
    const code = "function g(): void {\n  f();\n}\nfunction f(): void {}\ng();\n";
    assert.deepEqual(await lint(code, "device/core/x.ts"), []);
  });

  test("a data field named like a missing method is not flagged, its call is", async () => {
    const code = "export function f(e: { at: number }, a: number[]): number {\n  return e.at + a.at(-1)!;\n}\n";
    const messages = await lint(code, "device/core/x.ts");
    assert.deepEqual(
      messages.map((m) => `${m.ruleId}@${m.column}`),
      ["engine-subset/array-at@17"],
    );
  });
});

describe("bundle check", () => {
  for (const c of CASES) {
    test(`${c.rule} is found in esbuild's output, on its line`, async () => {
      const js = await compile(c.code);
      const violations = checkBundle(js, "x.js");
      const hit = violations.find((v) => v.rule === c.rule);
      assert.ok(hit, `expected ${c.rule} in:\n${js}\ngot ${describeViolations(violations)}`);
      assert.equal(hit.message, expectedMessage(c));
      assert.equal(hit.line, lineOf(js, c.needle));
      assert.ok(hit.source.includes(c.needle), hit.source);
      assert.equal(hit.file, "x.js");
    });
  }

  test("a clean bundle has no violations", async () => {
    const js = await compile(CLEAN);
    assert.deepEqual(checkBundle(js, "clean.js"), []);
  });

  test("hoisting: only a use that runs before the declaration, in the same function", () => {
    const flagged = checkBundle("f();\nfunction f() {}\n", "a.js");
    assert.deepEqual(
      flagged.map((v) => [v.rule, v.line, v.column]),
      [["hoisting", 1, 1]],
    );
    assert.deepEqual(checkBundle("function g() { f(); }\nfunction f() {}\ng();\n", "b.js"), []);
    // Shadowed names and nested blocks.
    assert.deepEqual(checkBundle("function g(f) { f(); }\nfunction f() {}\ng(f);\n", "c.js"), []);
    assert.deepEqual(
      checkBundle("if (x) {\n  f();\n}\nfunction f() {}\n", "d.js").map((v) => [v.rule, v.line]),
      [["hoisting", 2]],
    );
  });

  test("globals: only references that resolve to no declaration", () => {
    const code = [
      "var o = { Map: 1, Set: 2 };",
      "o.Map = o.Set;",
      "function f(Map) { return new Map(); }",
      "var Set = function () {};",
      "new Set();",
      "if (typeof WeakMap !== 'undefined') {}",
      "class C { Reflect() { return 1; } }",
      "new Map();",
      "",
    ].join("\n");
    assert.deepEqual(
      checkBundle(code, "g.js").map((v) => [v.rule, v.line, v.message]),
      [["map-set", 8, "Espruino has no `Map`: use a plain object with string keys, or an array."]],
    );
  });

  test("loop closures: a function capturing a for-let variable, not a synchronous use in the loop", () => {
    const code = [
      "function bind(k) { return function () { return k; }; }",
      "var fns = [];",
      "for (let i = 0; i < 3; i++) {",
      "  fns.push(function () { return i; });",
      "  var x = i * 2;",
      "}",
      "for (let j = 0; j < 3; j++) {",
      "  fns.push(bind(j));",
      "}",
      "",
    ].join("\n");
    assert.deepEqual(
      checkBundle(code, "l.js").map((v) => [v.rule, v.line]),
      [["loop-closure", 4]],
    );
  });

  test("esbuild's helpers are checked too (class field, namespace import, object spread)", async () => {
    const files: Record<string, string> = {
      "entry.ts": [
        'import * as ns from "./values.ts";',
        "export class A {",
        "  x = 1;",
        "  static y = 2;",
        "}",
        "const o = { ...ns, z: 1 };",
        "console.log(o, new A());",
        "",
      ].join("\n"),
      "values.ts": "export const q = 1;\nexport function w(): number {\n  return 2;\n}\n",
    };
    const virtual: Plugin = {
      name: "virtual",
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => ({ path: args.path.replace(/^\.\//, ""), namespace: "virtual" }));
        b.onLoad({ filter: /.*/, namespace: "virtual" }, (args) => ({ contents: files[args.path], loader: "ts" }));
      },
    };
    const bundle = async (target: string): Promise<string> => {
      const out = await build({
        entryPoints: ["entry.ts"],
        bundle: true,
        format: "iife",
        target,
        write: false,
        plugins: [virtual],
        logLevel: "silent",
      });
      return out.outputFiles[0].text;
    };

    // es2020: class fields become __publicField / __defNormalProp calls and the namespace an
    // __export of getters (engine-clean, and the getters' early references to `w` are inside
    // arrows, so no hoisting error); object spread is ES2018, so it stays native and is caught.
    const es2020 = await bundle("es2020");
    assert.match(es2020, /__publicField/);
    assert.match(es2020, /__export\(/);
    assert.deepEqual(
      checkBundle(es2020, "es2020.js").map((v) => [v.rule, v.line]),
      [["spread", lineOf(es2020, "...values_exports")]],
    );

    // es2017: spread becomes the __spreadValues helper, which reads Object.getOwnPropertySymbols.
    const es2017 = await bundle("es2017");
    const helperLine = lineOf(es2017, "Object.getOwnPropertySymbols");
    assert.ok(helperLine < lineOf(es2017, "entry.ts"), "the violation is in the injected helper");
    assert.deepEqual(
      checkBundle(es2017, "es2017.js").map((v) => [v.rule, v.line]),
      [["object-symbols", helperLine]],
    );
  });

  test("esbuild's minifier introduces `?.` and `catch {` unless ESBUILD_SUPPORTED switches them off", async () => {
    const source = [
      "export function f(x: { q: number } | null | undefined): number | undefined {",
      "  return x === null || x === undefined ? undefined : x.q;",
      "}",
      "export function g(cb: () => number): number {",
      "  try {",
      "    return cb();",
      "  } catch (e) {",
      "    return 0;",
      "  }",
      "}",
      "",
    ].join("\n");
    const minify = async (supported?: Record<string, boolean>): Promise<string> =>
      (await transform(source, { loader: "ts", target: "esnext", format: "iife", minify: true, supported })).code;
    assert.deepEqual(
      checkBundle(await minify(), "min.js").map((v) => v.rule).sort(),
      ["optional-catch-binding", "optional-chaining"],
    );
    assert.deepEqual(checkBundle(await minify({ ...ESBUILD_SUPPORTED }), "min.js"), []);
  });

  test("module bundles: imports are bindings, module-only syntax is still checked", () => {
    const code = [
      'import { Map } from "embedded:x";',
      "export function f() { return new Map(); }",
      "export default function () { return new Set(); }",
      "console.log(import.meta.url);",
      "",
    ].join("\n");
    assert.deepEqual(
      checkBundle(code, "m.js", { module: true }).map((v) => [v.rule, v.line]),
      [
        ["map-set", 3],
        ["import-meta", 4],
      ],
    );
  });

  test("a syntax error is reported on its line", () => {
    const violations = checkBundle("var a = 1;\nvar b = ;\nvar c = 3;\n", "broken.js");
    assert.equal(violations.length, 1);
    assert.equal(violations[0].rule, "parse-error");
    assert.equal(violations[0].line, 2);
    assert.equal(violations[0].source, "var b = ;");
    assert.match(violations[0].message, /does not parse/);
  });

  test("module syntax does not parse: a bundle is a plain script", () => {
    const violations = checkBundle("export const a = 1;\n", "esm.js");
    assert.deepEqual(
      violations.map((v) => [v.rule, v.line]),
      [["parse-error", 1]],
    );
  });

  test("the CLI prints file:line:col rule message and the line, and sets the exit code", () => {
    const dir = mkdtempSync(join(tmpdir(), "bundle-check-"));
    try {
      const bad = join(dir, "bad.js");
      const good = join(dir, "good.js");
      writeFileSync(bad, "var a = 1;\nvar m = new Map();\n");
      writeFileSync(good, "var a = [1, 2].map(function (x) { return x * 2; });\n");
      const run = (...files: string[]) =>
        spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "tools/bundle_check.ts"), ...files], {
          cwd: repoRoot,
          encoding: "utf8",
        });

      const failed = run(bad, good);
      assert.equal(failed.status, 1, failed.stderr);
      assert.ok(failed.stdout.includes(`${bad}:2:13 map-set Espruino has no \`Map\``), failed.stdout);
      assert.ok(failed.stdout.includes("var m = new Map();"), failed.stdout);
      assert.ok(failed.stdout.includes(`bundle check: ${good} ok (52 bytes)`), failed.stdout);

      const passed = run(good);
      assert.equal(passed.status, 0, passed.stderr);
      assert.equal(passed.stdout.trim(), `bundle check: ${good} ok (52 bytes)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
