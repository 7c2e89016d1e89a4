/**
 * WebhookAdmin as operators see it: endpoint create/get/list/delete with
 * validation, delivery listing and lookup (the other RPCs have their own
 * files next to this one).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline } from "../support/hookline.js";

let db: TestDatabase;
let app: Awaited<ReturnType<typeof startTestHookline>>;
let admin: ReturnType<typeof client<typeof WebhookAdmin>>;
let ingest: ReturnType<typeof client<typeof EventIngest>>;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false" });
  admin = client(WebhookAdmin, "grpc", app.url);
  ingest = client(EventIngest, "grpc", app.url);
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function endpointCount(): Promise<number> {
  return Number((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM endpoints"))[0]!.n);
}

describe("endpoints", () => {
  it("creates an endpoint with every option and returns its secret only on create", async () => {
    const { endpoint } = await admin.createEndpoint({
      tenantId: "ops",
      url: "https://hooks.example.com/in?src=hookline",
      description: "billing",
      eventTypes: ["invoice.*", "user.created"],
      channels: ["eu"],
      headers: { "X-Api-Key": "k" },
      signatureScheme: SignatureScheme.GITHUB,
      retryPolicy: {
        policy: {
          case: "exponential",
          value: { base: durationFromMs(2_000), cap: durationFromMs(60_000), maxAttempts: 5 },
        },
      },
      timeoutSeconds: 30,
      maxInFlight: 4,
      ordered: true,
    });
    expect(endpoint).toMatchObject({
      id: expect.stringMatching(/^ep_[0-9A-Z]{26}$/),
      tenantId: "ops",
      url: "https://hooks.example.com/in?src=hookline",
      eventTypes: ["invoice.*", "user.created"],
      channels: ["eu"],
      headers: { "x-api-key": "k" },
      signatureScheme: SignatureScheme.GITHUB,
      timeoutSeconds: 30,
      maxInFlight: 4,
      ordered: true,
      disabled: false,
    });
    expect(endpoint!.secret).toMatch(/^whsec_/);
    expect(Buffer.from(endpoint!.secret.slice(6), "base64")).toHaveLength(32);

    const got = (await admin.getEndpoint({ id: endpoint!.id })).endpoint!;
    expect(got.secret).toBe("");
    expect(got.retryPolicy?.policy).toMatchObject({ case: "exponential", value: { maxAttempts: 5 } });
    expect({ ...got, secret: endpoint!.secret, $typeName: undefined }).toEqual({ ...endpoint, $typeName: undefined });
  });

  it("keeps a caller-given secret", async () => {
    const secret = `whsec_${Buffer.alloc(24, 7).toString("base64")}`;
    const { endpoint } = await admin.createEndpoint({ tenantId: "ops", url: "http://127.0.0.1:1/", secret });
    expect(endpoint!.secret).toBe(secret);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["an empty tenant", { tenantId: "" }, /^tenant_id: is required$/],
    ["a missing url", { url: "" }, /^url: is required$/],
    ["a malformed url", { url: "not a url" }, /^url: "not a url" is not an absolute URL$/],
    ["a non-http url", { url: "ftp://example.com/x" }, /^url: scheme must be http or https, got "ftp"$/],
    ["credentials in the url", { url: "https://u:p@example.com/" }, /^url: must not contain credentials/],
    ["a reserved header", { headers: { "Webhook-Signature": "x" } }, /^headers\[Webhook-Signature\]: is set by Hookline/],
    ["a bad header name", { headers: { "bad name": "x" } }, /^headers\[bad name\]: is not a valid header name$/],
    ["a header value with a newline", { headers: { "x-a": "1\r\nx-b: 2" } }, /^headers\[x-a\]: value must not contain CR, LF or NUL$/],
    ["a bad event type filter", { eventTypes: ["inv*ce"] }, /^event_types\[0\]: /],
    ["a timeout over 300 s", { timeoutSeconds: 301 }, /^timeout_seconds: /],
    ["a secret without whsec_", { secret: "abc" }, /^secret: must start with "whsec_"/],
    ["a secret too short", { secret: `whsec_${Buffer.alloc(8).toString("base64")}` }, /^secret: must encode 24 to 64 bytes, got 8$/],
    [
      "an exponential policy of 0 attempts",
      { retryPolicy: { policy: { case: "exponential", value: { base: durationFromMs(1000), maxAttempts: 0 } } } },
      /^retry_policy\.exponential\.max_attempts: /,
    ],
  ];
  it.each(bad)("rejects %s with InvalidArgument naming the field, storing nothing", async (_n, over, message) => {
    const before = await endpointCount();
    const err = await failure(admin.createEndpoint({ tenantId: "ops", url: "https://example.com/", ...over }));
    expect(Code[err.code]).toBe("InvalidArgument");
    expect(err.rawMessage).toMatch(message);
    expect(await endpointCount()).toBe(before);
  });

  it("answers NotFound for an unknown endpoint id, and InvalidArgument for none", async () => {
    const err = await failure(admin.getEndpoint({ id: "ep_01JZZZZZZZZZZZZZZZZZZZZZZZ" }));
    expect(Code[err.code]).toBe("NotFound");
    expect(err.rawMessage).toBe("endpoint ep_01JZZZZZZZZZZZZZZZZZZZZZZZ not found");
    expect(Code[(await failure(admin.getEndpoint({ id: "" }))).code]).toBe("InvalidArgument");
    expect(Code[(await failure(admin.deleteEndpoint({ id: "ep_nope" }))).code]).toBe("NotFound");
  });

  it("pages through a tenant's endpoints oldest first, without secrets", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await admin.createEndpoint({ tenantId: "paged", url: `http://127.0.0.1:1/${i}` })).endpoint!.id);
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await admin.listEndpoints({ tenantId: "paged", pageSize: 2, pageToken });
      expect(page.endpoints.length).toBeLessThanOrEqual(2);
      for (const e of page.endpoints) expect(e.secret).toBe("");
      seen.push(...page.endpoints.map((e) => e.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(ids);
    const err = await failure(admin.listEndpoints({ tenantId: "paged", pageToken: "garbage" }));
    expect(err.rawMessage).toMatch(/^page_token: /);
    expect(Code[(await failure(admin.listEndpoints({ tenantId: "paged", pageSize: 5000 }))).code]).toBe("InvalidArgument");
  });

  it("deletes an endpoint: pending deliveries fail with a reason, history stays, no new deliveries", async () => {
    const { endpoint } = await admin.createEndpoint({ tenantId: "del", url: "http://127.0.0.1:1/" });
    const { eventId } = await ingest.publish({ tenantId: "del", eventType: "a.b", payload: { case: "payloadJson", value: "{}" } });
    const { cancelledDeliveries } = await admin.deleteEndpoint({ id: endpoint!.id });
    expect(cancelledDeliveries).toBe(1);
    const { deliveries } = await admin.listDeliveries({ eventId });
    expect(deliveries[0]).toMatchObject({ status: DeliveryStatus.FAILED, lastError: "endpoint deleted" });
    expect(Code[(await failure(admin.getEndpoint({ id: endpoint!.id }))).code]).toBe("NotFound");
    const again = await ingest.publish({ tenantId: "del", eventType: "a.b", payload: { case: "payloadJson", value: "{}" } });
    expect(again.deliveryCount).toBe(0);
    expect((await admin.listEndpoints({ tenantId: "del" })).endpoints).toEqual([]);
  });
});

describe("deliveries", () => {
  it("lists newest first with combinable filters and pages", async () => {
    const a = (await admin.createEndpoint({ tenantId: "dl", url: "http://127.0.0.1:1/a" })).endpoint!;
    const b = (await admin.createEndpoint({ tenantId: "dl", url: "http://127.0.0.1:1/b", eventTypes: ["x.*"] })).endpoint!;
    const published: string[] = [];
    for (const type of ["x.one", "y.two", "x.three"]) {
      published.push((await ingest.publish({ tenantId: "dl", eventType: type, payload: { case: "payloadJson", value: "{}" } })).eventId);
    }
    const all = (await admin.listDeliveries({ tenantId: "dl" })).deliveries;
    expect(all).toHaveLength(5);
    expect(all.map((d) => d.id)).toEqual([...all.map((d) => d.id)].sort().reverse());
    expect(all.every((d) => d.status === DeliveryStatus.PENDING && d.attemptCount === 0)).toBe(true);

    const toB = (await admin.listDeliveries({ tenantId: "dl", endpointId: b.id })).deliveries;
    expect(toB.map((d) => d.eventId)).toEqual([published[2], published[0]]);
    const xOneToA = (await admin.listDeliveries({ endpointId: a.id, eventType: "x.one" })).deliveries;
    expect(xOneToA.map((d) => d.eventId)).toEqual([published[0]]);
    expect((await admin.listDeliveries({ tenantId: "dl", status: DeliveryStatus.SUCCEEDED })).deliveries).toEqual([]);

    const first = await admin.listDeliveries({ tenantId: "dl", pageSize: 3 });
    const second = await admin.listDeliveries({ tenantId: "dl", pageSize: 3, pageToken: first.nextPageToken });
    expect(second.nextPageToken).toBe("");
    expect([...first.deliveries, ...second.deliveries].map((d) => d.id)).toEqual(all.map((d) => d.id));
  });

  it("answers NotFound for an unknown delivery", async () => {
    const err = await failure(admin.getDelivery({ id: "dlv_01JZZZZZZZZZZZZZZZZZZZZZZZ" }));
    expect(Code[err.code]).toBe("NotFound");
  });
});
