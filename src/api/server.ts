/**
 * One TCP port for every protocol: Connect over HTTP/1.1 and HTTP/2, gRPC
 * over h2c, and gRPC-Web.
 *
 * Node's `http2.createServer({ allowHTTP1: true })` only falls back to
 * HTTP/1.1 through TLS ALPN; on cleartext sockets it cannot. So the listener
 * is a plain `net` server that reads the first bytes of each connection: the
 * HTTP/2 connection preface starts with "PRI * HTTP/2.0", which no HTTP/1.x
 * request line can, and the socket goes to the http2 or the http server
 * accordingly, with the bytes read put back.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { closeIfSilent, type ConnectionLimits, http1Options, limitHttp2Session, trackHttp1Connections } from "./connection-limits.js";
import { PacedHttp1Response, PacedHttp2Response } from "./paced-response.js";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** A listening server; see the module comment. */
export interface ApiServer {
  /** The bound address, e.g. "127.0.0.1". */
  readonly host: string;
  /** The bound port. */
  readonly port: number;
  /** "http://host:port". */
  readonly url: string;
  /** Connections open now, over both protocols and those still being sniffed. */
  readonly connections: number;
  /**
   * Stops accepting connections, lets requests in flight finish for up to
   * `timeoutMs` (HTTP/2 clients get GOAWAY, idle HTTP/1.1 connections are
   * closed), then destroys what is left.
   */
  close(timeoutMs: number): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * Connections the kernel may hold for this server before it accepts them
 * (it caps this at net.core.somaxconn). Node's default of 511 overflowed
 * under a burst of 2,100 calls over HTTP/1.1, each on a connection of its
 * own: about 5,700 overflows in a run, and 12-48 of the calls failed with
 * ECONNRESET on the client.
 */
const LISTEN_BACKLOG = 4096;

/**
 * An HTTP/2 request answered before its body was read in full (a message
 * over HOOKLINE_MAX_REQUEST_BYTES, a call refused before its stream was
 * read) leaves its stream open in Node: the client, out of flow-control
 * window, cannot finish sending, and the unread DATA stays charged to the
 * session. The malformed-bytes fuzz test found a connect-node client
 * refused on every call (ENHANCE_YOUR_CALM) after about 400 over-limit
 * messages of 95 KB on one connection. So such a stream is reset once its
 * answer is out (RST_STREAM, as RFC 9113 section 8.1 allows), and since
 * part of Node's charge outlives the reset (about 1,300 such requests still
 * used up a session), a session that has had this many is closed.
 */
const UNREAD_BODIES_PER_SESSION = 100;
/** How long after an answer's last DATA its stream is reset: its trailers go out first. */
const RESET_AFTER_ANSWER_MS = 50;

/** Resets `stream` if its answer came before its body was read; see {@link UNREAD_BODIES_PER_SESSION}. */
function resetIfBodyUnread(stream: http2.ServerHttp2Stream, unread: WeakMap<http2.Http2Session, number>): void {
  stream.once("finish", () => {
    if (stream.readableEnded) return;
    setTimeout(() => {
      if (stream.readableEnded || stream.destroyed) return;
      const session = stream.session;
      stream.destroy();
      if (!session || session.closed || session.destroyed) return;
      const n = (unread.get(session) ?? 0) + 1;
      unread.set(session, n);
      // GOAWAY: calls in flight finish, clients reconnect for new ones. A
      // stream the client opened as the GOAWAY crossed it is refused
      // (REFUSED_STREAM: not processed, safe to retry, which grpc-go does
      // and connect-node does not).
      if (n === UNREAD_BODIES_PER_SESSION) session.close();
    }, RESET_AFTER_ANSWER_MS).unref();
  });
}

/**
 * Starts serving `handler` on host:port (port 0 picks a free one).
 * `maxStreams` is the SETTINGS_MAX_CONCURRENT_STREAMS each HTTP/2
 * connection is given: clients queue their further calls until one ends,
 * so a connection flooding calls faster than they are served waits on its
 * own side instead of growing this process's memory (Node's default has no
 * bound: a 2,000/s burst of Publish over 4 connections exhausted a 256 MB
 * heap; with 256 per connection the heap stayed under 100 MB and the burst
 * was served sooner). `limits` bound how long a connection may stay
 * silent or idle and how many may be open (see connection-limits.ts).
 */
export async function startApiServer(
  handler: Handler,
  host: string,
  port: number,
  maxStreams: number,
  limits: ConnectionLimits,
): Promise<ApiServer> {
  // Paced responses: a stream whose client does not read holds few writes (see paced-response.ts).
  const h1 = http.createServer({ ...http1Options(limits), ServerResponse: PacedHttp1Response }, (req, res) => {
    h1Responses.set(req, res);
    closeIfBodyUnread(req, res);
    (handler as http.RequestListener)(req, res);
  });
  trackHttp1Connections(h1);
  // A publisher multiplexes many calls on one connection; nghttp2's default
  // 10 MB per session answers a burst of them with ENHANCE_YOUR_CALM.
  const unreadBodies = new WeakMap<http2.Http2Session, number>();
  const h2 = http2.createServer({ maxSessionMemory: 64, settings: { maxConcurrentStreams: maxStreams }, Http2ServerResponse: PacedHttp2Response as typeof http2.Http2ServerResponse }, (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    resetIfBodyUnread(req.stream, unreadBodies);
    handler(req, res);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    limitHttp2Session(session, limits);
  });
  const sockets = new Set<net.Socket>();

  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const spoke = closeIfSilent(socket, limits);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return; // wait for more bytes
      spoke();
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      if (isH2) {
        // http2 takes the buffered bytes over and reads the socket natively;
        // resuming the JS stream here would race it for the data.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  // Past the cap, Node closes each new connection as soon as it is accepted.
  listener.maxConnections = limits.maxConnections;
  listener.on("drop", () => limits.onRefused?.());

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  const address = listener.address() as net.AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    host: address.address,
    port: address.port,
    url: `http://${urlHost}:${address.port}`,
    get connections() {
      return sockets.size;
    },
    async close(timeoutMs) {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      h1.close();
      h2.close();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      // Idle keep-alive sockets that became idle after the first sweep.
      const sweep = setInterval(() => h1.closeIdleConnections(), 50);
      await Promise.race([closed, timeout]);
      clearTimeout(timer);
      clearInterval(sweep);
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** The response of each HTTP/1.1 request, for {@link resetStream}. */
const h1Responses = new WeakMap<http.IncomingMessage, http.ServerResponse>();

/**
 * Ends a call whose response cannot finish, as its client does not read
 * (so it can be sent no status): its HTTP/2 stream is reset (RST_STREAM
 * CANCEL), its HTTP/1.1 connection closed. Nothing if the response has
 * already finished.
 */
export function resetStream(req: http.IncomingMessage | http2.Http2ServerRequest): void {
  if ("stream" in req) {
    if (!req.stream.closed && !req.stream.destroyed) req.stream.close(http2.constants.NGHTTP2_CANCEL);
    return;
  }
  const res = h1Responses.get(req);
  if (res && !res.writableFinished) req.socket.destroy();
}

/**
 * An HTTP/1.1 answer that starts before its request body was read in full
 * (an error such as a message over readMaxBytes, found from the first
 * bytes) says `Connection: close`, and the connection ends after it. A
 * client that stops sending the body once it has the answer would otherwise
 * leave the rest of it owed on a kept-alive connection, and its next
 * request there would be read as that body and hang (RFC 9112, section 9.6).
 */
function closeIfBodyUnread(req: http.IncomingMessage, res: http.ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: http.ServerResponse, ...args: Parameters<typeof writeHead>) {
    if (!req.complete) {
      res.setHeader("connection", "close");
      // No socket: the client is gone already.
      if (req.socket) lingerOnClose(req.socket);
    }
    return writeHead.apply(this, args);
  } as typeof writeHead;
}

/**
 * How long a connection closed that way goes on reading, at most: while
 * the client still sends within {@link LINGER_IDLE_MS} of its last bytes,
 * up to {@link LINGER_MAX_MS} in all, or until it closes its side.
 */
const LINGER_IDLE_MS = 2_000;
const LINGER_MAX_MS = 10_000;

/**
 * Lingering close (as Apache httpd and nginx do it): when Node's server
 * ends `socket` after the answer (it calls `destroySoon`), the answer and
 * a FIN go out, and what the client still sends is read and dropped until
 * it closes its side or goes quiet, before the socket is destroyed. Closed
 * at once, a socket that receives more data answers it with a TCP reset,
 * and a client still writing its request body (a PublishStream refused
 * for its token) got the reset before it had read the answer: a separate
 * process's connect-node client saw `Internal: write EPIPE` instead of
 * UNAUTHENTICATED on 37-56 % of 200 refused calls.
 */
function lingerOnClose(socket: net.Socket): void {
  socket.destroySoon = function (this: net.Socket) {
    if (this.writable) this.end();
    const destroy = () => this.destroy();
    const max = setTimeout(destroy, LINGER_MAX_MS).unref();
    this.once("close", () => clearTimeout(max));
    this.once("end", destroy);
    this.setTimeout(LINGER_IDLE_MS, destroy);
  };
}
