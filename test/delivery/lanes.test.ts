/** The per-endpoint lanes of one scheduler: limits, the ready buffer, and holding a failing lane. */
import { describe, expect, it } from "vitest";
import { Lanes, PREFETCH_HOLD_MS } from "../../src/delivery/lanes.js";

const plain = { maxInFlight: 4, rateLimitPerSecond: null, single: false };

describe("Lanes", () => {
  it("gives no ready buffer until a response time is known, then one sized by it", () => {
    const lanes = new Lanes(10);
    lanes.reserve("ep", plain);
    expect(lanes.prefetch("ep")).toBe(0);
    expect(lanes.capacity().free.get("ep")).toBe(3);
    lanes.start("ep");
    lanes.finish("ep", 2, true);
    // Fast: capped at four times the in-flight limit.
    expect(lanes.prefetch("ep")).toBe(16);
    // Slow: what leaves the lane in PREFETCH_HOLD_MS.
    lanes.reserve("slow", plain);
    lanes.start("slow");
    lanes.finish("slow", PREFETCH_HOLD_MS, true);
    expect(lanes.prefetch("slow")).toBe(4);
  });

  it("never buffers for ordered or rate-limited endpoints", () => {
    const lanes = new Lanes(10);
    for (const [id, limits] of [
      ["ordered", { ...plain, single: true }],
      ["limited", { ...plain, rateLimitPerSecond: 100 }],
    ] as const) {
      lanes.reserve(id, limits);
      lanes.start(id);
      lanes.finish(id, 1, true);
      expect(lanes.prefetch(id)).toBe(0);
    }
  });

  it("starts a reserved delivery only within the in-flight limit", () => {
    const lanes = new Lanes(10);
    for (let i = 0; i < 6; i++) lanes.reserve("ep", plain);
    let started = 0;
    while (lanes.canStart("ep")) {
      lanes.start("ep");
      started++;
    }
    expect(started).toBe(4);
    expect(lanes.buffered("ep")).toBe(2);
    lanes.finish("ep", 1, true);
    expect(lanes.canStart("ep")).toBe(true);
  });

  it("holds a lane that failed as often in a row as opens the circuit until those outcomes are stored", () => {
    const lanes = new Lanes(10, 3);
    for (let i = 0; i < 5; i++) lanes.reserve("ep", plain);
    for (let i = 0; i < 3; i++) {
      lanes.start("ep");
      lanes.recorded("ep");
      lanes.finish("ep", 1, false);
    }
    expect(lanes.canStart("ep")).toBe(false);
    expect(lanes.capacity().exclude).toContain("ep");
    for (let i = 0; i < 3; i++) lanes.written("ep");
    expect(lanes.canStart("ep")).toBe(true);
    // A success ends the run of failures.
    lanes.start("ep");
    lanes.recorded("ep");
    lanes.finish("ep", 1, true);
    expect(lanes.canStart("ep")).toBe(true);
  });

  it("keeps an idle lane's response time for a while, then forgets it", () => {
    const lanes = new Lanes(10);
    lanes.reserve("ep", plain, 0);
    lanes.start("ep", 0);
    lanes.finish("ep", 2, true, 0);
    expect(lanes.capacity(1_000).free.get("ep")).toBe(4 + 16);
    expect(lanes.capacity(60_000).free.has("ep")).toBe(false);
    expect(lanes.prefetch("ep")).toBe(0);
  });
});
