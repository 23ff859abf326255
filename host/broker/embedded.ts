// The embedded MQTT broker (aedes 1.x, in-memory persistence) on a plain TCP server: the default
// broker for a single-laptop setup, the demo and the tests. Mosquitto is used where
// interoperability with a separate broker must be proven (test/helpers/mosquitto.ts).
import { createServer, type Socket } from "node:net";
import { Aedes, type AedesOptions } from "aedes";

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on (default 127.0.0.1: not reachable from other machines). */
  host?: string;
  /** Passed to Aedes.createBroker (authenticate, authorizePublish, ...). */
  aedes?: AedesOptions;
}

export interface EmbeddedBroker {
  /** mqtt://host:port */
  url: string;
  port: number;
  aedes: Aedes;
  /** Disconnects every client abruptly (no will suppression: wills fire), stops listening. */
  close(): Promise<void>;
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? "127.0.0.1";
  const aedes = await Aedes.createBroker(options.aedes);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    aedes.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw e;
  }
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("embedded broker: no TCP address");
  const port = address.port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `mqtt://${urlHost}:${port}`,
    port,
    aedes,
    close(): Promise<void> {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await serverClosed;
      })();
      return closing;
    },
  };
}
