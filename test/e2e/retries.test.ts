/**
 * Retries as users see them: a failing receiver is retried on the retry
 * schedule, every attempt is recorded, and a delivery ends SUCCEEDED or,
 * once the schedule is exhausted, FAILED.
 */
import { describe, expect, it } from "vitest";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

const db = useTestDatabase();
// Three retries 50 ms apart: four attempts in all.
const app = useTestHookline(db, { HOOKLINE_RETRY_SCHEDULE: "50ms,50ms,50ms" });

async function setup(receiver: Receiver, tenantId: string) {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId, url: `${receiver.url}/hook` });
  const { eventId } = await ingest.publish({ tenantId, eventType: "order.shipped", payload: { case: "payloadJson", value: '{"order":"o_1"}' } });
  const deliveryId = async () => (await admin.listDeliveries({ eventId })).deliveries[0]!.id;
  return { admin, endpoint: endpoint!, eventId, deliveryId };
}

describe("retries", () => {
  it("retries a receiver that fails twice, then records three attempts and SUCCEEDED", async () => {
    const receiver = await startReceiver();
    receiver.reply((i) => (i < 2 ? { status: 500, body: `boom ${i}` } : { status: 204 }));
    try {
      const { admin, eventId, deliveryId } = await setup(receiver, "retry-ok");
      const requests = await receiver.waitFor(3);
      // The same message id on every retry, so receivers can dedupe.
      expect(new Set(requests.map((r) => r.headers["webhook-id"]))).toEqual(new Set([eventId]));
      const id = await deliveryId();
      await expect
        .poll(async () => (await admin.getDelivery({ id })).delivery?.status, { timeout: 5_000 })
        .toBe(DeliveryStatus.SUCCEEDED);
      const { delivery } = await admin.getDelivery({ id });
      expect(delivery?.attemptCount).toBe(3);
      expect(delivery?.attempts.map((a) => [a.number, a.responseStatus, a.error, a.responseBody])).toEqual([
        [3, 204, "", ""],
        [2, 500, "HTTP 500", "boom 1"],
        [1, 500, "HTTP 500", "boom 0"],
      ]);
      expect(delivery?.lastResponseStatus).toBe(204);
      expect(delivery?.nextAttemptAt).toBeUndefined();
      // Nothing more arrives once it succeeded.
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(3);
    } finally {
      await receiver.close();
    }
  });

  it("gives a delivery up as FAILED after the last attempt of the schedule, with every attempt recorded", async () => {
    const receiver = await startReceiver();
    receiver.reply(() => ({ status: 503, body: "down" }));
    try {
      const { admin, deliveryId } = await setup(receiver, "retry-dead");
      await receiver.waitFor(4);
      const id = await deliveryId();
      await expect
        .poll(async () => (await admin.getDelivery({ id })).delivery?.status, { timeout: 5_000 })
        .toBe(DeliveryStatus.FAILED);
      const { delivery } = await admin.getDelivery({ id });
      expect(delivery?.attemptCount).toBe(4);
      expect(delivery?.attempts.map((a) => a.number)).toEqual([4, 3, 2, 1]);
      expect(delivery?.lastError).toBe("HTTP 503");
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests).toHaveLength(4);
    } finally {
      await receiver.close();
    }
  });

  it("retries when nothing listens at the endpoint, recording a connection error", async () => {
    const receiver = await startReceiver();
    const deadUrl = receiver.url;
    await receiver.close();
    const admin = client(WebhookAdmin, "grpc", app.url);
    const ingest = client(EventIngest, "grpc", app.url);
    await admin.createEndpoint({ tenantId: "retry-refused", url: `${deadUrl}/gone` });
    const { eventId } = await ingest.publish({ tenantId: "retry-refused", eventType: "a.b", payload: { case: "payloadJson", value: "{}" } });
    await expect
      .poll(async () => (await admin.listDeliveries({ eventId })).deliveries[0]?.status, { timeout: 5_000 })
      .toBe(DeliveryStatus.FAILED);
    const { deliveries } = await admin.listDeliveries({ eventId });
    const { delivery } = await admin.getDelivery({ id: deliveries[0]!.id });
    expect(delivery?.attempts).toHaveLength(4);
    for (const a of delivery!.attempts) {
      expect(a.responseStatus).toBe(0);
      expect(a.errorClass).toBe("connection");
      expect(a.error).toMatch(/ECONNREFUSED/);
    }
  });
});
