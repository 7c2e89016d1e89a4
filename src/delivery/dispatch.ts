/**
 * The stages of one delivery attempt, as plain functions: prepare the
 * request (headers and signature), make the call, and turn the result into
 * the delivery's next state.
 */
import { type SignatureSchemeName, signatureHeaders } from "../signing/sign.js";
import type { ClaimedDelivery } from "../domain/delivery/claimed-delivery.js";
import type { AttemptOutcome } from "../domain/delivery/outcome.js";
import type { StoredRetryPolicy } from "../domain/delivery/retry-policy.js";
import { DeliveryEvent, statusAfterAttempt } from "../domain/delivery/state.js";
import { VERSION } from "../version.js";
import { failureDelay, parseRetryAfter, type RetryRules } from "./backoff.js";
import type { HttpResult } from "./http-client.js";
import { newId } from "../domain/ids.js";

/** The user-agent of every delivery. */
export const USER_AGENT = `Hookline/${VERSION}`;

/** The secrets that sign now: the current one and those still in their grace period. */
export function activeSecrets(secrets: readonly { secret: string; expiresAt: string | null }[], now: Date): string[] {
  return secrets.filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now.getTime()).map((s) => s.secret);
}

/**
 * Stage 1: the full header set of one attempt. The endpoint's custom headers
 * go first so that the signature and content headers always win.
 */
export function prepareHeaders(
  delivery: Pick<ClaimedDelivery, "eventId" | "body" | "headers" | "secrets" | "signatureScheme">,
  now: Date,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(delivery.headers)) headers[name.toLowerCase()] = value;
  Object.assign(
    headers,
    signatureHeaders(
      delivery.signatureScheme as SignatureSchemeName,
      activeSecrets(delivery.secrets, now),
      delivery.eventId,
      Math.floor(now.getTime() / 1000),
      delivery.body,
    ),
  );
  headers["content-type"] = "application/json";
  headers["user-agent"] = USER_AGENT;
  return headers;
}

/** What the scheduler needs to turn an HTTP result into the next state. */
export interface OutcomeContext extends RetryRules {
  /** The policy to use when the endpoint has none. */
  defaultPolicy: StoredRetryPolicy;
}

/**
 * Stage 3: the attempt row and the delivery's next state, by the event the
 * attempt ended with (see the transitions in domain/delivery/state.ts). 2xx
 * succeeds; 410 Gone gives up (and disables the endpoint); any other result
 * is retried by the retry policy (see backoff.ts for Retry-After and
 * throttling) until it is exhausted, then it gives up.
 */
export function decideOutcome(
  delivery: Pick<ClaimedDelivery, "id" | "endpointId" | "attemptNumber" | "retryPolicy">,
  result: HttpResult,
  startedAt: Date,
  durationMs: number,
  context: OutcomeContext,
): AttemptOutcome {
  const headers = result.headers ?? {};
  const kept = Object.keys(headers).length > 0 ? headers : null;
  const base = {
    attemptId: newId("attempt"),
    deliveryId: delivery.id,
    endpointId: delivery.endpointId,
    attemptNumber: delivery.attemptNumber,
    startedAt,
    durationMs,
    responseStatus: result.status,
    errorClass: result.error?.class ?? "",
    error: result.error?.message ?? "",
    responseBody: result.body,
    responseHeaders: kept,
    gone: result.status === 410,
  };
  if (!result.error) {
    return { ...base, success: true, status: statusAfterAttempt(DeliveryEvent.AttemptSucceeded), nextAttemptAt: null };
  }
  const failed = { ...base, success: false };
  if (result.status === 410) {
    return { ...failed, error: "HTTP 410 Gone: endpoint disabled", status: statusAfterAttempt(DeliveryEvent.GivenUp), nextAttemptAt: null };
  }
  const finishedAt = startedAt.getTime() + durationMs;
  const delay = failureDelay(
    delivery.retryPolicy ?? context.defaultPolicy,
    delivery.attemptNumber,
    {
      status: result.status,
      timeout: result.error.class === "timeout",
      retryAfterMs: parseRetryAfter(headers["retry-after"], finishedAt),
    },
    context,
  );
  if (delay === null) return { ...failed, status: statusAfterAttempt(DeliveryEvent.GivenUp), nextAttemptAt: null };
  return { ...failed, status: statusAfterAttempt(DeliveryEvent.AttemptFailed), nextAttemptAt: new Date(finishedAt + delay) };
}
