/**
 * The schema pool (src/domain/schema-pool.ts): checks run in worker
 * threads with Ajv's answers, a check past the deadline is stopped with its
 * thread, which is replaced, and its schema suspended for its tenant only;
 * tenants are served in turn, a batch gives its thread back between
 * slices, each tenant's queue is bounded, a thread that dies is replaced,
 * and the threads never keep the process alive.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LimitExceededError } from "../../src/domain/errors.js";
import { type CheckFailure, MAX_STOPPED_SCHEMAS, type SchemaCheck, SchemaPool, type SchemaPoolOptions } from "../../src/domain/schema-pool.js";
import { sleep } from "../support/chaos.js";
import { distinctObjects, refChain as refChainSchema, UNIQUE_ITEMS } from "../support/costly-schemas.js";

const pools: SchemaPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function pool(options: Partial<SchemaPoolOptions> = {}): SchemaPool {
  const p = new SchemaPool({ workers: 1, timeoutMs: 10_000, maxQueuedPerTenant: 1_000, ...options });
  pools.push(p);
  return p;
}

const UNIQUE = JSON.stringify(UNIQUE_ITEMS);
const objects = (n: number) => JSON.stringify(distinctObjects(n));
const refChain = (levels?: number) => JSON.stringify(refChainSchema(levels));
/** Tens of ms per check: 1,000 objects, for the fairness tests. */
const SLOW = objects(1_000);

const PLAIN = JSON.stringify({ type: "object", properties: { id: { type: "string" } }, required: ["id"] });
const check = (schema: string, data: string, label = "t"): SchemaCheck => ({ schema, data, label });

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await p;
  return { value, ms: performance.now() - t };
}

describe("checking in a thread", () => {
  it("answers with the first refused payload by index, with Ajv's path and message", async () => {
    const p = pool({ workers: 2 });
    const lines = JSON.stringify({
      type: "object",
      properties: { lines: { type: "array", items: { properties: { amount: { type: "integer", minimum: 0 } } } } },
    });
    expect(await p.check("t", [check(PLAIN, '{"id":"a"}'), check(lines, '{"lines":[{"amount":1}]}')])).toBeUndefined();
    const items = [
      check(PLAIN, '{"id":"a"}'),
      check(lines, '{"lines":[{"amount":1},{"amount":-1}]}'),
      check(PLAIN, "{}"),
      check(JSON.stringify({ $ref: "#" }), "{}"),
    ];
    expect(await p.check("t", items)).toEqual({ index: 1, kind: "invalid", path: "/lines/1/amount", message: "must be >= 0" });
    expect(await p.check("t", items.slice(2))).toEqual({ index: 0, kind: "invalid", path: "", message: "must have required property 'id'" });
    expect(await p.check("t", items.slice(3))).toEqual({ index: 0, kind: "recursion" });
    // A batch spread over both threads still answers with its first refusal.
    const batch = Array.from({ length: 1_000 }, (_, i) => check(PLAIN, i === 700 || i === 900 ? "{}" : `{"id":"${i}"}`));
    expect(await p.check("t", batch)).toMatchObject({ index: 700, kind: "invalid" });
  });

  it("compiles under the rules of json-schema.ts, naming the field", async () => {
    const p = pool();
    expect(await p.compile("t", PLAIN, "t")).toBeUndefined();
    expect(await p.compile("t", JSON.stringify({ pattern: "(a)\\1" }), "t")).toMatchObject({
      kind: "refused",
      field: "schema",
      message: expect.stringMatching(/^pattern "\(a\)\\\\1" cannot run on RE2/),
    });
    const slow = pool({ compileTimeoutMs: 0 });
    expect(await slow.compile("t", PLAIN, "t")).toEqual({ kind: "refused", index: 0, field: "schema", message: "takes over 0 ms to compile; make it smaller or simpler" });
  });
});

describe("the deadline", () => {
  it("stops a check past it with its thread, starts another, and suspends the schema for its tenant only", async () => {
    const suspended: string[][] = [];
    const p = pool({ workers: 1, timeoutMs: 200, onSuspended: (...args) => suspended.push(args) });
    await p.check("alice", [check(PLAIN, '{"id":"a"}')]);
    // Before the pool, 15-34 s on the event loop.
    const stopped = await timed(p.check("mallory", [check(PLAIN, '{"id":"a"}'), check(refChain(), '{"a":1}', "costly.refs")]));
    expect(stopped.value).toEqual({ index: 1, kind: "stopped", reason: "a payload took over 200 ms to check against its schema" });
    expect(stopped.ms).toBeLessThan(200 + 1_500);
    // A replacement, and a spare from now on (see the next test).
    expect(p.stats()).toMatchObject({ timedOut: 1, started: 3 });
    expect(suspended).toEqual([["mallory", "costly.refs", "a payload took over 200 ms to check against its schema"]]);

    // Refused at once from now on, without a thread, and warned about once.
    const again = await timed(p.check("mallory", [check(refChain(), '{"b":2}', "costly.refs")]));
    expect(again.value).toMatchObject({ index: 0, kind: "suspended", remainingMs: expect.any(Number) });
    expect((again.value as { remainingMs: number }).remainingMs).toBeGreaterThan(50_000);
    expect(again.ms).toBeLessThan(50);
    expect(suspended).toHaveLength(1);
    expect(p.stats().timedOut).toBe(1);

    // The replacement thread serves; the tenant's other schemas are not suspended.
    expect(await p.check("mallory", [check(PLAIN, '{"id":"a"}')])).toBeUndefined();
    expect(await p.check("alice", [check(PLAIN, '{"id":"a"}')])).toBeUndefined();

    // A schema suspended for one tenant is not for another: it depends on the payload.
    expect((await p.check("mallory", [check(UNIQUE, objects(5_000), "costly.unique")]))?.kind).toBe("stopped");
    expect((await p.check("mallory", [check(UNIQUE, objects(10), "costly.unique")]))?.kind).toBe("suspended");
    expect(await p.check("bob", [check(UNIQUE, objects(10), "list")])).toBeUndefined();
  });

  it("refuses a suspended schema at the point of the batch where it first appears, and takes it again once the suspension ends", async () => {
    const p = pool({ workers: 1, timeoutMs: 200, suspendMs: 1_000 });
    expect((await p.check("mallory", [check(refChain(), "{}")]))?.kind).toBe("stopped");
    const batch = [check(PLAIN, '{"id":"a"}'), check(PLAIN, '{"id":"b"}'), check(refChain(), "{}"), check(PLAIN, "{}")];
    expect(await p.check("mallory", batch)).toMatchObject({ index: 2, kind: "suspended" });
    await sleep(1_100);
    expect((await p.check("mallory", batch))?.kind).toBe("stopped");
    expect(p.stats().timedOut).toBe(2);
  });

  it("keeps a spare thread once one has been stopped, which takes over at once when the next is", async () => {
    const p = pool({ workers: 1, timeoutMs: 200 });
    expect((await p.check("mallory", [check(refChain(), "{}")]))?.kind).toBe("stopped");
    await vi.waitFor(() => expect(p.stats()).toMatchObject({ threads: 2, ready: 2 }), { timeout: 20_000, interval: 20 });
    // Eve's costly check holds the one thread that may work; Alice's waits for it, and is then served by the spare
    // while the threads started to replace it are still starting.
    const eve = p.check("eve", [check(refChain(), "{}")]);
    const alice = await p.check("alice", [check(PLAIN, '{"id":"a"}')]);
    expect(alice).toBeUndefined();
    expect(p.stats()).toMatchObject({ timedOut: 2, threads: 2, ready: 1 });
    expect((await eve)?.kind).toBe("stopped");
  });

  it(`suspends a tenant whole once ${MAX_STOPPED_SCHEMAS} of its schemas are suspended, so new costly schemas cannot keep stopping threads`, async () => {
    const suspended: string[][] = [];
    const p = pool({ workers: 1, timeoutMs: 100, onSuspended: (...args) => suspended.push(args) });
    for (let i = 0; i < MAX_STOPPED_SCHEMAS; i++) {
      expect((await p.check("mallory", [check(refChain(22 + i), "{}", `costly.${i}`)]))?.kind).toBe("stopped");
    }
    const whole = `${MAX_STOPPED_SCHEMAS} schemas of tenant mallory were stopped at their deadline within 60 s`;
    expect(suspended.at(-1)).toEqual(["mallory", "*", whole]);
    expect(await p.check("mallory", [check(PLAIN, '{"id":"a"}')])).toMatchObject({ index: 0, kind: "suspended", reason: whole });
    expect(await p.compile("mallory", PLAIN, "new.type")).toMatchObject({ kind: "suspended", reason: whole });
    expect(p.stats().timedOut).toBe(MAX_STOPPED_SCHEMAS);
    expect(await p.check("alice", [check(PLAIN, '{"id":"a"}')])).toBeUndefined();
  });
});

describe("fairness", () => {
  /** Runs checks, recording the order in which they are answered. */
  function recorder() {
    const order: string[] = [];
    const run = (p: SchemaPool, tenant: string, items: SchemaCheck[], name = tenant) =>
      p.check(tenant, items).then((f: CheckFailure | undefined) => {
        order.push(name);
        return f;
      });
    return { order, run };
  }

  it("serves tenants in turn: one thread, a flood of slow checks delays another tenant's by about one", async () => {
    const p = pool({ workers: 1 });
    await p.check("warm", [check(UNIQUE, SLOW), check(PLAIN, '{"id":"a"}')]);
    const { order, run } = recorder();
    const flood = Array.from({ length: 8 }, (_, i) => run(p, "mallory", [check(UNIQUE, SLOW)], `mallory${i}`));
    const alice = await timed(run(p, "alice", [check(PLAIN, '{"id":"a"}')]));
    await Promise.all(flood);
    // Answered after the check in hand and at most one more (first come, it was the 9th).
    expect(order.indexOf("alice")).toBeLessThanOrEqual(2);
    expect(alice.value).toBeUndefined();
  });

  it("hands a batch's thread back between slices: a batch of slow checks delays another tenant's by about one check", async () => {
    const p = pool({ workers: 1 });
    await p.check("warm", [check(UNIQUE, SLOW), check(PLAIN, '{"id":"a"}')]);
    const { order, run } = recorder();
    const mallory = timed(run(p, "mallory", Array.from({ length: 8 }, () => check(UNIQUE, SLOW))));
    const alice = await timed(run(p, "alice", [check(PLAIN, '{"id":"a"}')]));
    const m = await mallory;
    expect(order).toEqual(["alice", "mallory"]);
    // About one of Mallory's eight checks, where a batch held to its end would take all eight.
    expect(alice.ms).toBeLessThan(m.ms / 3);
  });

  it("keeps one thread of two free of any one tenant, and serves the others in turn", async () => {
    const p = pool({ workers: 2 });
    // Slower than a first compile in a new thread, so the order below does not depend on which thread compiled what.
    const slower = objects(3_000);
    const { order, run } = recorder();
    const mallory = Array.from({ length: 3 }, (_, i) => run(p, "mallory", [check(UNIQUE, slower)], `mallory${i}`));
    // Mallory alone holds one thread: Alice's check takes the other at once.
    await run(p, "alice", [check(PLAIN, '{"id":"a"}')]);
    expect(order).toEqual(["alice"]);
    // Mallory and Eve hold both: Alice waits for at most one check per thread.
    const eve = Array.from({ length: 3 }, (_, i) => run(p, "eve", [check(UNIQUE, slower)], `eve${i}`));
    await run(p, "alice", [check(PLAIN, '{"id":"b"}')], "alice2");
    await Promise.all([...mallory, ...eve]);
    expect(order.indexOf("alice2") - 1).toBeLessThanOrEqual(2);
  });

  it("bounds each tenant's checks waiting or running; one request alone is always taken", async () => {
    const p = pool({ workers: 1, maxQueuedPerTenant: 3 });
    const waiting = [1, 2].map(() => p.check("mallory", [check(UNIQUE, SLOW)]));
    waiting.push(p.check("mallory", [check(PLAIN, '{"id":"a"}')]));
    const refused = p.check("mallory", [check(PLAIN, '{"id":"a"}')]);
    await expect(refused).rejects.toBeInstanceOf(LimitExceededError);
    await expect(refused).rejects.toThrow(
      "tenant mallory has 3 schema checks waiting or running, the limit is 3 (HOOKLINE_SCHEMA_QUEUE), so 1 more cannot wait; retry with backoff",
    );
    // Other tenants are not affected, and a request larger than the bound is taken when nothing else of its tenant waits.
    const big = Array.from({ length: 10 }, (_, i) => check(PLAIN, `{"id":"${i}"}`));
    expect(await p.check("alice", big)).toBeUndefined();
    await Promise.all(waiting);
    expect(await p.check("mallory", big)).toBeUndefined();
  });
});

describe("threads", () => {
  it("replaces a thread that dies, failing the check it was on", async () => {
    const errors: unknown[] = [];
    const p = pool({ workers: 1, onWorkerError: (err) => errors.push(err) });
    await p.check("alice", [check(PLAIN, '{"id":"a"}')]);
    const pending = p.check("mallory", [check(refChain(20), "{}", "costly")]);
    await p.workersForTests()[0]!.terminate();
    expect(await pending).toMatchObject({ index: 0, kind: "stopped", reason: expect.stringMatching(/^its check stopped the schema worker/) });
    expect(errors).toHaveLength(1);
    expect(await p.check("alice", [check(PLAIN, '{"id":"a"}')])).toBeUndefined();
    expect(p.stats()).toMatchObject({ threads: 2, started: 3, crashed: 1 });
  });

  it("stops every thread on close, failing what waits", async () => {
    const p = pool({ workers: 2 });
    await p.check("alice", [check(PLAIN, '{"id":"a"}')]);
    const pending = p.check("mallory", [check(refChain(20), "{}")]).catch((err: unknown) => err);
    await p.close();
    expect(await pending).toEqual(new Error("Hookline is stopping"));
    expect(p.stats().threads).toBe(0);
    await expect(p.check("alice", [check(PLAIN, '{"id":"a"}')])).rejects.toThrow("Hookline is stopping");
  });

  it("does not keep a process alive once its checks are answered", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hookline-pool-"));
    try {
      const script = join(dir, "check.mts");
      const module = new URL("../../src/domain/schema-pool.ts", import.meta.url).href;
      await writeFile(
        script,
        `import { SchemaPool } from ${JSON.stringify(module)};
const pool = new SchemaPool({ workers: 2, timeoutMs: 1000, maxQueuedPerTenant: 10 });
const failure = await pool.check("t", [{ schema: ${JSON.stringify(PLAIN)}, data: "{}", label: "t" }]);
console.log(JSON.stringify(failure));
`,
      );
      const t = performance.now();
      const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), timeout: 30_000 });
      expect(JSON.parse(stdout)).toMatchObject({ index: 0, kind: "invalid" });
      expect(performance.now() - t).toBeLessThan(30_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
