/** The per-endpoint lanes of one scheduler: limits, the ready buffer, and holding a failing lane. */
import { describe, expect, it } from "vitest";
import { Lanes, PREFETCH_HOLD_MS } from "../../src/delivery/lanes.js";

const plain = { tenantId: "t", maxInFlight: 4, rateLimitPerSecond: null, single: false };
/** Lanes of a process with room for 1,000 requests: fair shares never bind in these tests. */
const lanesOf = (defaultMaxInFlight: number, circuitFailureThreshold?: number) =>
  new Lanes({ defaultMaxInFlight, capacity: 1_000, circuitFailureThreshold });

describe("Lanes", () => {
  it("gives no ready buffer until a response time is known, then one sized by it", () => {
    const lanes = lanesOf(10);
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
    const lanes = lanesOf(10);
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
    const lanes = lanesOf(10);
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
    const lanes = lanesOf(10, 3);
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
    const lanes = lanesOf(10);
    lanes.reserve("ep", plain, 0);
    lanes.start("ep", 0);
    lanes.finish("ep", 2, true, 0);
    expect(lanes.capacity(1_000).free.get("ep")).toBe(4 + 16);
    expect(lanes.capacity(60_000).free.has("ep")).toBe(false);
    expect(lanes.prefetch("ep")).toBe(0);
  });

  describe("fair shares of the process's capacity", () => {
    const hog = { tenantId: "hog", maxInFlight: 1_000, rateLimitPerSecond: null, single: false };
    const startAll = (lanes: Lanes, id: string) => {
      let n = 0;
      while (lanes.canStart(id)) {
        lanes.start(id);
        n++;
      }
      return n;
    };

    it("gives a lone tenant half the capacity and its lone endpoint a quarter, whatever its own limit", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      for (let i = 0; i < 500; i++) lanes.reserve("hog-1", hog);
      expect(startAll(lanes, "hog-1")).toBe(64);
      // A second endpoint of the tenant: a third of the tenant's half (128 / 3).
      for (let i = 0; i < 500; i++) lanes.reserve("hog-2", { ...hog });
      expect(startAll(lanes, "hog-2")).toBe(42);
      expect(lanes.canStart("hog-1")).toBe(false);
    });

    it("leaves a newcomer tenant free slots at once, and no more claims for a tenant past its room", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      for (let i = 0; i < 500; i++) lanes.reserve("hog-1", hog);
      startAll(lanes, "hog-1");
      const before = lanes.capacity();
      // A new tenant may claim twice its share (256 / 3), a new endpoint of it half of that share.
      expect(before.newTenant).toEqual({ free: 2 * 85, newEndpointFree: 42 });
      const victim = { tenantId: "victim", maxInFlight: null, rateLimitPerSecond: null, single: false };
      for (let i = 0; i < 20; i++) lanes.reserve("victim-1", victim);
      expect(startAll(lanes, "victim-1")).toBe(10);
      // The hog holds more than its new share (85 / 2 for its endpoint): it starts nothing more.
      expect(lanes.canStart("hog-1")).toBe(false);
      const after = lanes.capacity();
      expect(after.excludeTenants).toContain("hog");
      expect(after.exclude).toContain("hog-1");
      expect(after.excludeTenants).not.toContain("victim");
    });

    it("forgets a tenant's load once its work is done", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      lanes.reserve("a", { ...plain, tenantId: "x" });
      expect(lanes.activeTenants).toBe(1);
      lanes.start("a");
      lanes.finish("a", 1, true);
      expect(lanes.activeTenants).toBe(0);
      expect(lanes.tenantShare()).toBe(256);
    });

    it("treats a rate limit below the lowest allowed as the lowest, so the wait for a token fits a timer", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      lanes.reserve("slow", { ...plain, rateLimitPerSecond: 1e-7 }, 0);
      lanes.start("slow", 0);
      lanes.finish("slow", 1, true, 0);
      expect(lanes.nextTokenInMs("slow", 0)).toBe(1_000_000);
    });
  });
});

describe("Lanes: counting and limits", () => {
  it("starts nothing of a lane that reserved nothing, and refuses to count below zero", () => {
    const lanes = lanesOf(10);
    expect(lanes.canStart("none")).toBe(false);
    expect(() => lanes.start("none")).toThrow(/reserve first/);
    lanes.reserve("ep", plain);
    lanes.start("ep");
    expect(() => lanes.start("ep")).toThrow(/no reserved delivery/);
  });

  it("gives a reserved delivery back unstarted: its room is free again, and an idle lane and tenant are let go", () => {
    const lanes = lanesOf(10);
    lanes.reserve("ep", plain, 0);
    expect(lanes.buffered("ep")).toBe(1);
    expect(lanes.activeTenants).toBe(1);
    lanes.unreserve("ep", 0);
    expect(lanes.buffered("ep")).toBe(0);
    expect(lanes.activeTenants).toBe(0);
    // Forgotten once idle for a while: no longer in the claim's lists.
    expect(lanes.capacity(60_000).free.has("ep")).toBe(false);
  });

  it("lets an ordered endpoint or a half-open circuit's probe have one request at a time, whatever its limit", () => {
    const lanes = lanesOf(10);
    for (let i = 0; i < 3; i++) lanes.reserve("ordered", { ...plain, maxInFlight: 50, single: true });
    lanes.start("ordered");
    expect(lanes.canStart("ordered")).toBe(false);
    lanes.finish("ordered", 1, true);
    expect(lanes.canStart("ordered")).toBe(true);
  });

  it("shares an endpoint's in-flight limit between the live processes", () => {
    const lanes = lanesOf(10);
    lanes.setWorkers(3);
    expect(lanes.workerCount).toBe(3);
    for (let i = 0; i < 10; i++) lanes.reserve("ep", { ...plain, maxInFlight: 10 });
    let started = 0;
    while (lanes.canStart("ep")) {
      lanes.start("ep");
      started++;
    }
    // ceil(10 / 3)
    expect(started).toBe(4);
    // Endpoints that set none share the default the same way.
    lanes.reserve("default", { ...plain, maxInFlight: null });
    expect(lanes.capacity().free.get("default")).toBe(Math.ceil(10 / 3) - 1);
  });

  it("counts at least one live process", () => {
    const lanes = lanesOf(10);
    lanes.setWorkers(0);
    expect(lanes.workerCount).toBe(1);
  });
});

describe("Lanes: rate limits", () => {
  const limited = { ...plain, maxInFlight: 100, rateLimitPerSecond: 2 };

  it("starts a rate-limited endpoint's requests only with a token, refilled over time, a second's worth at most", () => {
    const lanes = lanesOf(10);
    for (let i = 0; i < 10; i++) lanes.reserve("rl", limited, 0);
    lanes.start("rl", 0);
    lanes.start("rl", 0);
    expect(lanes.canStart("rl", 0)).toBe(false);
    expect(lanes.nextTokenInMs("rl", 0)).toBe(500);
    expect(lanes.canStart("rl", 499)).toBe(false);
    expect(lanes.canStart("rl", 500)).toBe(true);
    // Idle for a minute: still only a second's worth.
    let started = 0;
    while (lanes.canStart("rl", 60_500)) {
      lanes.start("rl", 60_500);
      started++;
    }
    expect(started).toBe(2);
  });

  it("tells the claim to leave a lane without tokens out, and when its next token comes", () => {
    const lanes = lanesOf(10);
    lanes.reserve("rl", limited, 0);
    lanes.reserve("rl", limited, 0);
    lanes.start("rl", 0);
    lanes.start("rl", 0);
    const capacity = lanes.capacity(100);
    expect(capacity.exclude).toContain("rl");
    expect(capacity.nextTokenInMs).toBe(400);
    // A token's worth of room once it comes, minus what is buffered.
    lanes.reserve("rl", limited, 100);
    expect(lanes.capacity(600).exclude).toContain("rl");
    expect(lanes.capacity(1_100).free.get("rl")).toBe(1);
  });

  it("shares an endpoint's rate between the live processes", () => {
    const lanes = lanesOf(10);
    lanes.setWorkers(2);
    lanes.reserve("rl", limited, 0);
    lanes.reserve("rl", limited, 0);
    lanes.start("rl", 0);
    // 1 request per second here.
    expect(lanes.nextTokenInMs("rl", 0)).toBe(1_000);
  });

  it("says nothing of the next token for a lane that is not rate limited or has one", () => {
    const lanes = lanesOf(10);
    lanes.reserve("plain", plain, 0);
    lanes.reserve("rl", limited, 0);
    expect(lanes.nextTokenInMs("plain", 0)).toBeUndefined();
    expect(lanes.nextTokenInMs("rl", 0)).toBeUndefined();
    expect(lanes.capacity(0).nextTokenInMs).toBeUndefined();
  });
});

describe("Lanes: what the claim is told", () => {
  it("gives each lane with room its room, each tenant with work its room and a new endpoint's share, and a new tenant its own", () => {
    const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 120 });
    lanes.reserve("a1", { ...plain, tenantId: "a" });
    lanes.reserve("a2", { ...plain, tenantId: "a" });
    lanes.start("a1");
    const capacity = lanes.capacity();
    // One tenant: its share is 120 / 2 = 60, and it may lease twice that.
    // a1 has 1 in flight (limit 4): 3 more; a2 has 1 buffered: 3 more.
    expect(capacity.free).toEqual(new Map([["a1", 3], ["a2", 3]]));
    // Its 2 endpoints with work: a new one of it may take 60 / 4 = 15.
    expect(capacity.tenants).toEqual(new Map([["a", { free: 2 * 60 - 2, newEndpointFree: 15 }]]));
    expect(capacity.excludeTenants).toEqual([]);
    // A new tenant: 120 / 3 = 40, twice that to lease; its first endpoint 40 / 2.
    expect(capacity.newTenant).toEqual({ free: 80, newEndpointFree: 20 });
  });

  it("names the busiest endpoints by requests in flight and sums the others", () => {
    const lanes = lanesOf(10);
    for (const [id, n] of [["a", 3], ["b", 1], ["c", 2], ["d", 1]] as const) {
      for (let i = 0; i < n; i++) {
        lanes.reserve(id, plain);
        lanes.start(id);
      }
    }
    lanes.reserve("buffered-only", plain);
    expect(lanes.busiest(2)).toEqual({ endpoints: [["a", 3], ["c", 2]], others: 2 });
  });
});
