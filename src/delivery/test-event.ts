/**
 * SendTestEvent: one signed `hookline.test` event POSTed to an endpoint now,
 * the way a delivery would be (same headers, signature, SSRF guard and
 * timeout), answered with the attempt. Test events are not stored: no
 * event, delivery or attempt row, no retry, and no effect on the
 * endpoint's health.
 */
import type { Endpoint } from "../store/entities/index.js";
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
  defaultTimeoutMs: number;
  maxPayloadBytes: number;
  /** Opens the endpoint's stored secrets. */
  secrets: SecretBox;
}

/** Sends a test event with `data` (`{}` when undefined) to `endpoint`. */
export async function sendTestEvent(endpoint: Endpoint, data: unknown, options: TestEventOptions): Promise<TestAttempt> {
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
  const result = await options.http.post(new URL(endpoint.url), headers, event.body, endpoint.timeoutMs ?? options.defaultTimeoutMs);
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
