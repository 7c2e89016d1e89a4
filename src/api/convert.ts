/**
 * Conversions between API messages and stored rows / domain inputs.
 */
import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, durationFromMs, type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Attempt as AttemptMessage,
  AttemptSchema,
  type Delivery as DeliveryMessage,
  DeliverySchema,
  type DeliveryUpdate,
  DeliveryUpdateSchema,
} from "../../gen/hookline/v1/delivery_pb.js";
import {
  CircuitState,
  type Endpoint as EndpointMessage,
  EndpointSchema,
  type EndpointStats as EndpointStatsMessage,
  EndpointStatsSchema,
  type RetryPolicy,
  RetryPolicySchema,
  SignatureScheme,
} from "../../gen/hookline/v1/endpoint_pb.js";
import { type ApiKey as ApiKeyMessage, ApiKeySchema } from "../../gen/hookline/v1/api_key_pb.js";
import type { EndpointStats } from "../domain/endpoint-stats.js";
import { ValidationError } from "../domain/errors.js";
import type { StoredRetryPolicy } from "../domain/delivery/retry-policy.js";
import type { Attempt, Delivery, Endpoint } from "../store/entities/index.js";
import type { StoredApiKey } from "../store/sql/api-keys.js";
import type { EventType } from "../store/entities/index.js";
import { type EventType as EventTypeMessage, EventTypeSchema } from "../../gen/hookline/v1/event_type_pb.js";
import { encodeCursor, type UpdateRow } from "../store/sql/delivery-updates.js";

/** Milliseconds of a Duration; rejects negative ones, naming `field`. */
export function durationToMs(d: Duration, field: string): number {
  const ms = Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
  if (ms < 0) throw new ValidationError(field, "must not be negative");
  return ms;
}

/** The Timestamp range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z), in seconds. */
const TIMESTAMP_MIN_SECONDS = -62_135_596_800n;
const TIMESTAMP_MAX_SECONDS = 253_402_300_799n;

/**
 * The Date of a Timestamp, to the millisecond below; rejects one outside
 * the Timestamp's documented range, naming `field`. Binary requests can
 * carry any seconds and nanos, and such a Date is invalid or beyond what
 * the database takes. (timestampDate rounds nanos up, which takes
 * 9999-12-31T23:59:59.9995Z into the year 10000.)
 */
export function timestampToDate(t: Timestamp, field: string): Date {
  if (t.seconds < TIMESTAMP_MIN_SECONDS || t.seconds > TIMESTAMP_MAX_SECONDS || t.nanos < 0 || t.nanos > 999_999_999) {
    throw new ValidationError(field, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z");
  }
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1_000_000));
}

function msToDuration(ms: number): Duration {
  return create(DurationSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

/** The stored form of a proto RetryPolicy; undefined or empty means the default (null). */
export function retryPolicyFromProto(policy: RetryPolicy | undefined, field = "retry_policy"): StoredRetryPolicy | null {
  const p = policy?.policy;
  if (!p || p.case === undefined) return null;
  if (p.case === "schedule") {
    return { kind: "schedule", delaysMs: p.value.delays.map((d, i) => durationToMs(d, `${field}.schedule.delays[${i}]`)) };
  }
  if (!p.value.base) throw new ValidationError(`${field}.exponential.base`, "is required");
  return {
    kind: "exponential",
    baseMs: durationToMs(p.value.base, `${field}.exponential.base`),
    capMs: p.value.cap ? durationToMs(p.value.cap, `${field}.exponential.cap`) : 24 * 3_600_000,
    maxAttempts: p.value.maxAttempts,
  };
}

/** The proto RetryPolicy of a stored (or configured) one; undefined for none. */
export function retryPolicyToProto(policy: StoredRetryPolicy): RetryPolicy;
export function retryPolicyToProto(policy: StoredRetryPolicy | null): RetryPolicy | undefined;
export function retryPolicyToProto(policy: StoredRetryPolicy | null): RetryPolicy | undefined {
  if (!policy) return undefined;
  if (policy.kind === "schedule") {
    return create(RetryPolicySchema, {
      policy: { case: "schedule", value: { delays: policy.delaysMs.map(msToDuration) } },
    });
  }
  return create(RetryPolicySchema, {
    policy: {
      case: "exponential",
      value: { base: msToDuration(policy.baseMs), cap: msToDuration(policy.capMs), maxAttempts: policy.maxAttempts },
    },
  });
}

/** The stored scheme name of a proto SignatureScheme; an unknown value is refused, naming `field`. */
export function schemeFromProto(scheme: SignatureScheme, field = "signature_scheme"): "standard-webhooks" | "github" {
  switch (scheme) {
    case SignatureScheme.UNSPECIFIED:
    case SignatureScheme.STANDARD_WEBHOOKS:
      return "standard-webhooks";
    case SignatureScheme.GITHUB:
      return "github";
    default:
      throw new ValidationError(field, `unknown value ${scheme}`);
  }
}

/** An endpoint row as an API message; the secret only when given (its plaintext: stored secrets are sealed). */
export function endpointToProto(e: Endpoint, secret = ""): EndpointMessage {
  return create(EndpointSchema, {
    id: e.id,
    tenantId: e.tenantId,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    channels: e.channels,
    headers: e.headers,
    disabled: e.disabled,
    secret,
    signatureScheme: e.signatureScheme === "github" ? SignatureScheme.GITHUB : SignatureScheme.STANDARD_WEBHOOKS,
    retryPolicy: retryPolicyToProto(e.retryPolicy),
    timeoutSeconds: e.timeoutMs === null ? 0 : Math.round(e.timeoutMs / 1000),
    maxInFlight: e.maxInFlight ?? 0,
    rateLimitPerSecond: e.rateLimitPerSecond ?? 0,
    ordered: e.ordered,
    disabledReason: e.disabledReason,
    createdAt: timestampFromDate(e.createdAt),
    updatedAt: timestampFromDate(e.updatedAt),
  });
}

/** A delivery row (and optionally its attempts) as an API message. */
export function deliveryToProto(d: Delivery, attempts: Attempt[] = []): DeliveryMessage {
  return create(DeliverySchema, {
    id: d.id,
    eventId: d.eventId,
    endpointId: d.endpointId,
    tenantId: d.tenantId,
    eventType: d.eventType,
    status: d.status,
    attemptCount: d.attemptCount,
    nextAttemptAt: d.nextAttemptAt ? timestampFromDate(d.nextAttemptAt) : undefined,
    createdAt: timestampFromDate(d.createdAt),
    updatedAt: timestampFromDate(d.updatedAt),
    lastResponseStatus: d.lastResponseStatus,
    lastError: d.lastError,
    attempts: attempts.map(attemptToProto),
  });
}

/** An attempt (a stored row, or a test event's) as an API message. */
export function attemptToProto(
  a: Pick<Attempt, "id" | "number" | "responseStatus" | "error" | "errorClass" | "durationMs" | "responseBody" | "startedAt">,
): AttemptMessage {
  return create(AttemptSchema, {
    id: a.id,
    number: a.number,
    responseStatus: a.responseStatus,
    error: a.error,
    errorClass: a.errorClass,
    durationMs: BigInt(a.durationMs),
    responseBody: a.responseBody,
    startedAt: timestampFromDate(a.startedAt),
  });
}

/** Messages already made, per row: the hub hands one row object to every watcher it matches. */
const updateMessages = new WeakMap<UpdateRow, DeliveryUpdate>();

/**
 * A status log row as the DeliveryUpdate a watcher receives (kinds and
 * statuses share their numbers). Made once per row and shared by the
 * watchers that receive it (messages are never changed after this).
 */
export function updateToProto(row: UpdateRow): DeliveryUpdate {
  let message = updateMessages.get(row);
  if (message === undefined) {
    message = makeUpdate(row);
    updateMessages.set(row, message);
  }
  return message;
}

function makeUpdate(row: UpdateRow): DeliveryUpdate {
  return create(DeliveryUpdateSchema, {
    cursor: encodeCursor(row.position),
    kind: row.kind,
    deliveryId: row.deliveryId,
    eventId: row.eventId,
    endpointId: row.endpointId,
    tenantId: row.tenantId,
    eventType: row.eventType,
    status: row.status,
    attemptNumber: row.attemptNumber,
    responseStatus: row.responseStatus,
    durationMs: BigInt(row.durationMs),
    error: row.error,
    nextAttemptAt: row.nextAttemptAt ? timestampFromDate(row.nextAttemptAt) : undefined,
    occurredAt: timestampFromDate(row.occurredAt),
  });
}

/** An API key as the API shows it (never its token or hash). */
export function apiKeyToProto(key: StoredApiKey): ApiKeyMessage {
  return create(ApiKeySchema, {
    id: key.id,
    tenantId: key.tenantId,
    scope: key.scope,
    description: key.description,
    tokenPrefix: key.tokenPrefix,
    createdAt: timestampFromDate(key.createdAt),
    revokedAt: key.revokedAt ? timestampFromDate(key.revokedAt) : undefined,
  });
}

/** Endpoint statistics as the API shows them. */
export function statsToProto(s: EndpointStats): EndpointStatsMessage {
  return create(EndpointStatsSchema, {
    endpointId: s.endpointId,
    window: durationFromMs(s.windowMs),
    succeededCount: BigInt(s.succeeded),
    failedCount: BigInt(s.failed),
    pendingCount: BigInt(s.pending),
    successRate: s.successRate,
    latencyP50Ms: s.latencyP50Ms,
    latencyP95Ms: s.latencyP95Ms,
    lastError: s.lastError,
    lastErrorAt: s.lastErrorAt ? timestampFromDate(s.lastErrorAt) : undefined,
    consecutiveFailures: s.consecutiveFailures,
    circuitState: s.circuit === "open" ? CircuitState.OPEN : s.circuit === "half-open" ? CircuitState.HALF_OPEN : CircuitState.CLOSED,
    circuitOpenUntil: s.circuitOpenUntil ? timestampFromDate(s.circuitOpenUntil) : undefined,
  });
}

/** An event type as the API shows it. */
export function eventTypeToProto(t: EventType): EventTypeMessage {
  return create(EventTypeSchema, {
    tenantId: t.tenantId,
    name: t.name,
    description: t.description,
    schema: (t.schema ?? undefined) as EventTypeMessage["schema"],
    createdAt: timestampFromDate(t.createdAt),
  });
}
