/**
 * Hookline's configuration: the one place that reads the environment.
 *
 * Every variable is documented in docs/configuration.md with its default;
 * keep the two in step.
 */

import { resolve } from "node:path";
import { parseAllowedCidrs } from "./delivery/address-guard.js";
import { parseSecretKey } from "./signing/secret-box.js";

/** The retry policy used when an endpoint sets none. */
export type RetryPolicyConfig =
  | { kind: "schedule"; delaysMs: number[] }
  | { kind: "exponential"; baseMs: number; capMs: number; maxAttempts: number };

/** How log lines are written; see {@link Config.logFormat}. */
export type LogFormat = "auto" | "json" | "pretty";

/** Typed configuration of one Hookline process. */
export interface Config {
  /** Address the API listens on. */
  host: string;
  /** Port the API listens on; 0 picks a free one. */
  port: number;
  /** PostgreSQL URL; undefined starts an embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** Where the embedded PostgreSQL keeps its data. */
  dataDir: string;
  /** HOOKLINE_DATA_DIR was unset: as root, the embedded cluster may move where PostgreSQL's user reaches it. */
  dataDirIsDefault: boolean;
  /** Port of the embedded PostgreSQL. */
  embeddedPostgresPort: number;
  /** HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT: how long the embedded PostgreSQL may stay down after a crash before /healthz fails. */
  embeddedPostgresRestartTimeoutMs: number;
  /** Connections in the database pool. */
  dbPoolSize: number;
  /** HOOKLINE_DB_STATEMENT_TIMEOUT: how long one statement of this process may run (0: no limit; migrations have none). */
  dbStatementTimeoutMs: number;
  /** Refuse publishes of event types that were never created. */
  strictEventTypes: boolean;
  /** HOOKLINE_SCHEMA_WORKERS: threads that compile event type schemas and check payloads against them (see domain/schema-pool.ts). */
  schemaWorkers: number;
  /** HOOKLINE_SCHEMA_TIMEOUT: the longest one payload's check against its schema may take; past it, its thread is stopped and the schema suspended. */
  schemaTimeoutMs: number;
  /** HOOKLINE_SCHEMA_QUEUE: schema checks one tenant may have waiting or running; more get ResourceExhausted. */
  schemaQueue: number;
  /** How long an idempotency key holds: the same key within it is a duplicate. */
  idempotencyWindowMs: number;
  /** How long deliveries, attempts, events and status log rows are kept after they end. */
  retentionMs: number;
  /** Publish statements written at once; publishes beyond that share statements. */
  publishWriters: number;
  /** HOOKLINE_PUBLISH_PENDING_BYTES: event bytes accepted and not yet stored, past which publishes get ResourceExhausted. */
  publishPendingBytes: number;
  /** HOOKLINE_MAX_CONCURRENT_CALLS: unary calls handled at once; more get ResourceExhausted (see api/call-limit.ts). */
  maxConcurrentCalls: number;
  /** HOOKLINE_HTTP2_MAX_STREAMS: streams one HTTP/2 connection may have open at once (see api/server.ts). */
  http2MaxStreams: number;
  /** HOOKLINE_HEADERS_TIMEOUT: a connection's first bytes (HTTP/2: its preface), and each HTTP/1.1 request's headers, within this (see api/connection-limits.ts). */
  headersTimeoutMs: number;
  /** HOOKLINE_REQUEST_READ_TIMEOUT: a whole HTTP/1.1 request, headers and body, within this. */
  requestReadTimeoutMs: number;
  /** HOOKLINE_IDLE_TIMEOUT: an HTTP/1.1 connection between requests, or an HTTP/2 one without streams, closed after this. */
  idleTimeoutMs: number;
  /** HOOKLINE_MAX_CONNECTIONS: connections open at once on the API port; more are closed at once. */
  maxConnections: number;
  /** HOOKLINE_WATCH_BUFFER_BYTES: memory all WatchDeliveries streams' queued updates may take (see status-stream/hub.ts). */
  watchBufferBytes: number;
  /** Serve the API (EventIngest, WebhookAdmin, health, reflection). */
  apiEnabled: boolean;
  /** Serve the web console at /console on the API port. */
  consoleEnabled: boolean;
  /** Where the built console is; undefined means this package's dist/console. */
  consoleDir: string | undefined;
  /** HOOKLINE_SECRET_KEY: encrypts endpoint secrets at rest; undefined means the data directory's key (embedded only). */
  secretKey: Buffer | undefined;
  /** Bearer token for every RPC of every tenant; "" for none. */
  adminToken: string;
  /** Bearer token for EventIngest, every tenant; "" for none. */
  ingestToken: string;
  /** Run the delivery scheduler in this process. */
  schedulerEnabled: boolean;
  /** Deliveries in flight at once in this process, over all endpoints. */
  maxInFlight: number;
  /** Deliveries claimed per claim statement at most. */
  claimBatchSize: number;
  /** Fallback poll interval when no notification arrives. */
  pollIntervalMs: number;
  /**
   * How long a claimed delivery stays leased past its request timeout (the
   * lease covers the request and the writing of its outcome).
   */
  leaseMarginMs: number;
  /** Default per-request timeout for deliveries. */
  requestTimeoutMs: number;
  /** HOOKLINE_TEST_EVENT_TIMEOUT: the longest a SendTestEvent request may take, whatever the endpoint's timeout. */
  testEventTimeoutMs: number;
  /** HOOKLINE_TEST_EVENT_CONCURRENCY: SendTestEvent calls one tenant may have in flight in one process. */
  testEventConcurrency: number;
  /** Response body bytes kept per attempt. */
  responseBodyLimit: number;
  /**
   * CIDR ranges deliveries may reach although the SSRF guard blocks them
   * (private, loopback, link-local...); empty by default.
   */
  allowedCidrs: string[];
  /** The default retry policy. */
  retryPolicy: RetryPolicyConfig;
  /** Jitter applied to retry delays, as a fraction (0.2 = +-20 %). */
  retryJitter: number;
  /** Least delay before retrying after a timeout or a 429. */
  throttleMinDelayMs: number;
  /** Longest delay a `Retry-After` header can ask for. */
  retryAfterCapMs: number;
  /** Default in-flight limit per endpoint (shared by all processes). */
  endpointMaxInFlight: number;
  /** Consecutive failures that open an endpoint's circuit. */
  circuitFailureThreshold: number;
  /** First cool-down of an open circuit; doubles with each failed probe. */
  circuitCooldownMs: number;
  /** Longest cool-down of an open circuit. */
  circuitMaxCooldownMs: number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterMs: number;
  /** How long shutdown waits for in-flight work before giving up. */
  shutdownTimeoutMs: number;
  /** Largest accepted event payload in bytes. */
  maxPayloadBytes: number;
  /** Largest accepted request message in bytes (a PublishBatch is one message). */
  maxRequestBytes: number;
  /** pino log level. */
  logLevel: string;
  /** HOOKLINE_LOG_FORMAT: JSON lines, coloured lines for people, or pretty when stdout is a terminal ("auto"). */
  logFormat: LogFormat;
}

/** The default retry schedule, Svix-like: 7 retries over about 27.6 h. */
export const DEFAULT_RETRY_SCHEDULE_MS = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** A configuration value that cannot be used. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

/** Builds the configuration from environment variables (default: process.env). */
export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(str(env, "HOOKLINE_DATA_DIR", "./.hookline"));
  const config = readConfig(env, dataDir);
  if (config.databaseUrl && !config.secretKey) {
    throw new ConfigError(
      "HOOKLINE_SECRET_KEY: required with DATABASE_URL, to encrypt endpoint secrets at rest (32 bytes as hex or base64: openssl rand -hex 32); " +
        "only the embedded PostgreSQL keeps a key of its own in HOOKLINE_DATA_DIR",
    );
  }
  if (config.apiEnabled && !config.adminToken && !config.ingestToken && !isLoopback(config.host)) {
    throw new ConfigError(
      `HOOKLINE_HOST=${config.host}: refusing to serve the API beyond this machine without authentication; ` +
        "set HOOKLINE_ADMIN_TOKEN (and HOOKLINE_INGEST_TOKEN for publishers), or listen on 127.0.0.1",
    );
  }
  if (config.headersTimeoutMs > config.requestReadTimeoutMs) {
    throw new ConfigError(
      `HOOKLINE_HEADERS_TIMEOUT=${formatMs(config.headersTimeoutMs)} is longer than HOOKLINE_REQUEST_READ_TIMEOUT=${formatMs(config.requestReadTimeoutMs)}: ` +
        "a request's headers are part of it",
    );
  }
  return config;
}

/** Whether `host` is a loopback address or name. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function readConfig(env: Env, dataDir: string): Config {
  return {
    host: str(env, "HOOKLINE_HOST", "127.0.0.1"),
    port: int(env, "HOOKLINE_PORT", 7070, 0, 65535),
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir,
    dataDirIsDefault: str(env, "HOOKLINE_DATA_DIR", "") === "",
    embeddedPostgresPort: int(env, "HOOKLINE_EMBEDDED_PG_PORT", 54329, 1, 65535),
    embeddedPostgresRestartTimeoutMs: duration(env, "HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT", 30_000, 1_000, HOUR),
    dbPoolSize: int(env, "HOOKLINE_DB_POOL_SIZE", 10, 2, 1000),
    dbStatementTimeoutMs: env.HOOKLINE_DB_STATEMENT_TIMEOUT === "0" ? 0 : duration(env, "HOOKLINE_DB_STATEMENT_TIMEOUT", 60_000, 100, HOUR),
    publishWriters: int(env, "HOOKLINE_PUBLISH_WRITERS", 2, 1, 64),
    publishPendingBytes: int(env, "HOOKLINE_PUBLISH_PENDING_BYTES", 64 << 20, 1024, 2 ** 32),
    maxConcurrentCalls: int(env, "HOOKLINE_MAX_CONCURRENT_CALLS", 2_000, 1, 1_000_000),
    http2MaxStreams: int(env, "HOOKLINE_HTTP2_MAX_STREAMS", 256, 100, 100_000),
    // Clients send a request's line and headers in one write; 10 s leaves a
    // slow network room, and frees a slowloris's connections six times
    // sooner than Node's 60 s.
    headersTimeoutMs: duration(env, "HOOKLINE_HEADERS_TIMEOUT", 10_000, 100, 10 * 60_000),
    // Node's default: a 16 MB PublishBatch at 56 KB/s still arrives.
    requestReadTimeoutMs: duration(env, "HOOKLINE_REQUEST_READ_TIMEOUT", 5 * 60_000, 100, HOUR),
    // Above the 60 s idle timeout of common load balancers (AWS ALB, nginx's
    // upstream keep-alive), so they close first and never send on a
    // connection Hookline is closing.
    idleTimeoutMs: duration(env, "HOOKLINE_IDLE_TIMEOUT", 65_000, 100, DAY),
    maxConnections: int(env, "HOOKLINE_MAX_CONNECTIONS", 10_000, 1, 1_000_000),
    watchBufferBytes: int(env, "HOOKLINE_WATCH_BUFFER_BYTES", 32 << 20, 64 << 10, 2 ** 32),
    idempotencyWindowMs: duration(env, "HOOKLINE_IDEMPOTENCY_WINDOW", DAY, 1_000, 30 * DAY),
    strictEventTypes: bool(env, "HOOKLINE_STRICT_EVENT_TYPES", false),
    // Two threads keep schema checks going while one is replaced after a
    // deadline, and leave the 2 cores of the test machine to the event loop
    // and PostgreSQL; more help only with more cores.
    schemaWorkers: int(env, "HOOKLINE_SCHEMA_WORKERS", 2, 1, 64),
    // Typical checks take 5-10 µs, and a 207 KB order of 5,200 lines against
    // a 15-keyword schema 8 ms, parsing included (test machine): 250 ms is 30
    // times the largest legitimate check measured, and costs a thread little
    // when a hostile one needs stopping.
    schemaTimeoutMs: duration(env, "HOOKLINE_SCHEMA_TIMEOUT", 250, 10, 60_000),
    // Five full PublishBatches of checks; one request alone is always taken.
    schemaQueue: int(env, "HOOKLINE_SCHEMA_QUEUE", 5_000, 1, 1_000_000),
    // Days, fractions allowed (tests use seconds' worth).
    retentionMs: Math.round(float(env, "HOOKLINE_RETENTION_DAYS", 30, 0.00001, 3650) * DAY),
    apiEnabled: bool(env, "HOOKLINE_API", true),
    consoleEnabled: bool(env, "HOOKLINE_CONSOLE", true),
    consoleDir: env.HOOKLINE_CONSOLE_DIR ? resolve(env.HOOKLINE_CONSOLE_DIR) : undefined,
    secretKey: secretKey(env),
    adminToken: token(env, "HOOKLINE_ADMIN_TOKEN"),
    ingestToken: token(env, "HOOKLINE_INGEST_TOKEN"),
    schedulerEnabled: bool(env, "HOOKLINE_SCHEDULER", true),
    maxInFlight: int(env, "HOOKLINE_MAX_IN_FLIGHT", 256, 1, 100_000),
    claimBatchSize: int(env, "HOOKLINE_CLAIM_BATCH_SIZE", 256, 1, 10_000),
    pollIntervalMs: duration(env, "HOOKLINE_POLL_INTERVAL", 1_000, 10, HOUR),
    leaseMarginMs: duration(env, "HOOKLINE_LEASE_MARGIN", 30_000, 1_000, HOUR),
    requestTimeoutMs: duration(env, "HOOKLINE_REQUEST_TIMEOUT", 15_000, 1_000, 300_000),
    // A test send is a person waiting at a console or CLI: 30 s is longer
    // than they wait, and short enough that a silent endpoint frees the call.
    testEventTimeoutMs: duration(env, "HOOKLINE_TEST_EVENT_TIMEOUT", 30_000, 1_000, 300_000),
    // A few operators testing at once; far below the 2,000 call slots.
    testEventConcurrency: int(env, "HOOKLINE_TEST_EVENT_CONCURRENCY", 10, 1, 100_000),
    responseBodyLimit: int(env, "HOOKLINE_RESPONSE_BODY_LIMIT", 4096, 0, 1 << 20),
    allowedCidrs: cidrs(env, "HOOKLINE_ALLOWED_CIDRS"),
    retryPolicy: retryPolicy(env),
    retryJitter: float(env, "HOOKLINE_RETRY_JITTER", 0.2, 0, 1),
    throttleMinDelayMs: duration(env, "HOOKLINE_THROTTLE_MIN_DELAY", 60_000, 0, DAY),
    retryAfterCapMs: duration(env, "HOOKLINE_RETRY_AFTER_CAP", HOUR, 0, 7 * DAY),
    endpointMaxInFlight: int(env, "HOOKLINE_ENDPOINT_MAX_IN_FLIGHT", 10, 1, 1000),
    circuitFailureThreshold: int(env, "HOOKLINE_CIRCUIT_FAILURES", 5, 1, 1000),
    circuitCooldownMs: duration(env, "HOOKLINE_CIRCUIT_COOLDOWN", 30_000, 10, DAY),
    circuitMaxCooldownMs: duration(env, "HOOKLINE_CIRCUIT_MAX_COOLDOWN", 10 * 60_000, 10, 7 * DAY),
    disableAfterMs: duration(env, "HOOKLINE_DISABLE_AFTER", 5 * DAY, 1_000, 365 * DAY),
    shutdownTimeoutMs: duration(env, "HOOKLINE_SHUTDOWN_TIMEOUT", 10_000, 0, 10 * 60_000),
    maxPayloadBytes: int(env, "HOOKLINE_MAX_PAYLOAD_BYTES", 256 * 1024, 1, 64 << 20),
    maxRequestBytes: int(env, "HOOKLINE_MAX_REQUEST_BYTES", 16 << 20, 1024, 1 << 30),
    logLevel: oneOf(env, "HOOKLINE_LOG_LEVEL", "info", LOG_LEVELS),
    logFormat: oneOf(env, "HOOKLINE_LOG_FORMAT", "auto", LOG_FORMATS) as LogFormat,
  };
}

function secretKey(env: Env): Buffer | undefined {
  const v = env.HOOKLINE_SECRET_KEY ?? "";
  if (v === "") return undefined;
  try {
    return parseSecretKey(v);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

/** A bearer token from the environment: empty, or at least 16 characters. */
function token(env: Env, name: string): string {
  const v = env[name] ?? "";
  if (v !== "" && (v.length < 16 || /\s/.test(v))) {
    throw new ConfigError(`${name}: must be at least 16 characters without spaces (e.g. openssl rand -hex 32)`);
  }
  return v;
}

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === "" ? fallback : v;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${raw}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

function float(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${raw}: expected a number from ${min} to ${max}`);
  }
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(`${name}=${env[name]}: expected true or false`);
}

function cidrs(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined) return [];
  try {
    return parseAllowedCidrs(raw);
  } catch (err) {
    throw new ConfigError(`${name}=${raw}: ${(err as Error).message}`);
  }
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const LOG_FORMATS = ["auto", "json", "pretty"];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function oneOf(env: Env, name: string, fallback: string, allowed: readonly string[]): string {
  const v = str(env, name, fallback);
  if (!allowed.includes(v)) throw new ConfigError(`${name}=${v}: expected one of ${allowed.join(", ")}`);
  return v;
}

function duration(env: Env, name: string, fallbackMs: number, minMs: number, maxMs: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallbackMs;
  return durationValue(name, raw, minMs, maxMs);
}

function durationValue(name: string, raw: string, minMs: number, maxMs: number): number {
  let ms: number;
  try {
    ms = parseDuration(raw);
  } catch (err) {
    throw new ConfigError(`${name}=${raw}: ${(err as Error).message}`);
  }
  if (ms < minMs || ms > maxMs) {
    throw new ConfigError(`${name}=${raw}: must be from ${formatMs(minMs)} to ${formatMs(maxMs)}`);
  }
  return ms;
}

/** Milliseconds in the largest unit that divides them exactly: "1d", "2h", "30m", "5s", "1500ms". */
export function formatMs(ms: number): string {
  if (ms % DAY === 0 && ms > 0) return `${ms / DAY}d`;
  if (ms % HOUR === 0 && ms > 0) return `${ms / HOUR}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0 && ms > 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration such as "250ms", "5s", "30m", "2h" or "1d" to
 * milliseconds; a bare number is milliseconds.
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new ConfigError(`"${text}" is not a duration (examples: 500ms, 5s, 30m, 2h, 1d)`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "ms"]!);
}

function retryPolicy(env: Env): RetryPolicyConfig {
  const schedule = env.HOOKLINE_RETRY_SCHEDULE?.trim() || undefined;
  const exponential = env.HOOKLINE_RETRY_EXPONENTIAL?.trim() || undefined;
  if (schedule && exponential) {
    throw new ConfigError("set HOOKLINE_RETRY_SCHEDULE or HOOKLINE_RETRY_EXPONENTIAL, not both");
  }
  if (exponential) return parseRetryExponential(exponential, "HOOKLINE_RETRY_EXPONENTIAL");
  if (schedule) return parseRetrySchedule(schedule, "HOOKLINE_RETRY_SCHEDULE");
  return { kind: "schedule", delaysMs: DEFAULT_RETRY_SCHEDULE_MS };
}

/**
 * Parses a retry schedule such as "5s,5m,30m" (or "none": a single attempt),
 * each delay 0 s to 7 days, at most 50; errors name `name` (the variable or
 * flag it came from).
 */
export function parseRetrySchedule(text: string, name: string): RetryPolicyConfig {
  if (text.trim() === "none") return { kind: "schedule", delaysMs: [] };
  const delaysMs = text.split(",").map((p) => durationValue(name, p.trim(), 0, 7 * DAY));
  if (delaysMs.length > 50) throw new ConfigError(`${name}: at most 50 delays`);
  return { kind: "schedule", delaysMs };
}

/**
 * Parses an exponential retry policy written "base,cap,max_attempts" (e.g.
 * "2s,1h,5"); errors name `name` (the variable or flag it came from).
 */
export function parseRetryExponential(text: string, name: string): RetryPolicyConfig {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length !== 3) {
    throw new ConfigError(`${name}=${text}: expected base,cap,max_attempts (e.g. 2s,1h,5)`);
  }
  const maxAttempts = Number(parts[2]);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
    throw new ConfigError(`${name}=${text}: max_attempts must be from 1 to 100`);
  }
  const baseMs = durationValue(`${name} (base)`, parts[0]!, 1, DAY);
  const capMs = durationValue(`${name} (cap)`, parts[1]!, baseMs, 7 * DAY);
  return { kind: "exponential", baseMs, capMs, maxAttempts };
}
