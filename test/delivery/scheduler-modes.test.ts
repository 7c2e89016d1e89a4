/**
 * The scheduler's modes against a real PostgreSQL: idle -> running ->
 * draining -> stopped (or idle -> stopped), what each mode allows, and the
 * changes it refuses.
 */
import { describe, expect, it } from "vitest";
import { Scheduler } from "../../src/delivery/scheduler.js";
import { workerIds } from "../support/rows.js";
import { schedulerOptions } from "../support/scheduler.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

function schedulerOf(): Scheduler {
  return new Scheduler(schedulerOptions(sql, db.url));
}

describe("Scheduler modes", () => {
  it("goes idle -> running -> stopped, registered as a live worker only while running", async () => {
    const scheduler = schedulerOf();
    expect(scheduler.mode).toBe("idle");
    await scheduler.start();
    expect(scheduler.mode).toBe("running");
    expect(await workerIds(db)).toEqual([scheduler.workerId]);
    const stopping = scheduler.stop(5_000);
    expect(scheduler.mode).toBe("draining");
    await stopping;
    expect(scheduler.mode).toBe("stopped");
    expect(await workerIds(db)).toEqual([]);
  });

  it("refuses to start twice, or again once stopped", async () => {
    const scheduler = schedulerOf();
    await scheduler.start();
    await expect(scheduler.start()).rejects.toThrow(/cannot start from running/);
    await scheduler.stop(5_000);
    await expect(scheduler.start()).rejects.toThrow(/cannot start from stopped/);
    expect(scheduler.mode).toBe("stopped");
  });

  it("stops once: a second stop while draining or stopped does nothing", async () => {
    const scheduler = schedulerOf();
    await scheduler.start();
    await Promise.all([scheduler.stop(5_000), scheduler.stop(5_000)]);
    await scheduler.stop(5_000);
    expect(scheduler.mode).toBe("stopped");
  });

  it("stops from idle without ever running", async () => {
    const scheduler = schedulerOf();
    await scheduler.stop(5_000);
    expect(scheduler.mode).toBe("stopped");
    await expect(scheduler.start()).rejects.toThrow(/cannot start from stopped/);
  });

  it("gives publish statements room only while running", async () => {
    const scheduler = schedulerOf();
    expect(scheduler.beginLease()).toBeUndefined();
    await scheduler.start();
    const lease = scheduler.beginLease();
    expect(lease?.workerId).toBe(scheduler.workerId);
    scheduler.endLease(lease!, []);
    await scheduler.stop(5_000);
    expect(scheduler.beginLease()).toBeUndefined();
    expect(scheduler.load()).toEqual({ inFlight: 0, buffered: 0 });
  });
});
