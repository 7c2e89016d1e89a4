/**
 * The scheduler's wake-ups on their own: known moments (one timer for the
 * earliest), finished attempts (coalesced), the poll, and NOTIFY from a
 * real PostgreSQL.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_TIMER_MS, WakeSchedule } from "../../src/delivery/wake-schedule.js";
import { useTestDatabase } from "../support/database.js";
import { captureLog } from "../support/log.js";

describe("WakeSchedule: timers", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const scheduleOf = (pollIntervalMs = 3_600_000) => {
    const wake = vi.fn();
    return { wake, wakes: new WakeSchedule({ wake, pollIntervalMs }) };
  };

  it("wakes a little after each known moment, earliest first, and once per moment", async () => {
    const { wake, wakes } = scheduleOf();
    await wakes.start();
    wakes.at(1_000_500);
    wakes.at(1_000_100);
    wakes.at(1_000_100);
    expect(wakes.next).toBe(1_000_100);
    await vi.advanceTimersByTimeAsync(100);
    expect(wake).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(2);
    expect(wake).toHaveBeenCalledTimes(1);
    expect(wakes.next).toBe(1_000_500);
    await vi.advanceTimersByTimeAsync(400);
    expect(wake).toHaveBeenCalledTimes(2);
    expect(wakes.next).toBeUndefined();
    await wakes.stop();
  });

  it("arms nothing before start or after stop, and remembers moments meanwhile", async () => {
    const { wake, wakes } = scheduleOf();
    wakes.at(1_000_010);
    await vi.advanceTimersByTimeAsync(100);
    expect(wake).not.toHaveBeenCalled();
    // Started: the moment already past fires at once.
    await wakes.start();
    await vi.advanceTimersByTimeAsync(5);
    expect(wake).toHaveBeenCalledTimes(1);
    await wakes.stop();
    wakes.at(Date.now() + 10);
    wakes.soon();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(wake).toHaveBeenCalledTimes(1);
    expect(() => wakes.stop()).not.toThrow();
  });

  it("refuses to start twice", async () => {
    const { wakes } = scheduleOf();
    await wakes.start();
    await expect(wakes.start()).rejects.toThrow(/already started/);
    await wakes.stop();
  });

  it("coalesces the wake-ups of attempts finishing in the same turn into one", async () => {
    const { wake, wakes } = scheduleOf();
    await wakes.start();
    for (let i = 0; i < 10; i++) wakes.soon();
    await vi.advanceTimersByTimeAsync(0);
    expect(wake).toHaveBeenCalledTimes(1);
    wakes.soon();
    await vi.advanceTimersByTimeAsync(0);
    expect(wake).toHaveBeenCalledTimes(2);
    await wakes.stop();
  });

  it("polls at its interval", async () => {
    const { wake, wakes } = scheduleOf(1_000);
    await wakes.start();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(wake).toHaveBeenCalledTimes(3);
    await wakes.stop();
  });

  it("clamps a moment beyond the longest Node timer instead of firing at once", async () => {
    const { wake, wakes } = scheduleOf();
    const warnings = vi.fn();
    process.on("warning", warnings);
    try {
      await wakes.start();
      wakes.at(Date.now() + 2 * MAX_TIMER_MS);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(wake).not.toHaveBeenCalled();
      expect(warnings).not.toHaveBeenCalled();
      await wakes.stop();
    } finally {
      process.off("warning", warnings);
    }
  });
});

describe("WakeSchedule: NOTIFY", () => {
  const db = useTestDatabase();

  it("wakes on a hookline_due notification from another connection", async () => {
    const wake = vi.fn();
    const wakes = new WakeSchedule({ wake, pollIntervalMs: 3_600_000, listen: { databaseUrl: db.url, log: captureLog("warn").log } });
    await wakes.start();
    try {
      await db.query("NOTIFY hookline_due");
      await expect.poll(() => wake.mock.calls.length, { timeout: 5_000, interval: 5 }).toBeGreaterThanOrEqual(1);
    } finally {
      await wakes.stop();
    }
  });
});
