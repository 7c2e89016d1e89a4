/**
 * Retention's statements against PostgreSQL: what one pass removes and
 * what it keeps, in batches. (The sweeper running them in a live process:
 * test/retention/retention.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { pruneOlderThan } from "../../src/store/sql/retention.js";
import {
  attemptsOf,
  idempotencyKeys,
  insertAttempt,
  insertDeliveries,
  insertEndpoint,
  insertEventRow,
  insertIdempotencyKey,
  insertStatusLogRows,
  readDelivery,
  readEvent,
  rowCounts,
  statusLogOf,
} from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

const HOUR_MS = 3_600_000;
const TWO_HOURS_AGO = "now() - interval '2 hours'";

/** `n` deliveries published two hours ago, with an attempt and a log row each from then. */
async function oldDeliveries(endpointId: string, n: number, status: number): Promise<string[]> {
  const ended = status === DeliveryState.Succeeded || status === DeliveryState.Failed;
  const ids = await insertDeliveries(db, endpointId, n, {
    status,
    nextAttemptAt: ended ? "NULL" : "now() + interval '1 hour'",
    publishedAt: new Date(Date.now() - 2 * HOUR_MS),
    updatedAt: TWO_HOURS_AGO,
  });
  for (const id of ids) await insertAttempt(db, id);
  await insertStatusLogRows(db, ids, TWO_HOURS_AGO);
  return ids;
}

describe("pruneOlderThan", () => {
  it("removes deliveries that ended before the cutoff with their attempts, log rows and events, in batches", async () => {
    const ep = await insertEndpoint(db);
    const succeeded = await oldDeliveries(ep, 3, DeliveryState.Succeeded);
    const failed = await oldDeliveries(ep, 2, DeliveryState.Failed);
    const pruned = await pruneOlderThan(sql, new Date(Date.now() - HOUR_MS), 2);
    expect(pruned).toEqual({ deliveries: 5, events: 5, updates: 5, keys: 0 });
    for (const id of [...succeeded, ...failed]) {
      expect(await readDelivery(db, id)).toBeUndefined();
      expect(await attemptsOf(db, id)).toEqual([]);
    }
    expect(await rowCounts(db)).toMatchObject({ events: 0, deliveries: 0, attempts: 0, statusLog: 0 });
  });

  it("keeps a live delivery, its event, attempts and whole log, however old", async () => {
    const ep = await insertEndpoint(db);
    const [live] = await oldDeliveries(ep, 1, DeliveryState.Retrying);
    expect(await pruneOlderThan(sql, new Date(Date.now() - HOUR_MS))).toEqual({ deliveries: 0, events: 0, updates: 0, keys: 0 });
    const delivery = await readDelivery(db, live!);
    expect(delivery).toBeDefined();
    expect(await readEvent(db, delivery!.eventId)).toBeDefined();
    expect(await attemptsOf(db, live!)).toHaveLength(1);
    expect(await statusLogOf(db, [live!])).toHaveLength(1);
  });

  it("keeps what ended after the cutoff, and what was published after it", async () => {
    const ep = await insertEndpoint(db);
    // Published long ago, ended recently (requeued, say).
    const [endedLately] = await insertDeliveries(db, ep, 1, {
      status: DeliveryState.Failed,
      nextAttemptAt: "NULL",
      publishedAt: new Date(Date.now() - 2 * HOUR_MS),
    });
    const [recent] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
    await insertStatusLogRows(db, [recent!]);
    expect(await pruneOlderThan(sql, new Date(Date.now() - HOUR_MS))).toEqual({ deliveries: 0, events: 0, updates: 0, keys: 0 });
    expect(await readDelivery(db, endedLately!)).toBeDefined();
    expect(await readDelivery(db, recent!)).toBeDefined();
    expect(await statusLogOf(db, [recent!])).toHaveLength(1);
  });

  it("removes events published before the cutoff that have no delivery, and keeps later ones", async () => {
    const old = await insertEventRow(db, "t", new Date(Date.now() - 2 * HOUR_MS));
    const fresh = await insertEventRow(db);
    expect((await pruneOlderThan(sql, new Date(Date.now() - HOUR_MS))).events).toBe(1);
    expect(await readEvent(db, old)).toBeUndefined();
    expect(await readEvent(db, fresh)).toBeDefined();
  });

  it("removes the log rows before the cutoff of a delivery that has ended since, and keeps its later ones", async () => {
    const ep = await insertEndpoint(db);
    const [id] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
    await insertStatusLogRows(db, [id!], TWO_HOURS_AGO);
    await insertStatusLogRows(db, [id!]);
    expect((await pruneOlderThan(sql, new Date(Date.now() - HOUR_MS))).updates).toBe(1);
    expect(await statusLogOf(db, [id!])).toHaveLength(1);
  });

  it("removes idempotency keys whose window has passed, whatever the cutoff", async () => {
    await insertIdempotencyKey(db, "t", "spent", "evt_a", "now() - interval '1 second'");
    await insertIdempotencyKey(db, "t", "held", "evt_b", "now() + interval '1 hour'");
    expect((await pruneOlderThan(sql, new Date(Date.now() - HOUR_MS))).keys).toBe(1);
    expect(await idempotencyKeys(db)).toEqual(["t/held"]);
  });
});
