import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_SCHEDULE_MS } from "../../src/config.js";
import { retryDelay } from "../../src/delivery/backoff.js";

const mid = () => 0.5; // no jitter

describe("retryDelay", () => {
  it("follows the default Svix-like schedule: 7 retries over about 27.6 hours, then gives up", () => {
    const policy = { kind: "schedule" as const, delaysMs: DEFAULT_RETRY_SCHEDULE_MS };
    const delays = [1, 2, 3, 4, 5, 6, 7].map((n) => retryDelay(policy, n, 0.2, mid));
    expect(delays).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    expect(retryDelay(policy, 8, 0.2, mid)).toBeNull();
    const total = delays.reduce((a, b) => a! + b!, 0)!;
    expect(total / 3_600_000).toBeCloseTo(27.6, 1);
  });

  it("doubles exponential delays up to the cap and stops at max_attempts", () => {
    const policy = { kind: "exponential" as const, baseMs: 2_000, capMs: 10_000, maxAttempts: 5 };
    expect([1, 2, 3, 4].map((n) => retryDelay(policy, n, 0, mid))).toEqual([2_000, 4_000, 8_000, 10_000]);
    expect(retryDelay(policy, 5, 0, mid)).toBeNull();
  });

  it("spreads delays by the jitter fraction, both ways", () => {
    const policy = { kind: "schedule" as const, delaysMs: [10_000] };
    expect(retryDelay(policy, 1, 0.2, () => 0)).toBe(8_000);
    expect(retryDelay(policy, 1, 0.2, () => 0.999_999)).toBeCloseTo(12_000, -1);
    const samples = Array.from({ length: 1_000 }, () => retryDelay(policy, 1, 0.2)!);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(8_000);
    expect(Math.max(...samples)).toBeLessThanOrEqual(12_000);
    expect(new Set(samples).size).toBeGreaterThan(100);
  });

  it("gives up at once with an empty schedule", () => {
    expect(retryDelay({ kind: "schedule", delaysMs: [] }, 1, 0.2)).toBeNull();
  });
});
