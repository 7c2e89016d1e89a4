/**
 * SendTestEvent: one signed `hookline.test` event POSTed to an endpoint now,
 * the way a delivery would be (same headers, signature, SSRF guard and
 * timeout), answered with the attempt. Test events are not stored: no
 * event, delivery or attempt row, no retry, and no effect on the
 * endpoint's health.
 *
 * A test send holds an API call (and its call slot, see api/call-limit.ts)
 * for as long as the endpoint takes to answer, so it is bounded three ways:
 * it ends when the caller cancels, disconnects or its deadline passes (the
 * call's signal aborts the request); it lasts at most
 * HOOKLINE_TEST_EVENT_TIMEOUT, whatever the endpoint's own timeout; and a
 * tenant has at most HOOKLINE_TEST_EVENT_CONCURRENCY in flight. Before
 * these bounds, 2,100 abandoned test sends to an endpoint with a 300 s
 * timeout that never answered held all 2,000 call slots for 5 minutes, and
 * every other tenant's Publish was refused.
 */
import type { Endpoint } from "../store/entities/index.js";
import { LimitExceededError } from "../domain/errors.js";
import { newId } from "../domain/ids.js";
import { prepareEvent } from "../domain/publish.js";
import { prepareHeaders } from "./dispatch.js";
import type { SecretBox } from "../signing/secret-box.js";
import type { HttpClient } from "./http-client.js";

/** The event type of test events. */
export const TEST_EVENT_TYPE = "hookline.test";

/** The attempt a test event made. */
export interface TestAttempt {
  id: string;
  /** Always 1: a test event has one attempt. */
  number: number;
  eventId: string;
  startedAt: Date;
  durationMs: number;
  responseStatus: number;
  responseBody: string;
  errorClass: string;
  error: string;
}

/** Options of {@link sendTestEvent}. */
export interface TestEventOptions {
  http: HttpClient;
  /** The timeout of endpoints that set none. */
  defaultTimeoutMs: number;
  /** HOOKLINE_TEST_EVENT_TIMEOUT: the longest a test send may take, below the endpoint's timeout when that is longer. */
  maxTimeoutMs: number;
  /** HOOKLINE_TEST_EVENT_CONCURRENCY: the test sends in flight per tenant. */
  slots: TenantSlots;
  maxPayloadBytes: number;
  /** Opens the endpoint's stored secrets. */
  secrets: SecretBox;
}

/**
 * Counts the test sends each tenant has in flight in this process and
 * refuses one past the limit at once, so one tenant cannot hold more than
 * that many API calls with slow endpoints.
 */
export class TenantSlots {
  private readonly inFlight = new Map<string, number>();

  constructor(
    /** Test sends in flight per tenant at most. */
    readonly max: number,
  ) {}

  /**
   * Takes a slot of `tenantId`, or throws {@link LimitExceededError} when it
   * has {@link max} in flight; call the returned function to give it back.
   */
  take(tenantId: string): () => void {
    const n = this.inFlight.get(tenantId) ?? 0;
    if (n >= this.max) {
      throw new LimitExceededError(
        `tenant ${tenantId} has ${n} test events in flight, the limit (HOOKLINE_TEST_EVENT_CONCURRENCY=${this.max}); wait for one to end`,
      );
    }
    this.inFlight.set(tenantId, n + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.inFlight.get(tenantId) ?? 1) - 1;
      if (left === 0) this.inFlight.delete(tenantId);
      else this.inFlight.set(tenantId, left);
    };
  }
}

/**
 * Sends a test event with `data` (`{}` when undefined) to `endpoint`,
 * within min(the endpoint's timeout, {@link TestEventOptions.maxTimeoutMs}).
 * When `signal` aborts (the caller went away or its deadline passed), the
 * request is aborted and this rejects with the signal's reason.
 */
export async function sendTestEvent(endpoint: Endpoint, data: unknown, options: TestEventOptions, signal?: AbortSignal): Promise<TestAttempt> {
  const release = options.slots.take(endpoint.tenantId);
  try {
    return await send(endpoint, data, options, signal);
  } finally {
    release();
  }
}

async function send(endpoint: Endpoint, data: unknown, options: TestEventOptions, signal: AbortSignal | undefined): Promise<TestAttempt> {
  const startedAt = new Date();
  const event = prepareEvent(
    {
      tenantId: endpoint.tenantId,
      eventType: TEST_EVENT_TYPE,
      data: data ?? {},
      idempotencyKey: "",
      channels: [],
    },
    startedAt,
    options.maxPayloadBytes,
  );
  const headers = prepareHeaders(
    { eventId: event.id, body: event.body, headers: endpoint.headers, secrets: options.secrets.openAll(endpoint.secrets), signatureScheme: endpoint.signatureScheme },
    startedAt,
  );
  const started = performance.now();
  const timeoutMs = Math.min(endpoint.timeoutMs ?? options.defaultTimeoutMs, options.maxTimeoutMs);
  const result = await options.http.post(new URL(endpoint.url), headers, event.body, timeoutMs, signal);
  return {
    id: newId("attempt"),
    number: 1,
    eventId: event.id,
    startedAt,
    durationMs: Math.round(performance.now() - started),
    responseStatus: result.status,
    responseBody: result.body,
    errorClass: result.error?.class ?? "",
    error: result.error?.message ?? "",
  };
}
