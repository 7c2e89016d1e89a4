/**
 * The first real path, end to end over real sockets: create an endpoint,
 * publish, and the receiver gets the exact envelope with a Standard Webhooks
 * signature that the independent `standardwebhooks` package verifies, through
 * every client users reach Hookline with.
 */
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { VERSION } from "../../src/version.js";
import { client, PROTOCOLS } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { type Receiver, useReceiver } from "../support/receiver.js";
import { grpcJsClients } from "../support/grpc-js.js";

const receiver = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db);

function verify(secret: string, req: { body: string; headers: Record<string, unknown> }) {
  const headers = {
    "webhook-id": String(req.headers["webhook-id"]),
    "webhook-timestamp": String(req.headers["webhook-timestamp"]),
    "webhook-signature": String(req.headers["webhook-signature"]),
  };
  return new Webhook(secret).verify(req.body, headers);
}

describe.each(PROTOCOLS)("over %s", (protocol) => {
  it("delivers a published event, signed so that standardwebhooks verifies it", async () => {
    const admin = client(WebhookAdmin, protocol, app.url);
    const ingest = client(EventIngest, protocol, app.url);
    const tenantId = `tenant-${protocol}`;
    const { endpoint } = await admin.createEndpoint({
      tenantId,
      url: `${receiver.url}/hooks/${protocol}`,
      headers: { "X-Team": "billing" },
    });
    expect(endpoint?.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);

    const published = await ingest.publish({
      tenantId,
      eventType: "invoice.paid",
      payload: { case: "data", value: { invoice: "in_1", amount: 4200, paid: true } },
    });
    expect(published.eventId).toMatch(/^evt_[0-9A-Z]{26}$/);
    expect(published.deliveryCount).toBe(1);
    expect(published.duplicate).toBe(false);

    const requests = await receiver.waitFor(receiver.requests.filter((r) => r.path !== `/hooks/${protocol}`).length + 1);
    const req = requests.find((r) => r.path === `/hooks/${protocol}`)!;
    expect(req.method).toBe("POST");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["user-agent"]).toBe(`Hookline/${VERSION}`);
    expect(req.headers["x-team"]).toBe("billing");
    expect(req.headers["webhook-id"]).toBe(published.eventId);
    const payload = verify(endpoint!.secret, req);
    expect(payload).toMatchObject({ type: "invoice.paid", data: { invoice: "in_1", amount: 4200, paid: true } });
    expect(Object.keys(JSON.parse(req.body))).toEqual(["type", "timestamp", "data"]);

    // The delivery is recorded as succeeded, with its attempt.
    await expect.poll(async () => {
      const { deliveries } = await admin.listDeliveries({ tenantId });
      return deliveries[0]?.status;
    }).toBe(DeliveryStatus.SUCCEEDED);
    const { deliveries } = await admin.listDeliveries({ eventId: published.eventId });
    const { delivery } = await admin.getDelivery({ id: deliveries[0]!.id });
    expect(delivery?.attempts).toHaveLength(1);
    expect(delivery?.attempts[0]).toMatchObject({ number: 1, responseStatus: 200, error: "", responseBody: "ok" });
  });
});

describe("over a plain @grpc/grpc-js client built from the .proto files at run time", () => {
  it("creates an endpoint and publishes, and the receiver verifies the delivery", async () => {
    const { admin, ingest, close } = grpcJsClients(app.url);
    try {
      const endpoint = await admin.call("CreateEndpoint", { tenant_id: "tenant-grpc-js", url: `${receiver.url}/hooks/grpc-js` });
      const published = await ingest.call("Publish", {
        tenant_id: "tenant-grpc-js",
        event_type: "user.created",
        payload_json: '{"user": "u_1",  "tags": ["a"]}',
      });
      expect(published.delivery_count).toBe(1);
      const start = receiver.requests.length;
      await receiver.waitFor(start + 1).catch(() => undefined);
      const req = await waitForPath(receiver, "/hooks/grpc-js");
      expect(verify(endpoint.endpoint.secret, req)).toEqual({
        type: "user.created",
        timestamp: expect.any(String),
        data: { user: "u_1", tags: ["a"] },
      });
      // payload_json is delivered byte for byte, not re-serialised.
      expect(req.body).toContain('"data":{"user": "u_1",  "tags": ["a"]}');
    } finally {
      close();
    }
  });
});

async function waitForPath(r: Receiver, path: string) {
  await expect.poll(() => r.requests.some((q) => q.path === path), { timeout: 10_000 }).toBe(true);
  return r.requests.find((q) => q.path === path)!;
}
