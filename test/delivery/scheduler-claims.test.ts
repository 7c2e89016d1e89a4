/**
 * When a scheduler claims, against a real PostgreSQL and a real receiver:
 * a quiet process (one publish at a time, each delivered at once from its
 * publish lease) claims neither when an attempt finishes (no claim left
 * work behind for want of room: see Claimer.mayHaveDue) nor when a success
 * is written (it makes nothing claimable: see Scheduler.record).
 */
import { afterEach, expect, it } from "vitest";
import { AddressGuard } from "../../src/delivery/address-guard.js";
import { Scheduler } from "../../src/delivery/scheduler.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { newId } from "../../src/domain/ids.js";
import { InsertQueue } from "../../src/store/sql/insert-queue.js";
import type { Sql } from "../../src/store/sql.js";
import { captureLog } from "../support/log.js";
import { type Receiver, startReceiver } from "../support/receiver.js";
import { insertEndpoint } from "../support/rows.js";
import { schedulerOptions } from "../support/scheduler.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore(4);

/** The store's SQL, counting the claim statements as they end. */
function countingClaims(): { sql: Sql; claims: () => number; next: () => Promise<void> } {
  let claims = 0;
  const waiting: (() => void)[] = [];
  return {
    claims: () => claims,
    /** Resolves once a claim that starts from now on has ended. */
    next: () => new Promise((resolve) => waiting.push(resolve)),
    sql: {
      async query(text, values, prepare) {
        const isClaim = text.includes("FOR UPDATE OF q SKIP LOCKED");
        const wake = isClaim ? waiting.splice(0) : [];
        try {
          return await sql.query(text, values, prepare);
        } finally {
          if (isClaim) {
            claims++;
            for (const w of wake) w();
          }
        }
      },
    },
  };
}

let scheduler: Scheduler | undefined;
let receiver: Receiver | undefined;

afterEach(async () => {
  await scheduler?.stop(5_000);
  await receiver?.close();
});

function schedulerOn(counted: Sql): Scheduler {
  return new Scheduler(
    schedulerOptions(counted, db.url, {
      // The store's connections' name (see orm.ts): the wake-ups of this
      // process's own publishes are skipped, as in a Hookline process.
      applicationName: "hookline",
      log: captureLog("error").log,
      requestTimeoutMs: 5_000,
      addressGuard: new AddressGuard(["127.0.0.0/8"]),
      defaultRetryPolicy: { kind: "schedule", delaysMs: [60_000] },
    }),
  );
}

async function publishOne(queue: InsertQueue): Promise<string> {
  const body = JSON.stringify({ data: {} });
  const [event] = await queue.insert([{ id: newId("event"), tenantId: "t", eventType: "a.b", channels: [], idempotencyKey: null, body, data: "{}" }]);
  return event!.eventId;
}

/** Waits until the delivery of `eventId` has ended with `status`. */
async function ended(eventId: string, status: DeliveryState): Promise<void> {
  await expect
    .poll(async () => (await db.query<{ status: number }>("SELECT status FROM deliveries WHERE event_id = $1", [eventId]))[0]?.status, { timeout: 10_000, interval: 5 })
    .toBe(status);
}

it("claims for none of the deliveries of a quiet process: each was leased by its publish, and nothing was left behind", async () => {
  receiver = await startReceiver();
  const endpointId = await insertEndpoint(db);
  await db.query("UPDATE endpoints SET url = $2 WHERE id = $1", [endpointId, `${receiver.url}/hook`]);
  const counting = countingClaims();
  scheduler = schedulerOn(counting.sql);
  const started = counting.next();
  await scheduler.start();
  await started;
  const leaser = scheduler;
  const queue = new InsertQueue(counting.sql, 86_400_000, 1_000, 2, 64 << 20, {
    begin: (parts) => leaser.beginLease(parts),
    end: (lease, leased) => leaser.endLease(lease, leased),
  });
  const before = counting.claims();
  const events = 5;
  for (let i = 0; i < events; i++) await ended(await publishOne(queue), DeliveryState.Succeeded);
  // A claim asked for by the last write would have started by now; one
  // asked for from here on ends after it.
  const after = counting.next();
  scheduler.nudge();
  await after;
  expect(receiver.requests).toHaveLength(events);
  // Each delivery was leased by its publish, and no claim had left work
  // behind: neither its finished attempt nor its written success asked for
  // a claim (before, each asked for one: 8 claims for 5 deliveries, the
  // rest coalesced). At most one comes from the start (its wake-ups).
  expect(counting.claims() - 1 - before).toBeLessThanOrEqual(1);
});
