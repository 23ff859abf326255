// The agent's local control API (HTTP + JSON on loopback), used by the technician CLI.
// One place for the shapes both sides share.
//
//   GET  /v1/status                         AgentStatus
//   GET  /v1/devices                        DeviceSummary[]
//   GET  /v1/devices/:id                    DeviceDetail                  404 ApiError
//   GET  /v1/devices/:id/logs?lines=N       { lines: string[] }
//   GET  /v1/devices/:id/logs?follow=1      text/event-stream, one `data: <line>` event per log line
//   POST /v1/devices/:id/command            CommandRequest -> { result: CommandResultJson }
//   POST /v1/time-sync                      { deviceIds?: string[] } -> { results: TimeSyncResult[] }
// Errors: a non-2xx status with ApiError. 404 unknown device, 409 device not ready,
// 504 device did not answer, 502 device answered with an error, 400 bad request.

export const DEFAULT_CONTROL_PORT = 7420;

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

export interface HealthJson {
  batteryMv?: number;
  stateOfChargePermille?: number;
  currentMa?: number;
  temperatureDecic?: number;
  chargeState?: number;
  chargerFaults?: number;
  uptimeS?: number;
  rebootReason?: number;
  freeMemoryBytes?: number;
  freeStorageBytes?: number;
  journalBacklog?: number;
  peripheralFaults?: number;
  clockMs?: number;
  chargeMode?: number;
  errorCount?: number;
}

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

export interface CommandRequest {
  /** One member of the Command oneof in protobufjs JSON form, e.g. { "diagnostics": {} }. */
  command: Record<string, unknown>;
  timeoutMs?: number;
}

/** CommandResult in protobufjs JSON form (longs as numbers, enums as numbers). */
export type CommandResultJson = Record<string, unknown> & { id: number; status?: number; message?: string };

export interface TimeSyncResult {
  deviceId: string;
  ok: boolean;
  message: string;
}
