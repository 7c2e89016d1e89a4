/** The one mapping of a leased delivery's row, shared by the claim and the publish. */
import { describe, expect, it } from "vitest";
import { type ClaimedRow, claimedDelivery } from "../../src/store/claimed-row.js";

const row: ClaimedRow = {
  endpoint_id: "ep_1",
  tenant_id: "t",
  event_type: "order.paid",
  url: "https://example.com/hook",
  headers: { "x-a": "1" },
  secrets: [{ secret: "sealed", expiresAt: null }],
  signature_scheme: "github",
  retry_policy: null,
  timeout_ms: 5_000,
  max_in_flight: 3,
};

describe("claimedDelivery", () => {
  it("maps the shared columns and the statement's own values into a claimed delivery", () => {
    expect(claimedDelivery(row, "dlv_1", "evt_1", "{}", 2, "2026-12-07 20:00:00.123+00")).toEqual({
      id: "dlv_1",
      eventId: "evt_1",
      endpointId: "ep_1",
      tenantId: "t",
      eventType: "order.paid",
      attemptNumber: 2,
      body: "{}",
      url: "https://example.com/hook",
      headers: { "x-a": "1" },
      secrets: [{ secret: "sealed", expiresAt: null }],
      signatureScheme: "github",
      retryPolicy: null,
      timeoutMs: 5_000,
      maxInFlight: 3,
      rateLimitPerSecond: null,
      ordered: false,
      probe: false,
      leaseUntil: new Date("2026-12-07T20:00:00.123Z"),
    });
  });

  it("takes the limits only the claim returns: rate limit, ordered, probe", () => {
    const d = claimedDelivery({ ...row, rate_limit_per_second: 5, ordered: true, probe: true }, "dlv_1", "evt_1", "{}", 1, "2026-12-07T20:00:00Z");
    expect([d.rateLimitPerSecond, d.ordered, d.probe]).toEqual([5, true, true]);
  });
});
