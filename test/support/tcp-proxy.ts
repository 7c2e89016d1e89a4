/**
 * A TCP proxy on 127.0.0.1 in front of a server, which a test can freeze:
 * from then on nothing passes either way and new connections are accepted
 * but never answered, as when the network to a database drops its packets
 * or the database hangs (unlike a stopped server, which refuses at once).
 */
import net from "node:net";
import type { AddressInfo } from "node:net";

/** A running proxy. */
export interface TcpProxy {
  /** The port it listens on. */
  readonly port: number;
  /** Stops all traffic, on open connections and new ones. */
  freeze(): void;
  /** Closes it and every connection through it. */
  close(): Promise<void>;
}

/** Starts a proxy to `host`:`port`. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  };
  // Half-open allowed: a frozen proxy does not answer a close either.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    if (frozen) return;
    const upstream = net.connect({ port, host, allowHalfOpen: true });
    track(upstream);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on("data", (chunk) => {
        if (!frozen) to.write(chunk);
      });
      from.on("end", () => {
        if (!frozen) to.end();
      });
      from.on("close", () => {
        if (!frozen) to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      frozen = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
