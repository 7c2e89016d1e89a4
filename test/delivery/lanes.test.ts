/** The per-endpoint lanes of one scheduler: limits, the ready buffer, and holding a failing lane. */
import { describe, expect, it } from "vitest";
import { type LaneLimits, Lanes, PREFETCH_HOLD_MS } from "../../src/delivery/lanes.js";
import type { ClaimedDelivery } from "../../src/domain/delivery/claimed-delivery.js";
import { sampleClaimed } from "../support/claimed.js";

const plain = { tenantId: "t", maxInFlight: 4, rateLimitPerSecond: null, single: false };
/** Lanes of a process with room for 1,000 requests: fair shares never bind in these tests. */
const lanesOf = (defaultMaxInFlight: number, circuitFailureThreshold?: number) =>
  new Lanes({ defaultMaxInFlight, capacity: 1_000, circuitFailureThreshold });

/** A claimed delivery of `endpointId` under `limits`, its lease an hour long unless given. */
function claimed(endpointId: string, limits: LaneLimits, leaseUntil?: Date): ClaimedDelivery {
  return sampleClaimed({
    endpointId,
    tenantId: limits.tenantId,
    maxInFlight: limits.maxInFlight,
    rateLimitPerSecond: limits.rateLimitPerSecond,
    ordered: limits.single,
    ...(leaseUntil ? { leaseUntil } : {}),
  });
}
/** One delivery of `endpointId` claimed into its lane. */
const add = (lanes: Lanes, endpointId: string, limits: LaneLimits, now?: number) => lanes.add(claimed(endpointId, limits), now);
/** An attempt of `endpointId` ended after `durationMs`, and its outcome was stored. */
const finish = (lanes: Lanes, endpointId: string, durationMs: number, success: boolean, now?: number) => {
  lanes.settle(endpointId, { durationMs, success }, now);
  lanes.written(endpointId, now);
};
/** Starts everything that may start now; how many. */
const startAll = (lanes: Lanes, now?: number) => {
  let n = 0;
  while (lanes.next(now)) n++;
  return n;
};

describe("Lanes", () => {
  it("finds a lane's buffer low at half what it may hold, within its tenant's room", () => {
    // Room for 16 requests: the one tenant's share is 8 (it may lease 16), its endpoint's 4.
    const lanes = new Lanes({ defaultMaxInFlight: 100, capacity: 16 });
    // No lane yet: a claim may find work for it.
    expect(lanes.bufferLow("ep")).toBe(true);
    add(lanes, "ep", plain);
    startAll(lanes);
    finish(lanes, "ep", 1, true);
    for (let i = 0; i < 11; i++) add(lanes, "ep", plain);
    expect(startAll(lanes)).toBe(4);
    // A prefetch of 16, but with 4 in flight the tenant may buffer 12 more at most.
    expect(lanes.prefetch("ep")).toBe(16);
    expect(lanes.bufferTarget("ep")).toBe(12);
    expect(lanes.bufferedOf("ep")).toBe(7);
    expect(lanes.bufferLow("ep")).toBe(false);
    finish(lanes, "ep", 1, true);
    expect(startAll(lanes)).toBe(1);
    expect(lanes.bufferLow("ep")).toBe(true);
  });

  it("gives no ready buffer until a response time is known, then one sized by it", () => {
    const lanes = lanesOf(10);
    add(lanes, "ep", plain);
    expect(lanes.prefetch("ep")).toBe(0);
    expect(lanes.capacity().free.get("ep")).toBe(3);
    startAll(lanes);
    finish(lanes, "ep", 2, true);
    // Fast: capped at four times the in-flight limit.
    expect(lanes.prefetch("ep")).toBe(16);
    // Slow: what leaves the lane in PREFETCH_HOLD_MS.
    add(lanes, "slow", plain);
    startAll(lanes);
    finish(lanes, "slow", PREFETCH_HOLD_MS, true);
    expect(lanes.prefetch("slow")).toBe(4);
  });

  it("never buffers for ordered or rate-limited endpoints", () => {
    const lanes = lanesOf(10);
    for (const [id, limits] of [
      ["ordered", { ...plain, single: true }],
      ["limited", { ...plain, rateLimitPerSecond: 100 }],
    ] as const) {
      add(lanes, id, limits);
      expect(startAll(lanes)).toBe(1);
      finish(lanes, id, 1, true);
      expect(lanes.prefetch(id)).toBe(0);
    }
  });

  it("starts a reserved delivery only within the in-flight limit", () => {
    const lanes = lanesOf(10);
    for (let i = 0; i < 6; i++) add(lanes, "ep", plain);
    expect(startAll(lanes)).toBe(4);
    expect(lanes.bufferedOf("ep")).toBe(2);
    finish(lanes, "ep", 1, true);
    expect(lanes.next()?.endpointId).toBe("ep");
  });

  it("holds a lane that failed as often in a row as opens the circuit until those outcomes are stored", () => {
    const lanes = lanesOf(10, 3);
    for (let i = 0; i < 5; i++) add(lanes, "ep", plain);
    for (let i = 0; i < 3; i++) {
      lanes.next();
      // Settled with an outcome: unwritten until written.
      lanes.settle("ep", { durationMs: 1, success: false });
    }
    expect(lanes.next()).toBeUndefined();
    expect(lanes.capacity().exclude).toContain("ep");
    for (let i = 0; i < 3; i++) lanes.written("ep");
    // A success ends the run of failures.
    expect(lanes.next()).toBeDefined();
    lanes.settle("ep", { durationMs: 1, success: true });
    expect(lanes.next()).toBeDefined();
  });

  it("keeps an idle lane's response time for a while, then forgets it", () => {
    const lanes = lanesOf(10);
    add(lanes, "ep", plain, 0);
    lanes.next(0);
    finish(lanes, "ep", 2, true, 0);
    expect(lanes.capacity(1_000).free.get("ep")).toBe(4 + 16);
    expect(lanes.capacity(60_000).free.has("ep")).toBe(false);
    expect(lanes.prefetch("ep")).toBe(0);
  });

  describe("fair shares of the process's capacity", () => {
    const hog = { tenantId: "hog", maxInFlight: 1_000, rateLimitPerSecond: null, single: false };

    it("gives a lone tenant half the capacity and its lone endpoint a quarter, whatever its own limit", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      for (let i = 0; i < 500; i++) add(lanes, "hog-1", hog);
      expect(startAll(lanes)).toBe(64);
      // A second endpoint of the tenant: a third of the tenant's half (128 / 3).
      for (let i = 0; i < 500; i++) add(lanes, "hog-2", { ...hog });
      // Only hog-2 starts: hog-1 is past its new share.
      expect(startAll(lanes)).toBe(42);
      expect(lanes.busiest(2).endpoints).toEqual([["hog-1", 64], ["hog-2", 42]]);
    });

    it("leaves a newcomer tenant free slots at once, and no more claims for a tenant past its room", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      for (let i = 0; i < 500; i++) add(lanes, "hog-1", hog);
      startAll(lanes);
      const before = lanes.capacity();
      // A new tenant may claim twice its share (256 / 3), a new endpoint of it half of that share.
      expect(before.newTenant).toEqual({ free: 2 * 85, newEndpointFree: 42 });
      const victim = { tenantId: "victim", maxInFlight: null, rateLimitPerSecond: null, single: false };
      for (let i = 0; i < 20; i++) add(lanes, "victim-1", victim);
      // The hog holds more than its new share (85 / 2 for its endpoint): it starts nothing more.
      expect(startAll(lanes)).toBe(10);
      expect(lanes.busiest(2).endpoints).toEqual([["hog-1", 64], ["victim-1", 10]]);
      const after = lanes.capacity();
      expect(after.excludeTenants).toContain("hog");
      expect(after.exclude).toContain("hog-1");
      expect(after.excludeTenants).not.toContain("victim");
    });

    it("forgets a tenant's load once its work is done", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      add(lanes, "a", { ...plain, tenantId: "x" });
      expect(lanes.activeTenants).toBe(1);
      lanes.next();
      finish(lanes, "a", 1, true);
      expect(lanes.activeTenants).toBe(0);
      expect(lanes.tenantShare()).toBe(256);
    });

    it("treats a rate limit below the lowest allowed as the lowest, so the wait for a token fits a timer", () => {
      const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 256 });
      add(lanes, "slow", { ...plain, rateLimitPerSecond: 1e-7 }, 0);
      lanes.next(0);
      finish(lanes, "slow", 1, true, 0);
      expect(lanes.nextTokenInMs("slow", 0)).toBe(1_000_000);
    });
  });
});

describe("Lanes: counting and limits", () => {
  it("starts nothing when nothing was added, and refuses to count below zero", () => {
    const lanes = lanesOf(10);
    expect(lanes.next()).toBeUndefined();
    expect(() => lanes.settle("none", undefined)).toThrow(/nothing of it in flight/);
    add(lanes, "ep", plain);
    expect(lanes.next()?.endpointId).toBe("ep");
    lanes.settle("ep", undefined);
    expect(() => lanes.settle("ep", undefined)).toThrow(/below zero/);
    expect(() => lanes.written("ep")).toThrow(/no outcome of ep unwritten/);
  });

  it("gives a reserved delivery back unstarted: its room is free again, and an idle lane and tenant are let go", () => {
    const lanes = lanesOf(10);
    add(lanes, "ep", plain, 0);
    expect(lanes.bufferedOf("ep")).toBe(1);
    expect(lanes.activeTenants).toBe(1);
    expect(lanes.drop((id) => id === "ep", 0).map((d) => d.endpointId)).toEqual(["ep"]);
    expect(lanes.bufferedOf("ep")).toBe(0);
    expect(lanes.activeTenants).toBe(0);
    // Forgotten once idle for a while: no longer in the claim's lists.
    expect(lanes.capacity(60_000).free.has("ep")).toBe(false);
  });

  it("lets an ordered endpoint or a half-open circuit's probe have one request at a time, whatever its limit", () => {
    const lanes = lanesOf(10);
    for (let i = 0; i < 3; i++) add(lanes, "ordered", { ...plain, maxInFlight: 50, single: true });
    expect(startAll(lanes)).toBe(1);
    finish(lanes, "ordered", 1, true);
    expect(startAll(lanes)).toBe(1);
  });

  it("shares an endpoint's in-flight limit between the live processes", () => {
    const lanes = lanesOf(10);
    lanes.setWorkers(3);
    expect(lanes.workerCount).toBe(3);
    for (let i = 0; i < 10; i++) add(lanes, "ep", { ...plain, maxInFlight: 10 });
    // ceil(10 / 3)
    expect(startAll(lanes)).toBe(4);
    // Endpoints that set none share the default the same way.
    add(lanes, "default", { ...plain, maxInFlight: null });
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
    for (let i = 0; i < 10; i++) add(lanes, "rl", limited, 0);
    expect(startAll(lanes, 0)).toBe(2);
    expect(lanes.nextTokenInMs("rl", 0)).toBe(500);
    expect(lanes.next(499)).toBeUndefined();
    expect(startAll(lanes, 500)).toBe(1);
    // Idle for a minute: still only a second's worth.
    expect(startAll(lanes, 60_500)).toBe(2);
  });

  it("tells the claim to leave a lane without tokens out, and when its next token comes", () => {
    const lanes = lanesOf(10);
    add(lanes, "rl", limited, 0);
    add(lanes, "rl", limited, 0);
    lanes.next(0);
    lanes.next(0);
    const capacity = lanes.capacity(100);
    expect(capacity.exclude).toContain("rl");
    expect(capacity.nextTokenInMs).toBe(400);
    // A token's worth of room once it comes, minus what is buffered.
    add(lanes, "rl", limited, 100);
    expect(lanes.capacity(600).exclude).toContain("rl");
    expect(lanes.capacity(1_100).free.get("rl")).toBe(1);
  });

  it("shares an endpoint's rate between the live processes", () => {
    const lanes = lanesOf(10);
    lanes.setWorkers(2);
    add(lanes, "rl", limited, 0);
    add(lanes, "rl", limited, 0);
    lanes.next(0);
    // 1 request per second here.
    expect(lanes.nextTokenInMs("rl", 0)).toBe(1_000);
  });

  it("says nothing of the next token for a lane that is not rate limited or has one", () => {
    const lanes = lanesOf(10);
    add(lanes, "plain", plain, 0);
    add(lanes, "rl", limited, 0);
    expect(lanes.nextTokenInMs("plain", 0)).toBeUndefined();
    expect(lanes.nextTokenInMs("rl", 0)).toBeUndefined();
    expect(lanes.capacity(0).nextTokenInMs).toBeUndefined();
  });
});

describe("Lanes: what the claim is told", () => {
  it("gives each lane with room its room, each tenant with work its room and a new endpoint's share, and a new tenant its own", () => {
    const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 120 });
    add(lanes, "a1", { ...plain, tenantId: "a" });
    add(lanes, "a2", { ...plain, tenantId: "a" });
    expect(lanes.next()?.endpointId).toBe("a1");
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
        add(lanes, id, plain);
        expect(startAll(lanes)).toBe(1);
      }
    }
    add(lanes, "buffered-only", plain);
    expect(lanes.busiest(2)).toEqual({ endpoints: [["a", 3], ["c", 2]], others: 2 });
  });
});

describe("Lanes: add, next, settle", () => {
  it("gives each lane its turn: it starts what it may, then goes to the back", () => {
    const lanes = lanesOf(10);
    const two = { ...plain, maxInFlight: 2 };
    for (const id of ["a", "a", "a", "b", "b", "b"]) add(lanes, id, two);
    const order: string[] = [];
    for (let d = lanes.next(); d; d = lanes.next()) order.push(d.endpointId);
    expect(order).toEqual(["a", "a", "b", "b"]);
    // Each served lane went to the back, so the turns keep their order: a, then b.
    lanes.settle("a", undefined);
    lanes.settle("b", undefined);
    expect(lanes.next()?.endpointId).toBe("a");
    expect(lanes.next()?.endpointId).toBe("b");
    expect(lanes.next()).toBeUndefined();
    expect([lanes.inFlight, lanes.buffered]).toEqual([4, 0]);
  });

  it("sets aside a buffered delivery whose lease no longer covers its timeout plus the start margin", () => {
    const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 100, defaultTimeoutMs: 1_000, startMarginMs: 500 });
    const short = claimed("ep", plain, new Date(10_000 + 1_400));
    const long = claimed("ep", plain, new Date(10_000 + 1_600));
    lanes.add(short, 10_000);
    lanes.add(long, 10_000);
    expect(lanes.next(10_000)).toBe(long);
    expect(lanes.next(10_000)).toBeUndefined();
    expect(lanes.takeExpired()).toEqual([short]);
    expect(lanes.takeExpired()).toEqual([]);
    expect([lanes.inFlight, lanes.buffered]).toEqual([1, 0]);
  });

  it("counts outcomes unwritten from settle to written, and frees the slot at settle", () => {
    const lanes = lanesOf(10);
    add(lanes, "ep", plain);
    lanes.next();
    lanes.settle("ep", { durationMs: 5, success: true });
    expect([lanes.inFlight, lanes.unwritten]).toEqual([0, 1]);
    lanes.written("ep");
    expect(lanes.unwritten).toBe(0);
    // Aborted: nothing to write.
    add(lanes, "ep", plain);
    lanes.next();
    lanes.settle("ep", undefined);
    expect([lanes.inFlight, lanes.unwritten]).toEqual([0, 0]);
  });

  it("stops starting while in flight plus unwritten reach twice the process's capacity", () => {
    // Two tenants so that fair shares (4 / 3 each) leave the process's bound to bind.
    const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 4 });
    for (let i = 0; i < 6; i++) add(lanes, `ep-${i}`, { ...plain, tenantId: `t${i}` });
    expect(startAll(lanes)).toBe(4);
    for (let i = 0; i < 4; i++) lanes.settle(`ep-${i}`, { durationMs: 1, success: true });
    // 4 unwritten, nothing in flight: 4 may start, then 8 sent and unstored.
    expect(startAll(lanes)).toBe(2);
    expect(lanes.inFlight + lanes.unwritten).toBe(6);
    add(lanes, "ep-0", { ...plain, tenantId: "t0" });
    add(lanes, "ep-1", { ...plain, tenantId: "t1" });
    expect(startAll(lanes)).toBe(2);
    add(lanes, "ep-2", { ...plain, tenantId: "t2" });
    expect(startAll(lanes)).toBe(0);
    lanes.written("ep-0");
    lanes.settle("ep-4", undefined);
    expect(startAll(lanes)).toBe(1);
  });

  it("tells when a rate-limited lane with deliveries waiting gets its next token", () => {
    const at: number[] = [];
    const lanes = new Lanes({ defaultMaxInFlight: 10, capacity: 100, onTokenAt: (t) => at.push(t) });
    for (let i = 0; i < 3; i++) add(lanes, "rl", { ...plain, rateLimitPerSecond: 2 }, 0);
    expect(startAll(lanes, 0)).toBe(2);
    expect(at).toEqual([500]);
  });

  it("leaves blocked endpoints out of claims until their block ends, and takes the sweep's blocks as they are", () => {
    const lanes = lanesOf(10);
    lanes.block("open", 1_000);
    expect(lanes.capacity(999).exclude).toEqual(["open"]);
    expect(lanes.capacity(1_000).exclude).toEqual([]);
    lanes.block("probing", 5_000);
    lanes.setBlocked([{ endpointId: "swept", until: new Date(5_000) }]);
    expect(lanes.capacity(0).exclude).toEqual(["swept"]);
    lanes.unblock("swept");
    expect(lanes.capacity(0).exclude).toEqual([]);
  });

  it("drops the buffered deliveries of the endpoints chosen, in claim order, counting them out", () => {
    const lanes = lanesOf(10);
    const first = claimed("x", plain);
    const second = claimed("x", plain);
    lanes.add(first);
    lanes.add(claimed("y", plain));
    lanes.add(second);
    expect(lanes.drop((id) => id === "x")).toEqual([first, second]);
    expect(lanes.buffered).toBe(1);
    expect(lanes.next()?.endpointId).toBe("y");
  });
});
