/**
 * The scheduler's background work when the database fails for a moment: a
 * claim cut off (its connection terminated, as in a restart) is tried
 * again after a short backoff, not at the next poll. The claim is held off
 * by a lock while a publish goes through (see blockClaims), then its
 * backend is terminated.
 */
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { captureLog } from "../support/log.js";
import { useReceiver } from "../support/receiver.js";
import { blockClaims } from "../support/rows.js";

const db = useTestDatabase();
const receiver = useReceiver();
const captured = captureLog("warn");
// Polling would hide a claim that is not tried again: make it rare.
const app = useTestHookline(db, { HOOKLINE_POLL_INTERVAL: "1h" }, captured.log);

it("tries a claim whose connection was terminated again after a short backoff, and delivers", async () => {
  const admin = client(WebhookAdmin, "connect-http1", app.url);
  const ingest = client(EventIngest, "connect-http1", app.url);
  // Ordered: its deliveries are claimed, never leased by the publish itself.
  await admin.createEndpoint({ tenantId: "cut", url: `${receiver.url}/cut`, ordered: true });
  const lock = await blockClaims(db);
  try {
    await ingest.publish({ tenantId: "cut", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
    const [claim] = await lock.waiters();
    await db.query("SELECT pg_terminate_backend($1)", [claim]);
    await captured.waitFor((l) => l.msg === "claiming due deliveries failed; retrying");
    // Tried again, and held off in its turn.
    await lock.waiters();
  } finally {
    await lock.release();
  }
  await receiver.waitFor(1);
  expect(receiver.requests[0]!.path).toBe("/cut");
});
