/**
 * Hand-made requests to a Hookline server, with node:http and node:http2
 * and no RPC client: for tests that send what no well-behaved client would
 * (malformed bodies, frames and headers, streams reset halfway) and read
 * the answer as each protocol encodes it.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code } from "@connectrpc/connect";

/** One hand-made request. */
export interface RawRequest {
  http: "1.1" | "2";
  method: "POST" | "GET";
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
  /** Written in order. */
  body: Uint8Array[];
  /**
   * After writing the body, abort instead of ending the request: HTTP/2
   * resets the stream (RST_STREAM CANCEL), HTTP/1.1 destroys the socket.
   */
  abort?: boolean;
  /**
   * For a server stream that may rightly stay open: give up after this many
   * milliseconds and report it "open" rather than a timeout.
   */
  openMs?: number;
}

/** What came back. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  trailers: Record<string, string>;
}

/** How a request ended. */
export type RawResult =
  | { kind: "response"; response: RawResponse }
  /** The client aborted as asked (RawRequest.abort). */
  | { kind: "aborted" }
  /** Still open after RawRequest.openMs: a stream waiting for something to send. */
  | { kind: "open" }
  | { kind: "timeout" }
  /** The connection failed before a whole response arrived. */
  | { kind: "error"; error: string };

/** The RPC outcome a response carries, by its protocol. */
export interface RpcStatus {
  protocol: "connect" | "grpc" | "grpc-web" | "http";
  /** A Code name ("InvalidArgument"), "OK", or for plain HTTP answers "HTTP 415". */
  code: string;
  message: string;
}

const REFUSED = "stream refused (REFUSED_STREAM)";

function flatten(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : String(v);
  return out;
}

/** Sends requests to one server; reuses one HTTP/2 connection while it lasts. */
export class RawClient {
  private session: http2.ClientHttp2Session | undefined;
  private readonly host: string;
  private readonly port: number;

  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
  ) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
  }

  /** Sends `req`; never rejects. */
  async send(req: RawRequest): Promise<RawResult> {
    if (req.http === "1.1") return this.send1(req);
    const result = await this.send2(req);
    // A stream refused by a GOAWAY was not processed; HTTP/2 lets it be sent again.
    return result.kind === "error" && result.error === REFUSED ? this.send2(req) : result;
  }

  private h2(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const session = http2.connect(this.baseUrl);
      // Errors end the streams, which report them; the next request connects again.
      session.on("error", () => {});
      this.session = session;
    }
    return this.session;
  }

  private send2(req: RawRequest): Promise<RawResult> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.h2().request({ ":method": req.method, ":path": req.path, ...req.headers }, { endStream: req.method === "GET" });
      } catch (err) {
        resolve({ kind: "error", error: `request: ${(err as Error).message}` });
        return;
      }
      let status = 0;
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (result: RawResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      // Only a stream given up on is reset: a server rate-limits the resets
      // it receives (nghttp2: bursts of 1,000, then 33 a second), and answers
      // more with GOAWAY.
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        done({ kind: req.openMs ? "open" : "timeout" });
      }, req.openMs ?? this.timeoutMs);
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = flatten(h);
      });
      stream.on("trailers", (t) => {
        trailers = flatten(t);
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => done({ kind: "response", response: { status, headers, body: Buffer.concat(chunks), trailers } }));
      stream.on("error", (err) => {
        if (status) done({ kind: "response", response: { status, headers, body: Buffer.concat(chunks), trailers } });
        else done({ kind: "error", error: stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? REFUSED : err.message });
      });
      stream.on("close", () => {
        if (status) done({ kind: "response", response: { status, headers, body: Buffer.concat(chunks), trailers } });
        else if (req.abort) done({ kind: "aborted" });
        else done({ kind: "error", error: stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? REFUSED : `stream closed (code ${stream.rstCode})` });
      });
      if (req.method === "GET") return;
      for (const chunk of req.body) stream.write(chunk);
      if (req.abort) {
        // Let the DATA frames go out first, then reset the stream.
        setImmediate(() => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          done({ kind: "aborted" });
        });
      } else {
        stream.end();
      }
    });
  }

  private send1(req: RawRequest): Promise<RawResult> {
    return new Promise((resolve) => {
      let settled = false;
      const done = (result: RawResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        resolve(result);
      };
      const timer = setTimeout(() => done({ kind: req.openMs ? "open" : "timeout" }), req.openMs ?? this.timeoutMs);
      // A connection per request: a malformed request may leave it unusable.
      const request = http.request({ host: this.host, port: this.port, method: req.method, path: req.path, headers: req.headers, agent: false });
      request.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          done({
            kind: "response",
            response: { status: res.statusCode ?? 0, headers: flatten(res.headers), body: Buffer.concat(chunks), trailers: flatten(res.trailers) },
          }),
        );
        res.on("error", (err) => done({ kind: "error", error: `response: ${err.message}` }));
      });
      request.on("error", (err) => done(req.abort ? { kind: "aborted" } : { kind: "error", error: err.message }));
      for (const chunk of req.body) request.write(chunk);
      if (req.abort) {
        setImmediate(() => {
          request.destroy();
          done({ kind: "aborted" });
        });
      } else {
        request.end();
      }
    });
  }

  /**
   * Writes `bytes` on a new TCP connection and waits for the server to
   * answer or close it; resolves what it did.
   */
  sendTcp(bytes: Uint8Array): Promise<"answered" | "closed" | "timeout"> {
    return new Promise((resolve) => {
      const socket = net.connect(this.port, this.host);
      let answered = false;
      const timer = setTimeout(() => {
        socket.destroy();
        resolve("timeout");
      }, this.timeoutMs);
      socket.on("data", () => {
        answered = true;
      });
      socket.on("error", () => {});
      socket.on("close", () => {
        clearTimeout(timer);
        resolve(answered ? "answered" : "closed");
      });
      socket.end(bytes);
    });
  }

  /** Closes the HTTP/2 connection. */
  close(): void {
    this.session?.close();
  }
}

/** A length-prefixed message (gRPC, gRPC-Web and Connect streaming): flags, 4-byte length, payload. */
export function envelope(flags: number, payload: Uint8Array, declaredLength = payload.length): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, flags);
  view.setUint32(1, declaredLength >>> 0);
  out.set(payload, 5);
  return out;
}

/** The envelopes of a complete body (a truncated last one is dropped). */
function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) break;
    out.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/** "invalid_argument" -> "InvalidArgument". */
function connectCodeName(code: string): string {
  const name = code.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
  return name in Code ? name : `unknown code "${code}"`;
}

function grpcCodeName(status: string | undefined): string | undefined {
  if (status === undefined) return undefined;
  const n = Number(status);
  return n === 0 ? "OK" : (Code[n] ?? `unknown grpc-status ${status}`);
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the RPC status a response carries (see {@link RpcStatus}). */
export function rpcStatus(response: RawResponse): RpcStatus {
  const type = response.headers["content-type"] ?? "";
  if (type.startsWith("application/grpc-web")) {
    // Trailers-only in the headers, or a trailer frame (flag 0x80) at the end of the body.
    let fields: Record<string, string> = response.headers;
    if (fields["grpc-status"] === undefined) {
      const frame = envelopes(response.body).find((e) => (e.flags & 0x80) !== 0);
      fields = Object.fromEntries(
        (frame?.data.toString("utf8") ?? "")
          .split("\r\n")
          .filter((l) => l.includes(":"))
          .map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
    }
    const code = grpcCodeName(fields["grpc-status"]);
    return { protocol: "grpc-web", code: code ?? `HTTP ${response.status} without grpc-status`, message: decodeURIComponent(fields["grpc-message"] ?? "") };
  }
  if (type.startsWith("application/grpc")) {
    const status = response.trailers["grpc-status"] ?? response.headers["grpc-status"];
    const message = response.trailers["grpc-message"] ?? response.headers["grpc-message"] ?? "";
    return { protocol: "grpc", code: grpcCodeName(status) ?? `HTTP ${response.status} without grpc-status`, message: decodeURIComponent(message) };
  }
  if (type.startsWith("application/connect+")) {
    // A stream: the end-of-stream envelope (flag 0x02) holds {"error": {...}} or nothing.
    const end = envelopes(response.body).find((e) => (e.flags & 0x02) !== 0);
    const error = parseJson(end?.data.toString("utf8") ?? "")?.error as { code?: string; message?: string } | undefined;
    if (!end) return { protocol: "connect", code: `HTTP ${response.status} without end of stream`, message: "" };
    return { protocol: "connect", code: error?.code ? connectCodeName(error.code) : "OK", message: error?.message ?? "" };
  }
  if (response.status === 200 && (type.startsWith("application/proto") || type.startsWith("application/json"))) {
    return { protocol: "connect", code: "OK", message: "" };
  }
  const error = type.startsWith("application/json") ? parseJson(response.body.toString("utf8")) : undefined;
  if (typeof error?.code === "string") {
    return { protocol: "connect", code: connectCodeName(error.code), message: typeof error.message === "string" ? error.message : "" };
  }
  return { protocol: "http", code: `HTTP ${response.status}`, message: response.body.toString("utf8").slice(0, 200) };
}
