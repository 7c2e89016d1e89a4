/**
 * Holding and releasing the deliveries of blocked endpoints (open circuits,
 * probes in flight), and the outcome statement's part in it, against
 * PostgreSQL.
 */
import { describe, expect, it } from "vitest";
import { holdForCircuit, releaseHeld, sweepBlocked } from "../../src/store/sql/circuit-holds.js";
import { recordOutcomes } from "../../src/store/sql/record-outcomes.js";
import { HEALTH_RULES, leasedOutcome } from "../support/outcomes.js";
import { dueIn, insertDeliveries, insertEndpoint, readDelivery, readEndpointHealth } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

describe("holdForCircuit", () => {
  it("moves an open endpoint's waiting deliveries to the end of its cool-down, and leaves leased, ended and later ones", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '60 seconds'" });
    const [waiting] = await insertDeliveries(db, ep, 1);
    const [leased] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '10 seconds'" });
    const [ended] = await insertDeliveries(db, ep, 1, { status: 3, nextAttemptAt: "NULL" });
    const [later] = await insertDeliveries(db, ep, 1, { status: 2, nextAttemptAt: "now() + interval '2 hours'" });
    const healthy = await insertEndpoint(db);
    const [other] = await insertDeliveries(db, healthy, 1);
    await holdForCircuit(sql, [ep, healthy]);
    const due = await dueIn(db, [waiting!, leased!, ended!, later!, other!]);
    expect(due.get(waiting!)).toBe(60);
    expect(due.get(leased!)).toBe(10);
    expect(due.get(ended!)).toBeNull();
    expect(due.get(later!)).toBe(7_200);
    expect(due.get(other!)).toBeLessThanOrEqual(0);
  });

  it("holds until a probe's lease ends when that is later than the cool-down", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 5,
      circuitOpenUntil: "now() - interval '1 second'",
      circuitProbeUntil: "now() + interval '45 seconds'",
    });
    const [waiting] = await insertDeliveries(db, ep, 1);
    await holdForCircuit(sql, [ep]);
    expect((await dueIn(db, [waiting!])).get(waiting!)).toBe(45);
  });
});

describe("sweepBlocked", () => {
  it("lists the blocked endpoints and holds their due deliveries, and nothing of half-open endpoints waiting for their probe", async () => {
    const open = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '30 seconds'" });
    const probing = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() - interval '1 second'", circuitProbeUntil: "now() + interval '20 seconds'" });
    const halfOpen = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() - interval '1 second'" });
    const a = await insertDeliveries(db, open, 3);
    const b = await insertDeliveries(db, probing, 2);
    const c = await insertDeliveries(db, halfOpen, 2);
    const sweep = await sweepBlocked(sql);
    expect(sweep.held).toBe(5);
    expect(sweep.blocked.map((b) => b.endpointId).sort()).toEqual([open, probing].sort());
    const due = await dueIn(db, [...a, ...b, ...c]);
    for (const id of a) expect(due.get(id)).toBe(30);
    for (const id of b) expect(due.get(id)).toBe(20);
    for (const id of c) expect(due.get(id)).toBeLessThanOrEqual(0);
    expect((await sweepBlocked(sql)).held).toBe(0);
  });
});

describe("releaseHeld", () => {
  it("makes what a closed circuit held due at once, and keeps retries scheduled beyond the hold", async () => {
    const ep = await insertEndpoint(db);
    const held = await insertDeliveries(db, ep, 2, { nextAttemptAt: "now() + interval '40 seconds'" });
    const [retry] = await insertDeliveries(db, ep, 1, { status: 2, nextAttemptAt: "now() + interval '1 hour'" });
    const heldUntil = (await readDelivery(db, held[0]!))!.nextAttemptAt!;
    await releaseHeld(sql, [{ endpointId: ep, heldUntil }]);
    const due = await dueIn(db, [...held, retry!]);
    for (const id of held) expect(due.get(id)).toBeLessThanOrEqual(0);
    expect(due.get(retry!)).toBe(3_600);
  });
});

describe("recordOutcomes and circuits", () => {
  const outcome = (deliveryId: string, endpointId: string, success: boolean) =>
    leasedOutcome(db, deliveryId, endpointId, success ? "succeeded" : "retry");

  it("closes the circuit on a probe's success and says how long it held deliveries", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 5,
      circuitOpenUntil: "now() - interval '1 second'",
      circuitProbeUntil: "now() + interval '35 seconds'",
    });
    const [probe] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '35 seconds'" });
    const changes = await recordOutcomes(sql, "w1", [await outcome(probe!, ep, true)], HEALTH_RULES);
    expect(changes.closed).toHaveLength(1);
    expect(changes.closed[0]!.heldUntil.getTime()).toBeGreaterThan(Date.now() + 30_000);
    expect(await readEndpointHealth(db, ep)).toMatchObject({ circuitOpenUntil: null, circuitProbeUntil: null, consecutiveFailures: 0 });
  });

  it("opens the circuit again, for twice the cool-down, when the probe fails, and ends the probe", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 5,
      circuitOpenUntil: "now() - interval '1 second'",
      circuitProbeUntil: "now() + interval '35 seconds'",
      circuitCooldownMs: 10_000,
    });
    const [probe] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '35 seconds'" });
    const changes = await recordOutcomes(sql, "w1", [await outcome(probe!, ep, false)], HEALTH_RULES);
    expect(changes.opened.map((c) => c.endpointId)).toEqual([ep]);
    expect(await readEndpointHealth(db, ep)).toMatchObject({ circuitOpenForS: 20, circuitProbeUntil: null, circuitCooldownMs: 20_000 });
  });

  it("keeps a retry written while its endpoint is blocked from coming due before the block ends", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: 9, circuitOpenUntil: "now() + interval '50 seconds'" });
    const [late] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '30 seconds'" });
    await recordOutcomes(sql, "w1", [await outcome(late!, ep, false)], HEALTH_RULES);
    expect((await dueIn(db, [late!])).get(late!)).toBe(50);
  });
});
