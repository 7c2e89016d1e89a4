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
   *
   * The response is taken through undici's dispatch handler (see
   * {@link Attempt}), not `pool.request`: no response stream, async
   * iterator or AbortController per request. (Measured with
   * bench/http-cost.ts: 57-59 us of CPU per request through request() with
   * a controller and a timer, against 34-42 for a bare request() drained.)
   */
  post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number, signal?: AbortSignal): Promise<HttpResult> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<HttpResult>((resolve, reject) => {
      const attempt = new Attempt(this.options.bodyLimit, timeoutMs, resolve, reject, signal);
      try {
        this.pool(url.origin).dispatch(
          { path: url.pathname + url.search, method: "POST", headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
          attempt,
        );
      } catch (err) {
        attempt.onResponseError(undefined, err as Error);
      }
    });
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

/** Bytes of a response drained to keep its connection when no body is kept (see Attempt). */
const DRAIN_LIMIT = 16 * 1024;

/** Why a request was aborted on purpose; its error, undici's to report, is ignored (see Attempt.end). */
const ENDED = new Error("the attempt had its result");

/**
 * One POST's response as undici hands it over (a dispatch handler): its
 * status and headers of interest, then its body up to `limit` bytes. A
 * body longer than that is not read to its end: the request is aborted,
 * which closes its connection, so a receiver answering with megabytes costs
 * one cap of reading. With `limit` 0 nothing is kept, but a short body (the
 * usual 2xx answer) is drained to keep the connection. A body that ends
 * within the cap leaves the connection open for reuse.
 *
 * The result is settled once: at the response's end, at the cap, at the
 * deadline (a timeout; a request not started yet is aborted when it
 * starts), on an error, or when the caller's signal aborts (rejected).
 */
class Attempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private kept: Record<string, string> = {};
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private done = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly limit: number,
    timeoutMs: number,
    private readonly resolve: (result: HttpResult) => void,
    reject: (reason: unknown) => void,
    private readonly signal?: AbortSignal,
  ) {
    this.timer = setTimeout(
      () => this.end(() => resolve(noResponse({ class: "timeout", message: `timeout after ${timeoutMs} ms` })), true),
      timeoutMs,
    );
    if (signal) {
      this.onAbort = () => this.end(() => reject(signal.reason), true);
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.done) controller.abort(ENDED);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Dispatcher.ResponseData["headers"]): void {
    // Informational (1xx) answers come before the response.
    if (statusCode < 200) return;
    this.status = statusCode;
    this.kept = headersOfInterest(headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return;
    if (this.limit === 0) {
      this.size += chunk.length;
      if (this.size > DRAIN_LIMIT) this.end(() => this.resolve(this.result()), true);
      return;
    }
    const part = chunk.subarray(0, this.limit - this.size);
    this.chunks.push(part);
    this.size += part.length;
    if (this.size >= this.limit) this.end(() => this.resolve(this.result()), true);
  }

  onResponseEnd(): void {
    this.end(() => this.resolve(this.result()), false);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    this.end(() => this.resolve(noResponse(classify(err))), false);
  }

  /** Settles the result once; `abort` ends the request (and closes its connection) if it still runs. */
  private end(settle: () => void, abort: boolean): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (this.onAbort) this.signal!.removeEventListener("abort", this.onAbort);
    settle();
    if (abort) this.controller?.abort(ENDED);
  }

  private result(): HttpResult {
    // Decoding may cut a multi-byte character at the cap; it shows as U+FFFD.
    const text = this.chunks.length === 0 ? "" : Buffer.concat(this.chunks).toString("utf8");
    const { status, kept } = this;
    if (status >= 200 && status < 300) return { status, body: text, headers: kept };
    const message =
      status >= 300 && status < 400 ? `HTTP ${status}: redirects are not followed${kept.location ? ` (to ${kept.location})` : ""}` : `HTTP ${status}`;
    return { status, body: text, headers: kept, error: { class: "http", message } };
  }
}

/** The result of an attempt that got no (usable) response. */
function noResponse(error: NonNullable<HttpResult["error"]>): HttpResult {
  return { status: 0, body: "", headers: {}, error };
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
