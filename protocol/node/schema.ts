// The host's view of the protocol: protobufjs types loaded from protocol/pollkit.proto, and
// conversions between protobufjs messages, plain JSON and the device codec's objects.
// Node only (not firmware).

import { readFileSync } from "node:fs";
import protobuf from "protobufjs";

export const PROTO_PATH = new URL("../pollkit.proto", import.meta.url).pathname;

export const root: protobuf.Root = protobuf.parse(readFileSync(PROTO_PATH, "utf8"), { keepCase: false }).root;
root.resolveAll();

export function type(name: string): protobuf.Type {
  return root.lookupType(`pollkit.v1.${name}`);
}

export const Envelope = type("Envelope");
export const Command = type("Command");

/** Every message type in the schema, in declaration order. */
export function messageTypes(): protobuf.Type[] {
  const ns = root.lookup("pollkit.v1") as protobuf.Namespace;
  return ns.nestedArray.filter((o): o is protobuf.Type => o instanceof protobuf.Type);
}

/** Canonical JSON view used to compare decoders: defaults filled, 64-bit as strings, bytes base64. */
export function canonical(t: protobuf.Type, value: object): Record<string, unknown> {
  const msg = value instanceof protobuf.Message ? value : t.fromObject(value as Record<string, unknown>);
  return t.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: true, arrays: true });
}

/** Plain JSON (bytes base64, 64-bit as numbers or strings) to the device codec's object form. */
export function toDeviceObject(t: protobuf.Type, json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(json)) {
    const f = t.fields[key];
    const v = json[key];
    if (!f || v === undefined || v === null) continue;
    const conv = (x: unknown): unknown => {
      if (f.resolvedType instanceof protobuf.Type) return toDeviceObject(f.resolvedType, x as Record<string, unknown>);
      if (f.type === "bytes") return typeof x === "string" ? new Uint8Array(Buffer.from(x, "base64")) : x;
      if (/64$/.test(f.type)) return Number(x);
      return x;
    };
    out[key] = f.repeated ? (v as unknown[]).map(conv) : conv(v);
  }
  return out;
}

/** Protobuf text format (for protoc --encode), from the plain JSON form. */
export function toTextFormat(t: protobuf.Type, json: Record<string, unknown>, indent = ""): string {
  const lines: string[] = [];
  for (const f of t.fieldsArray.slice().sort((a, b) => a.id - b.id)) {
    const v = json[f.name];
    if (v === undefined || v === null) continue;
    const values = f.repeated ? (v as unknown[]) : [v];
    for (const x of values) {
      if (f.resolvedType instanceof protobuf.Type) {
        lines.push(`${indent}${protoName(f)} {`);
        lines.push(toTextFormat(f.resolvedType, x as Record<string, unknown>, indent + "  "));
        lines.push(`${indent}}`);
      } else if (f.type === "string" || f.type === "bytes") {
        const bytes = f.type === "bytes" ? Buffer.from(x as string, "base64") : Buffer.from(x as string, "utf8");
        lines.push(`${indent}${protoName(f)}: "${[...bytes].map((b) => "\\" + b.toString(8).padStart(3, "0")).join("")}"`);
      } else lines.push(`${indent}${protoName(f)}: ${String(x)}`);
    }
  }
  return lines.filter((l) => l !== "").join("\n");
}

function protoName(f: protobuf.Field): string {
  return f.name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}
