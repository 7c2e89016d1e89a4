/**
 * EventIngest as publishers see it: what a publish stores, fan-out rules,
 * batches (all or nothing), client streams, idempotency, and every kind of
 * bad input answered with InvalidArgument naming the field, writing nothing.
 */
import { gzipSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import type { PublishRequest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { client, useClient } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { envelope, RawClient, type RawRequest, type RawResponse, rpcStatus } from "../support/raw-http.js";

// No scheduler: these tests look at what publishing stores, not at delivery.
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false", HOOKLINE_MAX_PAYLOAD_BYTES: "1024" });
const ingest = useClient(EventIngest, "connect-http1", app);
const admin = useClient(WebhookAdmin, "connect-http1", app);

type Init = Partial<Omit<PublishRequest, "$typeName" | "$unknown">>;
const event = (over: Init = {}): Init => ({
  tenantId: "acme",
  eventType: "invoice.paid",
  payload: { case: "payloadJson", value: '{"n":1}' },
  ...over,
});

async function counts() {
  const [row] = await db.query<{ events: number; deliveries: number }>(
    "SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM deliveries)::int AS deliveries",
  );
  return row!;
}

async function expectCode(promise: Promise<unknown>, code: Code, message: RegExp) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should fail").toBeInstanceOf(ConnectError);
  expect(Code[(err as ConnectError).code]).toBe(Code[code]);
  expect((err as ConnectError).rawMessage).toMatch(message);
}

describe("fan-out", () => {
  it("creates one delivery per matching endpoint: same tenant, type filter (exact or prefix.*), channels", async () => {
    const mk = (over: Record<string, unknown>) =>
      admin.createEndpoint({ tenantId: "fan", url: "http://127.0.0.1:1/x", ...over });
    const all = (await mk({})).endpoint!;
    const exact = (await mk({ eventTypes: ["invoice.paid"] })).endpoint!;
    const prefix = (await mk({ eventTypes: ["invoice.*"] })).endpoint!;
    await mk({ eventTypes: ["user.created", "invoice"] }); // other types: no match
    const eu = (await mk({ channels: ["eu"] })).endpoint!;
    await mk({ channels: ["us"] }); // other channel: no match when the event has channels
    await mk({ disabled: true }); // disabled: no new deliveries
    await admin.createEndpoint({ tenantId: "other-tenant", url: "http://127.0.0.1:1/x" });

    const res = await ingest.publish(event({ tenantId: "fan", channels: ["eu"] }));
    expect(res.deliveryCount).toBe(4);
    const rows = await db.query<{ id: string; endpoint_id: string }>(
      "SELECT id, endpoint_id FROM deliveries WHERE event_id = $1",
      [res.eventId],
    );
    expect(rows.map((r) => r.endpoint_id).sort()).toEqual([all.id, exact.id, prefix.id, eu.id].sort());
    // Delivery ids are made in SQL; they are ULID-form ids led by the event's time.
    for (const r of rows) expect(r.id).toMatch(new RegExp(`^dlv_${res.eventId.slice(4, 14)}[0-9A-HJKMNP-TV-Z]{16}$`));
    expect(new Set(rows.map((r) => r.id)).size).toBe(4);

    // Without channels, channel-filtered endpoints match on type alone.
    const noChannels = await ingest.publish(event({ tenantId: "fan" }));
    expect(noChannels.deliveryCount).toBe(5);
  });

  it("stores an event with no subscribers, with zero deliveries", async () => {
    const res = await ingest.publish(event({ tenantId: "nobody-listens" }));
    expect(res).toMatchObject({ deliveryCount: 0, duplicate: false });
    expect(await db.query("SELECT id FROM events WHERE id = $1", [res.eventId])).toHaveLength(1);
  });

  it("stores the exact envelope: type, timestamp and the payload's own bytes", async () => {
    const raw = '{ "b": 2,\n  "a": [1, "x"] }';
    const res = await ingest.publish(event({ tenantId: "env", payload: { case: "payloadJson", value: raw } }));
    const [row] = await db.query<{ body: string }>("SELECT body FROM events WHERE id = $1", [res.eventId]);
    expect(row!.body).toMatch(/^\{"type":"invoice\.paid","timestamp":"\d{4}-\d\d-\d\dT[\d:.]+Z","data":/);
    expect(row!.body.endsWith(`"data":${raw}}`)).toBe(true);
  });
});

describe("idempotency", () => {
  it("returns the first event for a repeated key, with duplicate set and no new deliveries", async () => {
    await admin.createEndpoint({ tenantId: "idem", url: "http://127.0.0.1:1/x" });
    const first = await ingest.publish(event({ tenantId: "idem", idempotencyKey: "order-7" }));
    const before = await counts();
    const again = await ingest.publish(event({ tenantId: "idem", idempotencyKey: "order-7" }));
    expect(again).toMatchObject({ eventId: first.eventId, duplicate: true, deliveryCount: 0 });
    expect(await counts()).toEqual(before);
    // The same key in another tenant is another event.
    const other = await ingest.publish(event({ tenantId: "idem-2", idempotencyKey: "order-7" }));
    expect(other.duplicate).toBe(false);
  });

  it("stores one event under concurrent duplicates", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => ingest.publish(event({ tenantId: "idem-race", idempotencyKey: "k" }))),
    );
    expect(new Set(results.map((r) => r.eventId)).size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(await db.query("SELECT id FROM events WHERE tenant_id = 'idem-race'")).toHaveLength(1);
  });
});

describe("PublishBatch", () => {
  it("stores every event and answers in order", async () => {
    await admin.createEndpoint({ tenantId: "batch", url: "http://127.0.0.1:1/x", eventTypes: ["b.*"] });
    const { results } = await ingest.publishBatch({
      events: [event({ tenantId: "batch", eventType: "b.one" }), event({ tenantId: "batch", eventType: "x.two" })],
    });
    expect(results.map((r) => r.deliveryCount)).toEqual([1, 0]);
    const rows = await db.query<{ id: string; event_type: string }>(
      "SELECT id, event_type FROM events WHERE tenant_id = 'batch' ORDER BY id",
    );
    expect(rows.map((r) => [r.id, r.event_type])).toEqual([
      [results[0]!.eventId, "b.one"],
      [results[1]!.eventId, "x.two"],
    ]);
  });

  it("stores nothing when one event is invalid, naming it", async () => {
    const before = await counts();
    await expectCode(
      ingest.publishBatch({ events: [event(), event({ eventType: "" }), event()] }),
      Code.InvalidArgument,
      /^events\[1\]\.event_type: is required$/,
    );
    expect(await counts()).toEqual(before);
  });

  it("rejects an empty batch and one over 1,000 events", async () => {
    await expectCode(ingest.publishBatch({ events: [] }), Code.InvalidArgument, /^events: /);
    await expectCode(
      ingest.publishBatch({ events: Array.from({ length: 1001 }, () => event()) }),
      Code.InvalidArgument,
      /at most 1000/,
    );
  });
});

describe("PublishStream", () => {
  it("stores a client stream and answers once with one result per event, in order", async () => {
    async function* events() {
      for (let i = 0; i < 1_200; i++) yield event({ tenantId: "stream", idempotencyKey: `s-${i % 1_100}` });
    }
    const { results } = await ingest.publishStream(events());
    expect(results).toHaveLength(1_200);
    expect(results.filter((r) => r.duplicate)).toHaveLength(100);
    expect(results[1_100]!.eventId).toBe(results[0]!.eventId);
    expect(await db.query("SELECT id FROM events WHERE tenant_id = 'stream'")).toHaveLength(1_100);
  });

  it("works over gRPC and names the bad event of a stream", async () => {
    const grpcIngest = client(EventIngest, "grpc", app.url);
    async function* events(): AsyncIterable<Init> {
      yield event({ tenantId: "stream-bad" });
      yield event({ tenantId: "stream-bad", payload: { case: "payloadJson", value: "[1,2]" } });
    }
    await expectCode(grpcIngest.publishStream(events()), Code.InvalidArgument, /^events\[1\]\.payload_json: must be a JSON object$/);
  });
});

describe("bad input", () => {
  const cases: [string, Init, RegExp][] = [
    ["an empty tenant", { tenantId: "" }, /^tenant_id: is required$/],
    ["a tenant with spaces", { tenantId: "a b" }, /^tenant_id: /],
    ["an empty event type", { eventType: "" }, /^event_type: is required$/],
    ["a wildcard event type", { eventType: "invoice.*" }, /^event_type: /],
    ["no payload", { payload: { case: undefined } }, /^payload: set data or payload_json$/],
    ["payload_json that is not JSON", { payload: { case: "payloadJson", value: "{nope" } }, /^payload_json: is not valid JSON/],
    ["payload_json that is an array", { payload: { case: "payloadJson", value: "[]" } }, /^payload_json: must be a JSON object$/],
    ["payload_json that is a string", { payload: { case: "payloadJson", value: '"hi"' } }, /^payload_json: must be a JSON object$/],
    ["a bad channel", { channels: ["ok", ""] }, /^channels\[1\]: is required$/],
    ["an idempotency key over 256 characters", { idempotencyKey: "k".repeat(257) }, /^idempotency_key: /],
    ["an idempotency key of 257 characters beyond the BMP", { idempotencyKey: "😀".repeat(257) }, /^idempotency_key: must be at most 256 characters$/],
    [
      "payload_json nested more than 32 levels",
      { payload: { case: "payloadJson", value: `{"a":${"[".repeat(32)}${"]".repeat(32)}}` } },
      /^payload_json: is nested more than 32 levels deep \(objects and arrays\)$/,
    ],
  ];
  it.each(cases)("rejects %s with InvalidArgument naming the field, storing nothing", async (_name, over, message) => {
    const before = await counts();
    await expectCode(ingest.publish(event(over)), Code.InvalidArgument, message);
    expect(await counts()).toEqual(before);
  });

  it("counts an idempotency key's length in code points: 256 characters beyond the BMP are accepted", async () => {
    const key = "😀".repeat(256);
    const first = await ingest.publish(event({ idempotencyKey: key }));
    expect((await ingest.publish(event({ idempotencyKey: key }))).eventId).toBe(first.eventId);
  });

  it("takes data and payload_json nested 32 levels", async () => {
    let data: Record<string, unknown> = {};
    for (let i = 1; i < 32; i++) data = { a: data };
    await ingest.publish(event({ payload: { case: "data", value: data as never } }));
    await ingest.publish(event({ payload: { case: "payloadJson", value: JSON.stringify(data) } }));
  });

  // Binary Structs nested deeper than the protobuf decoder's 100 messages
  // were INTERNAL ("parse binary: ... maximum recursion depth"), before any
  // handler ran; now INVALID_ARGUMENT naming the field, on every protocol,
  // compressed or not, for Publish, PublishBatch and PublishStream.
  describe("a binary Struct nested 10,000 deep", () => {
    const varint = (n: number) => {
      const out: number[] = [];
      for (; n > 127; n >>>= 7) out.push((n & 127) | 128);
      out.push(n);
      return Buffer.from(out);
    };
    const field = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), varint(body.length), body]);
    /** A Struct {"a": {"a": ... {}}} of `depth` levels, built inside out without recursion. */
    const struct = (depth: number) => {
      let s = Buffer.alloc(0);
      for (let i = 1; i < depth; i++) s = field(0x0a, Buffer.concat([field(0x0a, Buffer.from("a")), field(0x12, field(0x2a, s))]));
      return s;
    };
    /** PublishRequest {tenant_id, event_type, data}. */
    const publishRequest = (depth: number) => Buffer.concat([field(0x0a, Buffer.from("acme")), field(0x12, Buffer.from("a.b")), field(0x1a, struct(depth))]);
    const deep = publishRequest(10_000);
    const shallow = publishRequest(2);
    const raw = () => new RawClient(app.url, 10_000);

    const cases: [string, RawRequest, RegExp][] = [
      ["Publish over gRPC", { http: "2", method: "POST", path: "/hookline.v1.EventIngest/Publish", headers: { "content-type": "application/grpc", te: "trailers" }, body: [envelope(0, deep)] }, /^data: is nested more than 32 levels deep/],
      [
        "Publish over gRPC, gzip",
        { http: "2", method: "POST", path: "/hookline.v1.EventIngest/Publish", headers: { "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" }, body: [envelope(1, gzipSync(deep))] },
        /^data: is nested more than 32 levels deep/,
      ],
      ["Publish over gRPC-Web", { http: "1.1", method: "POST", path: "/hookline.v1.EventIngest/Publish", headers: { "content-type": "application/grpc-web+proto" }, body: [envelope(0, deep)] }, /^data: /],
      ["Publish over Connect", { http: "1.1", method: "POST", path: "/hookline.v1.EventIngest/Publish", headers: { "content-type": "application/proto" }, body: [deep] }, /^data: /],
      [
        "Publish over Connect, gzip",
        { http: "2", method: "POST", path: "/hookline.v1.EventIngest/Publish", headers: { "content-type": "application/proto", "content-encoding": "gzip" }, body: [gzipSync(deep)] },
        /^data: /,
      ],
      [
        "PublishBatch over gRPC",
        { http: "2", method: "POST", path: "/hookline.v1.EventIngest/PublishBatch", headers: { "content-type": "application/grpc", te: "trailers" }, body: [envelope(0, Buffer.concat([field(0x0a, shallow), field(0x0a, deep)]))] },
        /^events\[1\]\.data: is nested more than 32 levels deep/,
      ],
      [
        "PublishStream over gRPC",
        { http: "2", method: "POST", path: "/hookline.v1.EventIngest/PublishStream", headers: { "content-type": "application/grpc", te: "trailers" }, body: [envelope(0, shallow), envelope(0, deep)] },
        /^events\[1\]\.data: is nested more than 32 levels deep/,
      ],
      [
        "Publish with an unknown field of groups nested 10,000 deep",
        {
          http: "2",
          method: "POST",
          path: "/hookline.v1.EventIngest/Publish",
          headers: { "content-type": "application/grpc", te: "trailers" },
          // Field 99, wire type 3 (start group) and 4 (end group).
          body: [envelope(0, Buffer.concat([shallow, Buffer.from(Array(10_000).fill([0x9b, 0x06]).flat()), Buffer.from(Array(10_000).fill([0x9c, 0x06]).flat())]))],
        },
        /^request: is nested more than 32 levels deep/,
      ],
      [
        "SendTestEvent over gRPC",
        { http: "2", method: "POST", path: "/hookline.v1.WebhookAdmin/SendTestEvent", headers: { "content-type": "application/grpc", te: "trailers" }, body: [envelope(0, Buffer.concat([field(0x0a, Buffer.from("ep_x")), field(0x12, struct(10_000))]))] },
        /^data: is nested more than 32 levels deep/,
      ],
      [
        "CreateEventType over gRPC",
        { http: "2", method: "POST", path: "/hookline.v1.WebhookAdmin/CreateEventType", headers: { "content-type": "application/grpc", te: "trailers" }, body: [envelope(0, Buffer.concat([field(0x0a, Buffer.from("acme")), field(0x12, Buffer.from("x.y")), field(0x22, struct(10_000))]))] },
        /^schema: is nested more than 32 levels deep/,
      ],
    ];
    it.each(cases)("%s: InvalidArgument naming the field", async (_name, request, message) => {
      const before = await counts();
      const client = raw();
      const result = await client.send(request);
      client.close();
      expect(result.kind).toBe("response");
      const status = rpcStatus((result as { response: RawResponse }).response);
      expect(status.code).toBe("InvalidArgument");
      expect(status.message).toMatch(message);
      expect(await counts()).toEqual(before);
    });

    it("stores a shallow binary Struct as before", async () => {
      const client = raw();
      const result = await client.send({ http: "2", method: "POST", path: "/hookline.v1.EventIngest/Publish", headers: { "content-type": "application/grpc", te: "trailers" }, body: [envelope(0, publishRequest(32))] });
      client.close();
      expect(rpcStatus((result as { response: RawResponse }).response).code).toBe("OK");
    });
  });

  it("rejects a misspelt JSON field instead of ignoring it (Connect JSON, as curl sends it)", async () => {
    const before = await counts();
    const res = await fetch(`${app.url}/hookline.v1.EventIngest/Publish`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenantId: "acme", eventTyp: "a.b", payloadJson: "{}" }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toMatch(/eventTyp/);
    expect(await counts()).toEqual(before);
  });

  it("rejects a payload over the size limit with ResourceExhausted", async () => {
    const before = await counts();
    const big = JSON.stringify({ blob: "x".repeat(2_000) });
    await expectCode(
      ingest.publish(event({ payload: { case: "payloadJson", value: big } })),
      Code.ResourceExhausted,
      /^payload: \d+ bytes is over the limit of 1024 bytes$/,
    );
    expect(await counts()).toEqual(before);
  });
});
