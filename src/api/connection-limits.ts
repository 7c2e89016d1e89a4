/**
 * How long a connection to the API port may stay without doing its part,
 * and how many may be open at once (HOOKLINE_HEADERS_TIMEOUT,
 * HOOKLINE_REQUEST_READ_TIMEOUT, HOOKLINE_IDLE_TIMEOUT and
 * HOOKLINE_MAX_CONNECTIONS; see server.ts for where each applies).
 *
 * Without them, a connection that never spoke, or sent one header line
 * every 10 s, was kept forever: 22,000 of them held 19,978 of the process's
 * 20,000 file descriptors, and every other client was refused. What a
 * working client does is never cut: a request in progress, an HTTP/2
 * connection with a stream open (a WatchDeliveries watcher quiet for hours
 * included), a response being streamed over HTTP/1.1.
 */
import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";
import type { Config } from "../config.js";

/** The limits; see the module comment and docs/configuration.md. */
export interface ConnectionLimits {
  /**
   * A new connection must send its first bytes (for HTTP/2, the whole
   * connection preface with its SETTINGS) within this, and each HTTP/1.1
   * request its whole header block within this of its first byte.
   */
  headersTimeoutMs: number;
  /** An HTTP/1.1 request, headers and body, must have arrived within this of its first byte. */
  requestTimeoutMs: number;
  /**
   * An HTTP/1.1 connection between requests, or an HTTP/2 connection with
   * no stream open (PINGs do not count), is closed after this.
   */
  idleTimeoutMs: number;
  /** Connections open at once; further ones are closed as soon as they are accepted. */
  maxConnections: number;
  /** Told of each connection refused for being over {@link maxConnections}. */
  onRefused?: () => void;
}

/** The limits `config` sets, telling `onRefused` of each refused connection. */
export function connectionLimitsOf(config: Config, onRefused?: () => void): ConnectionLimits {
  return {
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestReadTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxConnections: config.maxConnections,
    onRefused,
  };
}

/**
 * How often the HTTP/1.1 server looks for requests past their header or
 * request timeout: Node checks only on this interval (30 s by default), so
 * a header timeout of 10 s took up to 40 s. A tenth of the header timeout,
 * at least 100 ms and at most 1 s: the check walks the list of connections
 * with a request in progress, cheap next to the requests themselves.
 */
function checkingIntervalMs(limits: ConnectionLimits): number {
  return Math.min(1_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 10)));
}

/** Options of the HTTP/1.1 server that enforce `limits`; see {@link trackHttp1Connections}. */
export function http1Options(limits: ConnectionLimits): http.ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: checkingIntervalMs(limits),
  };
}

/**
 * Starts the HTTP/1.1 server's periodic check of header and request
 * timeouts. Node starts it when the server listens; this one never does
 * (server.ts hands it sockets), so without this call its headersTimeout and
 * requestTimeout were never checked, and closeIdleConnections() found no
 * connections to close. Emitting "listening" runs Node's own setup
 * (setupConnectionsTracking), the only listener of that event.
 */
export function trackHttp1Connections(server: Pick<http.Server, "emit">): void {
  server.emit("listening");
}

/**
 * Closes `socket` unless `ready()` is called within the header timeout: for
 * the first bytes of a connection, read before it is handed to HTTP/1.1 or
 * HTTP/2. The time counts from the connection, not from its last byte, so
 * a preface sent a byte at a time is cut too. Returns `ready`, which stops
 * the clock.
 */
export function closeIfSilent(socket: net.Socket, limits: ConnectionLimits): () => void {
  const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs).unref();
  socket.once("close", () => clearTimeout(timer));
  return () => clearTimeout(timer);
}

/**
 * Applies `limits` to one HTTP/2 connection: its client's SETTINGS (the end
 * of the connection preface) within the header timeout, else it is
 * destroyed; and while it has no stream open, GOAWAY after the idle
 * timeout. GOAWAY is graceful: a client opens a new connection for its next
 * call (gRPC servers call this "max connection idle"). An open stream, a
 * WatchDeliveries watcher however quiet, keeps it.
 */
export function limitHttp2Session(session: http2.ServerHttp2Session, limits: ConnectionLimits): void {
  const preface = setTimeout(() => session.destroy(), limits.headersTimeoutMs).unref();
  session.once("remoteSettings", () => clearTimeout(preface));
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    idle = setTimeout(() => session.close(), limits.idleTimeoutMs).unref();
  };
  session.on("stream", (stream) => {
    if (open++ === 0) clearTimeout(idle);
    stream.once("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) arm();
    });
  });
  session.once("close", () => {
    clearTimeout(preface);
    clearTimeout(idle);
  });
  arm();
}
