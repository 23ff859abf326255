// Random valid protocol messages for round-trip and fuzz tests (Node only).

import protobuf from "protobufjs";

type Json = Record<string, unknown>;

/** A small seeded PRNG, so failures reproduce. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TEXT = ["", "a", "poll", "بغداد", "Ünïcødé", "𝄞🗳️", "x".repeat(200), "\u0000\u007f"];

function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

function scalar(type: string, rand: () => number): unknown {
  const big = rand() < 0.3;
  switch (type) {
    case "int32":
    case "sint32":
    case "sfixed32":
      return big ? randInt(rand, -2147483648, 2147483647) : randInt(rand, -300, 300);
    case "uint32":
    case "fixed32":
      return big ? randInt(rand, 0, 4294967295) : randInt(rand, 0, 300);
    case "int64":
    case "sint64":
    case "sfixed64":
      return big ? randInt(rand, -9007199254740991, 9007199254740991) : randInt(rand, -70000, 70000);
    case "uint64":
    case "fixed64":
      return big ? randInt(rand, 0, 9007199254740991) : randInt(rand, 0, 70000);
    case "bool":
      return rand() < 0.5;
    case "float":
      return Math.fround((rand() - 0.5) * 1e6);
    case "double":
      return (rand() - 0.5) * 1e12;
    case "string":
      return TEXT[randInt(rand, 0, TEXT.length - 1)];
    case "bytes": {
      const b = Buffer.alloc(randInt(rand, 0, 40));
      for (let i = 0; i < b.length; i++) b[i] = randInt(rand, 0, 255);
      return b.toString("base64");
    }
  }
  throw new Error(`no generator for ${type}`);
}

/** A random message in plain JSON form; nested messages to a bounded depth. */
export function randomMessage(t: protobuf.Type, rand: () => number, depth = 0): Json {
  const out: Json = {};
  const oneofDone = new Set<string>();
  for (const f of t.fieldsArray) {
    if (rand() < 0.3) continue;
    if (f.partOf) {
      if (oneofDone.has(f.partOf.name)) continue;
      oneofDone.add(f.partOf.name);
    }
    const one = (): unknown => {
      if (f.resolvedType instanceof protobuf.Type) return randomMessage(f.resolvedType, rand, depth + 1);
      if (f.resolvedType instanceof protobuf.Enum) {
        const values = Object.values(f.resolvedType.values);
        return rand() < 0.9 ? values[randInt(rand, 0, values.length - 1)] : randInt(rand, 100, 1000);
      }
      return scalar(f.type, rand);
    };
    if (f.resolvedType instanceof protobuf.Type && depth > 2) continue;
    out[f.name] = f.repeated ? Array.from({ length: randInt(rand, 0, 4) }, one) : one();
  }
  return out;
}
