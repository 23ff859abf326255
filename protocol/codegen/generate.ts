// Generates the device-side protobuf codec from a .proto schema (protobufjs parses it).
// The output keeps to the firmware engine subset (ENGINES.md) and uses protocol/codec_runtime.ts.
//
// The generated file is committed (protocol/generated/device_codec.ts) so that firmware builds
// need no generator run and reviews show codec changes; `--check` (run by `npm test`) fails when
// it is stale.
//
// Usage: tsx protocol/codegen/generate.ts [--check] [--proto file] [--out file] [--runtime path]

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import protobuf from "protobufjs";

type ScalarInfo = {
  wire: number;
  size: (v: string) => string;
  write: (v: string) => string;
  read: string;
  tsType: string;
  zero: string;
  packable: boolean;
};

const scalars: { [name: string]: ScalarInfo } = {
  int32: info(0, "sizeInt32", "writeInt32", "readInt32(r)", "number", "0"),
  uint32: info(0, "sizeVarint32", "writeVarint32", "readVarint32(r)", "number", "0"),
  sint32: info(0, "sizeSint32", "writeSint32", "readSint32(r)", "number", "0"),
  int64: info(0, "sizeVarint64", "writeVarint64", "readInt64(r)", "number", "0"),
  uint64: info(0, "sizeVarint64", "writeVarint64", "readUint64(r)", "number", "0"),
  sint64: info(0, "sizeSint64", "writeSint64", "readSint64(r)", "number", "0"),
  bool: {
    wire: 0,
    size: () => "1",
    write: (v) => `w.b[w.p++] = ${v} ? 1 : 0`,
    read: "readBool(r)",
    tsType: "boolean",
    zero: "false",
    packable: true,
  },
  fixed32: fixed(5, 4, "writeFixed32", "readFixed32(r)"),
  sfixed32: fixed(5, 4, "writeFixed32", "readSfixed32(r)"),
  float: fixed(5, 4, "writeFloat", "readFloat(r)"),
  fixed64: fixed(1, 8, "writeFixed64", "readFixed64(r)"),
  sfixed64: fixed(1, 8, "writeFixed64", "readSfixed64(r)"),
  double: fixed(1, 8, "writeDouble", "readDouble(r)"),
  string: {
    wire: 2,
    size: (v) => `sizeString(${v})`,
    write: (v) => `writeString(w, ${v})`,
    read: "readString(r, end)",
    tsType: "string",
    zero: '""',
    packable: false,
  },
  bytes: {
    wire: 2,
    size: (v) => `sizeBytes(${v})`,
    write: (v) => `writeBytes(w, ${v})`,
    read: "readBytes(r, end)",
    tsType: "Uint8Array",
    zero: "new Uint8Array(0)",
    packable: false,
  },
};

function info(wire: number, size: string, write: string, read: string, tsType: string, zero: string): ScalarInfo {
  return { wire, size: (v) => `${size}(${v})`, write: (v) => `${write}(w, ${v})`, read, tsType, zero, packable: true };
}

function fixed(wire: number, bytes: number, write: string, read: string): ScalarInfo {
  return { wire, size: () => String(bytes), write: (v) => `${write}(w, ${v})`, read, tsType: "number", zero: "0", packable: true };
}

function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v > 127) {
    out.push((v & 127) | 128);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

function tagOf(id: number, wire: number): number {
  return ((id << 3) | wire) >>> 0;
}

function writeTag(tag: number): string {
  return varintBytes(tag)
    .map((b) => `w.b[w.p++] = ${b};`)
    .join(" ");
}

interface FieldPlan {
  name: string;
  id: number;
  kind: "scalar" | "enum" | "message";
  scalar: ScalarInfo;
  messageName: string;
  repeated: boolean;
  packed: boolean;
  oneof: string | null;
}

function planField(f: protobuf.Field): FieldPlan {
  if (f.map) throw new Error(`map fields are not supported by the device codec (${f.fullName})`);
  const resolved = f.resolvedType;
  let kind: FieldPlan["kind"] = "scalar";
  let scalar = scalars[f.type];
  let messageName = "";
  if (resolved instanceof protobuf.Enum) {
    kind = "enum";
    scalar = scalars.int32;
  } else if (resolved instanceof protobuf.Type) {
    kind = "message";
    messageName = resolved.name;
    scalar = scalars.bytes;
  } else if (!scalar) {
    throw new Error(`unsupported field type ${f.type} (${f.fullName})`);
  }
  const oneof = f.partOf ? f.partOf.name : null;
  return {
    name: f.name,
    id: f.id,
    kind,
    scalar,
    messageName,
    repeated: f.repeated,
    packed: f.repeated && kind !== "message" && scalar.packable && f.packed,
    oneof,
  };
}

function tsTypeOf(p: FieldPlan): string {
  const base = p.kind === "message" ? p.messageName : p.scalar.tsType;
  return p.repeated ? `${base}[]` : base;
}

function enumPrefix(e: protobuf.Enum): string {
  const snake = e.name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase() + "_";
  const names = Object.keys(e.values);
  return names.every((n) => n.startsWith(snake) && n.length > snake.length) ? snake : "";
}

function genEnum(e: protobuf.Enum): string {
  const prefix = enumPrefix(e);
  const lines = Object.keys(e.values).map((n) => {
    const short = n.slice(prefix.length);
    const key = /^[0-9]/.test(short) ? n : short;
    return `  ${key}: ${e.values[n]},`;
  });
  return `export const ${e.name} = {\n${lines.join("\n")}\n};\n`;
}

// Short presence tests keep the generated code small (it ships in every firmware bundle): for
// integer, string, bytes and bool fields the proto3 default is exactly the falsy value.
function presence(p: FieldPlan, v: string): string {
  if (p.repeated) return `${v} && ${v}.length`;
  if (p.oneof !== null || p.kind === "message") return `${v} != null`;
  if (p.scalar.tsType === "Uint8Array") return `${v} && ${v}.length`;
  if (p.scalar.read === "readFloat(r)" || p.scalar.read === "readDouble(r)") return `${v} !== undefined && ${v} !== 0`;
  return `${v}`;
}

function genSize(t: protobuf.Type, plans: FieldPlan[]): string {
  const out: string[] = [`export function size${t.name}(m: ${t.name}): number {`, "  let n = 0;"];
  for (const p of plans) {
    const v = `m.${p.name}`;
    if (p.repeated && p.packed) {
      const tagLen = varintBytes(tagOf(p.id, 2)).length;
      out.push(`  if (${presence(p, v)}) {`);
      out.push(`    const k = packedSize${t.name}_${p.name}(${v});`);
      out.push(`    n += ${tagLen} + sizeVarint32(k) + k;`);
      out.push("  }");
    } else if (p.repeated) {
      const tagLen = varintBytes(tagOf(p.id, p.scalar.wire)).length;
      out.push(`  if (${presence(p, v)}) {`);
      out.push(`    const list = ${v};`);
      out.push(`    for (let i = 0; i < list.length; i++) {`);
      if (p.kind === "message") {
        out.push(`      const k = size${p.messageName}(list[i]);`);
        out.push(`      n += ${tagLen} + sizeVarint32(k) + k;`);
      } else out.push(`      n += ${tagLen} + ${p.scalar.size("list[i]")};`);
      out.push("    }");
      out.push("  }");
    } else {
      const tagLen = varintBytes(tagOf(p.id, p.scalar.wire)).length;
      if (p.kind === "message") {
        out.push(`  if (${presence(p, v)}) {`);
        out.push(`    const k = size${p.messageName}(${v} as ${p.messageName});`);
        out.push(`    n += ${tagLen} + sizeVarint32(k) + k;`);
        out.push("  }");
      } else {
        out.push(`  if (${presence(p, v)}) n += ${tagLen} + ${p.scalar.size(`${v} as ${p.scalar.tsType}`)};`);
      }
    }
  }
  out.push("  return n;", "}");
  for (const p of plans.filter((q) => q.packed)) {
    out.push(`function packedSize${t.name}_${p.name}(list: ${tsTypeOf(p)}): number {`);
    out.push("  let n = 0;");
    out.push(`  for (let i = 0; i < list.length; i++) n += ${p.scalar.size("list[i]")};`);
    out.push("  return n;", "}");
  }
  return out.join("\n") + "\n";
}

function genWrite(t: protobuf.Type, plans: FieldPlan[]): string {
  const out: string[] = [`export function write${t.name}(w: Writer, m: ${t.name}): void {`];
  for (const p of plans) {
    const v = `m.${p.name}`;
    if (p.repeated && p.packed) {
      out.push(`  if (${presence(p, v)}) {`);
      out.push(`    const list = ${v};`);
      out.push(`    ${writeTag(tagOf(p.id, 2))}`);
      out.push(`    writeVarint32(w, packedSize${t.name}_${p.name}(list));`);
      out.push(`    for (let i = 0; i < list.length; i++) ${p.scalar.write("list[i]")};`);
      out.push("  }");
    } else if (p.repeated) {
      out.push(`  if (${presence(p, v)}) {`);
      out.push(`    const list = ${v};`);
      out.push(`    for (let i = 0; i < list.length; i++) {`);
      out.push(`      ${writeTag(tagOf(p.id, p.scalar.wire))}`);
      if (p.kind === "message") {
        out.push(`      writeVarint32(w, size${p.messageName}(list[i]));`);
        out.push(`      write${p.messageName}(w, list[i]);`);
      } else out.push(`      ${p.scalar.write("list[i]")};`);
      out.push("    }");
      out.push("  }");
    } else if (p.kind === "message") {
      out.push(`  if (${presence(p, v)}) {`);
      out.push(`    const sub = ${v} as ${p.messageName};`);
      out.push(`    ${writeTag(tagOf(p.id, 2))}`);
      out.push(`    writeVarint32(w, size${p.messageName}(sub));`);
      out.push(`    write${p.messageName}(w, sub);`);
      out.push("  }");
    } else {
      out.push(`  if (${presence(p, v)}) {`);
      out.push(`    ${writeTag(tagOf(p.id, p.scalar.wire))}`);
      out.push(`    ${p.scalar.write(`${v} as ${p.scalar.tsType}`)};`);
      out.push("  }");
    }
  }
  out.push("}");
  return out.join("\n") + "\n";
}

function genOneofClear(t: protobuf.Type): string {
  // Only the last member of a oneof on the wire stays set; delete the others, if any were set.
  return t.oneofsArray
    .map((o) => {
      const lines = o.fieldsArray.map((f) => `  if (m.${f.name} !== undefined) delete m.${f.name};`);
      return `function clear${t.name}_${o.name}(m: ${t.name}): void {\n${lines.join("\n")}\n}\n`;
    })
    .join("");
}

function genRead(t: protobuf.Type, plans: FieldPlan[]): string {
  const out: string[] = [genOneofClear(t) + `export function read${t.name}(r: Reader, end: number): ${t.name} {`];
  const inits = plans
    .filter((p) => p.oneof === null && (p.kind !== "message" || p.repeated))
    .map((p) => `${p.name}: ${p.repeated ? "[]" : p.scalar.zero}`);
  out.push(inits.length > 0 ? `  const m: ${t.name} = { ${inits.join(", ")} };` : `  const m: ${t.name} = {};`);
  out.push("  while (r.p < end) {");
  // One-byte tags and values (nearly all of them) are read inline: no call per field.
  out.push("    let t = r.b[r.p];");
  out.push("    if (t < 128) r.p++;");
  out.push("    else t = readVarint32(r);");
  out.push("    switch (t) {");
  for (const p of plans) {
    const v = `m.${p.name}`;
    const clear = p.oneof === null ? "" : ` clear${t.name}_${p.oneof}(m);`;
    if (p.kind === "message") {
      out.push(`      case ${tagOf(p.id, 2)}: {`);
      out.push("        const e = readLength(r, end);");
      if (p.repeated) out.push(`        (${v} as ${p.messageName}[]).push(read${p.messageName}(r, e));`);
      else out.push(`       ${clear} ${v} = read${p.messageName}(r, e);`);
      out.push("        checkEnd(r, e);");
      out.push("        break;");
      out.push("      }");
      continue;
    }
    if (p.repeated) {
      const list = `(${v} as ${tsTypeOf(p)})`;
      if (p.scalar.wire !== 2) {
        out.push(`      case ${tagOf(p.id, 2)}: {`);
        out.push("        const e = readLength(r, end);");
        out.push(`        while (r.p < e) ${list}.push(${p.scalar.read});`);
        out.push("        checkEnd(r, e);");
        out.push("        break;");
        out.push("      }");
      }
      out.push(`      case ${tagOf(p.id, p.scalar.wire)}:`);
      out.push(`        ${list}.push(${p.scalar.read});`);
      out.push("        break;");
      continue;
    }
    out.push(`      case ${tagOf(p.id, p.scalar.wire)}:`);
    if (p.scalar.read === "readVarint32(r)" || p.scalar.read === "readInt32(r)") {
      // uint32, int32 and enums: a value below 128 is one byte
      out.push("        t = r.b[r.p];");
      out.push(`       ${clear} if (t < 128) {`);
      out.push("          r.p++;");
      out.push(`          ${v} = t;`);
      out.push(`        } else ${v} = ${p.scalar.read};`);
    } else out.push(`       ${clear} ${v} = ${p.scalar.read};`);
    out.push("        break;");
  }
  out.push("      default:");
  out.push("        skipField(r, t, end);");
  out.push("    }");
  out.push("  }");
  out.push("  checkEnd(r, end);");
  out.push("  return m;");
  out.push("}");
  return out.join("\n") + "\n";
}

function genMessage(t: protobuf.Type): string {
  const plans = t.fieldsArray.slice().sort((a, b) => a.id - b.id).map(planField);
  const props = plans.map((p) => `  ${p.name}?: ${tsTypeOf(p)};`);
  const parts: string[] = [];
  parts.push(`export interface ${t.name} {\n${props.join("\n")}\n}\n`);
  parts.push(genSize(t, plans));
  parts.push(genWrite(t, plans));
  parts.push(genRead(t, plans));
  parts.push(
    `export function encode${t.name}(m: ${t.name}): Uint8Array {\n` +
      `  const w: Writer = { b: new Uint8Array(size${t.name}(m)), p: 0 };\n` +
      `  write${t.name}(w, m);\n` +
      "  return w.b;\n}\n",
  );
  parts.push(
    `export function decode${t.name}(bytes: Uint8Array): ${t.name} {\n` +
      `  return read${t.name}({ b: bytes, p: 0 }, bytes.length);\n}\n`,
  );
  return parts.join("\n");
}

function collect(ns: protobuf.NamespaceBase, types: protobuf.Type[], enums: protobuf.Enum[]): void {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type) {
      if (obj.nestedArray.length > 0) throw new Error(`nested declarations are not supported (${obj.fullName})`);
      types.push(obj);
    } else if (obj instanceof protobuf.Enum) enums.push(obj);
    else if (obj instanceof protobuf.Namespace) collect(obj, types, enums);
  }
}

export function generate(protoText: string, runtimeImport: string, sourceName: string): string {
  const { root } = protobuf.parse(protoText, { keepCase: false });
  root.resolveAll();
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  collect(root, types, enums);
  const names = new Set<string>();
  for (const t of types) {
    if (names.has(t.name)) throw new Error(`duplicate message name ${t.name}`);
    names.add(t.name);
  }
  const runtimeNames = [
    "type Writer", "type Reader", "codecError", "checkEnd", "readLength", "skipField",
    "sizeVarint32", "writeVarint32", "readVarint32",
    "sizeInt32", "writeInt32", "readInt32", "sizeSint32", "writeSint32", "readSint32",
    "sizeVarint64", "writeVarint64", "readInt64", "readUint64", "sizeSint64", "writeSint64", "readSint64",
    "readBool", "writeFixed32", "readFixed32", "readSfixed32", "writeFixed64", "readFixed64", "readSfixed64",
    "writeFloat", "readFloat", "writeDouble", "readDouble",
    "sizeString", "writeString", "readString", "sizeBytes", "writeBytes", "readBytes",
  ];
  const table =
    "/** Every message type's encoder and decoder by name (for tests and tools; firmware bundles\n" +
    " * that do not import it leave it out). */\n" +
    "export const MESSAGE_CODECS = {\n" +
    types.map((t) => `  ${t.name}: { encode: encode${t.name}, decode: decode${t.name} },\n`).join("") +
    "};\n";
  const body = [...enums.map(genEnum), ...types.map(genMessage), table].join("\n");
  const used = runtimeNames.filter((n) => {
    const bare = n.replace("type ", "");
    return new RegExp(`\\b${bare}\\b`).test(body);
  });
  const header =
    `// GENERATED by protocol/codegen/generate.ts from ${sourceName}. Do not edit: run npm run gen:codec.\n` +
    "// Device-side protobuf codec in the firmware engine subset (see protocol/codec_runtime.ts).\n" +
    "/* eslint-disable */\n\n" +
    `import {\n  ${used.join(",\n  ")},\n} from "${runtimeImport}";\n\n`;
  return header + body;
}

function main(): void {
  const args = process.argv.slice(2);
  const root = resolve(dirname(new URL(import.meta.url).pathname), "../..");
  const opt = (name: string, fallback: string): string => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : fallback;
  };
  const proto = opt("--proto", resolve(root, "protocol/pollkit.proto"));
  const out = opt("--out", resolve(root, "protocol/generated/device_codec.ts"));
  const runtimePath = opt("--runtime", resolve(root, "protocol/codec_runtime.ts"));
  let runtimeImport = relative(dirname(out), runtimePath);
  if (!runtimeImport.startsWith(".")) runtimeImport = "./" + runtimeImport;
  const code = generate(readFileSync(proto, "utf8"), runtimeImport, relative(root, proto));
  if (args.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(out, "utf8");
    } catch {
      current = "";
    }
    if (current !== code) {
      console.error(`gen:check: ${relative(root, out)} is stale; run npm run gen:codec and commit it`);
      process.exit(1);
    }
    console.log(`gen:check: ${relative(root, out)} is up to date`);
    return;
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, code);
  console.log(`gen:codec: wrote ${relative(root, out)} (${code.length} bytes)`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) main();
