/**
 * The scheduler's background work when the database fails for a moment: a
 * claim cut off (its connection terminated, as in a restart) is tried
 * again after a short backoff, not at the next poll.
 */
import pg from "pg";
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { captureLog } from "../support/log.js";
import { useReceiver } from "../support/receiver.js";

const db = useTestDatabase();
const receiver = useReceiver();
const captured = captureLog("warn");
// Polling would hide a claim that is not tried again: make it rare.
const app = useTestHookline(db, { HOOKLINE_POLL_INTERVAL: "1h" }, captured.log);

/** The backends running a claim (its text begins with the lanes) that wait for a lock `holder` holds, once there is one. */
async function blockedClaims(holder: number): Promise<number[]> {
  let pids: number[] = [];
  await expect
    .poll(
      async () => {
        pids = (
          await db.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)) AND query LIKE '%WITH lanes AS%'",
            [holder],
          )
        ).map((r) => r.pid);
        return pids.length;
      },
      { timeout: 10_000, interval: 10 },
    )
    .toBeGreaterThan(0);
  return pids;
}

it("tries a claim whose connection was terminated again after a short backoff, and delivers", async () => {
  const admin = client(WebhookAdmin, "connect-http1", app.url);
  const ingest = client(EventIngest, "connect-http1", app.url);
  await admin.createEndpoint({ tenantId: "cut", url: `${receiver.url}/cut` });
  // The claim updates endpoints (a probe's lease), which SHARE mode holds
  // off; publishing only reads them.
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  const [{ pid }] = (await locker.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows as [{ pid: number }];
  await locker.query("BEGIN");
  await locker.query("LOCK TABLE endpoints IN SHARE MODE");
  try {
    await ingest.publish({ tenantId: "cut", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
    const [claim] = await blockedClaims(pid);
    await db.query("SELECT pg_terminate_backend($1)", [claim]);
    await captured.waitFor((l) => l.msg === "claiming due deliveries failed; retrying");
    // Tried again, and held by the lock in its turn.
    await blockedClaims(pid);
  } finally {
    await locker.query("COMMIT");
    await locker.end();
  }
  await receiver.waitFor(1);
  expect(receiver.requests[0]!.path).toBe("/cut");
});
