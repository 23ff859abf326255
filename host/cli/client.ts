// A small typed client for the agent's local control API (routes and shapes in
// host/control/api.ts). Every failure leaves here as a CliError with the CLI's exit code: the
// agent not reachable (3), an unknown device (4), a device that failed (5) or did not answer (7).
// Two routes answer with server-sent events: a followed log and a transfer's progress.

import type {
  AgentStatus,
  ApiError,
  CommandResultJson,
  DeviceDetail,
  DeviceSummary,
  TimeSyncResult,
  TransferKindName,
  TransferOutcome,
  TransferProgress,
  TransferRequest,
  TransferBeginAuthority,
} from "../control/api.ts";
import { CliError, EXIT, t } from "./messages.ts";

/** How a followed log stream ended. */
export type FollowEnd = "device-closed" | "stream-ended" | "aborted";

export interface FollowOptions {
  lines?: number;
  signal?: AbortSignal;
  onLine: (line: string) => void;
}

export interface TransferClientOptions {
  kind: TransferKindName;
  name?: string;
  data: Uint8Array;
  /** Cancels the transfer: the agent stops sending (the device keeps what it has). */
  signal?: AbortSignal;
  onProgress?: (p: TransferProgress) => void;
  /** A technician's authority for the TransferBegin (pollkit token use). */
  begin?: TransferBeginAuthority;
}

/** How a transfer ended: done with the agent's outcome, or cancelled through the signal. */
export type TransferEnd = { ok: true; outcome: TransferOutcome } | { ok: false; aborted: true };

/** Time the agent gets on top of a command's own timeout before we call it unreachable. */
const COMMAND_MARGIN_MS = 5000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 10000;

export class ControlClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string,
    private readonly timeoutMs = 15000,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  async status(): Promise<AgentStatus> {
    return (await this.request("GET", "/v1/status", { expect: "object" })) as AgentStatus;
  }

  async devices(): Promise<DeviceSummary[]> {
    return (await this.request("GET", "/v1/devices", { expect: "array" })) as DeviceSummary[];
  }

  async device(deviceId: string): Promise<DeviceDetail> {
    return (await this.request("GET", devicePath(deviceId), { deviceId, expect: "object" })) as DeviceDetail;
  }

  async logs(deviceId: string, lines?: number): Promise<string[]> {
    const q = lines === undefined ? "" : `?lines=${lines}`;
    const body = (await this.request("GET", `${devicePath(deviceId)}/logs${q}`, { deviceId, expect: "object" })) as { lines?: unknown };
    if (!Array.isArray(body.lines)) throw this.notAnAgent("logs without lines");
    return body.lines.map(String);
  }

  /** Sends one command (a member of the schema's Command oneof, JSON form) and returns its result. */
  async command(deviceId: string, command: Record<string, unknown>, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResultJson> {
    const body = (await this.request("POST", `${devicePath(deviceId)}/command`, {
      deviceId,
      body: { command, timeoutMs },
      timeoutMs: timeoutMs + COMMAND_MARGIN_MS,
      expect: "object",
    })) as { result?: unknown };
    const r = body.result;
    if (typeof r !== "object" || r === null) throw this.notAnAgent("command answer without result");
    return r as CommandResultJson;
  }

  async timeSync(deviceIds?: string[]): Promise<TimeSyncResult[]> {
    // The agent sets clocks one device after another, each with its own command timeout.
    const n = deviceIds?.length ?? (await this.devices()).length;
    const body = (await this.request("POST", "/v1/time-sync", {
      body: deviceIds === undefined ? {} : { deviceIds },
      timeoutMs: Math.max(1, n) * DEFAULT_COMMAND_TIMEOUT_MS + COMMAND_MARGIN_MS,
      expect: "object",
    })) as { results?: unknown };
    if (!Array.isArray(body.results)) throw this.notAnAgent("time-sync answer without results");
    return body.results as TimeSyncResult[];
  }

  /**
   * Streams a device's log (server-sent events, one `data:` line per log line) until the device
   * disconnects, the agent ends the stream, or `signal` aborts.
   */
  async followLogs(deviceId: string, o: FollowOptions): Promise<FollowEnd> {
    const q = new URLSearchParams({ follow: "1" });
    if (o.lines !== undefined) q.set("lines", String(o.lines));
    const url = `${this.baseUrl}${devicePath(deviceId)}/logs?${q.toString()}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { accept: "text/event-stream" }, signal: o.signal });
    } catch (e) {
      if (o.signal?.aborted) return "aborted";
      throw this.unreachable(e);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw this.httpError(res.status, parseJson(text), deviceId);
    }
    if (res.body === null) return "stream-ended";
    const parser = new SseParser();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        for (const ev of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (ev.event === "close") return "device-closed";
          if (ev.event === "message") o.onLine(ev.data);
        }
      }
    } catch {
      // The stream was open: the agent went away (stopped, restarted) while we followed.
      if (o.signal?.aborted) return "aborted";
      return "stream-ended";
    }
    return "stream-ended";
  }

  /**
   * Sends `data` to a device through the agent (POST .../transfer) and reports the device's
   * confirmed bytes as they come. A device that refuses fails with exit 5, one that stops
   * answering with 7; the agent going away mid-stream with 3.
   */
  async transfer(deviceId: string, o: TransferClientOptions): Promise<TransferEnd> {
    const body: TransferRequest = { kind: o.kind, dataBase64: Buffer.from(o.data).toString("base64") };
    if (o.name !== undefined) body.name = o.name;
    if (o.begin) body.begin = o.begin;
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${devicePath(deviceId)}/transfer`, {
        method: "POST",
        headers: { accept: "text/event-stream", "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: o.signal,
      });
    } catch (e) {
      if (o.signal?.aborted) return { ok: false, aborted: true };
      throw this.unreachable(e);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      throw this.httpError(res.status, parseJson(text), deviceId);
    }
    if (res.body === null || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      throw this.notAnAgent("transfer answer is not an event stream");
    }
    const parser = new SseParser();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        for (const ev of parser.push(decoder.decode(chunk, { stream: true }))) {
          const data = parseJson(ev.data);
          if (ev.event === "progress") {
            const p = data as Partial<TransferProgress> | undefined;
            if (typeof p?.sent === "number" && typeof p.total === "number") o.onProgress?.({ sent: p.sent, total: p.total });
          } else if (ev.event === "done") {
            const out = data as Partial<TransferOutcome> | undefined;
            if (typeof out?.bytes !== "number") throw this.notAnAgent("transfer done without an outcome");
            return { ok: true, outcome: { bytes: out.bytes, chunks: out.chunks ?? 0, resumes: out.resumes ?? 0, ms: out.ms ?? 0 } };
          } else if (ev.event === "error") {
            const status = typeof (data as { status?: unknown } | undefined)?.status === "number" ? (data as { status: number }).status : 500;
            throw this.httpError(status, data, deviceId);
          }
        }
      }
    } catch (e) {
      if (e instanceof CliError) throw e;
      if (o.signal?.aborted) return { ok: false, aborted: true };
      throw new CliError(EXIT.agentUnreachable, t("upload.lost"), t("hint.startAgent"));
    }
    if (o.signal?.aborted) return { ok: false, aborted: true };
    throw new CliError(EXIT.agentUnreachable, t("upload.lost"), t("hint.startAgent"));
  }

  private async request(
    method: "GET" | "POST",
    path: string,
    o: { deviceId?: string; body?: unknown; timeoutMs?: number; expect: "object" | "array" },
  ): Promise<unknown> {
    const timeoutMs = o.timeoutMs ?? this.timeoutMs;
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: o.body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (e) {
      throw this.unreachable(e, timeoutMs);
    }
    const json = parseJson(text);
    if (status < 200 || status > 299) throw this.httpError(status, json, o.deviceId);
    if (json === undefined) throw this.notAnAgent(`HTTP ${status}, not JSON`);
    const isArray = Array.isArray(json);
    if ((o.expect === "array") !== isArray || typeof json !== "object" || json === null) throw this.notAnAgent(`unexpected answer to ${path}`);
    return json;
  }

  private unreachable(e: unknown, timeoutMs?: number): CliError {
    let reason: string;
    if (e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError") && timeoutMs !== undefined) {
      reason = t("error.agentTimeout", { seconds: Math.round(timeoutMs / 1000) });
    } else reason = networkReason(e);
    return new CliError(EXIT.agentUnreachable, t("error.agentUnreachable", { url: this.baseUrl, reason }), t("hint.startAgent"));
  }

  private notAnAgent(detail: string): CliError {
    return new CliError(EXIT.agentUnreachable, t("error.notAnAgent", { url: this.baseUrl, detail }), t("hint.checkAgentUrl"));
  }

  private httpError(status: number, body: unknown, deviceId: string | undefined): CliError {
    const api = asApiError(body);
    if (api === null) return this.notAnAgent(`HTTP ${status}`);
    const device = deviceId ?? "";
    // The agent's own text often starts with the device id; say it once.
    const detail = deviceId === undefined ? api.error : api.error.replace(new RegExp(`^${escapeRegExp(deviceId)}( did not answer)?:? ?`), "");
    switch (status) {
      case 404:
        if (deviceId !== undefined) return new CliError(EXIT.unknownDevice, t("error.unknownDevice", { device }), t("hint.listDevices"));
        return this.notAnAgent(`HTTP 404: ${api.error}`);
      case 504:
        return new CliError(EXIT.noAnswer, t("error.noAnswer", { device, detail: detail === "" ? "" : ` (${detail})` }), t("hint.checkLink"));
      case 502:
        return new CliError(EXIT.deviceFailure, t("error.deviceFailure", { device, detail }), t("command.rejectedHint", { device }));
      case 409:
        return new CliError(EXIT.error, t("error.notReady", { device, detail }), t("hint.retrySoon"));
      default:
        return new CliError(EXIT.error, t("error.agentRefused", { status, detail: api.error }), t("hint.report"));
    }
  }
}

function devicePath(deviceId: string): string {
  return `/v1/devices/${encodeURIComponent(deviceId)}`;
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function asApiError(body: unknown): ApiError | null {
  if (typeof body !== "object" || body === null) return null;
  const b = body as Record<string, unknown>;
  if (typeof b.error !== "string") return null;
  return { error: b.error, hint: typeof b.hint === "string" ? b.hint : undefined };
}

/** "ECONNREFUSED" and the like from fetch's `cause`, else the error's message. */
function networkReason(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (typeof cause === "object" && cause !== null) {
      const c = cause as { code?: unknown; message?: unknown };
      if (typeof c.code === "string") return c.code;
      if (typeof c.message === "string") return c.message;
    }
    return e.message;
  }
  return String(e);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export interface SseEvent {
  event: string;
  data: string;
}

/** Server-sent events parser (the subset the agent uses: event, data, comments). */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];

  push(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      let line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (this.data.length > 0) out.push({ event: this.event || "message", data: this.data.join("\n") });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
    }
    return out;
  }
}
