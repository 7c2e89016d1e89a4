/**
 * Event types with JSON Schemas: created and listed per tenant, payloads
 * that do not match are refused with the path that failed (nothing is
 * stored), unknown types pass unless HOOKLINE_STRICT_EVENT_TYPES is on.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false" });
const strict = useTestHookline(db, { HOOKLINE_SCHEDULER: "false", HOOKLINE_STRICT_EVENT_TYPES: "true" });

const INVOICE = {
  type: "object",
  properties: { id: { type: "string" }, lines: { type: "array", items: { type: "object", properties: { amount: { type: "integer", minimum: 0 } }, required: ["amount"] } } },
  required: ["id", "lines"],
};

async function failure(p: Promise<unknown>): Promise<[Code, string]> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return [e.code, e.rawMessage];
  }
  throw new Error("no error");
}

const ev = (eventType: string, value: string, tenantId = "shop") => ({ tenantId, eventType, payload: { case: "payloadJson" as const, value } });

describe("CreateEventType and ListEventTypes", () => {
  it("create, list by name, and refuse duplicates, bad names and bad schemas", async () => {
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const { eventType } = await admin.createEventType({ tenantId: "shop", name: "invoice.paid", description: "paid", schema: INVOICE });
    expect(eventType).toMatchObject({ tenantId: "shop", name: "invoice.paid", description: "paid", schema: INVOICE });
    await admin.createEventType({ tenantId: "shop", name: "user.created" });
    await admin.createEventType({ tenantId: "shop", name: "cart.updated" });
    const first = await admin.listEventTypes({ tenantId: "shop", pageSize: 2 });
    expect(first.eventTypes.map((t) => t.name)).toEqual(["cart.updated", "invoice.paid"]);
    const second = await admin.listEventTypes({ tenantId: "shop", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.eventTypes.map((t) => t.name)).toEqual(["user.created"]);
    expect(second.nextPageToken).toBe("");
    expect(await failure(admin.createEventType({ tenantId: "shop", name: "invoice.paid" }))).toEqual([Code.AlreadyExists, expect.any(String)]);
    expect(await failure(admin.createEventType({ tenantId: "shop", name: "bad name" }))).toEqual([Code.InvalidArgument, expect.stringContaining("name")]);
    expect(await failure(admin.createEventType({ tenantId: "shop", name: "x.y", schema: { type: "nonsense" } }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("schema"),
    ]);
  });
});

describe("publishing against a schema", () => {
  it("accepts matching payloads and refuses the others with the failing path, storing nothing", async () => {
    const ingest = client(EventIngest, "connect-http2", app.url);
    const ok = await ingest.publish(ev("invoice.paid", '{"id":"inv_1","lines":[{"amount":5}]}'));
    expect(ok.eventId).toMatch(/^evt_/);
    const before = await db.query("SELECT count(*)::int AS n FROM events");
    expect(await failure(ingest.publish(ev("invoice.paid", '{"id":"inv_2","lines":[{"amount":-1}]}')))).toEqual([
      Code.InvalidArgument,
      expect.stringMatching(/^payload_json\.lines\[0\]\.amount: must be >= 0/),
    ]);
    expect(await failure(ingest.publish(ev("invoice.paid", '{"lines":[]}')))).toEqual([Code.InvalidArgument, expect.stringMatching(/^payload_json: must have required property 'id'/)]);
    expect(
      await failure(ingest.publishBatch({ events: [ev("user.created", "{}"), ev("invoice.paid", '{"id":7,"lines":[]}')] })),
    ).toEqual([Code.InvalidArgument, expect.stringMatching(/^events\[1\]\.payload_json\.id: must be string/)]);
    expect(
      await failure(ingest.publish({ tenantId: "shop", eventType: "invoice.paid", payload: { case: "data", value: { id: "x", lines: "no" } } })),
    ).toEqual([Code.InvalidArgument, expect.stringMatching(/^data\.lines: must be array/)]);
    expect(await db.query("SELECT count(*)::int AS n FROM events")).toEqual(before);
    // The same type name in another tenant has no schema.
    expect((await ingest.publish(ev("invoice.paid", '{"anything":true}', "other"))).eventId).toMatch(/^evt_/);
  });

  it("lets unknown types through, unless strict", async () => {
    expect((await client(EventIngest, "connect-http2", app.url).publish(ev("never.created", "{}"))).eventId).toMatch(/^evt_/);
    const strictIngest = client(EventIngest, "connect-http2", strict.url);
    expect(await failure(strictIngest.publish(ev("never.created", "{}")))).toEqual([Code.InvalidArgument, expect.stringContaining("event_type")]);
    expect((await strictIngest.publish(ev("user.created", "{}"))).eventId).toMatch(/^evt_/);
  });
});
