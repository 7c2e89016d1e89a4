/**
 * RecoverEndpoint queues again the FAILED deliveries of an endpoint created
 * in a time range, and only those; each is logged as REQUEUED and then
 * delivered.
 */

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

let healthy = false;

const r = useReceiver(() => ({ status: healthy ? 200 : 500 }));
const db = useTestDatabase();
// One attempt, no retries: a 500 fails the delivery at once.
const app = useTestHookline(db, { HOOKLINE_RETRY_SCHEDULE: "none", HOOKLINE_CIRCUIT_FAILURES: "1000" });

const count = async (sql: string, values: unknown[]) => Number((await db.query<{ n: string }>(sql, values))[0]!.n);

it("requeues the failed deliveries in the range, which then succeed; others stay as they are", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "rec", url: `${r.url}/rec` });
  const id = endpoint!.id;
  await ingest.publishBatch({
    events: Array.from({ length: 6 }, (_, i) => ({ tenantId: "rec", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
  });
  await expect.poll(() => count("SELECT count(*) AS n FROM deliveries WHERE endpoint_id = $1 AND status = 4", [id]), { timeout: 10_000 }).toBe(6);
  // One of them is older than the range asked for.
  await db.query(
    "UPDATE deliveries SET created_at = now() - interval '2 days' WHERE id = (SELECT min(id) FROM deliveries WHERE endpoint_id = $1)",
    [id],
  );
  healthy = true;
  const since = timestampFromDate(new Date(Date.now() - 3_600_000));
  const { requeuedCount } = await admin.recoverEndpoint({ endpointId: id, since });
  expect(requeuedCount).toBe(5);
  await expect.poll(() => count("SELECT count(*) AS n FROM deliveries WHERE endpoint_id = $1 AND status = 3", [id]), { timeout: 10_000 }).toBe(5);
  expect(await count("SELECT count(*) AS n FROM deliveries WHERE endpoint_id = $1 AND status = 4", [id])).toBe(1);
  expect(await count("SELECT count(*) AS n FROM delivery_updates u JOIN deliveries d ON d.id = u.delivery_id WHERE d.endpoint_id = $1 AND u.kind = 7", [id])).toBe(5);
  // Nothing failed is left in the range: a second call queues nothing.
  expect((await admin.recoverEndpoint({ endpointId: id, since })).requeuedCount).toBe(0);
});

it("checks its input and the endpoint's state", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "rec", url: `${r.url}/rec2`, disabled: true });
  const now = timestampFromDate(new Date());
  const code = async (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => [ConnectError.from(e).code, ConnectError.from(e).rawMessage]);
  expect(await code(admin.recoverEndpoint({ endpointId: endpoint!.id }))).toEqual([Code.InvalidArgument, expect.stringContaining("since")]);
  expect(await code(admin.recoverEndpoint({ endpointId: endpoint!.id, since: now, until: now }))).toEqual([
    Code.InvalidArgument,
    expect.stringContaining("until"),
  ]);
  expect(await code(admin.recoverEndpoint({ endpointId: "ep_missing", since: now }))).toEqual([Code.NotFound, expect.any(String)]);
  expect(await code(admin.recoverEndpoint({ endpointId: endpoint!.id, since: now }))).toEqual([
    Code.FailedPrecondition,
    expect.stringContaining("disabled"),
  ]);
});
