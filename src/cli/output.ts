/**
 * What the CLI prints: protobuf JSON for scripts (`--json`), and for people
 * aligned tables, short "key: value" blocks and one line per status update,
 * coloured only on a terminal. The formatting functions are pure; `Output`
 * and `Progress` do the writing.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { toJsonString } from "@bufbuild/protobuf";
import { durationMs, type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { styleText } from "node:util";
import { type ApiKey, ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import {
  type Attempt,
  type Delivery,
  DeliveryStatus,
  type DeliveryUpdate,
  DeliveryUpdateKind,
} from "../../gen/hookline/v1/delivery_pb.js";
import {
  CircuitState,
  type Endpoint,
  type EndpointStats,
  type RetryPolicy,
  SignatureScheme,
} from "../../gen/hookline/v1/endpoint_pb.js";
import type { EventType } from "../../gen/hookline/v1/event_type_pb.js";
import { formatMs } from "../config.js";

/** Where output goes: a stream that may be a terminal. */
export interface Sink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Whether to colour what goes to `stream`: only on a terminal, and not when NO_COLOR is set (no-color.org). */
export function useColour(stream: Sink, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

type Style = Parameters<typeof styleText>[0];

/** `text` in `style` when `colour` is on, as is otherwise. */
export function paint(colour: boolean, style: Style, text: string): string {
  // The caller has decided for its stream; styleText would check process.stdout.
  return colour ? styleText(style, text, { validateStream: false }) : text;
}

/** Rows under a header, columns aligned with two spaces between them; no trailing spaces. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** "key: value" lines with the values aligned; a value's further lines are indented to its column. */
export function formatBlock(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([key]) => key.length)) + 1;
  const indent = `\n${" ".repeat(width + 2)}`;
  return pairs.map(([key, value]) => `${`${key}:`.padEnd(width)}  ${value.split("\n").join(indent)}`.trimEnd()).join("\n");
}

/** "1 delivery", "2 deliveries": `n` and the noun in the right number. */
export function count(n: number | bigint, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 || n === 1n ? singular : plural}`;
}

/** A timestamp in RFC 3339 (UTC, milliseconds), or "-" when unset. */
export function formatTime(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : "-";
}

/** A duration as "5s", "30m", "1500ms". */
export function formatDuration(d: Duration): string {
  return formatMs(durationMs(d));
}

/** A delivery status's short name: "SUCCEEDED". */
export function statusName(status: DeliveryStatus): string {
  return DeliveryStatus[status] ?? String(status);
}

/** An update kind's short name: "RETRY_SCHEDULED". */
export function kindName(kind: DeliveryUpdateKind): string {
  return DeliveryUpdateKind[kind] ?? String(kind);
}

/** A retry policy in words: "default", "none (one attempt)", "5s, 5m, 30m", "exponential 2s to 1h, 5 attempts". */
export function describeRetryPolicy(policy: RetryPolicy | undefined): string {
  const p = policy?.policy;
  if (!p || p.case === undefined) return "default";
  if (p.case === "schedule") return p.value.delays.length === 0 ? "none (one attempt)" : p.value.delays.map(formatDuration).join(", ");
  const cap = p.value.cap ? formatDuration(p.value.cap) : "1d";
  return `exponential ${p.value.base ? formatDuration(p.value.base) : "?"} to ${cap}, ${p.value.maxAttempts} attempts`;
}

/** An endpoint's fields for people; its secret only when the response carries it. */
export function endpointPairs(e: Endpoint): [string, string][] {
  const pairs: [string, string][] = [
    ["id", e.id],
    ["tenant", e.tenantId],
    ["url", e.url],
    ["description", e.description || "-"],
    ["event types", e.eventTypes.length ? e.eventTypes.join(", ") : "all"],
    ["channels", e.channels.length ? e.channels.join(", ") : "all"],
    ["headers", Object.entries(e.headers).map(([k, v]) => `${k}: ${v}`).join("; ") || "-"],
    ["signature", e.signatureScheme === SignatureScheme.GITHUB ? "github" : "standard-webhooks"],
    ["retry policy", describeRetryPolicy(e.retryPolicy)],
    ["timeout", e.timeoutSeconds ? `${e.timeoutSeconds}s` : "default"],
    ["max in flight", e.maxInFlight ? String(e.maxInFlight) : "default"],
    ["rate limit", e.rateLimitPerSecond ? `${e.rateLimitPerSecond}/s` : "none"],
    ["ordered", e.ordered ? "yes" : "no"],
    ["state", endpointState(e)],
    ["created", formatTime(e.createdAt)],
    ["updated", formatTime(e.updatedAt)],
  ];
  if (e.secret) pairs.push(["secret", e.secret]);
  return pairs;
}

/** "active", "disabled" (paused by an operator) or "disabled: <why Hookline disabled it>". */
export function endpointState(e: Endpoint): string {
  if (!e.disabled) return "active";
  return e.disabledReason ? `disabled: ${e.disabledReason}` : "disabled";
}

/** Endpoints as a table. */
export function endpointTable(endpoints: Endpoint[]): string {
  return formatTable(
    ["ID", "STATE", "EVENT TYPES", "CREATED", "URL"],
    endpoints.map((e) => [e.id, endpointState(e), e.eventTypes.join(",") || "all", formatTime(e.createdAt), e.url]),
  );
}

/** Event types as a table. */
export function eventTypeTable(types: EventType[]): string {
  return formatTable(
    ["NAME", "SCHEMA", "CREATED", "DESCRIPTION"],
    types.map((t) => [t.name, t.schema ? "yes" : "no", formatTime(t.createdAt), t.description]),
  );
}

/** An event type's fields for people, its schema as indented JSON. */
export function eventTypePairs(t: EventType): [string, string][] {
  return [
    ["tenant", t.tenantId],
    ["name", t.name],
    ["description", t.description || "-"],
    ["schema", t.schema ? JSON.stringify(t.schema, null, 2) : "none"],
    ["created", formatTime(t.createdAt)],
  ];
}

/** An API key scope's short name: "ingest" or "admin". */
export function scopeName(scope: ApiKeyScope): string {
  return ApiKeyScope[scope]?.toLowerCase() ?? String(scope);
}

/** "valid" or "revoked <when>". */
export function apiKeyState(k: ApiKey): string {
  return k.revokedAt ? `revoked ${formatTime(k.revokedAt)}` : "valid";
}

/** API keys as a table (never their tokens: Hookline does not keep them). */
export function apiKeyTable(keys: ApiKey[]): string {
  return formatTable(
    ["ID", "SCOPE", "PREFIX", "STATE", "CREATED", "DESCRIPTION"],
    keys.map((k) => [k.id, scopeName(k.scope), k.tokenPrefix, apiKeyState(k), formatTime(k.createdAt), k.description]),
  );
}

/** An API key's fields for people; its token only when the response carries it (once, at creation). */
export function apiKeyPairs(k: ApiKey, token = ""): [string, string][] {
  const pairs: [string, string][] = [
    ["id", k.id],
    ["tenant", k.tenantId],
    ["scope", scopeName(k.scope)],
    ["description", k.description || "-"],
    ["token prefix", k.tokenPrefix],
    ["state", apiKeyState(k)],
    ["created", formatTime(k.createdAt)],
  ];
  if (token) pairs.push(["token", token]);
  return pairs;
}

/** An endpoint's statistics for people. */
export function statsPairs(s: EndpointStats): [string, string][] {
  return [
    ["endpoint", s.endpointId],
    ["window", s.window ? formatDuration(s.window) : "-"],
    ["succeeded", String(s.succeededCount)],
    ["failed", String(s.failedCount)],
    ["pending", String(s.pendingCount)],
    ["success rate", `${(s.successRate * 100).toFixed(1)} %`],
    ["latency p50", `${s.latencyP50Ms} ms`],
    ["latency p95", `${s.latencyP95Ms} ms`],
    ["circuit", `${CircuitState[s.circuitState] ?? "-"}${s.circuitOpenUntil ? ` until ${formatTime(s.circuitOpenUntil)}` : ""}`],
    ["consecutive failures", String(s.consecutiveFailures)],
    ["last error", s.lastError ? `${s.lastError} (${formatTime(s.lastErrorAt)})` : "-"],
  ];
}

/** What the last attempt of a delivery got: "HTTP 204", the error, or "-". */
function lastOutcome(d: Delivery): string {
  if (d.lastError) return d.lastError;
  return d.lastResponseStatus ? `HTTP ${d.lastResponseStatus}` : "-";
}

/** Deliveries as a table. */
export function deliveryTable(deliveries: Delivery[]): string {
  return formatTable(
    ["ID", "STATUS", "ATTEMPTS", "EVENT TYPE", "ENDPOINT", "CREATED", "LAST"],
    deliveries.map((d) => [
      d.id,
      statusName(d.status),
      String(d.attemptCount),
      d.eventType,
      d.endpointId,
      formatTime(d.createdAt),
      lastOutcome(d),
    ]),
  );
}

/** A delivery's fields for people. */
export function deliveryPairs(d: Delivery): [string, string][] {
  return [
    ["id", d.id],
    ["status", statusName(d.status)],
    ["event", `${d.eventId} (${d.eventType})`],
    ["endpoint", d.endpointId],
    ["tenant", d.tenantId],
    ["attempts", String(d.attemptCount)],
    ["next attempt", formatTime(d.nextAttemptAt)],
    ["last response", d.lastResponseStatus ? `HTTP ${d.lastResponseStatus}` : "-"],
    ["last error", d.lastError || "-"],
    ["created", formatTime(d.createdAt)],
    ["updated", formatTime(d.updatedAt)],
  ];
}

/** Attempts as a table, newest first as the API returns them. */
export function attemptTable(attempts: Attempt[]): string {
  return formatTable(
    ["#", "STARTED", "STATUS", "DURATION", "ERROR"],
    attempts.map((a) => [
      String(a.number),
      formatTime(a.startedAt),
      a.responseStatus ? String(a.responseStatus) : "-",
      `${a.durationMs}ms`,
      a.error,
    ]),
  );
}

/** Whether an attempt got a 2xx. */
export function attemptSucceeded(a: Attempt): boolean {
  return !a.error && a.responseStatus >= 200 && a.responseStatus < 300;
}

/** A test event's attempt for people. */
export function testAttemptPairs(a: Attempt): [string, string][] {
  const body = a.responseBody.length > 200 ? `${a.responseBody.slice(0, 200)}...` : a.responseBody;
  return [
    ["result", attemptSucceeded(a) ? "delivered" : "failed"],
    ["response", a.responseStatus ? `HTTP ${a.responseStatus}` : "none"],
    ["duration", `${a.durationMs}ms`],
    ["error", a.error ? `${a.error}${a.errorClass ? ` (${a.errorClass})` : ""}` : "-"],
    ["body", body ? JSON.stringify(body) : "-"],
  ];
}

const KIND_STYLES: Partial<Record<DeliveryUpdateKind, Style>> = {
  [DeliveryUpdateKind.CREATED]: "cyan",
  [DeliveryUpdateKind.RETRY_SCHEDULED]: "yellow",
  [DeliveryUpdateKind.SUCCEEDED]: "green",
  [DeliveryUpdateKind.FAILED]: "red",
  [DeliveryUpdateKind.ENDPOINT_DISABLED]: "red",
  [DeliveryUpdateKind.REQUEUED]: "magenta",
};

/** Width of the longest kind name, ENDPOINT_DISABLED, so that the ids after it line up. */
const KIND_WIDTH = 17;

/**
 * One status update as one line:
 * `<occurred> <KIND> <delivery> <event> <endpoint> <tenant> <type> [attempt=N] [http=S] [Nms] [error="..."] [next=<time>] cursor=<c>`.
 */
export function formatUpdateLine(u: DeliveryUpdate, colour: boolean): string {
  const kind = paint(colour, KIND_STYLES[u.kind] ?? "white", kindName(u.kind).padEnd(KIND_WIDTH));
  const parts = [paint(colour, "dim", formatTime(u.occurredAt)), kind, u.deliveryId, u.eventId, u.endpointId, u.tenantId, u.eventType];
  if (u.attemptNumber) parts.push(`attempt=${u.attemptNumber}`);
  if (u.responseStatus) parts.push(`http=${u.responseStatus}`);
  if (u.attemptNumber && u.kind !== DeliveryUpdateKind.REQUEUED && u.kind !== DeliveryUpdateKind.ENDPOINT_DISABLED) {
    parts.push(`${u.durationMs}ms`);
  }
  if (u.error) parts.push(paint(colour, "red", `error=${JSON.stringify(u.error)}`));
  if (u.nextAttemptAt) parts.push(`next=${formatTime(u.nextAttemptAt)}`);
  parts.push(paint(colour, "dim", `cursor=${u.cursor}`));
  return parts.join(" ");
}

/**
 * A progress line on stderr. On a terminal it is rewritten in place; on
 * anything else each update is a line of its own, at most one per
 * `minIntervalMs` (the last one always).
 */
export class Progress {
  private lastText = "";
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly stream: Sink,
    private readonly minIntervalMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  /** Shows `text` as the current state. */
  update(text: string): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${text}`);
      this.lastText = text;
      return;
    }
    const at = this.now();
    if (at - this.lastAt < this.minIntervalMs) return;
    this.lastAt = at;
    this.write(text);
  }

  /** Ends the progress: the line stays, with `text` when given. */
  done(text?: string): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${text ?? this.lastText}\n`);
      return;
    }
    if (text !== undefined && text !== this.lastText) this.write(text);
  }

  private write(text: string): void {
    this.lastText = text;
    this.stream.write(`${text}\n`);
  }
}

/** The output of one command: JSON or text on stdout, notes and progress on stderr. */
export class Output {
  constructor(
    /** Print protobuf JSON (NDJSON for lists and streams) instead of text. */
    readonly json: boolean,
    /** Colour text for a terminal. */
    readonly colour: boolean,
    private readonly stdout: Sink,
    private readonly stderr: Sink,
  ) {}

  /** Prints one message: its protobuf JSON with --json, `text()` otherwise. */
  message<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, text: () => string): void {
    this.line(this.json ? toJsonString(schema, message) : text());
  }

  /** Prints a list: one message of JSON per line with --json, `text()` otherwise. */
  list<Desc extends DescMessage>(schema: Desc, messages: MessageShape<Desc>[], text: () => string): void {
    if (this.json) {
      for (const m of messages) this.line(toJsonString(schema, m));
    } else {
      this.line(text());
    }
  }

  /** A line of text on stdout. */
  line(text: string): void {
    this.stdout.write(`${text}\n`);
  }

  /** A note for people on stderr (never mixed into the JSON on stdout). */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  /** A progress line on stderr; see {@link Progress}. */
  progress(minIntervalMs = 0): Progress {
    return new Progress(this.stderr, minIntervalMs);
  }
}
