// The agent's local control API (HTTP + JSON on loopback), used by the technician CLI.
// One place for the shapes both sides share.
//
//   GET  /v1/status                         AgentStatus
//   GET  /v1/devices                        DeviceSummary[]
//   GET  /v1/devices/:id                    DeviceDetail                  404 ApiError
//   GET  /v1/devices/:id/logs?lines=N       { lines: string[] }
//   GET  /v1/devices/:id/logs?follow=1      text/event-stream, one `data: <line>` event per log line
//   POST /v1/devices/:id/command            CommandRequest -> { result: CommandResultJson }
//   POST /v1/devices/:id/transfer           TransferRequest -> text/event-stream: `progress` events
//                                           (TransferProgress) as the device confirms chunks, then one
//                                           `done` (TransferOutcome) or `error` (TransferStreamError)
//   POST /v1/time-sync                      { deviceIds?: string[] } -> { results: TimeSyncResult[] }
// Errors: a non-2xx status with ApiError. 404 unknown device, 409 device not ready (or busy with
// another transfer), 504 device did not answer, 502 device answered with an error, 400 bad
// request, 413 body too large. Once a transfer's event stream has started, a failure is its
// `error` event, carrying the status it would have had.
//
// Technician authority: the agent is an untrusted relay and never signs. A command signed by the
// technician's CLI carries `id` (>= SIGNED_COMMAND_ID_MIN: the signature covers it, so the agent
// sends it with that id) and `authority` (base64 of an encoded Authority); a transfer carries the
// signed TransferBegin's id and authority in `begin`. The agent passes both through unchanged.

import type { Health } from "../../protocol/generated/device_codec.ts";

export const DEFAULT_CONTROL_PORT = 7420;

/** Largest request body of POST /v1/devices/:id/transfer (other routes take at most 64 KiB). */
export const MAX_TRANSFER_BODY_BYTES = 8 * 1024 * 1024;
/** Largest file one transfer request carries: base64 of it, in JSON, fits the body limit. */
export const MAX_TRANSFER_DATA_BYTES = 6 * 1024 * 1024 - 4096;

export interface ApiError {
  error: string;
  /** What to do next, for a person. */
  hint?: string;
}

export interface TransportState {
  available: boolean;
  reason?: string;
}

export interface AgentStatus {
  agentId: string;
  site: string;
  startedAtMs: number;
  mqtt: { url: string; connected: boolean; published: number; inFlight: number; lastError?: string };
  outbox: { pending: number; sent: number; duplicatesDropped: number };
  transports: { serial: TransportState; ble: TransportState; usb: TransportState };
  devices: number;
}

export type DeviceRole = "verification" | "result" | "unknown";

/** Health as the device reports it (the generated codec's type: one place for the fields). */
export type HealthJson = Health;

export interface DeviceSummary {
  deviceId: string;
  role: DeviceRole;
  transport: "serial" | "ble" | "memory";
  address: string;
  state: string;
  firmwareVersion: string;
  lastSeenMs: number;
  health: HealthJson | null;
  counters: { records: number; duplicates: number; errors: number };
}

export interface DeviceDetail extends DeviceSummary {
  hardwareModel: string;
  bootId: number;
  publicKeyHex: string;
  log: string[];
}

/** Command ids the technician's CLI picks for signed commands; the agent's own stay below. */
export const SIGNED_COMMAND_ID_MIN = 0x80000000;

export interface CommandRequest {
  /**
   * One member of the Command oneof in protobufjs JSON form, e.g. { "diagnostics": {} }; a signed
   * command adds "id" (>= SIGNED_COMMAND_ID_MIN) and "authority" (base64).
   */
  command: Record<string, unknown>;
  timeoutMs?: number;
}

/** The technician's authority for the TransferBegin of a transfer (see TransferRequest.begin). */
export interface TransferBeginAuthority {
  /** The command id the TransferBegin was signed with (>= SIGNED_COMMAND_ID_MIN). */
  id: number;
  /** The encoded Authority, base64. */
  authorityBase64: string;
}

/** CommandResult in protobufjs JSON form (longs as numbers, enums as numbers). */
export type CommandResultJson = Record<string, unknown> & { id: number; status?: number; message?: string };

export interface TimeSyncResult {
  deviceId: string;
  ok: boolean;
  message: string;
}

/** TransferKind values of the schema, by the name the API and the CLI use. */
export const TRANSFER_KINDS = {
  firmware: 1,
  "station-data": 2,
  "election-definition": 3,
  configuration: 4,
} as const;

export type TransferKindName = keyof typeof TRANSFER_KINDS;

export function isTransferKind(v: unknown): v is TransferKindName {
  return typeof v === "string" && Object.prototype.hasOwnProperty.call(TRANSFER_KINDS, v);
}

export interface TransferRequest {
  kind: TransferKindName;
  /** Stored by the device with the data (e.g. the file name); default "". */
  name?: string;
  /** The bytes to send, base64 (standard alphabet, padded). */
  dataBase64: string;
  /**
   * The technician's signature on the TransferBegin the agent sends: { kind, total_bytes = the
   * data's length, sha256 of the data, name } with this id. Absent: the begin goes unsigned.
   */
  begin?: TransferBeginAuthority;
}

/** `event: progress`: bytes the device has confirmed so far, of `total`. */
export interface TransferProgress {
  sent: number;
  total: number;
}

/** `event: done`. */
export type { TransferOutcome } from "../session/transfer.ts";

/** `event: error`: an ApiError plus the HTTP status it would have had (502, 504, 500). */
export interface TransferStreamError extends ApiError {
  status: number;
}
