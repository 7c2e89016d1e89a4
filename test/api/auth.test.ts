/**
 * Authentication and tenancy: the token matrix per service and protocol,
 * tenant-scoped API keys that never see or change another tenant's data,
 * keys stored hashed and revoked at once, and the refusal to serve beyond
 * loopback without tokens.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { loadConfig } from "../../src/config.js";
import { client, type Protocol, PROTOCOLS } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { testEnv, useTestHookline } from "../support/hookline.js";

const ADMIN = "admin-token-0123456789abcdef";
const INGEST = "ingest-token-0123456789abcdef";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: ADMIN, HOOKLINE_INGEST_TOKEN: INGEST });

const admin = (token?: string, p: Protocol = "connect-http2") => client(WebhookAdmin, p, app.url, token);
const ingest = (token?: string, p: Protocol = "connect-http2") => client(EventIngest, p, app.url, token);
const event = (tenantId: string) => ({ tenantId, eventType: "t.e", payload: { case: "payloadJson" as const, value: "{}" } });

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("the token matrix", () => {
  it.each(PROTOCOLS)("over %s: none and wrong are Unauthenticated, ingest may only publish, admin may do both", async (p) => {
    const list = (t?: string) => codeOf(admin(t, p).listEndpoints({ tenantId: "m" }));
    const pub = (t?: string) => codeOf(ingest(t, p).publish(event("m")));
    expect(await list()).toBe(Code.Unauthenticated);
    expect(await pub()).toBe(Code.Unauthenticated);
    expect(await list("wrong-token-0123456789")).toBe(Code.Unauthenticated);
    expect(await pub("wrong-token-0123456789")).toBe(Code.Unauthenticated);
    expect(await list(INGEST)).toBe(Code.PermissionDenied);
    expect(await pub(INGEST)).toBe("ok");
    expect(await list(ADMIN)).toBe("ok");
    expect(await pub(ADMIN)).toBe("ok");
  });

  it("leaves health checks open", async () => {
    const res = await client(Health, "grpc", app.url).check({});
    expect(res.status).toBe(1);
  });
});

describe("tenant-scoped API keys", () => {
  it("are shown once, stored hashed, listed without tokens, and revoked at once", async () => {
    const made = await admin(ADMIN).createApiKey({ tenantId: "acme", scope: ApiKeyScope.ADMIN, description: "ci" });
    expect(made.token).toMatch(/^hlk_[0-9A-Z]{26}_[A-Za-z0-9_-]{43}$/);
    expect(made.apiKey).toMatchObject({ tenantId: "acme", scope: ApiKeyScope.ADMIN, description: "ci" });
    expect(made.token.startsWith(made.apiKey!.tokenPrefix)).toBe(true);
    const rows = await db.query<Record<string, unknown>>("SELECT * FROM api_keys WHERE id = $1", [made.apiKey!.id]);
    expect(JSON.stringify(rows)).not.toContain(made.token.slice(31));
    const listed = await admin(ADMIN).listApiKeys({ tenantId: "acme" });
    expect(listed.apiKeys.map((k) => k.id)).toEqual([made.apiKey!.id]);
    expect(JSON.stringify(listed, (_, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(made.token.slice(31));
    expect(await codeOf(admin(made.token).listEndpoints({}))).toBe("ok");
    const revoked = await admin(ADMIN).revokeApiKey({ id: made.apiKey!.id });
    expect(revoked.apiKey!.revokedAt).toBeDefined();
    expect(await codeOf(admin(made.token).listEndpoints({}))).toBe(Code.Unauthenticated);
  });

  it("an ingest key publishes for its tenant only and cannot administer", async () => {
    const { token } = await admin(ADMIN).createApiKey({ tenantId: "acme", scope: ApiKeyScope.INGEST });
    expect(await codeOf(ingest(token).publish(event("acme")))).toBe("ok");
    // No tenant named: its own.
    const own = await ingest(token).publish(event(""));
    const [row] = await db.query<{ tenant_id: string }>("SELECT tenant_id FROM events WHERE id = $1", [own.eventId]);
    expect(row!.tenant_id).toBe("acme");
    const err = await ingest(token)
      .publishBatch({ events: [event("acme"), event("globex")] })
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.PermissionDenied);
    expect((err as ConnectError).rawMessage).toContain("events[1].tenant_id");
    expect(await codeOf(admin(token).listEndpoints({}))).toBe(Code.PermissionDenied);
  });

  it("an admin key never sees or changes another tenant's data", async () => {
    const { token } = await admin(ADMIN).createApiKey({ tenantId: "acme", scope: ApiKeyScope.ADMIN });
    const acme = admin(token);
    const { endpoint: mine } = await acme.createEndpoint({ url: "http://127.0.0.1:9/hook" });
    expect(mine!.tenantId).toBe("acme");
    const { endpoint: theirs } = await admin(ADMIN).createEndpoint({ tenantId: "globex", url: "http://127.0.0.1:9/hook" });
    await ingest(ADMIN).publish(event("globex"));
    await ingest(ADMIN).publish(event("acme"));
    const theirDelivery = (await admin(ADMIN).listDeliveries({ tenantId: "globex" })).deliveries[0]!;

    expect(await codeOf(acme.createEndpoint({ tenantId: "globex", url: "http://127.0.0.1:9/x" }))).toBe(Code.PermissionDenied);
    expect(await codeOf(acme.listEndpoints({ tenantId: "globex" }))).toBe(Code.PermissionDenied);
    expect(await codeOf(acme.listDeliveries({ tenantId: "globex" }))).toBe(Code.PermissionDenied);
    expect(await codeOf(acme.getEndpoint({ id: theirs!.id }))).toBe(Code.NotFound);
    expect(await codeOf(acme.deleteEndpoint({ id: theirs!.id }))).toBe(Code.NotFound);
    expect(await codeOf(acme.getDelivery({ id: theirDelivery.id }))).toBe(Code.NotFound);
    expect(await codeOf(acme.retryDelivery({ id: theirDelivery.id }))).toBe(Code.NotFound);
    expect(await codeOf(acme.createApiKey({ tenantId: "globex", scope: ApiKeyScope.ADMIN }))).toBe(Code.PermissionDenied);
    expect(await codeOf(acme.listApiKeys({ tenantId: "globex" }))).toBe(Code.PermissionDenied);
    // What it lists is its own only, and the other tenant's endpoint is untouched.
    expect((await acme.listEndpoints({})).endpoints.map((e) => e.tenantId)).toEqual(["acme"]);
    expect(new Set((await acme.listDeliveries({})).deliveries.map((d) => d.tenantId))).toEqual(new Set(["acme"]));
    expect((await admin(ADMIN).getEndpoint({ id: theirs!.id })).endpoint!.disabled).toBe(false);
    // The status stream is scoped too.
    const abort = new AbortController();
    const stream = acme.watchDeliveries({ tenantId: "globex" }, { signal: abort.signal })[Symbol.asyncIterator]();
    expect(await codeOf(stream.next())).toBe(Code.PermissionDenied);
    abort.abort();
  });
});

describe("without tokens", () => {
  it("refuses to serve beyond loopback, with a message that says what to do", () => {
    expect(() => loadConfig(testEnv(db.url, { HOOKLINE_HOST: "0.0.0.0" }))).toThrow(/HOOKLINE_ADMIN_TOKEN/);
    expect(() => loadConfig(testEnv(db.url, { HOOKLINE_HOST: "0.0.0.0", HOOKLINE_ADMIN_TOKEN: ADMIN }))).not.toThrow();
    expect(() => loadConfig(testEnv(db.url, { HOOKLINE_HOST: "localhost" }))).not.toThrow();
    expect(() => loadConfig(testEnv(db.url, { HOOKLINE_ADMIN_TOKEN: "short" }))).toThrow(/at least 16/);
  });
});
