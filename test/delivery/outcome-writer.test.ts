/**
 * The outcome writer against PostgreSQL, driven directly: outcomes that
 * finish together share a statement, flush waits for what was queued,
 * health changes have their follow-ups, a transient error is retried until
 * the batch lands, an outcome the database refuses for good is found and
 * given up without holding back the others, and abandon gives up the rest.
 */
import { describe, expect, it } from "vitest";
import { OutcomeWriter, type OutcomeWriterOptions } from "../../src/delivery/outcome-writer.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import type { Sql } from "../../src/store/sql.js";
import type { AttemptOutcome, HealthChanges } from "../../src/domain/delivery/outcome.js";
import { captureLog, LEVEL } from "../support/log.js";
import { attemptOutcome, HEALTH_RULES, type OutcomeKind } from "../support/outcomes.js";
import {
  attemptsOf,
  blockOutcomeWrites,
  dueIn,
  insertDeliveries,
  insertEndpoint,
  lockQueueRows,
  readDelivery,
  readEndpointHealth,
} from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

/** The store's SQL, counting the outcome statements and how many outcomes each carried. */
function countingSql(): { sql: Sql; batches: number[] } {
  const batches: number[] = [];
  return {
    batches,
    sql: {
      query(text, values, prepare) {
        if (text.includes("INSERT INTO attempts")) batches.push((values![1] as unknown[]).length);
        return sql.query(text, values, prepare);
      },
    },
  };
}

/** A writer for process "w1", on the store's SQL unless `options` say otherwise. */
function writer(options: Partial<OutcomeWriterOptions> = {}): OutcomeWriter {
  return new OutcomeWriter({ sql, workerId: "w1", rules: HEALTH_RULES, log: captureLog("warn").log, ...options });
}

/** The end of the leases of "w1" in these tests, and so their token (see ClaimedDelivery.leaseUntil). */
const LEASE_UNTIL = new Date(Date.now() + 3_600_000);
const LEASE = { lockedBy: "w1", nextAttemptAt: `'${LEASE_UNTIL.toISOString()}'::timestamptz` };

/** `n` deliveries of a new endpoint leased by "w1", and their endpoint. */
async function leased(n: number, endpoint: Parameters<typeof insertEndpoint>[1] = {}): Promise<{ ep: string; ids: string[] }> {
  const ep = await insertEndpoint(db, endpoint);
  const ids = await insertDeliveries(db, ep, n, LEASE);
  return { ep, ids };
}

/** attemptOutcome, made under the lease of `leased`'s deliveries. */
function outcome(deliveryId: string, endpointId: string, kind?: OutcomeKind, overrides: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return attemptOutcome(deliveryId, endpointId, kind, { leaseUntil: LEASE_UNTIL, ...overrides });
}

describe("batching", () => {
  it("writes outcomes queued together in one statement, each write resolving once stored", async () => {
    const { ep, ids } = await leased(10);
    const counting = countingSql();
    const w = writer({ sql: counting.sql });
    const results = await Promise.all(ids.map((id) => w.write(outcome(id, ep))));
    expect(results).toEqual(Array(10).fill("stored"));
    expect(counting.batches).toEqual([10]);
    for (const id of ids) expect(await readDelivery(db, id)).toMatchObject({ status: DeliveryState.Succeeded, lockedBy: null });
  });

  it("gathers the outcomes that finish while a batch is being written into the next statement", async () => {
    const { ep, ids } = await leased(4);
    const counting = countingSql();
    const w = writer({ sql: counting.sql });
    const lock = await blockOutcomeWrites(db);
    const first = w.write(outcome(ids[0]!, ep));
    await lock.waiters();
    const rest = ids.slice(1).map((id) => w.write(outcome(id, ep)));
    await lock.release();
    expect(await Promise.all([first, ...rest])).toEqual(Array(4).fill("stored"));
    expect(counting.batches).toEqual([1, 3]);
  });

  it("writes at most maxBatch outcomes in one statement", async () => {
    const { ep, ids } = await leased(5);
    const counting = countingSql();
    const w = writer({ sql: counting.sql, maxBatch: 2 });
    await Promise.all(ids.map((id) => w.write(outcome(id, ep))));
    expect(counting.batches).toEqual([2, 2, 1]);
  });

  it("flushes: resolves once everything queued so far is stored", async () => {
    const { ep, ids } = await leased(3);
    const w = writer();
    for (const id of ids) void w.write(outcome(id, ep));
    await w.flush();
    for (const id of ids) expect(await attemptsOf(db, id)).toHaveLength(1);
  });
});

describe("health follow-ups", () => {
  it("tells of an opened circuit, then holds its endpoint's waiting deliveries until the cool-down ends", async () => {
    const { ep, ids } = await leased(1, { consecutiveFailures: HEALTH_RULES.circuitFailureThreshold - 1 });
    const [waiting] = await insertDeliveries(db, ep, 1);
    const told: HealthChanges[] = [];
    const w = writer({ onHealthChanges: async (c) => void told.push(c) });
    expect(await w.write(outcome(ids[0]!, ep, "retry"))).toBe("stored");
    expect(told.map((c) => c.opened.map((o) => o.endpointId))).toEqual([[ep]]);
    expect((await dueIn(db, [waiting!])).get(waiting!)).toBe(HEALTH_RULES.circuitCooldownMs / 1000);
  });

  it("fails the live deliveries of an endpoint the batch disabled", async () => {
    const { ep, ids } = await leased(1);
    const [waiting] = await insertDeliveries(db, ep, 1);
    const w = writer();
    await w.write(outcome(ids[0]!, ep, "failed", { responseStatus: 410, gone: true }));
    expect((await readEndpointHealth(db, ep)).disabled).toBe(true);
    expect(await readDelivery(db, waiting!)).toMatchObject({ status: DeliveryState.Failed, lastError: "endpoint disabled: 410 Gone" });
  });

  it("retries a follow-up that failed for a transient reason until it lands: a disabled endpoint's deliveries do not wait for ever", async () => {
    const { ep, ids } = await leased(1);
    const [waiting] = await insertDeliveries(db, ep, 1);
    const captured = captureLog("warn");
    const w = writer({ log: captured.log });
    // Only the follow-up changes the waiting delivery's queue row.
    const lock = await lockQueueRows(db, [waiting!]);
    const written = w.write(outcome(ids[0]!, ep, "failed", { responseStatus: 410, gone: true }));
    const [blocked] = await lock.waiters();
    await db.query("SELECT pg_terminate_backend($1)", [blocked]);
    const retrying = await captured.waitFor((l) => l.msg === "failing the live deliveries of disabled endpoints failed; retrying");
    expect(retrying).toMatchObject({ level: LEVEL.warn, endpoints: 1, failures: 1 });
    await lock.release();
    expect(await written).toBe("stored");
    expect(await readDelivery(db, waiting!)).toMatchObject({ status: DeliveryState.Failed, lastError: "endpoint disabled: 410 Gone" });
    expect(captured.lines.filter((l) => l.level >= LEVEL.error)).toEqual([]);
  });
});

describe("errors", () => {
  it("retries a batch that failed for a transient reason (its connection terminated) until it lands", async () => {
    const { ep, ids } = await leased(2);
    const captured = captureLog("warn");
    const w = writer({ log: captured.log });
    const lock = await blockOutcomeWrites(db);
    const writes = ids.map((id) => w.write(outcome(id, ep)));
    const [blocked] = await lock.waiters();
    // As a restart of the database or a lost connection would.
    await db.query("SELECT pg_terminate_backend($1)", [blocked]);
    const retrying = await captured.waitFor((l) => l.msg === "writing attempt outcomes failed; retrying");
    expect(retrying).toMatchObject({ level: LEVEL.warn, outcomes: 2, failures: 1 });
    await lock.release();
    expect(await Promise.all(writes)).toEqual(["stored", "stored"]);
    for (const id of ids) expect(await attemptsOf(db, id)).toHaveLength(1);
    expect(captured.lines.filter((l) => l.level >= LEVEL.error)).toEqual([]);
  });

  it("writes the outcomes batched with ones PostgreSQL refuses, and reports each refused one", async () => {
    const { ep, ids } = await leased(16);
    const captured = captureLog("warn");
    const counting = countingSql();
    const unwritable: Array<{ outcome: AttemptOutcome; err: unknown }> = [];
    const w = writer({ sql: counting.sql, log: captured.log, onUnwritable: (outcome, err) => unwritable.push({ outcome, err }) });
    // Text cannot hold a NUL character (22021); a Date that is not one is no timestamp (22007).
    const nul = outcome(ids[5]!, ep, "retry", { responseBody: "half a body\u0000" });
    const nan = outcome(ids[12]!, ep, "retry", { startedAt: new Date(Number.NaN) });
    const outcomes = ids.map((id, i) => (i === 5 ? nul : i === 12 ? nan : outcome(id, ep, "retry")));
    const results = await Promise.all(outcomes.map((o) => w.write(o)));
    expect(results.filter((r) => r === "unwritable")).toHaveLength(2);
    expect(results[5]).toBe("unwritable");
    expect(results[12]).toBe("unwritable");
    // The others are stored.
    for (const [i, id] of ids.entries()) {
      if (i === 5 || i === 12) continue;
      expect(await readDelivery(db, id)).toMatchObject({ status: DeliveryState.Retrying, lockedBy: null, attemptCount: 1 });
    }
    // The refused ones are left as they were: leased, to be attempted again when the lease expires.
    for (const o of [nul, nan]) {
      expect(await readDelivery(db, o.deliveryId)).toMatchObject({ status: DeliveryState.Pending, lockedBy: "w1", attemptCount: 0 });
      expect(await attemptsOf(db, o.deliveryId)).toEqual([]);
    }
    // Reported, each with its delivery and error.
    expect(unwritable.map((u) => [u.outcome.deliveryId, (u.err as { code?: string }).code])).toEqual([
      [nul.deliveryId, "22021"],
      [nan.deliveryId, "22007"],
    ]);
    const errors = captured.lines.filter((l) => l.level === LEVEL.error);
    expect(errors.map((l) => [l.msg, l.delivery])).toEqual([
      ["attempt outcome cannot be written; its delivery is attempted again once its lease expires", nul.deliveryId],
      ["attempt outcome cannot be written; its delivery is attempted again once its lease expires", nan.deliveryId],
    ]);
    // Found by halving, not one statement per outcome: 16 -> 8 + 8 -> 4 + 4 + 4 + 4 -> ...
    expect(counting.batches.length).toBeLessThanOrEqual(1 + 2 * 2 * Math.log2(16));
    // The failure counted by the endpoint's health: the 14 stored ones only.
    expect((await readEndpointHealth(db, ep)).consecutiveFailures).toBe(14);
    // Nothing stalls behind them.
    const [later] = await insertDeliveries(db, ep, 1, LEASE);
    expect(await w.write(outcome(later!, ep))).toBe("stored");
  });

  it("gives up a refused outcome written alone", async () => {
    const { ep, ids } = await leased(1);
    const unwritable: string[] = [];
    const w = writer({ onUnwritable: (o) => unwritable.push(o.deliveryId) });
    expect(await w.write(outcome(ids[0]!, ep, "retry", { error: "\u0000" }))).toBe("unwritable");
    expect(unwritable).toEqual(ids);
  });
});

describe("abandon", () => {
  it("gives up what is not stored, for a stop that cannot wait: writes resolve, later ones at once, flush waits for nothing", async () => {
    const { ep, ids } = await leased(3);
    const captured = captureLog("warn");
    const w = writer({ log: captured.log });
    const lock = await blockOutcomeWrites(db);
    const first = w.write(outcome(ids[0]!, ep));
    const [blocked] = await lock.waiters();
    await db.query("SELECT pg_terminate_backend($1)", [blocked]);
    await captured.waitFor((l) => l.msg === "writing attempt outcomes failed; retrying");
    // The retry is blocked in its turn, and two more outcomes wait behind it.
    await lock.waiters();
    const queued = ids.slice(1).map((id) => w.write(outcome(id, ep)));
    expect(w.abandon().map((o) => o.deliveryId)).toEqual(ids);
    expect(await Promise.all([first, ...queued])).toEqual(["abandoned", "abandoned", "abandoned"]);
    expect(await w.write(outcome(ids[0]!, ep))).toBe("abandoned");
    // Flushing waits for nothing now, not even a statement still blocked.
    await w.flush();
    await lock.release();
  });
});
