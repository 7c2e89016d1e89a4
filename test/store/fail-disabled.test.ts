/**
 * Failing the live deliveries of endpoints that were disabled, with the
 * reason, against PostgreSQL.
 */
import { describe, expect, it } from "vitest";
import { DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { failPendingOfDisabled } from "../../src/store/sql/fail-disabled.js";
import { insertDeliveries, insertEndpoint, readDelivery, statusLogOf } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

describe("failPendingOfDisabled", () => {
  it("fails every live delivery of the endpoints, leased or waiting, with the reason, and logs ENDPOINT_DISABLED", async () => {
    const ep = await insertEndpoint(db, { disabled: true, disabledReason: "410 Gone" });
    const [waiting] = await insertDeliveries(db, ep, 1, { attemptCount: 2, status: DeliveryState.Retrying });
    const [leased] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '20 seconds'" });
    const [parked] = await insertDeliveries(db, ep, 1, { nextAttemptAt: "NULL" });
    await failPendingOfDisabled(sql, [ep]);
    for (const id of [waiting!, leased!, parked!]) {
      expect(await readDelivery(db, id)).toMatchObject({
        status: DeliveryState.Failed,
        nextAttemptAt: null,
        lockedBy: null,
        lastError: "endpoint disabled: 410 Gone",
      });
    }
    const log = await statusLogOf(db, [waiting!, leased!, parked!]);
    expect(log).toHaveLength(3);
    expect(log.find((u) => u.deliveryId === waiting)).toMatchObject({
      kind: DeliveryUpdateKind.ENDPOINT_DISABLED,
      status: DeliveryState.Failed,
      endpointId: ep,
      attemptNumber: 2,
      error: "endpoint disabled: 410 Gone",
    });
  });

  it("leaves ended deliveries and other endpoints' alone", async () => {
    const ep = await insertEndpoint(db, { disabled: true, disabledReason: "failing" });
    const [succeeded] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
    const other = await insertEndpoint(db);
    const [live] = await insertDeliveries(db, other, 1);
    await failPendingOfDisabled(sql, [ep]);
    expect(await readDelivery(db, succeeded!)).toMatchObject({ status: DeliveryState.Succeeded, lastError: "" });
    expect(await readDelivery(db, live!)).toMatchObject({ status: DeliveryState.Pending, lastError: "" });
    expect(await statusLogOf(db, [succeeded!, live!])).toEqual([]);
  });
});
