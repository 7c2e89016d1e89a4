/**
 * The last attempt stage on its own: which status an HTTP result leads a
 * delivery to, by the state machine's attempt events.
 */
import { describe, expect, it } from "vitest";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { decideOutcome, type OutcomeContext } from "../../src/delivery/dispatch.js";
import type { HttpResult } from "../../src/delivery/http-client.js";

const context: OutcomeContext = {
  defaultPolicy: { kind: "schedule", delaysMs: [1_000, 2_000] },
  jitter: 0,
  throttleMinDelayMs: 0,
  retryAfterCapMs: 60_000,
};
const startedAt = new Date("2026-12-01T00:00:00Z");

function decide(result: HttpResult, attemptNumber = 1) {
  return decideOutcome({ id: "dlv_1", endpointId: "ep_1", attemptNumber, retryPolicy: null, leaseUntil: startedAt }, result, startedAt, 20, context);
}

const ok: HttpResult = { status: 204, body: "", headers: {} };
const serverError: HttpResult = { status: 500, body: "", headers: {}, error: { class: "http", message: "HTTP 500" } };
const gone: HttpResult = { status: 410, body: "", headers: {}, error: { class: "http", message: "HTTP 410" } };

describe("decideOutcome", () => {
  it("succeeds on 2xx: SUCCEEDED, nothing more due", () => {
    expect(decide(ok)).toMatchObject({ success: true, status: DeliveryState.Succeeded, nextAttemptAt: null, gone: false });
  });

  it("schedules a retry while the policy has one: RETRYING, due after its delay", () => {
    const outcome = decide(serverError, 2);
    expect(outcome).toMatchObject({ success: false, status: DeliveryState.Retrying, error: "HTTP 500" });
    expect(outcome.nextAttemptAt).toEqual(new Date(startedAt.getTime() + 20 + 2_000));
  });

  it("gives up once the policy is exhausted: FAILED", () => {
    expect(decide(serverError, 3)).toMatchObject({ success: false, status: DeliveryState.Failed, nextAttemptAt: null });
  });

  it("gives up at once on 410 Gone, and marks the endpoint gone", () => {
    expect(decide(gone, 1)).toMatchObject({ status: DeliveryState.Failed, nextAttemptAt: null, gone: true });
  });
});
