/**
 * The safety net for ordered endpoints against PostgreSQL: parked
 * deliveries with nothing live before them are made due, the others stay.
 */
import { describe, expect, it } from "vitest";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import type { Sql } from "../../src/store/sql.js";
import { unparkOrphans } from "../../src/store/sql/unpark.js";
import { deliveriesOf, insertDeliveries, insertEndpoint } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

const PARKED = { nextAttemptAt: "NULL" };

describe("unparkOrphans", () => {
  it("makes due the first parked delivery whose predecessors all ended, and no later one", async () => {
    const ep = await insertEndpoint(db, { ordered: true });
    // The head ended some other way (an operator's SQL) and let nothing out.
    await insertDeliveries(db, ep, 1, { status: DeliveryState.Failed, nextAttemptAt: "NULL" });
    await insertDeliveries(db, ep, 2, PARKED);
    expect(await unparkOrphans(sql)).toBe(1);
    const [, next, last] = await deliveriesOf(db, ep);
    expect(next!.dueInS).toBeLessThanOrEqual(0);
    expect(last!.dueInS).toBeNull();
  });

  it("leaves deliveries parked behind a live one, waiting or leased", async () => {
    const waiting = await insertEndpoint(db, { ordered: true });
    await insertDeliveries(db, waiting, 1, { status: DeliveryState.Retrying, nextAttemptAt: "now() + interval '1 hour'" });
    await insertDeliveries(db, waiting, 1, PARKED);
    const leased = await insertEndpoint(db, { ordered: true });
    await insertDeliveries(db, leased, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '30 seconds'" });
    await insertDeliveries(db, leased, 1, PARKED);
    expect(await unparkOrphans(sql)).toBe(0);
    expect((await deliveriesOf(db, waiting))[1]!.dueInS).toBeNull();
    expect((await deliveriesOf(db, leased))[1]!.dueInS).toBeNull();
  });

  it("looks at each endpoint's own queue", async () => {
    const a = await insertEndpoint(db, { ordered: true });
    const b = await insertEndpoint(db, { ordered: true });
    await insertDeliveries(db, a, 1);
    await insertDeliveries(db, b, 1, PARKED);
    expect(await unparkOrphans(sql)).toBe(1);
    expect((await deliveriesOf(db, b))[0]!.dueInS).toBeLessThanOrEqual(0);
  });

  it("leaves ended deliveries without a due time alone", async () => {
    const ep = await insertEndpoint(db, { ordered: true });
    const [ended] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
    expect(await unparkOrphans(sql)).toBe(0);
    expect((await deliveriesOf(db, ep)).find((d) => d.id === ended)!.nextAttemptAt).toBeNull();
  });

  it("finds parked deliveries through their own index, not a scan of the whole queue", async () => {
    const busy = await insertEndpoint(db);
    await insertDeliveries(db, busy, 20_000);
    const ordered = await insertEndpoint(db, { ordered: true });
    await insertDeliveries(db, ordered, 3, PARKED);
    await db.query("ANALYZE delivery_queue");
    let plan = "";
    const explaining: Sql = {
      query: async (text, values) => {
        plan = (await sql.query<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, values)).map((r) => r["QUERY PLAN"]).join("\n");
        return [] as never;
      },
    };
    await unparkOrphans(explaining);
    expect(plan).toMatch(/delivery_queue_parked_idx on delivery_queue q/);
    expect(plan).not.toMatch(/Seq Scan on delivery_queue/);
  });
});
