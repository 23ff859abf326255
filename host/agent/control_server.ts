// The agent's local control API (see host/control/api.ts for the routes and shapes): JSON over
// HTTP on loopback, plus server-sent events for following a device's log.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Agent } from "./agent.ts";
import type { ApiError, CommandRequest, TimeSyncResult } from "../control/api.ts";
import { Command } from "../../protocol/node/schema.ts";

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

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, `request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => {
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

export async function startControlServer(agent: Agent, host: string, port: number): Promise<ControlServer> {
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
        const timeoutMs = typeof body.timeoutMs === "number" ? body.timeoutMs : 10000;
        try {
          const result = await session.command(body.command, timeoutMs);
          return send(res, 200, { result });
        } catch (e) {
          throw new HttpError(504, `${id} did not answer: ${(e as Error).message}`, "Check the cable or radio link and try again");
        }
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
