/**
 * A hostile tenant's JSON Schema cannot stall the process. Its regexes run
 * on RE2 (linear time): before, `^(a+)+$` against 30 `a`s and a `!` took
 * 7.0 s on the event loop the API and the scheduler share, and another
 * tenant's publish sent 0.3 s later took 6.7 s; each further `a` doubled
 * it. A schema stored before (with a pattern RE2 cannot run) never runs on
 * a backtracking engine.
 *
 * Short version: 10,000 characters, a few rounds. Long version
 * (HOOKLINE_CHAOS=long): more rounds, more patterns, inputs up to the
 * payload limit, figures reported.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale } from "../support/chaos.js";
import { useClient } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { timed } from "../support/rpc.js";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_MAX_PAYLOAD_BYTES: String(256 * 1024) });
const admin = useClient(WebhookAdmin, "grpc", app);
const ingest = useClient(EventIngest, "grpc", app);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => Math.round(x * 10) / 10;

const publish = (tenantId: string, eventType: string, data: unknown) =>
  ingest.publish({ tenantId, eventType, payload: { case: "payloadJson", value: JSON.stringify(data) } });

describe("a schema pattern that backtracks catastrophically", () => {
  it("is accepted (RE2 runs it) and answered in < 50 ms against 10,000 characters, another tenant's publish unaffected", async () => {
    const patterns = scale(["^(a+)+$"], ["^(a+)+$", "^(a|aa)+$", "^(a|a?)+$", "(x+x+)+y", "^([a-z]+)*[0-9]$"]);
    const sizes = scale([10_000], [10_000, 100_000, 200_000]);
    const rounds = scale(7, 15);
    for (const [i, pattern] of patterns.entries()) {
      await admin.createEventType({
        tenantId: "mallory",
        name: `redos.${i}`,
        schema: { type: "object", properties: { s: { type: "string", pattern } } },
      });
    }
    await admin.createEventType({
      tenantId: "alice",
      name: "order.created",
      schema: { type: "object", properties: { id: { type: "string", pattern: "^ord_[0-9]+$" } }, required: ["id"] },
    });
    const alicePublish = () => timed(() => publish("alice", "order.created", { id: "ord_1" }));
    // Alice alone, for comparison.
    const alone: number[] = [];
    for (let r = 0; r < rounds; r++) alone.push((await alicePublish()).ms);

    for (const [i, pattern] of patterns.entries()) {
      for (const size of sizes) {
        const evil = { s: `${(pattern.includes("x") ? "x" : "a").repeat(size)}!` };
        const attack: number[] = [];
        const beside: number[] = [];
        for (let r = 0; r < rounds; r++) {
          // Alice's publish goes out while Mallory's is being answered.
          const mallory = timed(() => publish("mallory", `redos.${i}`, evil));
          const alice = alicePublish();
          const [m, a] = await Promise.all([mallory, alice]);
          expect(m.code).toBe("InvalidArgument");
          expect(m.message).toMatch(/^payload_json\.s: must match pattern/);
          expect(a.code).toBe("OK");
          attack.push(m.ms);
          beside.push(a.ms);
        }
        report(`redos: ${pattern} against ${size} characters`, {
          rounds,
          mallory_min_ms: ms(Math.min(...attack)),
          mallory_median_ms: ms(median(attack)),
          mallory_max_ms: ms(Math.max(...attack)),
          alice_alone_median_ms: ms(median(alone)),
          alice_beside_median_ms: ms(median(beside)),
          alice_beside_max_ms: ms(Math.max(...beside)),
        });
        // Answered in < 50 ms. On a busy 2-core machine a plain publish's
        // median alone can reach 50 ms, so: the quickest round under 50 ms,
        // and the median within 50 ms of Alice's plain publish. Before,
        // neither came back at all (2^10,000 steps).
        if (size === 10_000) {
          expect(Math.min(...attack)).toBeLessThan(50);
          expect(median(attack)).toBeLessThan(median(alone) + 50);
        }
        // Unaffected: Alice's publish beside the attack takes about what it takes alone.
        expect(median(beside)).toBeLessThan(median(alone) + 50);
      }
    }
  }, scale(30_000, 300_000));
});

describe("an event type stored before the schema rules", () => {
  it("never runs a pattern RE2 cannot run: its publishes fail at once with FailedPrecondition", async () => {
    // Stored directly, as an older Hookline would have: a backreference, on V8 exponential for "aaaa...!".
    await db.query("INSERT INTO event_types (tenant_id, name, schema) VALUES ($1, $2, $3)", [
      "mallory",
      "stored.backref",
      JSON.stringify({ type: "object", properties: { s: { pattern: "^(a+)+\\1$" } } }),
    ]);
    const first = await timed(() => publish("mallory", "stored.backref", { s: `${"a".repeat(40)}!` }));
    expect(first.code).toBe("FailedPrecondition");
    expect(first.message).toMatch(/^event_type: the stored schema of event type stored\.backref cannot be used \(schema: pattern .* cannot run on RE2/);
    expect(first.ms).toBeLessThan(1_000);
    // Nothing was stored; other types of the tenant still work.
    expect(await db.query("SELECT 1 FROM events WHERE event_type = 'stored.backref'")).toEqual([]);
    expect((await timed(() => publish("mallory", "untyped", { s: "x" }))).code).toBe("OK");
  });

  it("runs a stored pattern that RE2 can run on RE2, in linear time", async () => {
    await db.query("INSERT INTO event_types (tenant_id, name, schema) VALUES ($1, $2, $3)", [
      "mallory",
      "stored.redos",
      JSON.stringify({ type: "object", properties: { s: { pattern: "^(a+)+$" } } }),
    ]);
    const r = await timed(() => publish("mallory", "stored.redos", { s: `${"a".repeat(10_000)}!` }));
    expect(r.code).toBe("InvalidArgument");
    expect(r.ms).toBeLessThan(1_000);
  });
});

describe("CreateEventType", () => {
  it("refuses patterns RE2 cannot run and schemas over the bounds, with InvalidArgument naming schema", async () => {
    const cases: [JsonObject, RegExp][] = [
      [{ pattern: "(a)\\1" }, /^schema: pattern "\(a\)\\\\1" cannot run on RE2/],
      [{ properties: { a: { pattern: "a(?=b)" } } }, /^schema: pattern "a\(\?=b\)" cannot run on RE2/],
      [{ patternProperties: { "(?<!x)y": {} } }, /^schema: pattern .* cannot run on RE2/],
      [{ properties: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p${i}`, {}])) }, /^schema: has more than 256 objects/],
      [{ pattern: "a[ab]{999}[ab]{999}c" }, /^schema: pattern .* is too large/],
    ];
    for (const [schema, message] of cases) {
      const r = await timed(() => admin.createEventType({ tenantId: "mallory", name: "refused", schema }));
      expect(r.code).toBe("InvalidArgument");
      expect(r.message).toMatch(message);
    }
    expect(await db.query("SELECT 1 FROM event_types WHERE name = 'refused'")).toEqual([]);
  });
});
