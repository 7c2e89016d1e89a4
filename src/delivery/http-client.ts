/**
 * The outbound HTTP client of the delivery worker: one undici Pool per
 * origin, kept alive between deliveries, with a total deadline per request,
 * redirects never followed, response bodies read only up to a cap, and every
 * connection checked by the {@link AddressGuard} against the address it
 * actually goes to (after DNS), so a name cannot smuggle a request to a
 * private address.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { buildConnector, type Dispatcher, Pool } from "undici";
import type { AddressGuard } from "./address-guard.js";

/** How an attempt ended without an HTTP response, or with a bad one. */
export type ErrorClass = "http" | "timeout" | "connection" | "tls" | "dns" | "ssrf";

/** Response headers kept in {@link HttpResult.headers}. */
const HEADERS_OF_INTEREST = ["retry-after", "location", "content-type"] as const;

/**
 * Resolves a name to all its addresses, as `dns.lookup` does with
 * `all: true`. The client judges every answer before a socket may use it.
 */
export type Resolver = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/** The result of one POST. */
export interface HttpResult {
  /** The response status; 0 when there was no response. */
  status: number;
  /** The start of the response body, at most the configured cap. */
  body: string;
  /**
   * The response headers Hookline acts on, lower-cased, first value of each:
   * `retry-after`, `location`, `content-type`. Empty without a response.
   */
  headers: Record<string, string>;
  /** When there was no (usable) response: what went wrong. */
  error?: { class: ErrorClass; message: string };
}

/** Options of {@link HttpClient}. */
export interface HttpClientOptions {
  /** Response body bytes kept; reading stops there (a longer body's connection is closed). */
  bodyLimit: number;
  /** Judges every address connected to; refused ones end the attempt as "ssrf". */
  guard: AddressGuard;
  /**
   * Connections per origin at most; unbounded by default. The callers bound
   * how many requests are in flight (the scheduler's fair shares of
   * HOOKLINE_MAX_IN_FLIGHT, the per-tenant cap of test sends), so every
   * request gets a connection at once. With a cap (it was 32), requests past
   * it queued inside the pool, their timeout running: one endpoint whose
   * receiver hangs held every connection to its origin, and the other
   * endpoints there, other tenants' included, waited behind it.
   */
  connectionsPerOrigin?: number | null;
  /** Pools unused for this long are closed. */
  idlePoolMs?: number;
  /** Resolves endpoint names; `dns.lookup` by default. Tests pass fixed answers. */
  resolve?: Resolver;
}

/** Sends webhook POSTs over per-origin keep-alive pools. */
export class HttpClient {
  private readonly pools = new Map<string, { pool: Pool; lastUsed: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly connector: buildConnector.connector;

  constructor(private readonly options: HttpClientOptions) {
    this.connector = guardedConnector(options.guard, options.resolve ?? dnsLookup);
    const idle = options.idlePoolMs ?? 5 * 60_000;
    this.sweeper = setInterval(() => this.closeIdle(idle), Math.min(idle, 60_000));
    this.sweeper.unref();
  }

  /**
   * POSTs `body` to `url` and reads the response, within `timeoutMs` in all.
   * When `signal` aborts (the caller gave up), the request is aborted at
   * once, its connection closed, and `post` rejects with the signal's reason.
   */
  async post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number, signal?: AbortSignal): Promise<HttpResult> {
    signal?.throwIfAborted();
    const pool = this.pool(url.origin);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
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
      const kept = headersOfInterest(res.headers);
      if (status >= 200 && status < 300) return { status, body: text, headers: kept };
      const message =
        status >= 300 && status < 400
          ? `HTTP ${status}: redirects are not followed${kept.location ? ` (to ${kept.location})` : ""}`
          : `HTTP ${status}`;
      return { status, body: text, headers: kept, error: { class: "http", message } };
    } catch (err) {
      signal?.throwIfAborted();
      if (controller.signal.aborted) {
        return { status: 0, body: "", headers: {}, error: { class: "timeout", message: `timeout after ${timeoutMs} ms` } };
      }
      return { status: 0, body: "", headers: {}, error: classify(err) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
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
          connections: this.options.connectionsPerOrigin ?? null,
          keepAliveTimeout: 30_000,
          // Never pipeline: one slow response must not hold others back.
          pipelining: 1,
          connect: this.connector,
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

/**
 * Reads a body up to `limit` bytes and stops there: a longer body is not read
 * to its end but destroyed, which closes its connection, so a receiver
 * answering with megabytes costs one cap of reading. A body that ends within
 * the cap leaves the connection open for reuse.
 */
async function readCapped(body: Dispatcher.ResponseData["body"], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  if (limit === 0) {
    // Nothing to keep, but an empty or short body (the usual 2xx answer) is
    // worth draining to keep the connection; a longer one is cut off.
    await body.dump({ limit: 16 * 1024 }).catch(() => undefined);
    return "";
  }
  // Leaving the loop early destroys the body and its connection.
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const part = chunk.subarray(0, limit - kept);
    chunks.push(part);
    kept += part.length;
    if (kept >= limit) break;
  }
  // Decoding may cut a multi-byte character at the cap; it shows as U+FFFD.
  return Buffer.concat(chunks).toString("utf8");
}

/** The first value of each header of interest, by lower-case name. */
function headersOfInterest(headers: Dispatcher.ResponseData["headers"]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of HEADERS_OF_INTEREST) {
    const value = headers[name];
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) kept[name] = first;
  }
  return kept;
}

/** A connection the address guard refused; nothing was sent. */
export class SsrfError extends Error {
  override name = "SsrfError";
  readonly code = "HOOKLINE_SSRF";
}

/**
 * A connector that lets a socket reach only addresses the guard allows:
 * names are resolved by {@link guardedLookup}, IP literals (which skip the
 * lookup) are judged before connecting, and the address of every connected
 * socket is judged again, as a backstop, before any byte is written.
 */
function guardedConnector(guard: AddressGuard, resolve: Resolver): buildConnector.connector {
  const connect = buildConnector({ lookup: guardedLookup(guard, resolve) });
  return (options, callback) => {
    if (isIP(options.hostname) !== 0) {
      const reason = guard.check(options.hostname);
      if (reason) {
        callback(new SsrfError(reason), null);
        return;
      }
    }
    connect(options, (err, socket) => {
      if (err) {
        callback(err, null);
        return;
      }
      const reason = guard.check(socket.remoteAddress ?? "");
      if (reason) {
        socket.destroy();
        callback(new SsrfError(reason), null);
        return;
      }
      callback(null, socket);
    });
  };
}

/**
 * The `lookup` of net/tls connect: resolves every address of the name once
 * and hands on only those the guard allows (the socket then connects to
 * nothing else), or fails with an SsrfError when none is allowed. A name
 * that also resolves to a blocked address is still reached, on its allowed
 * ones. The answer judged is the answer connected to: there is no earlier
 * resolution whose answer could differ (DNS rebinding).
 */
function guardedLookup(guard: AddressGuard, resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { family: options.family, hints: options.hints, all: true }, (err, addresses) => {
      if (err) {
        callback(err, "");
        return;
      }
      const allowed = addresses.filter((a) => guard.check(a.address) === undefined);
      const first = allowed[0];
      if (!first) {
        const reasons = addresses.map((a) => guard.check(a.address));
        callback(new SsrfError(`${hostname} resolves to blocked addresses only: ${reasons.join("; ")}`), "");
      } else if (options.all) {
        callback(null, allowed);
      } else {
        callback(null, first.address, first.family);
      }
    });
  };
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
  if (code === "HOOKLINE_SSRF") return { class: "ssrf", message };
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return { class: "dns", message: `DNS lookup failed: ${message}` };
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return { class: "timeout", message };
  if (CONNECTION_CODES.has(code)) return { class: "connection", message: `${code}: ${message}` };
  if (code.startsWith("ERR_TLS") || code.includes("CERT") || code.includes("SSL")) {
    return { class: "tls", message: `${code}: ${message}` };
  }
  return { class: "connection", message: code ? `${code}: ${message}` : message };
}
