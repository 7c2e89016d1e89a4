/**
 * Cursor pagination stays correct while rows are inserted between pages:
 * every row that existed at the start is seen exactly once, in order.
 */
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false" });

it("ListDeliveries (newest first) and ListEndpoints (oldest first) page correctly while rows are added", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const endpoints: string[] = [];
  for (let i = 0; i < 3; i++) endpoints.push((await admin.createEndpoint({ tenantId: "pg", url: `http://127.0.0.1:9/${i}` })).endpoint!.id);
  const publish = (n: number) =>
    ingest.publishBatch({ events: Array.from({ length: n }, (_, i) => ({ tenantId: "pg", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })) });
  await publish(7); // 21 deliveries
  const before = (await db.query<{ id: string }>("SELECT id FROM deliveries WHERE tenant_id = 'pg' ORDER BY id DESC")).map((r) => r.id);
  expect(before).toHaveLength(21);

  const seen: string[] = [];
  let pageToken = "";
  do {
    const page = await admin.listDeliveries({ tenantId: "pg", pageSize: 4, pageToken });
    seen.push(...page.deliveries.map((d) => d.id));
    pageToken = page.nextPageToken;
    // Newer deliveries arrive between pages.
    await publish(1);
  } while (pageToken);
  // The newest arrived after the first page: none of them show up later, none of the others is missed or repeated.
  expect(seen).toEqual(before);

  const seenEndpoints: string[] = [];
  pageToken = "";
  let added = 0;
  do {
    const page = await admin.listEndpoints({ tenantId: "pg", pageSize: 2, pageToken });
    seenEndpoints.push(...page.endpoints.map((e) => e.id));
    pageToken = page.nextPageToken;
    if (pageToken && added < 3) {
      endpoints.push((await admin.createEndpoint({ tenantId: "pg", url: `http://127.0.0.1:9/new${added}` })).endpoint!.id);
      added++;
    }
  } while (pageToken);
  // Oldest first: endpoints made while paging come at the end, each once.
  expect(seenEndpoints).toEqual(endpoints);
});
