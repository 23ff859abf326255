// A TCP proxy between clients (agents, consoles) and a server (the MQTT broker) that can cut
// the network: "refuse" closes every connection and refuses new ones (a link that is down),
// "blackhole" keeps connections open and silently drops what they carry (a partition the
// peers only notice through their keep-alives). heal() lets traffic through again.

import net from "node:net";

export type PartitionMode = "refuse" | "blackhole";

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  partition(mode: PartitionMode): void;
  heal(): void;
  readonly partitioned: PartitionMode | null;
  /** Connections the proxy has accepted since it started. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startTcpProxy(options: { targetHost?: string; targetPort: number; scheme?: string }): Promise<TcpProxy> {
  const host = options.targetHost ?? "127.0.0.1";
  const pairs = new Set<{ a: net.Socket; b: net.Socket }>();
  let mode: PartitionMode | null = null;
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    if (mode === "refuse") {
      client.destroy();
      return;
    }
    const upstream = net.connect(options.targetPort, host);
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket): void => {
      from.on("data", (d) => {
        if (mode === null && !to.destroyed) to.write(d);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  const destroyAll = (): void => {
    for (const p of pairs) {
      p.a.destroy();
      p.b.destroy();
    }
  };
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `${options.scheme ?? "mqtt"}://127.0.0.1:${port}`,
    partition(m: PartitionMode) {
      mode = m;
      if (m === "refuse") destroyAll();
    },
    heal() {
      mode = null;
    },
    get partitioned() {
      return mode;
    },
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        destroyAll();
        server.close(() => resolve());
      }),
  };
}
