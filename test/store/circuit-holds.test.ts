/**
 * Holding and releasing the deliveries of blocked endpoints (open circuits,
 * probes in flight), and the outcome statement's part in it, against
 * PostgreSQL.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { holdForCircuit, releaseHeld, sweepBlocked } from "../../src/store/sql/circuit-holds.js";
import type { AttemptOutcome } from "../../src/domain/delivery/outcome.js";
import { recordOutcomes } from "../../src/store/sql/record-outcomes.js";
import { openStore, type Store } from "../../src/store/store.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { insertDeliveries, insertEndpoint } from "../support/rows.js";

let db: TestDatabase;
let store: Store;

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openStore(db.url, 2);
});

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.query("TRUNCATE endpoints, events, deliveries, delivery_queue, attempts");
});

/** Each delivery's next attempt, in seconds from now (rounded), by id. */
async function dueIn(ids: readonly string[]): Promise<Map<string, number | null>> {
  const rows = await db.query<{ id: string; s: number | null }>(
    "SELECT d.id, round(extract(epoch FROM q.due_at - now()))::int AS s FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id WHERE d.id = ANY ($1)",
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.s]));
}

describe("holdForCircuit", () => {
  it("moves an open endpoint's waiting deliveries to the end of its cool-down, and leaves leased, ended and later ones", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '60 seconds'" });
    const [waiting] = await insertDeliveries(db, ep, 1);
    const [leased] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '10 seconds'" });
    const [ended] = await insertDeliveries(db, ep, 1, { status: 3, nextAttemptAt: "NULL" });
    const [later] = await insertDeliveries(db, ep, 1, { status: 2, nextAttemptAt: "now() + interval '2 hours'" });
    const healthy = await insertEndpoint(db);
    const [other] = await insertDeliveries(db, healthy, 1);
    await holdForCircuit(store.sql, [ep, healthy]);
    const due = await dueIn([waiting!, leased!, ended!, later!, other!]);
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
    await holdForCircuit(store.sql, [ep]);
    expect((await dueIn([waiting!])).get(waiting!)).toBe(45);
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
    const sweep = await sweepBlocked(store.sql);
    expect(sweep.held).toBe(5);
    expect(sweep.blocked.map((b) => b.endpointId).sort()).toEqual([open, probing].sort());
    const due = await dueIn([...a, ...b, ...c]);
    for (const id of a) expect(due.get(id)).toBe(30);
    for (const id of b) expect(due.get(id)).toBe(20);
    for (const id of c) expect(due.get(id)).toBeLessThanOrEqual(0);
    expect((await sweepBlocked(store.sql)).held).toBe(0);
  });
});

describe("releaseHeld", () => {
  it("makes what a closed circuit held due at once, and keeps retries scheduled beyond the hold", async () => {
    const ep = await insertEndpoint(db);
    const held = await insertDeliveries(db, ep, 2, { nextAttemptAt: "now() + interval '40 seconds'" });
    const [retry] = await insertDeliveries(db, ep, 1, { status: 2, nextAttemptAt: "now() + interval '1 hour'" });
    const [until] = await db.query<{ t: Date }>("SELECT max(due_at) AS t FROM delivery_queue WHERE delivery_id = ANY ($1)", [held]);
    await releaseHeld(store.sql, [{ endpointId: ep, heldUntil: until!.t }]);
    const due = await dueIn([...held, retry!]);
    for (const id of held) expect(due.get(id)).toBeLessThanOrEqual(0);
    expect(due.get(retry!)).toBe(3_600);
  });
});

describe("recordOutcomes and circuits", () => {
  const rules = { circuitFailureThreshold: 5, circuitCooldownMs: 10_000, circuitMaxCooldownMs: 60_000, disableAfterMs: 86_400_000 };
  function outcome(deliveryId: string, endpointId: string, success: boolean): AttemptOutcome {
    return {
      attemptId: `atmpt_${deliveryId}`,
      deliveryId,
      endpointId,
      attemptNumber: 1,
      startedAt: new Date(),
      durationMs: 5,
      responseStatus: success ? 200 : 500,
      errorClass: success ? "" : "http",
      error: success ? "" : "HTTP 500",
      responseBody: "",
      responseHeaders: null,
      status: success ? 3 : 2,
      nextAttemptAt: success ? null : new Date(Date.now() + 1_000),
      success,
      gone: false,
    };
  }

  it("closes the circuit on a probe's success and says how long it held deliveries", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 5,
      circuitOpenUntil: "now() - interval '1 second'",
      circuitProbeUntil: "now() + interval '35 seconds'",
    });
    const [probe] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '35 seconds'" });
    const changes = await recordOutcomes(store.sql, "w1", [outcome(probe!, ep, true)], rules);
    expect(changes.closed).toHaveLength(1);
    expect(changes.closed[0]!.heldUntil.getTime()).toBeGreaterThan(Date.now() + 30_000);
    const [row] = await db.query("SELECT circuit_open_until, circuit_probe_until, consecutive_failures FROM endpoints WHERE id = $1", [ep]);
    expect(row).toEqual({ circuit_open_until: null, circuit_probe_until: null, consecutive_failures: 0 });
  });

  it("opens the circuit again, for twice the cool-down, when the probe fails, and ends the probe", async () => {
    const ep = await insertEndpoint(db, {
      consecutiveFailures: 5,
      circuitOpenUntil: "now() - interval '1 second'",
      circuitProbeUntil: "now() + interval '35 seconds'",
    });
    await db.query("UPDATE endpoints SET circuit_cooldown_ms = 10000 WHERE id = $1", [ep]);
    const [probe] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '35 seconds'" });
    const changes = await recordOutcomes(store.sql, "w1", [outcome(probe!, ep, false)], rules);
    expect(changes.opened.map((c) => c.endpointId)).toEqual([ep]);
    const [row] = await db.query<{ open_s: number; circuit_probe_until: Date | null; circuit_cooldown_ms: number }>(
      "SELECT round(extract(epoch FROM circuit_open_until - now()))::int AS open_s, circuit_probe_until, circuit_cooldown_ms FROM endpoints WHERE id = $1",
      [ep],
    );
    expect(row).toEqual({ open_s: 20, circuit_probe_until: null, circuit_cooldown_ms: 20_000 });
  });

  it("keeps a retry written while its endpoint is blocked from coming due before the block ends", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: 9, circuitOpenUntil: "now() + interval '50 seconds'" });
    const [late] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '30 seconds'" });
    await recordOutcomes(store.sql, "w1", [outcome(late!, ep, false)], rules);
    expect((await dueIn([late!])).get(late!)).toBe(50);
  });
});
