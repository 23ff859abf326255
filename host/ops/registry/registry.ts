// The device registry: which devices exist, their identity keys and where they serve. Imported
// from the provisioning file (a JSON array of RegisteredDevice, or CSV with the header
// deviceId,publicKeyHex,role,governorate,office,stationId,site), validated row by row: one bad
// row rejects the whole file with an error naming the row, nothing is stored. Node only.

import { readFileSync, writeFileSync } from "node:fs";
import type { OpsStore, RegisteredDevice, Role } from "../store/store.ts";

export const CSV_HEADER = ["deviceId", "publicKeyHex", "role", "governorate", "office", "stationId", "site"] as const;
type Column = (typeof CSV_HEADER)[number];

const ROLES: readonly Role[] = ["verification", "result", "unknown"];
const HEX_128 = /^[0-9a-fA-F]{128}$/;
// A device id becomes an MQTT topic level: no '/', '+', '#', control characters.
// eslint-disable-next-line no-control-regex
const BAD_ID = /[/+#\u0000-\u001f\u007f]/;

export class RegistryError extends Error {}

/** Validates one entry; `where` names it in the error ("row 3", "entry 2"). Returns a normalised copy. */
export function validateDevice(raw: unknown, where: string): RegisteredDevice {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new RegistryError(`${where}: not an object`);
  const o = raw as Record<string, unknown>;
  const str = (k: Column, required: boolean): string => {
    const v = o[k];
    if (v === undefined || v === null) {
      if (required) throw new RegistryError(`${where}: ${k} is missing`);
      return "";
    }
    if (typeof v !== "string") throw new RegistryError(`${where}: ${k} must be a string`);
    return v.trim();
  };
  const deviceId = str("deviceId", true);
  if (deviceId === "" || BAD_ID.test(deviceId)) {
    throw new RegistryError(`${where}: deviceId ${JSON.stringify(deviceId)} must be non-empty, without '/', '+', '#' or control characters`);
  }
  let key = str("publicKeyHex", true);
  // Accept the SEC1 uncompressed form (04 || X || Y) too, stored without its prefix.
  if (key.length === 130 && key.startsWith("04")) key = key.slice(2);
  if (!HEX_128.test(key)) {
    const bytes = /^[0-9a-fA-F]*$/.test(key) ? `${key.length / 2} bytes` : "not hexadecimal";
    throw new RegistryError(`${where} (${deviceId}): publicKeyHex must be 64 bytes (X || Y, 128 hex characters), got ${bytes}`);
  }
  const role = str("role", true);
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new RegistryError(`${where} (${deviceId}): unknown role ${JSON.stringify(role)} (expected ${ROLES.join(", ")})`);
  }
  return {
    deviceId,
    publicKeyHex: key.toLowerCase(),
    role: role as Role,
    governorate: str("governorate", false),
    office: str("office", false),
    stationId: str("stationId", false),
    site: str("site", false),
  };
}

function checkDuplicates(devices: RegisteredDevice[], where: (i: number) => string): void {
  const seen = new Map<string, number>();
  devices.forEach((d, i) => {
    const first = seen.get(d.deviceId);
    if (first !== undefined) throw new RegistryError(`${where(i)}: duplicate deviceId ${d.deviceId} (also ${where(first)})`);
    seen.set(d.deviceId, i);
  });
}

/** Splits one CSV line (RFC 4180 quotes, "" inside quotes). */
function csvFields(line: string, where: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new RegistryError(`${where}: unterminated quoted field`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ",") throw new RegistryError(`${where}: text after a quoted field`);
    } else {
      const end = line.indexOf(",", i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

/** Parses a provisioning file's text: JSON (starts with '[') or CSV. Throws RegistryError. */
export function parseRegistry(text: string): RegisteredDevice[] {
  const body = text.replace(/^\uFEFF/, "");
  if (body.trimStart().startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(body);
    } catch (e) {
      throw new RegistryError(`registry JSON does not parse: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!Array.isArray(arr)) throw new RegistryError("registry JSON must be an array of devices");
    const devices = arr.map((x, i) => validateDevice(x, `entry ${i + 1}`));
    checkDuplicates(devices, (i) => `entry ${i + 1}`);
    return devices;
  }
  const lines = body.split(/\r?\n/);
  const header = csvFields(lines[0] ?? "", "header").map((h) => h.trim());
  if (header.join(",") !== CSV_HEADER.join(",")) {
    throw new RegistryError(`registry CSV header must be "${CSV_HEADER.join(",")}", got "${header.join(",")}"`);
  }
  const devices: RegisteredDevice[] = [];
  const rows: number[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === "") continue;
    // Rows are numbered as lines of the file (the header is line 1).
    const where = `row ${n + 1}`;
    const fields = csvFields(line, where);
    if (fields.length !== CSV_HEADER.length) throw new RegistryError(`${where}: ${fields.length} fields, expected ${CSV_HEADER.length}`);
    const obj: Record<string, string> = {};
    CSV_HEADER.forEach((k, i) => (obj[k] = fields[i]));
    devices.push(validateDevice(obj, where));
    rows.push(n + 1);
  }
  checkDuplicates(devices, (i) => `row ${rows[i]}`);
  return devices;
}

/** Reads and validates a provisioning file, then stores every device (one transaction). */
export function importRegistry(store: OpsStore, path: string): RegisteredDevice[] {
  const devices = parseRegistry(readFileSync(path, "utf8"));
  store.upsertDevices(devices);
  return devices;
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The registry as provisioning text: "json" (default) or "csv". Writes it to `path` when given. */
export function exportRegistry(store: OpsStore, format: "json" | "csv" = "json", path?: string): string {
  const devices = store.devices();
  const text =
    format === "json"
      ? JSON.stringify(devices, null, 2) + "\n"
      : [CSV_HEADER.join(","), ...devices.map((d) => CSV_HEADER.map((k) => csvField(d[k])).join(","))].join("\n") + "\n";
  if (path !== undefined) writeFileSync(path, text);
  return text;
}

/**
 * A registry entry for a device whose public key is known (a simulated device's Hello.public_key,
 * a test key): `publicKey` is X || Y (64 bytes) or SEC1 uncompressed (65 bytes, 0x04 first).
 */
export function registryEntry(
  deviceId: string,
  publicKey: Uint8Array,
  rest: Partial<Omit<RegisteredDevice, "deviceId" | "publicKeyHex">> = {},
): RegisteredDevice {
  const xy = publicKey.length === 65 && publicKey[0] === 4 ? publicKey.subarray(1) : publicKey;
  return validateDevice(
    {
      deviceId,
      publicKeyHex: Buffer.from(xy).toString("hex"),
      role: rest.role ?? "unknown",
      governorate: rest.governorate ?? "",
      office: rest.office ?? "",
      stationId: rest.stationId ?? "",
      site: rest.site ?? "",
    },
    `device ${deviceId}`,
  );
}
