/**
 * The registry of live scheduler processes against PostgreSQL: heartbeats,
 * how many count as live, and leaving it.
 */
import { describe, expect, it } from "vitest";
import { heartbeat, unregister } from "../../src/store/sql/workers.js";
import { insertWorker, workerIds } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

describe("heartbeat", () => {
  it("registers the process and counts it with the others whose heartbeat is recent", async () => {
    await insertWorker(db, "recent", "now() - interval '5 seconds'");
    await insertWorker(db, "stale", "now() - interval '20 seconds'");
    expect(await heartbeat(sql, "me", 15_000)).toBe(2);
    expect(await workerIds(db)).toEqual(["me", "recent", "stale"]);
  });

  it("renews the process's own heartbeat, so others count it as live again", async () => {
    await insertWorker(db, "me", "now() - interval '1 minute'");
    expect(await heartbeat(sql, "other", 15_000)).toBe(1);
    await heartbeat(sql, "me", 15_000);
    expect(await heartbeat(sql, "other", 15_000)).toBe(2);
  });

  it("removes processes silent for a day", async () => {
    await insertWorker(db, "gone", "now() - interval '25 hours'");
    await insertWorker(db, "quiet", "now() - interval '23 hours'");
    await heartbeat(sql, "me", 15_000);
    expect(await workerIds(db)).toEqual(["me", "quiet"]);
  });
});

describe("unregister", () => {
  it("removes the process, and only it", async () => {
    await heartbeat(sql, "me", 15_000);
    await heartbeat(sql, "other", 15_000);
    await unregister(sql, "me");
    expect(await workerIds(db)).toEqual(["other"]);
  });
});
