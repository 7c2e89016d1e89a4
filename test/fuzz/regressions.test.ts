/**
 * Inputs the fuzz tests next to this file found Hookline answering wrongly,
 * each kept as a plain test: NUL characters that reached PostgreSQL and
 * came back as Unavailable, Timestamps beyond their range that came back as
 * Internal, field names missing their "endpoint." prefix, error messages
 * that made gRPC calls hang (an ill-formed UTF-16 message) or reset the
 * whole HTTP/2 connection (a message of megabytes).
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { beforeAll, describe, expect, it } from "vitest";
import type { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { envelope, RawClient, rpcStatus } from "../support/raw-http.js";
import { failure } from "../support/rpc.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Low, so over-limit messages stay cheap to send. */
const MAX_REQUEST_BYTES = 64 * 1024;

let admin: ReturnType<typeof createClient<typeof WebhookAdmin>>;
let ingest: ReturnType<typeof createClient<typeof EventIngest>>;
let endpointId: string;

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false", HOOKLINE_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) });

beforeAll(async () => {
  const transport = createGrpcTransport({ baseUrl: app.url });
  admin = createClient(WebhookAdmin, transport);
  ingest = createClient(EventIngest, transport);
  endpointId = (await admin.createEndpoint({ tenantId: "regress", url: "http://127.0.0.1:1/" })).endpoint!.id;
});

async function expectInvalid(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await failure(promise);
  expect(`${Code[err.code]}: ${err.rawMessage}`).toMatch(new RegExp(`^InvalidArgument: ${message.source}`));
}

describe("NUL characters, which PostgreSQL text cannot hold", () => {
  const NUL = /must not contain NUL \(U\+0000\) characters$/;

  it("are refused in ids with InvalidArgument, not Unavailable", async () => {
    // Found as GetEndpointStats { id: "\u0000*" } and RetryDelivery { id: "\u0000" }.
    await expectInvalid(admin.getEndpointStats({ id: "\u0000*" }), new RegExp(`id: ${NUL.source}`));
    await expectInvalid(admin.retryDelivery({ id: "\u0000" }), new RegExp(`id: ${NUL.source}`));
  });

  it("are refused in any text field, named by its path", async () => {
    await expectInvalid(admin.createEndpoint({ tenantId: "regress", url: "http://127.0.0.1:1/", description: "a\u0000b" }), /description: /);
    await expectInvalid(admin.createEndpoint({ tenantId: "regress", url: "http://127.0.0.1:1/", headers: { "x-a\u0000": "v" } }), /headers\[x-a\\0\]: /);
    await expectInvalid(
      admin.updateEndpoint({ endpoint: { id: endpointId, description: "\u0000" }, updateMask: { paths: ["description"] } }),
      /endpoint\.description: /,
    );
    await expectInvalid(admin.listEndpoints({ tenantId: "regress", pageToken: Buffer.from("1:\u0000").toString("base64url") }), /page_token: /);
    await expectInvalid(
      ingest.publishBatch({ events: [{ tenantId: "regress", eventType: "a.b", payload: { case: "payloadJson", value: "{}" }, channels: ["eu", "\u0000"] }] }),
      /events\[0\]\.channels\[1\]: /,
    );
  });

  it("are refused in a client stream, naming the message", async () => {
    async function* events() {
      yield { tenantId: "regress", eventType: "a.b", payload: { case: "payloadJson" as const, value: "{}" } };
      yield { tenantId: "regress", eventType: "a.b", payload: { case: "payloadJson" as const, value: "{}" }, idempotencyKey: "k\u0000" };
    }
    await expectInvalid(ingest.publishStream(events()), /events\[1\]\.idempotency_key: /);
  });

  it("are refused in an event type's schema (stored as jsonb), and allowed in event data (stored escaped)", async () => {
    // Found as CreateEventType with a schema member name holding U+0000.
    await expectInvalid(admin.createEventType({ tenantId: "regress", name: "a.nul", schema: { "\u0000": {} } }), /schema: /);
    const published = await ingest.publish({ tenantId: "regress", eventType: "a.b", payload: { case: "data", value: { text: "a\u0000b" } } });
    const [row] = await db.query<{ body: string }>("SELECT body FROM events WHERE id = $1", [published.eventId]);
    expect(JSON.parse(row!.body).data).toEqual({ text: "a\u0000b" });
  });
});

describe("Timestamps outside 0001-01-01 to 9999-12-31", () => {
  it("are refused with InvalidArgument naming the field, not Internal", async () => {
    // Found as ListDeliveries { created_before: { seconds: 253402300800 } } (10000-01-01).
    await expectInvalid(admin.listDeliveries({ createdBefore: { seconds: 253_402_300_800n } }), /created_before: must be from 0001-01-01T00:00:00Z/);
    await expectInvalid(admin.listDeliveries({ createdAfter: { seconds: -(2n ** 63n) } }), /created_after: /);
    await expectInvalid(admin.recoverEndpoint({ endpointId, since: { seconds: 0n }, until: { seconds: 2n ** 62n } }), /until: /);
    await expectInvalid(admin.recoverEndpoint({ endpointId, since: { seconds: 0n, nanos: -1 } }), /since: /);
    const watch = admin.watchDeliveries({ since: { seconds: 2n ** 63n - 1n } });
    await expectInvalid((async () => {
      for await (const _ of watch);
    })(), /since: /);
  });

  it("are taken at the very end of the range", async () => {
    // Found as ListDeliveries { created_before: 9999-12-31T23:59:59.999999999Z }:
    // rounded up to the millisecond, it was 10000-01-01, which PostgreSQL refused.
    await expect(admin.listDeliveries({ createdBefore: { seconds: 253_402_300_799n, nanos: 999_999_999 } })).resolves.toBeDefined();
    await expect(admin.listDeliveries({ createdAfter: { seconds: -62_135_596_800n, nanos: 0 } })).resolves.toBeDefined();
  });
});

describe("UpdateEndpoint", () => {
  it("names the fields of its endpoint as endpoint.<field>", async () => {
    // Found as UpdateEndpoint { endpoint: { id: "" } } ("id: is required") and signature_scheme -1.
    await expectInvalid(admin.updateEndpoint({ endpoint: { id: "" }, updateMask: { paths: ["url"] } }), /endpoint\.id: is required$/);
    await expectInvalid(
      admin.updateEndpoint({ endpoint: { id: endpointId, signatureScheme: -1 as SignatureScheme }, updateMask: { paths: ["signature_scheme"] } }),
      /endpoint\.signature_scheme: unknown value -1$/,
    );
  });
});

describe("error messages on gRPC", () => {
  it("quoting a very long id are cut, and the connection keeps serving its other calls", async () => {
    // Found as GetEndpoint { id: "💩" x 70,000 }: the grpc-message trailer was
    // too large for HTTP/2, the stream was reset, then every call after it.
    const err = await failure(admin.getEndpoint({ id: "\u{1f4a9}".repeat(10_000) }));
    expect(Code[err.code]).toBe("NotFound");
    expect(err.rawMessage.length).toBeLessThanOrEqual(501);
    expect(err.rawMessage).not.toMatch(LONE_SURROGATE);
    expect((await admin.getEndpoint({ id: endpointId })).endpoint?.id).toBe(endpointId);
  });

  it("quoting ill-formed UTF-16 from a JSON request are answered, not left hanging", async () => {
    const raw = new RawClient(app.url, 5_000);
    try {
      // Found over gRPC-Web with JSON: V8's JSON.parse error quoted half a
      // surrogate pair, which connect-es could not percent-encode, and the
      // call was never answered.
      const cases: [string, string, string][] = [
        ["grpc-web+json", "/hookline.v1.WebhookAdmin/RetryDelivery", "\u{1b4d4}\u{924a1}\u{a8c1d}\u{10f585}"],
        ["grpc+json", "/hookline.v1.WebhookAdmin/ListEventTypes", "\u{6f505}\u{9b257}"],
        ["grpc+json", "/hookline.v1.WebhookAdmin/ListEndpoints", '{"pageSize":"\\ud800"}'],
        ["grpc+json", "/hookline.v1.WebhookAdmin/CreateEndpoint", '{"tenantId":"regress","\\udfff":1}'],
      ];
      for (const [type, path, json] of cases) {
        const result = await raw.send({
          http: "2",
          method: "POST",
          path,
          headers: { "content-type": `application/${type}`, te: "trailers", "x-grpc-web": "1" },
          body: [envelope(0, new Uint8Array(Buffer.from(json)))],
        });
        expect(result.kind, `${type} ${path} ${json}`).toBe("response");
        if (result.kind !== "response") continue;
        const status = rpcStatus(result.response);
        expect(status.code, `${type} ${path} ${json}`).toBe("InvalidArgument");
        expect(status.message).not.toMatch(LONE_SURROGATE);
      }
      expect(rpcStatus(await sendOk(raw)).code).toBe("OK");
    } finally {
      raw.close();
    }
  });
});

describe("over-limit messages on one HTTP/2 connection", () => {
  it("are refused one by one while the connection keeps serving the client's other calls", async () => {
    // Found by the malformed-bytes fuzz test: each message answered before
    // its body was read left its stream open and charged to the session,
    // and after about 400 the session refused every call (ENHANCE_YOUR_CALM).
    // Now the server closes such a session every 100 of them; a call sent
    // as that GOAWAY crosses it is refused unprocessed (REFUSED_STREAM), and
    // HTTP/2 lets a client send it again, which connect-node does not do
    // by itself.
    const refusedUnprocessed = (e: ConnectError) => e.rawMessage.includes("NGHTTP2_REFUSED_STREAM");
    async function again<T>(call: () => Promise<T>): Promise<T> {
      return call().catch((e: unknown) => {
        if (e instanceof ConnectError && refusedUnprocessed(e)) return call();
        throw e;
      });
    }
    const oversized = "x".repeat(MAX_REQUEST_BYTES + 30_000);
    const answers = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const e = await failure(again(() => ingest.publish({ tenantId: oversized })));
      answers.add(`${Code[e.code]}: ${e.rawMessage.replace(/\d+/g, "N")}`);
      if (i % 25 === 0) {
        const ok = await again(() => ingest.publish({ tenantId: "regress", eventType: "a.b", payload: { case: "payloadJson", value: "{}" } }));
        expect(ok.eventId).toMatch(/^evt_/);
      }
    }
    expect([...answers]).toEqual(["ResourceExhausted: message size N is larger than configured readMaxBytes N"]);
  }, 60_000);
});

async function sendOk(raw: RawClient) {
  const result = await raw.send({
    http: "2",
    method: "POST",
    path: "/hookline.v1.WebhookAdmin/ListEndpoints",
    headers: { "content-type": "application/grpc+json", te: "trailers" },
    body: [envelope(0, new Uint8Array(Buffer.from('{"tenantId":"regress"}')))],
  });
  if (result.kind !== "response") throw new Error(`no answer: ${result.kind}`);
  return result.response;
}
