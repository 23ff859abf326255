import { ESLint } from "eslint";
const eslint = new ESLint({ cwd: "/work/main" });
const code = `
type F = (...args: unknown[]) => void;
interface I { m({ a }: { a: number }): void; n(...x: number[]): void }
declare function d(...a: string[]): void;
let m: Map<string, number> | undefined;
const s = new Set<number>();
export function f(x: number = 1, ...r: number[]): number { return x + r.length; }
class K { constructor(private readonly y = 2) {} abstract?: number }
function over(a: string): void;
function over(a: unknown): void { void a; }
const t = typeof Symbol;
for (let i = 0; i < 3; i++) { setTimeout(() => i, 1); }
g();
function g() {}
const o = { at: 1 }; void o.at;
export {};
`;
for (const path of ["device/core/x.ts", "host/x.ts", "device/targets/node/x.ts", "device/core/x.test.ts", "protocol/codegen/x.ts", "protocol/generated/x.ts"]) {
  const [r] = await eslint.lintText(code, { filePath: path });
  console.log(path, r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}`).join(" | "));
}
