// The agent's local control API (see host/control/api.ts for the routes and shapes): JSON over
// HTTP on loopback, plus server-sent events for following a device's log and a transfer's progress.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Agent } from "./agent.ts";
import {
  MAX_TRANSFER_BODY_BYTES,
  MAX_TRANSFER_DATA_BYTES,
  SIGNED_COMMAND_ID_MIN,
  TRANSFER_KINDS,
  isTransferKind,
  type ApiError,
  type CommandRequest,
  type TimeSyncResult,
  type TransferProgress,
  type TransferRequest,
  type TransferStreamError,
} from "../control/api.ts";
import { Command } from "../../protocol/node/schema.ts";
import { CommandError } from "../session/device_session.ts";
import { TransferError, sendTransfer, type TransferOptions } from "../session/transfer.ts";

/** Largest encoded Authority accepted from a client (a token and two signatures fit well below). */
const MAX_AUTHORITY_BYTES = 4096;

/** The signed TransferBegin's id and authority, checked (they reach the device unchanged). */
function beginAuthority(v: unknown): { id: number; authority: Uint8Array } | undefined {
  if (v === undefined) return undefined;
  const b = v as { id?: unknown; authorityBase64?: unknown };
  if (typeof v !== "object" || v === null || typeof b.id !== "number" || !Number.isInteger(b.id) || b.id < SIGNED_COMMAND_ID_MIN || b.id > 0xffffffff) {
    throw new HttpError(400, `begin.id must be the signed command's id (${SIGNED_COMMAND_ID_MIN}..4294967295)`);
  }
  if (typeof b.authorityBase64 !== "string" || b.authorityBase64 === "" || !isBase64(b.authorityBase64)) throw new HttpError(400, "begin.authorityBase64 must be base64");
  const authority = new Uint8Array(Buffer.from(b.authorityBase64, "base64"));
  if (authority.length > MAX_AUTHORITY_BYTES) throw new HttpError(400, `begin.authorityBase64 over ${MAX_AUTHORITY_BYTES} bytes`);
  return { id: b.id, authority };
}

/** A signed command keeps the id it was signed with; one without authority is numbered by the agent. */
function checkSignedCommand(command: Record<string, unknown>): void {
  const signed = command.authority !== undefined && command.authority !== null && command.authority !== "";
  const id = command.id;
  if (signed && (typeof id !== "number" || !Number.isInteger(id) || id < SIGNED_COMMAND_ID_MIN || id > 0xffffffff)) {
    throw new HttpError(400, `a command with authority carries the id it was signed with (${SIGNED_COMMAND_ID_MIN}..4294967295)`);
  }
}

export interface ControlServer {
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;

function readBody(req: IncomingMessage, maxBytes = MAX_BODY): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > maxBytes) {
        // Answer 413 and drop the rest (destroying the request would cut the answer off too).
        over = true;
        chunks.length = 0;
        reject(new HttpError(413, `request body over ${maxBytes} bytes`));
      } else chunks.push(c);
    });
    req.on("end", () => {
      if (over) return;
      if (size === 0) return resolve({});
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(new HttpError(400, "request body is not JSON"));
      }
    });
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function unknownDevice(id: string): HttpError {
  return new HttpError(404, `no device ${id} is connected to this agent`, "List connected devices with: pollkit devices");
}

/** Standard base64 with padding. Checked without a grouped regex: V8 overflows its stack on megabytes. */
function isBase64(s: string): boolean {
  if (s.length % 4 !== 0 || /[^A-Za-z0-9+/=]/.test(s)) return false;
  const pad = s.indexOf("=");
  return pad < 0 || (pad >= s.length - 2 && /^=+$/.test(s.slice(pad)));
}

/** A transfer request body, checked; the data decoded. */
function transferBody(body: Partial<TransferRequest>): { kind: number; name: string; data: Uint8Array; begin?: { id: number; authority: Uint8Array } } {
  const kinds = Object.keys(TRANSFER_KINDS).join(", ");
  if (!isTransferKind(body.kind)) throw new HttpError(400, `kind must be one of ${kinds}`);
  if (body.name !== undefined && (typeof body.name !== "string" || Buffer.byteLength(body.name) > 200)) {
    throw new HttpError(400, "name must be a string of at most 200 bytes");
  }
  if (typeof body.dataBase64 !== "string" || !isBase64(body.dataBase64)) throw new HttpError(400, "dataBase64 must be base64 (standard alphabet, padded)");
  const data = new Uint8Array(Buffer.from(body.dataBase64, "base64"));
  if (data.length === 0) throw new HttpError(400, "nothing to transfer: dataBase64 is empty");
  if (data.length > MAX_TRANSFER_DATA_BYTES) throw new HttpError(413, `data over ${MAX_TRANSFER_DATA_BYTES} bytes`);
  return { kind: TRANSFER_KINDS[body.kind], name: body.name ?? "", data, begin: beginAuthority(body.begin) };
}

/** How a transfer that had started failed, as its `error` event. */
function transferFailure(id: string, e: unknown): TransferStreamError {
  const message = e instanceof Error ? e.message : String(e);
  const checkLink = "Check the cable or radio link and try again; the device continues where it stopped";
  // Refused (a status that is not OK, an Error envelope): 502. No answer, the connection closed,
  // chunks kept getting lost: 504.
  if (e instanceof TransferError || e instanceof CommandError) {
    if (e.failure === "refused") return { status: 502, error: `${id}: ${message}`, hint: `Check the device with: pollkit status ${id}` };
    return { status: 504, error: `${id} did not answer: ${message}`, hint: checkLink };
  }
  return { status: 500, error: message };
}

function event(res: ServerResponse, name: string, data: unknown): void {
  if (res.destroyed || res.writableEnded) return; // the client went away
  res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

export async function startControlServer(agent: Agent, host: string, port: number): Promise<ControlServer> {
  /** Devices with a transfer in progress: a device takes one transfer at a time. */
  const transferring = new Set<string>();
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://agent");
    const parts = url.pathname.split("/").filter((p) => p !== "").map(decodeURIComponent);
    const method = req.method ?? "GET";
    if (parts[0] !== "v1") throw new HttpError(404, `no route ${url.pathname}`);
    if (method === "GET" && parts.length === 2 && parts[1] === "status") return send(res, 200, agent.status());
    if (method === "GET" && parts.length === 2 && parts[1] === "devices") return send(res, 200, agent.devices());
    if (parts[1] === "devices" && parts.length >= 3) {
      const id = parts[2];
      if (method === "GET" && parts.length === 3) {
        const d = agent.device(id);
        if (!d) throw unknownDevice(id);
        return send(res, 200, d);
      }
      if (method === "GET" && parts.length === 4 && parts[3] === "logs") {
        const session = agent.session(id);
        if (!session) throw unknownDevice(id);
        const lines = Math.min(500, Math.max(1, Number(url.searchParams.get("lines") ?? 50) || 50));
        if (url.searchParams.get("follow") !== "1") return send(res, 200, { lines: session.logLines(lines) });
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
        for (const l of session.logLines(lines)) res.write(`data: ${l}\n\n`);
        const stop = agent.followLog(id, (l) => res.write(`data: ${l.replace(/\n/g, " ")}\n\n`));
        session.on("close", () => res.end("event: close\ndata: device disconnected\n\n"));
        req.on("close", () => stop?.());
        return;
      }
      if (method === "POST" && parts.length === 4 && parts[3] === "command") {
        const session = agent.session(id);
        if (!session) throw unknownDevice(id);
        const body = (await readBody(req)) as Partial<CommandRequest>;
        if (typeof body.command !== "object" || body.command === null) throw new HttpError(400, "body must be { command: { <one command>: {...} } }");
        const problem = Command.verify(body.command);
        if (problem) throw new HttpError(400, `not a valid command: ${problem}`);
        checkSignedCommand(body.command);
        const timeoutMs = typeof body.timeoutMs === "number" ? body.timeoutMs : 10000;
        try {
          const result = await session.command(body.command, timeoutMs);
          return send(res, 200, { result });
        } catch (e) {
          throw new HttpError(504, `${id} did not answer: ${(e as Error).message}`, "Check the cable or radio link and try again");
        }
      }
      if (method === "POST" && parts.length === 4 && parts[3] === "transfer") {
        if (!agent.session(id)) throw unknownDevice(id);
        const o = transferBody((await readBody(req, MAX_TRANSFER_BODY_BYTES)) as Partial<TransferRequest>);
        // Looked up again: the device may have reconnected while the body arrived.
        const session = agent.session(id);
        if (!session) throw unknownDevice(id);
        if (transferring.has(id)) throw new HttpError(409, `a transfer to ${id} is already in progress`, "Wait for it to finish, then try again");
        transferring.add(id);
        const stop = new AbortController();
        // The client went away (Ctrl-C): stop sending; the device keeps what it has.
        res.on("close", () => stop.abort());
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
        let last = -1;
        try {
          // `begin`: the technician's signed TransferBegin, sent as it is (sendTransfer option).
          const options: TransferOptions & { begin?: { id: number; authority: Uint8Array } } = {
            kind: o.kind,
            name: o.name,
            data: o.data,
            signal: stop.signal,
            begin: o.begin,
            onProgress: (sent, total) => {
              if (sent === last) return;
              last = sent;
              const p: TransferProgress = { sent, total };
              event(res, "progress", p);
            },
          };
          const outcome = await sendTransfer(session, options);
          event(res, "done", outcome);
        } catch (e) {
          if (!stop.signal.aborted) event(res, "error", transferFailure(id, e));
        } finally {
          transferring.delete(id);
          res.end();
        }
        return;
      }
    }
    if (method === "POST" && parts.length === 2 && parts[1] === "time-sync") {
      const body = (await readBody(req)) as { deviceIds?: unknown };
      const ids = Array.isArray(body.deviceIds) ? body.deviceIds.map(String) : agent.devices().map((d) => d.deviceId);
      const results: TimeSyncResult[] = [];
      for (const id of ids) {
        const session = agent.session(id);
        if (!session) {
          results.push({ deviceId: id, ok: false, message: "not connected" });
          continue;
        }
        try {
          const r = await session.command({ setTime: { unixMs: Date.now() } }, 10000);
          results.push({ deviceId: id, ok: (r.status ?? 0) === 0, message: String(r.message ?? "") });
        } catch (e) {
          results.push({ deviceId: id, ok: false, message: (e as Error).message });
        }
      }
      return send(res, 200, { results });
    }
    throw new HttpError(404, `no route ${method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      const err: ApiError = e instanceof HttpError ? { error: e.message, hint: e.hint } : { error: (e as Error).message ?? String(e) };
      if (!res.headersSent) send(res, e instanceof HttpError ? e.status : 500, err);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
