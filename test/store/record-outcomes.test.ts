/**
 * Writing attempt outcomes against PostgreSQL: the attempt rows, the
 * deliveries' new state under the lease, the status log, endpoint health
 * (failures, circuit, disabling), ordered endpoints' next delivery let out
 * of parking, and a batch written twice. (Circuits opening and closing, and
 * retries held while blocked: circuit-holds.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { foldHealth, recordOutcomes } from "../../src/store/sql/record-outcomes.js";
import { attemptOutcome, HEALTH_RULES, leasedOutcome } from "../support/outcomes.js";
import {
  attemptsOf,
  deliveriesOf,
  insertDeliveries,
  insertEndpoint,
  readDelivery,
  readEndpointHealth,
  statusLogOf,
} from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

/** One delivery of a new endpoint, leased by "w1"; its endpoint and delivery ids. */
async function leased(endpoint: Parameters<typeof insertEndpoint>[1] = {}): Promise<{ ep: string; id: string }> {
  const ep = await insertEndpoint(db, endpoint);
  const [id] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '20 seconds'" });
  return { ep, id: id! };
}

describe("recordOutcomes", () => {
  it("writes each attempt whole, and the delivery's new state, lease given back", async () => {
    const { ep, id } = await leased();
    const startedAt = new Date(Date.now() - 1_000);
    const outcome = await leasedOutcome(db, id, ep, "succeeded", {
      startedAt,
      durationMs: 42,
      responseStatus: 201,
      responseBody: "thanks",
      responseHeaders: { "content-type": "text/plain" },
    });
    await recordOutcomes(sql, "w1", [outcome], HEALTH_RULES);
    expect(await attemptsOf(db, id)).toEqual([
      {
        id: outcome.attemptId,
        deliveryId: id,
        number: 1,
        startedAt,
        durationMs: 42,
        responseStatus: 201,
        errorClass: "",
        error: "",
        responseBody: "thanks",
        responseHeaders: { "content-type": "text/plain" },
      },
    ]);
    expect(await readDelivery(db, id)).toMatchObject({
      status: DeliveryState.Succeeded,
      attemptCount: 1,
      lockedBy: null,
      nextAttemptAt: null,
      lastResponseStatus: 201,
      lastError: "",
    });
  });

  it("schedules a retry at the outcome's time and records the error", async () => {
    const { ep, id } = await leased();
    const retryAt = new Date(Date.now() + 90_000);
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, id, ep, "retry", { nextAttemptAt: retryAt, error: "HTTP 503" })], HEALTH_RULES);
    expect(await readDelivery(db, id)).toMatchObject({
      status: DeliveryState.Retrying,
      lockedBy: null,
      nextAttemptAt: retryAt,
      lastResponseStatus: 500,
      lastError: "HTTP 503",
    });
  });

  it("logs SUCCEEDED, RETRY_SCHEDULED and FAILED with the attempt, at the moment the attempt ended", async () => {
    const ep = await insertEndpoint(db);
    const [ok, again, failed] = await insertDeliveries(db, ep, 3, { lockedBy: "w1" });
    const startedAt = new Date(Date.now() - 5_000);
    const retryAt = new Date(Date.now() + 60_000);
    await recordOutcomes(
      sql,
      "w1",
      [
        await leasedOutcome(db, ok!, ep, "succeeded", { startedAt, durationMs: 250 }),
        await leasedOutcome(db, again!, ep, "retry", { startedAt, durationMs: 250, nextAttemptAt: retryAt }),
        await leasedOutcome(db, failed!, ep, "failed", { startedAt, durationMs: 250, attemptNumber: 3 }),
      ],
      HEALTH_RULES,
    );
    const ended = new Date(startedAt.getTime() + 250);
    const log = await statusLogOf(db, [ok!, again!, failed!]);
    const byDelivery = new Map(log.map((u) => [u.deliveryId, u]));
    expect(log).toHaveLength(3);
    expect(byDelivery.get(ok!)).toMatchObject({
      kind: DeliveryUpdateKind.SUCCEEDED,
      status: DeliveryState.Succeeded,
      attemptNumber: 1,
      responseStatus: 200,
      durationMs: 250,
      nextAttemptAt: null,
      occurredAt: ended,
    });
    expect(byDelivery.get(again!)).toMatchObject({
      kind: DeliveryUpdateKind.RETRY_SCHEDULED,
      status: DeliveryState.Retrying,
      error: "HTTP 500",
      nextAttemptAt: retryAt,
      occurredAt: ended,
    });
    expect(byDelivery.get(failed!)).toMatchObject({ kind: DeliveryUpdateKind.FAILED, status: DeliveryState.Failed, attemptNumber: 3 });
  });

  it("keeps only the attempt of a delivery whose lease this process lost: no state change, no log row", async () => {
    const ep = await insertEndpoint(db);
    const [takenOver] = await insertDeliveries(db, ep, 1, { lockedBy: "w2", nextAttemptAt: "now() + interval '20 seconds'" });
    const [released] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Retrying });
    const before = await readDelivery(db, takenOver!);
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, takenOver!, ep), await leasedOutcome(db, released!, ep)], HEALTH_RULES);
    expect(await readDelivery(db, takenOver!)).toEqual(before);
    expect(await readDelivery(db, released!)).toMatchObject({ status: DeliveryState.Retrying, attemptCount: 0 });
    expect(await attemptsOf(db, takenOver!)).toHaveLength(1);
    expect(await attemptsOf(db, released!)).toHaveLength(1);
    expect(await statusLogOf(db, [takenOver!, released!])).toEqual([]);
  });

  it("changes nothing under a later lease of the same process: the attempt was made under one that lapsed", async () => {
    const { ep, id } = await leased();
    const earlier = await leasedOutcome(db, id, ep, "retry");
    // The lease lapsed, and this process claimed the delivery again (a second attempt is in flight under it).
    await db.query("UPDATE delivery_queue SET due_at = date_trunc('milliseconds', now() + interval '40 seconds') WHERE delivery_id = $1", [id]);
    const before = await readDelivery(db, id);
    await recordOutcomes(sql, "w1", [earlier], HEALTH_RULES);
    // The delivery is the later lease's: still leased, no attempt used up, no log row; the attempt is kept.
    expect(await readDelivery(db, id)).toEqual(before);
    expect(await statusLogOf(db, [id])).toEqual([]);
    expect((await attemptsOf(db, id)).map((a) => a.id)).toEqual([earlier.attemptId]);
    // The later lease's own outcome is written.
    const later = await leasedOutcome(db, id, ep, "succeeded", { attemptId: "atm_later" });
    await recordOutcomes(sql, "w1", [later], HEALTH_RULES);
    expect(await readDelivery(db, id)).toMatchObject({ status: DeliveryState.Succeeded, lockedBy: null });
    expect((await statusLogOf(db, [id])).map((u) => u.kind)).toEqual([DeliveryUpdateKind.SUCCEEDED]);
  });

  it("keeps one attempt, one state change and one log row when the same batch is written twice", async () => {
    const { ep, id } = await leased();
    const batch = [await leasedOutcome(db, id, ep, "retry")];
    await recordOutcomes(sql, "w1", batch, HEALTH_RULES);
    await recordOutcomes(sql, "w1", batch, HEALTH_RULES);
    expect(await attemptsOf(db, id)).toHaveLength(1);
    expect(await statusLogOf(db, [id])).toHaveLength(1);
    expect(await readDelivery(db, id)).toMatchObject({ status: DeliveryState.Retrying, attemptCount: 1 });
    // Its failure counted once in the endpoint's failures in a row.
    expect((await readEndpointHealth(db, ep)).consecutiveFailures).toBe(1);
  });
});

describe("recordOutcomes and endpoint health", () => {
  it("counts failures in a row from the first one's start, with the last error, and a success clears them", async () => {
    const ep = await insertEndpoint(db);
    const ids = await insertDeliveries(db, ep, 3, { lockedBy: "w1" });
    const firstStart = new Date(Date.now() - 10_000);
    await recordOutcomes(
      sql,
      "w1",
      [
        await leasedOutcome(db, ids[0]!, ep, "retry", { startedAt: firstStart, error: "HTTP 502" }),
        await leasedOutcome(db, ids[1]!, ep, "retry", { error: "timed out" }),
      ],
      HEALTH_RULES,
    );
    expect(await readEndpointHealth(db, ep)).toMatchObject({ consecutiveFailures: 2, failingSince: firstStart, lastError: "timed out" });
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, ids[2]!, ep, "succeeded")], HEALTH_RULES);
    expect(await readEndpointHealth(db, ep)).toMatchObject({ consecutiveFailures: 0, failingSince: null, lastError: "timed out" });
  });

  it("adds a batch's failures to those before it, and keeps when the run began", async () => {
    const since = "now() - interval '1 hour'";
    const ep = await insertEndpoint(db, { consecutiveFailures: 2, failingSince: since });
    const [id] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    const before = (await readEndpointHealth(db, ep)).failingSince;
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, id!, ep, "retry")], HEALTH_RULES);
    expect(await readEndpointHealth(db, ep)).toMatchObject({ consecutiveFailures: 3, failingSince: before });
  });

  it("opens the circuit at the threshold, for the first cool-down, and says so", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: HEALTH_RULES.circuitFailureThreshold - 1 });
    const [id] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    const changes = await recordOutcomes(sql, "w1", [await leasedOutcome(db, id!, ep, "retry")], HEALTH_RULES);
    expect(changes.opened.map((c) => c.endpointId)).toEqual([ep]);
    const health = await readEndpointHealth(db, ep);
    expect(health).toMatchObject({ circuitOpenForS: HEALTH_RULES.circuitCooldownMs / 1000, circuitCooldownMs: HEALTH_RULES.circuitCooldownMs });
    expect(changes.opened[0]!.until.getTime()).toBe(health.circuitOpenUntil!.getTime());
  });

  it("keeps an open circuit's end when failures of attempts started before it opened come in, and reports no new opening", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 6,
      circuitOpenUntil: "now() + interval '7 seconds'",
      circuitCooldownMs: 10_000,
    });
    const [id] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    const changes = await recordOutcomes(sql, "w1", [await leasedOutcome(db, id!, ep, "retry")], HEALTH_RULES);
    expect(changes.opened).toEqual([]);
    expect(await readEndpointHealth(db, ep)).toMatchObject({ consecutiveFailures: 7, circuitOpenForS: 7, circuitCooldownMs: 10_000 });
  });

  it("doubles a failed probe's cool-down up to the maximum", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 9,
      circuitOpenUntil: "now() - interval '1 second'",
      circuitCooldownMs: 40_000,
    });
    const [id] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, id!, ep, "retry")], HEALTH_RULES);
    expect(await readEndpointHealth(db, ep)).toMatchObject({
      circuitCooldownMs: HEALTH_RULES.circuitMaxCooldownMs,
      circuitOpenForS: HEALTH_RULES.circuitMaxCooldownMs / 1000,
    });
  });

  it("disables an endpoint that answered 410 Gone, and says so", async () => {
    const { ep, id } = await leased();
    const changes = await recordOutcomes(sql, "w1", [await leasedOutcome(db, id, ep, "failed", { responseStatus: 410, gone: true })], HEALTH_RULES);
    expect(changes.disabled).toEqual([{ endpointId: ep, reason: "410 Gone" }]);
    expect(await readEndpointHealth(db, ep)).toMatchObject({ disabled: true, disabledReason: "410 Gone" });
  });

  it("disables an endpoint failing without a success for longer than the rules allow, and only once", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: 1, failingSince: "now() - interval '2 days'" });
    const [first, second] = await insertDeliveries(db, ep, 2, { lockedBy: "w1" });
    const changes = await recordOutcomes(sql, "w1", [await leasedOutcome(db, first!, ep, "retry")], HEALTH_RULES);
    expect(changes.disabled).toEqual([{ endpointId: ep, reason: expect.stringMatching(/^failing without a success since \d{4}-\d\d-\d\dT/) }]);
    const health = await readEndpointHealth(db, ep);
    expect(health).toMatchObject({ disabled: true, disabledReason: changes.disabled[0]!.reason });
    expect((await recordOutcomes(sql, "w1", [await leasedOutcome(db, second!, ep, "retry")], HEALTH_RULES)).disabled).toEqual([]);
    expect((await readEndpointHealth(db, ep)).disabledReason).toBe(health.disabledReason);
  });

  it("judges each endpoint of a batch by its own outcomes", async () => {
    const failing = await insertEndpoint(db, { consecutiveFailures: HEALTH_RULES.circuitFailureThreshold - 1 });
    const healthy = await insertEndpoint(db, { consecutiveFailures: 2, failingSince: "now() - interval '1 minute'" });
    const [f] = await insertDeliveries(db, failing, 1, { lockedBy: "w1" });
    const [h] = await insertDeliveries(db, healthy, 1, { lockedBy: "w1" });
    const changes = await recordOutcomes(sql, "w1", [await leasedOutcome(db, f!, failing, "retry"), await leasedOutcome(db, h!, healthy)], HEALTH_RULES);
    expect(changes.opened.map((c) => c.endpointId)).toEqual([failing]);
    expect((await readEndpointHealth(db, healthy)).consecutiveFailures).toBe(0);
  });
});

describe("recordOutcomes and healthy endpoints", () => {
  it("leaves the row of an endpoint with nothing to reset alone on successes, and resets one with failures", async () => {
    const clean = await insertEndpoint(db);
    const failing = await insertEndpoint(db, { consecutiveFailures: 2, failingSince: "now() - interval '1 minute'" });
    const [c] = await insertDeliveries(db, clean, 1, { lockedBy: "w1" });
    const [f] = await insertDeliveries(db, failing, 1, { lockedBy: "w1" });
    const version = async (id: string) =>
      (await db.query<{ v: string }>("SELECT xmin::text AS v FROM endpoints WHERE id = $1", [id]))[0]!.v;
    const [cleanBefore, failingBefore] = [await version(clean), await version(failing)];
    const changes = await recordOutcomes(sql, "w1", [await leasedOutcome(db, c!, clean), await leasedOutcome(db, f!, failing)], HEALTH_RULES);
    expect(changes).toEqual({ opened: [], closed: [], disabled: [] });
    // The clean endpoint's row was not written; the other one's failures were reset.
    expect(await version(clean)).toBe(cleanBefore);
    expect(await version(failing)).not.toBe(failingBefore);
    expect(await readEndpointHealth(db, failing)).toMatchObject({ consecutiveFailures: 0 });
    // Both deliveries ended, with their attempts.
    expect(await db.query("SELECT 1 FROM delivery_queue WHERE delivery_id = ANY ($1)", [[c, f]])).toEqual([]);
  });
});

describe("recordOutcomes and ordered endpoints", () => {
  it("lets the next parked delivery out when the one before it ends, and only that one", async () => {
    const ep = await insertEndpoint(db, { ordered: true });
    const [head] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    await insertDeliveries(db, ep, 2, { nextAttemptAt: "NULL" });
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, head!, ep, "succeeded")], HEALTH_RULES);
    const [, next, last] = await deliveriesOf(db, ep);
    expect(next!.dueInS).toBeLessThanOrEqual(0);
    expect(last!.dueInS).toBeNull();
  });

  it("lets the next one out when the one before it fails for good", async () => {
    const ep = await insertEndpoint(db, { ordered: true });
    const [head] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    await insertDeliveries(db, ep, 1, { nextAttemptAt: "NULL" });
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, head!, ep, "failed")], HEALTH_RULES);
    expect((await deliveriesOf(db, ep))[1]!.dueInS).toBeLessThanOrEqual(0);
  });

  it("lets none out while the one before it is retried", async () => {
    const ep = await insertEndpoint(db, { ordered: true });
    const [head] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    await insertDeliveries(db, ep, 1, { nextAttemptAt: "NULL" });
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, head!, ep, "retry")], HEALTH_RULES);
    expect((await deliveriesOf(db, ep))[1]!.dueInS).toBeNull();
  });

  it("lets nothing out of an unordered endpoint's parked rows", async () => {
    const ep = await insertEndpoint(db);
    const [done] = await insertDeliveries(db, ep, 1, { lockedBy: "w1" });
    const [parked] = await insertDeliveries(db, ep, 1, { nextAttemptAt: "NULL" });
    await recordOutcomes(sql, "w1", [await leasedOutcome(db, done!, ep)], HEALTH_RULES);
    expect((await readDelivery(db, parked!))!.dueInS).toBeNull();
  });
});

describe("foldHealth", () => {
  it("folds a batch's outcomes per endpoint in the order they finished: a success resets what came before it", () => {
    const t0 = new Date(1_000);
    const t1 = new Date(2_000);
    const health = foldHealth([
      attemptOutcome("d1", "a", "retry", { startedAt: t0, error: "e1" }),
      attemptOutcome("d2", "a", "succeeded"),
      attemptOutcome("d3", "a", "retry", { startedAt: t1, error: "e2" }),
      attemptOutcome("d4", "a", "failed", { error: "e3", gone: true }),
      attemptOutcome("d5", "b", "retry", { startedAt: t0, error: "b1" }),
    ]);
    expect(health.get("a")).toEqual({ reset: true, failures: 2, firstFailureAt: t1, lastError: "e3", gone: true });
    expect(health.get("b")).toEqual({ reset: false, failures: 1, firstFailureAt: t0, lastError: "b1", gone: false });
  });
});
