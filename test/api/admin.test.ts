/**
 * WebhookAdmin as operators see it: endpoint create/get/list/delete with
 * validation, delivery listing and lookup (the other RPCs have their own
 * files next to this one).
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { useClient } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { failure } from "../support/rpc.js";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false" });
const admin = useClient(WebhookAdmin, "grpc", app);
const ingest = useClient(EventIngest, "grpc", app);

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
    ["a url with a fragment", { url: "https://example.com/hook#part" }, /^url: must not have a fragment/],
    ["a url with an empty fragment", { url: "https://example.com/hook#" }, /^url: must not have a fragment/],
    ["a url with port 0", { url: "http://example.com:0/hook" }, /^url: port must be from 1 to 65535, got 0$/],
    ["a url of 2049 characters", { url: `https://example.com/${"a".repeat(2049 - 20)}` }, /^url: must be at most 2048 characters$/],
    ["a url over 2048 characters once encoded", { url: `https://example.com/${"é".repeat(1000)}` }, /^url: must be at most 2048 characters once normalised/],
    ["a description of 1025 characters beyond the BMP", { description: "😀".repeat(1025) }, /^description: must be at most 1024 characters$/],
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

describe("text limits", () => {
  it("count characters as Unicode code points: a character beyond the BMP counts once, not as two UTF-16 units", async () => {
    const emoji = "😀"; // U+1F600: one code point, two UTF-16 units, four UTF-8 bytes
    const { endpoint } = await admin.createEndpoint({ tenantId: "len", url: `http://127.0.0.1:1/${emoji.repeat(100)}`, description: emoji.repeat(1024) });
    expect(endpoint!.description).toBe(emoji.repeat(1024));
    const updated = await admin.updateEndpoint({ endpoint: { id: endpoint!.id, description: `${emoji.repeat(1023)}é` }, updateMask: { paths: ["description"] } });
    expect(updated.endpoint!.description).toHaveLength(2047);
    const type = await admin.createEventType({ tenantId: "len", name: "len.type", description: emoji.repeat(1024) });
    expect(type.eventType!.description).toBe(emoji.repeat(1024));
    const key = await admin.createApiKey({ tenantId: "len", scope: 1, description: emoji.repeat(1000) });
    expect(key.apiKey!.description).toBe(emoji.repeat(1000));
    const over: [string, () => Promise<unknown>][] = [
      ["endpoint.description", () => admin.updateEndpoint({ endpoint: { id: endpoint!.id, description: emoji.repeat(1025) }, updateMask: { paths: ["description"] } })],
      ["description", () => admin.createEventType({ tenantId: "len", name: "len.other", description: emoji.repeat(1025) })],
      ["description", () => admin.createApiKey({ tenantId: "len", scope: 1, description: emoji.repeat(1001) })],
    ];
    for (const [field, call] of over) expect((await failure(call())).rawMessage).toMatch(new RegExp(`^${field}: must be at most \\d+ characters$`));
  });
});

describe("unknown enum numbers", () => {
  // Every enum field of every request message, set to a number the enum does not have (binary requests can carry any).
  const calls: [string, () => Promise<unknown>, RegExp][] = [
    ["CreateEndpoint signature_scheme", () => admin.createEndpoint({ tenantId: "enum", url: "http://127.0.0.1:1/", signatureScheme: 7 as never }), /^signature_scheme: unknown value 7$/],
    [
      "UpdateEndpoint endpoint.signature_scheme",
      async () => {
        const { endpoint } = await admin.createEndpoint({ tenantId: "enum", url: "http://127.0.0.1:1/" });
        return admin.updateEndpoint({ endpoint: { id: endpoint!.id, signatureScheme: 7 as never }, updateMask: { paths: ["signature_scheme"] } });
      },
      /^endpoint\.signature_scheme: unknown value 7$/,
    ],
    ["ListDeliveries status", () => admin.listDeliveries({ tenantId: "enum", status: 9 as never }), /^status: 9 is not a delivery status/],
    [
      "WatchDeliveries statuses",
      async () => {
        for await (const _ of admin.watchDeliveries({ tenantId: "enum", statuses: [1, 9 as never] })) break;
      },
      /^statuses\[1\]: 9 is not a delivery status/,
    ],
    ["CreateApiKey scope", () => admin.createApiKey({ tenantId: "enum", scope: 9 as never }), /^scope: must be API_KEY_SCOPE_INGEST or API_KEY_SCOPE_ADMIN$/],
  ];
  it.each(calls)("refuses %s with InvalidArgument naming the field", async (_name, call, message) => {
    const err = await failure(call());
    expect(Code[err.code]).toBe("InvalidArgument");
    expect(err.rawMessage).toMatch(message);
  });

  it("covers every enum field of every request message", () => {
    const found: string[] = [];
    const walk = (desc: DescMessage, prefix: string, seen: Set<string>) => {
      if (seen.has(desc.typeName)) return;
      for (const f of desc.fields) {
        if (f.enum) found.push(`${prefix}${f.name}`);
        if (f.message && !f.message.typeName.startsWith("google.protobuf.")) walk(f.message, `${prefix}${f.name}.`, new Set([...seen, desc.typeName]));
      }
    };
    for (const service of [WebhookAdmin, EventIngest]) for (const m of service.methods) walk(m.input, `${m.name} `, new Set());
    expect(found.sort()).toEqual(["CreateApiKey scope", "CreateEndpoint signature_scheme", "ListDeliveries status", "UpdateEndpoint endpoint.signature_scheme", "WatchDeliveries statuses"]);
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
