/**
 * Giving leases back against PostgreSQL: all of a process's on shutdown
 * (releaseLeases), and those of deliveries it claimed and did not start
 * (releaseUnstarted).
 */
import { describe, expect, it } from "vitest";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { releaseLeases, releaseUnstarted } from "../../src/store/sql/release-leases.js";
import { insertDeliveries, insertEndpoint, leasesOf, readDelivery } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

const LEASE = { lockedBy: "w1", nextAttemptAt: "now() + interval '30 seconds'" };

/** The deliveries `ids` under the lease their queue rows hold now (its end is its token, see ClaimedDelivery.leaseUntil). */
async function underLease(...ids: string[]): Promise<{ id: string; leaseUntil: Date }[]> {
  const leases = await leasesOf(db, ids);
  return ids.map((id) => ({ id, leaseUntil: leases.get(id)! }));
}

describe("releaseLeases", () => {
  it("gives back every live lease of the process, due at once, and says how many", async () => {
    const ep = await insertEndpoint(db);
    const mine = await insertDeliveries(db, ep, 3, LEASE);
    const [retrying] = await insertDeliveries(db, ep, 1, { ...LEASE, status: DeliveryState.Retrying, attemptCount: 1 });
    expect(await releaseLeases(sql, "w1")).toBe(4);
    for (const id of [...mine, retrying!]) {
      expect(await readDelivery(db, id)).toMatchObject({ lockedBy: null, dueInS: expect.toSatisfy((s: number) => s <= 0) });
    }
    // No attempt is used up, nothing else changes.
    expect(await readDelivery(db, retrying!)).toMatchObject({ status: DeliveryState.Retrying, attemptCount: 1 });
  });

  it("leaves other processes' leases and ended deliveries alone", async () => {
    const ep = await insertEndpoint(db);
    const [theirs] = await insertDeliveries(db, ep, 1, { ...LEASE, lockedBy: "w2" });
    // An ended delivery has no queue row, so no lease to give back; the statement must not revive it.
    const [ended] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", status: DeliveryState.Failed, nextAttemptAt: "NULL" });
    expect(await releaseLeases(sql, "w1")).toBe(0);
    expect(await readDelivery(db, theirs!)).toMatchObject({ lockedBy: "w2", dueInS: 30 });
    expect(await readDelivery(db, ended!)).toMatchObject({ lockedBy: null, status: DeliveryState.Failed, nextAttemptAt: null });
  });
});

describe("releaseUnstarted", () => {
  it("gives back only the given deliveries of the process, due at once", async () => {
    const ep = await insertEndpoint(db);
    const [given, kept] = await insertDeliveries(db, ep, 2, LEASE);
    const [theirs] = await insertDeliveries(db, ep, 1, { ...LEASE, lockedBy: "w2" });
    await releaseUnstarted(sql, "w1", await underLease(given!, theirs!));
    expect(await readDelivery(db, given!)).toMatchObject({ lockedBy: null, dueInS: expect.toSatisfy((s: number) => s <= 0) });
    expect(await readDelivery(db, kept!)).toMatchObject({ lockedBy: "w1", dueInS: 30 });
    expect(await readDelivery(db, theirs!)).toMatchObject({ lockedBy: "w2", dueInS: 30 });
  });

  it("makes those of an endpoint whose circuit is open due when it closes", async () => {
    const ep = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '45 seconds'" });
    const [id] = await insertDeliveries(db, ep, 1, LEASE);
    await releaseUnstarted(sql, "w1", await underLease(id!));
    expect(await readDelivery(db, id!)).toMatchObject({ lockedBy: null, dueInS: 45 });
  });

  it("leaves a later lease of the same process alone: one taken after the given one lapsed", async () => {
    const ep = await insertEndpoint(db);
    const [id] = await insertDeliveries(db, ep, 1, LEASE);
    const earlier = await underLease(id!);
    // The lease lapsed and this process claimed the delivery again: a lease of 60 s.
    await db.query("UPDATE delivery_queue SET due_at = date_trunc('milliseconds', now() + interval '60 seconds') WHERE delivery_id = $1", [id]);
    await releaseUnstarted(sql, "w1", earlier);
    expect(await readDelivery(db, id!)).toMatchObject({ lockedBy: "w1", dueInS: 60 });
  });
});
