/**
 * Queuing deliveries again against PostgreSQL: one delivery whatever its
 * status (requeueDelivery), and an endpoint's failed deliveries of a time
 * range (requeueFailed), each logged and waking the schedulers.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { DUE_CHANNEL, NotifyListener } from "../../src/store/notify-listener.js";
import { requeueDelivery } from "../../src/store/sql/requeue.js";
import { requeueFailed } from "../../src/store/sql/requeue-failed.js";
import { deliveriesOf, insertDeliveries, insertEndpoint, readDelivery, statusLogOf } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

const listeners: NotifyListener[] = [];
afterEach(async () => {
  for (const l of listeners.splice(0)) await l.stop();
});

/**
 * Listens on the schedulers' due channel from now on (after the test's rows
 * are written, whose inserts notify too). `wakes()` counts the wake-ups so
 * far that every scheduler acts on, one on connecting included, once every notification committed
 * before the call has arrived: it sends a marker and waits for it, and
 * notifications arrive in commit order.
 */
async function listenForWakes(): Promise<{ wakes(): Promise<number> }> {
  const got: (string | undefined)[] = [];
  const listener = new NotifyListener(db.url, DUE_CHANNEL, (payload) => got.push(payload), pino({ level: "silent" }));
  listeners.push(listener);
  await listener.start();
  let markers = 0;
  return {
    async wakes() {
      const marker = `marker-${markers++}`;
      await db.query("SELECT pg_notify($1, $2)", [DUE_CHANNEL, marker]);
      await expect.poll(() => got.includes(marker)).toBe(true);
      // Wake-ups of every scheduler, this process's own included (payload
      // ""), not the queue's insert notifications, which name the process
      // that wrote them (for it to skip).
      return got.filter((p) => p === undefined || p === "").length;
    },
  };
}

const due = expect.toSatisfy((s: number | null) => s !== null && s <= 0);

describe("requeueDelivery", () => {
  it("queues a failed delivery again, due now, keeps its attempts, logs REQUEUED and wakes the schedulers", async () => {
    const ep = await insertEndpoint(db);
    const [id] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Failed, nextAttemptAt: "NULL", attemptCount: 3 });
    const { wakes } = await listenForWakes();
    expect(await requeueDelivery(sql, id!)).toEqual({ found: true, inFlight: false, endpointUnavailable: null, requeued: true });
    expect(await readDelivery(db, id!)).toMatchObject({ status: DeliveryState.Retrying, dueInS: due, lockedBy: null, attemptCount: 3 });
    expect(await statusLogOf(db, [id!])).toEqual([
      expect.objectContaining({ kind: DeliveryUpdateKind.REQUEUED, status: DeliveryState.Retrying, attemptNumber: 3, endpointId: ep }),
    ]);
    expect(await wakes()).toBe(2);
  });

  it("queues a succeeded delivery again too", async () => {
    const ep = await insertEndpoint(db);
    const [id] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL", attemptCount: 1 });
    expect((await requeueDelivery(sql, id!)).requeued).toBe(true);
    expect(await readDelivery(db, id!)).toMatchObject({ status: DeliveryState.Retrying, dueInS: due });
  });

  it("leaves a delivery in flight alone, and says so, without waking anyone", async () => {
    const ep = await insertEndpoint(db);
    const [id] = await insertDeliveries(db, ep, 1, { lockedBy: "w1", nextAttemptAt: "now() + interval '30 seconds'" });
    const [other] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Failed, nextAttemptAt: "NULL" });
    const before = await readDelivery(db, id!);
    const { wakes } = await listenForWakes();
    expect(await requeueDelivery(sql, id!)).toEqual({ found: true, inFlight: true, endpointUnavailable: null, requeued: false });
    expect(await readDelivery(db, id!)).toEqual(before);
    expect(await statusLogOf(db, [id!])).toEqual([]);
    expect(await wakes()).toBe(1);
    // The same once another requeue has woken them.
    await requeueDelivery(sql, other!);
    expect(await wakes()).toBe(2);
  });

  it("queues nothing for a disabled or deleted endpoint, and says which", async () => {
    const disabled = await insertEndpoint(db, { disabled: true, disabledReason: "410 Gone" });
    const deleted = await insertEndpoint(db, { deleted: true });
    const [a] = await insertDeliveries(db, disabled, 1, { status: DeliveryState.Failed, nextAttemptAt: "NULL" });
    const [b] = await insertDeliveries(db, deleted, 1, { status: DeliveryState.Failed, nextAttemptAt: "NULL" });
    expect(await requeueDelivery(sql, a!)).toMatchObject({ found: true, endpointUnavailable: "disabled", requeued: false });
    expect(await requeueDelivery(sql, b!)).toMatchObject({ found: true, endpointUnavailable: "deleted", requeued: false });
    expect((await readDelivery(db, a!))!.status).toBe(DeliveryState.Failed);
    expect((await readDelivery(db, b!))!.status).toBe(DeliveryState.Failed);
  });

  it("finds no delivery that does not exist", async () => {
    expect(await requeueDelivery(sql, "dlv_none")).toEqual({ found: false, inFlight: false, endpointUnavailable: null, requeued: false });
  });
});

describe("requeueFailed", () => {
  it("queues an endpoint's failed deliveries created in the range, batch by batch, logged, and nothing else", async () => {
    const ep = await insertEndpoint(db);
    const since = new Date(Date.now() - 3_600_000);
    const until = new Date(Date.now() + 60_000);
    const failed = { status: DeliveryState.Failed, nextAttemptAt: "NULL" } as const;
    const inRange = await insertDeliveries(db, ep, 5, failed);
    const [before] = await insertDeliveries(db, ep, 1, { ...failed, publishedAt: new Date(since.getTime() - 1) });
    const [succeeded] = await insertDeliveries(db, ep, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
    const other = await insertEndpoint(db);
    const [otherFailed] = await insertDeliveries(db, other, 1, failed);
    const { wakes } = await listenForWakes();
    expect(await requeueFailed(sql, ep, since, until, 2)).toBe(5);
    for (const id of inRange) expect(await readDelivery(db, id)).toMatchObject({ status: DeliveryState.Retrying, dueInS: due, lockedBy: null });
    expect((await statusLogOf(db, inRange)).map((u) => u.kind)).toEqual(Array(5).fill(DeliveryUpdateKind.REQUEUED));
    expect((await readDelivery(db, before!))!.status).toBe(DeliveryState.Failed);
    expect((await readDelivery(db, succeeded!))!.status).toBe(DeliveryState.Succeeded);
    expect((await readDelivery(db, otherFailed!))!.status).toBe(DeliveryState.Failed);
    // At least one wake-up (batches are transactions of their own, each may notify).
    expect(await wakes()).toBeGreaterThan(1);
  });

  it("takes the range's end as exclusive", async () => {
    const ep = await insertEndpoint(db);
    const at = new Date(Date.now() - 60_000);
    await insertDeliveries(db, ep, 1, { status: DeliveryState.Failed, nextAttemptAt: "NULL", publishedAt: at });
    expect(await requeueFailed(sql, ep, new Date(at.getTime() - 1_000), at)).toBe(0);
    expect(await requeueFailed(sql, ep, at, new Date(at.getTime() + 1))).toBe(1);
    expect((await deliveriesOf(db, ep))[0]!.status).toBe(DeliveryState.Retrying);
  });
});
