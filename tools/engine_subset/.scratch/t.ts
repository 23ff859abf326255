import { transform } from "esbuild";
const r = await transform(`export class P {\n  #x = 1;\n  get x(): number {\n    return this.#x;\n  }\n}\nexport const m = new Map<string, number>();\nexport function f(x: number = 1): number {\n  return x;\n}\n`, { loader: "ts", target: "esnext", format: "iife" });
console.log(r.code);
