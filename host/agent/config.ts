// The host agent's configuration file (JSON): what to listen on, where to store, where to send.
// Paths in the file are relative to the file itself. Every problem is reported with the field.

import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { hostname } from "node:os";
import { DEFAULT_CONTROL_PORT } from "../control/api.ts";

export interface AgentConfig {
  /** The polling site or warehouse this agent serves (MQTT topic level). */
  site: string;
  agentId: string;
  serial: {
    /** Ports to open as they appear (pseudo-terminals are not listed by udev). */
    paths: string[];
    /** Patterns on the last path segment, e.g. "/dev/ttyACM*". */
    globs: string[];
    vendorIds: string[];
    productIds: string[];
    scanIntervalMs: number;
  };
  ble: { enabled: boolean };
  usb: { enabled: boolean };
  outbox: { path: string };
  mqtt: {
    url: string;
    username?: string;
    password?: string;
    /** PEM file paths for TLS (mqtts://). */
    ca?: string;
    cert?: string;
    key?: string;
    rejectUnauthorized?: boolean;
  };
  control: { host: string; port: number };
  /** Sets a device's clock from the host's when the device has none. */
  timeSync: boolean;
}

export class ConfigError extends Error {}

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`${field} must be an object`);
  return v as Json;
}

function str(v: unknown, field: string, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "string" || v === "") throw new ConfigError(`${field} must be a non-empty string`);
  return v;
}

function optStr(v: unknown, field: string): string | undefined {
  return v === undefined ? undefined : str(v, field);
}

function strList(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new ConfigError(`${field} must be a list of strings`);
  return v as string[];
}

function num(v: unknown, field: string, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${field} must be a whole number from ${min} to ${max}`);
  return v;
}

function bool(v: unknown, field: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") throw new ConfigError(`${field} must be true or false`);
  return v;
}

/** Checks a parsed config object; `baseDir` resolves relative paths. */
export function parseAgentConfig(raw: unknown, baseDir: string): AgentConfig {
  const c = obj(raw, "config");
  const rel = (p: string | undefined): string | undefined => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(baseDir, p));
  const serial = obj(c.serial, "serial");
  const mqtt = obj(c.mqtt, "mqtt");
  const outbox = obj(c.outbox, "outbox");
  const control = obj(c.control, "control");
  const site = str(c.site, "site");
  if (!/^[A-Za-z0-9_.-]+$/.test(site)) throw new ConfigError("site may hold letters, digits, '.', '_' and '-' only (it is an MQTT topic level)");
  const url = str(mqtt.url, "mqtt.url");
  if (!/^(mqtts?|wss?|tcp):\/\//.test(url)) throw new ConfigError("mqtt.url must start with mqtt://, mqtts://, ws:// or wss://");
  return {
    site,
    agentId: str(c.agentId, "agentId", `agent-${hostname()}`),
    serial: {
      paths: strList(serial.paths, "serial.paths").map((p) => rel(p) as string),
      globs: strList(serial.globs, "serial.globs").map((p) => rel(p) as string),
      vendorIds: strList(serial.vendorIds, "serial.vendorIds"),
      productIds: strList(serial.productIds, "serial.productIds"),
      scanIntervalMs: num(serial.scanIntervalMs, "serial.scanIntervalMs", 1000, 50, 600000),
    },
    ble: { enabled: bool(obj(c.ble, "ble").enabled, "ble.enabled", false) },
    usb: { enabled: bool(obj(c.usb, "usb").enabled, "usb.enabled", false) },
    outbox: { path: rel(str(outbox.path, "outbox.path")) as string },
    mqtt: {
      url,
      username: optStr(mqtt.username, "mqtt.username"),
      password: optStr(mqtt.password, "mqtt.password"),
      ca: rel(optStr(mqtt.ca, "mqtt.ca")),
      cert: rel(optStr(mqtt.cert, "mqtt.cert")),
      key: rel(optStr(mqtt.key, "mqtt.key")),
      rejectUnauthorized: mqtt.rejectUnauthorized === undefined ? undefined : bool(mqtt.rejectUnauthorized, "mqtt.rejectUnauthorized", true),
    },
    control: {
      host: str(control.host, "control.host", "127.0.0.1"),
      port: num(control.port, "control.port", DEFAULT_CONTROL_PORT, 0, 65535),
    },
    timeSync: bool(c.timeSync, "timeSync", true),
  };
}

export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseAgentConfig(raw, dirname(resolve(path)));
}
