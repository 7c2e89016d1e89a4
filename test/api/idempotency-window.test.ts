/**
 * Idempotency keys hold for HOOKLINE_IDEMPOTENCY_WINDOW: within it a repeat
 * (also within one batch) is a duplicate of the first event, after it the
 * key makes a new event.
 */
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_IDEMPOTENCY_WINDOW: "1s", HOOKLINE_SCHEDULER: "false" });

const event = (idempotencyKey: string, i = 0) => ({
  tenantId: "win",
  eventType: "t.e",
  idempotencyKey,
  payload: { case: "payloadJson" as const, value: `{"i":${i}}` },
});

it("treats a repeat within the window as a duplicate, and makes a new event after it", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  await admin.createEndpoint({ tenantId: "win", url: "http://127.0.0.1:9/x" });
  const { results } = await ingest.publishBatch({ events: [event("k1", 0), event("k1", 1), event("k2", 2)] });
  expect(results.map((r) => r.duplicate)).toEqual([false, true, false]);
  expect(results[1]!.eventId).toBe(results[0]!.eventId);
  expect(results.map((r) => r.deliveryCount)).toEqual([1, 0, 1]);
  const again = await ingest.publish(event("k1", 3));
  expect(again).toMatchObject({ eventId: results[0]!.eventId, duplicate: true, deliveryCount: 0 });
  await new Promise((res) => setTimeout(res, 1_100));
  const later = await ingest.publish(event("k1", 4));
  expect(later.duplicate).toBe(false);
  expect(later.eventId).not.toBe(results[0]!.eventId);
  expect(later.deliveryCount).toBe(1);
  // Both events are kept; the key now names the new one.
  expect(await db.query("SELECT count(*)::int AS n FROM events WHERE idempotency_key = 'k1'")).toEqual([{ n: 2 }]);
  expect(await ingest.publish(event("k1", 5))).toMatchObject({ eventId: later.eventId, duplicate: true });
});
