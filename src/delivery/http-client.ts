/**
 * The outbound HTTP client of the delivery worker: one undici Pool per
 * origin, kept alive between deliveries, with a total deadline per request,
 * redirects never followed and response bodies read only up to a cap.
 */
import { Pool } from "undici";

/** How an attempt ended without an HTTP response, or with a bad one. */
export type ErrorClass = "http" | "timeout" | "connection" | "tls" | "dns" | "internal";

/** The result of one POST. */
export interface HttpResult {
  /** The response status; 0 when there was no response. */
  status: number;
  /** The start of the response body, at most the configured cap. */
  body: string;
  /** When there was no (usable) response: what went wrong. */
  error?: { class: ErrorClass; message: string };
}

/** Options of {@link HttpClient}. */
export interface HttpClientOptions {
  /** Response body bytes kept; the rest is read and dropped. */
  bodyLimit: number;
  /** Keep-alive connections per origin at most. */
  connectionsPerOrigin?: number;
  /** Pools unused for this long are closed. */
  idlePoolMs?: number;
}

/** Sends webhook POSTs over per-origin keep-alive pools. */
export class HttpClient {
  private readonly pools = new Map<string, { pool: Pool; lastUsed: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: HttpClientOptions) {
    const idle = options.idlePoolMs ?? 5 * 60_000;
    this.sweeper = setInterval(() => this.closeIdle(idle), Math.min(idle, 60_000));
    this.sweeper.unref();
  }

  /** POSTs `body` to `url` and reads the response, within `timeoutMs` in all. */
  async post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<HttpResult> {
    const pool = this.pool(url.origin);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const res = await pool.request({
        path: url.pathname + url.search,
        method: "POST",
        headers,
        body,
        signal: controller.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await readCapped(res.body, this.options.bodyLimit);
      const status = res.statusCode;
      if (status >= 200 && status < 300) return { status, body: text };
      const message =
        status >= 300 && status < 400
          ? `HTTP ${status}: redirects are not followed${res.headers.location ? ` (to ${res.headers.location})` : ""}`
          : `HTTP ${status}`;
      return { status, body: text, error: { class: "http", message } };
    } catch (err) {
      if (controller.signal.aborted) {
        return { status: 0, body: "", error: { class: "timeout", message: `timeout after ${timeoutMs} ms` } };
      }
      return { status: 0, body: "", error: classify(err) };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes every pool, waiting for requests in flight. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.close()));
  }

  /** Aborts every request in flight and closes the pools at once. */
  async destroy(): Promise<void> {
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy()));
  }

  private pool(origin: string): Pool {
    let entry = this.pools.get(origin);
    if (!entry) {
      entry = {
        pool: new Pool(origin, {
          connections: this.options.connectionsPerOrigin ?? 32,
          keepAliveTimeout: 30_000,
          // Never pipeline: one slow response must not hold others back.
          pipelining: 1,
        }),
        lastUsed: 0,
      };
      this.pools.set(origin, entry);
    }
    entry.lastUsed = Date.now();
    return entry.pool;
  }

  private closeIdle(idleMs: number): void {
    const now = Date.now();
    for (const [origin, entry] of this.pools) {
      if (now - entry.lastUsed > idleMs) {
        this.pools.delete(origin);
        void entry.pool.close();
      }
    }
  }
}

/** Reads a body up to `limit` bytes, then drops the rest without keeping it. */
async function readCapped(body: AsyncIterable<Buffer> & { dump?: (o?: { limit: number }) => Promise<void> }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of body) {
    if (kept < limit) {
      const part = chunk.subarray(0, limit - kept);
      chunks.push(part);
      kept += part.length;
    }
  }
  // Decoding may cut a multi-byte character at the cap; it shows as U+FFFD.
  return Buffer.concat(chunks).toString("utf8");
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function classify(err: unknown): { class: ErrorClass; message: string } {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code ?? "";
  const message = e.message || e.cause?.message || String(err);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return { class: "dns", message: `DNS lookup failed: ${message}` };
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return { class: "timeout", message };
  if (CONNECTION_CODES.has(code)) return { class: "connection", message: `${code}: ${message}` };
  if (code.startsWith("ERR_TLS") || code.includes("CERT") || code.includes("SSL")) {
    return { class: "tls", message: `${code}: ${message}` };
  }
  return { class: "connection", message: code ? `${code}: ${message}` : message };
}
