/**
 * Retention removes history older than HOOKLINE_RETENTION_DAYS: ended deliveries
 * with their attempts and status log rows, then events with no delivery
 * left; live deliveries keep their event and their whole history.
 */
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const r = useReceiver((_, req) => (req.path === "/down" ? { status: 500 } : { status: 200 }));
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_RETENTION_DAYS: String(2 / 86_400), HOOKLINE_RETRY_SCHEDULE: "1h" });

const count = async (sql: string, values: unknown[] = []) => Number((await db.query<{ n: string }>(sql, values))[0]!.n);

it("removes ended deliveries, their attempts, log rows and events once older than the retention; keeps live ones", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const { endpoint: up } = await admin.createEndpoint({ tenantId: "keep", url: `${r.url}/up` });
  const { endpoint: down } = await admin.createEndpoint({ tenantId: "keep", url: `${r.url}/down` });
  const { endpoint: other } = await admin.createEndpoint({ tenantId: "gone", url: `${r.url}/other` });
  const both = await ingest.publish({ tenantId: "keep", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
  const alone = await ingest.publish({ tenantId: "gone", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
  await r.waitFor(3);
  await expect.poll(() => count("SELECT count(*) AS n FROM delivery_attempts")).toBe(3);
  // Ended deliveries age out; the retrying one (next attempt in 1 h) stays.
  await expect
    .poll(() => count("SELECT count(*) AS n FROM deliveries"), { timeout: 10_000, interval: 200 })
    .toBe(1);
  await expect.poll(() => count("SELECT count(*) AS n FROM events"), { timeout: 5_000 }).toBe(1);
  const [live] = await db.query<{ endpoint_id: string; event_id: string; status: number }>(
    "SELECT endpoint_id, event_id, status FROM deliveries",
  );
  expect(live).toEqual({ endpoint_id: down!.id, event_id: both.eventId, status: 2 });
  expect(await count("SELECT count(*) AS n FROM events WHERE id = $1", [alone.eventId])).toBe(0);
  // Attempts and status history: only the live delivery's are left.
  expect(await db.query("SELECT d.endpoint_id FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id")).toEqual([
    { endpoint_id: down!.id },
  ]);
  expect(await count("SELECT count(*) AS n FROM delivery_attempts")).toBe(1);
  await expect
    .poll(() => db.query("SELECT d.endpoint_id, u.kind FROM delivery_updates u LEFT JOIN deliveries d ON d.id = u.delivery_id ORDER BY u.xid, u.seq"), { timeout: 5_000 })
    .toEqual([
      { endpoint_id: down!.id, kind: 1 },
      { endpoint_id: down!.id, kind: 3 },
    ]);
  expect([up!.id, other!.id]).not.toContain(live!.endpoint_id);
});
