/**
 * Changing endpoints: UpdateEndpoint honours update_mask (and only it),
 * pausing keeps deliveries waiting and resuming sends them, and
 * RotateEndpointSecret keeps the old secret signing for its grace period,
 * checked with the standardwebhooks package.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { type ReceivedRequest, useReceiver } from "../support/receiver.js";

const admin = () => client(WebhookAdmin, "connect-http2", app.url);
const ingest = () => client(EventIngest, "connect-http2", app.url);

const r = useReceiver(() => ({ status: 200 }));
const db = useTestDatabase();
const app = useTestHookline(db);

async function codeAndMessage(call: Promise<unknown>): Promise<[Code, string]> {
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    return [e.code, e.rawMessage];
  }
  throw new Error("no error");
}

describe("UpdateEndpoint", () => {
  it("changes only the masked fields", async () => {
    const { endpoint } = await admin().createEndpoint({
      tenantId: "upd",
      url: `${r.url}/a`,
      description: "first",
      headers: { "x-team": "billing" },
      maxInFlight: 7,
    });
    const { endpoint: changed } = await admin().updateEndpoint({
      endpoint: { id: endpoint!.id, url: `${r.url}/b`, description: "ignored", headers: { "x-team": "payments" } },
      updateMask: { paths: ["url", "headers"] },
    });
    expect(changed).toMatchObject({ url: `${r.url}/b`, description: "first", headers: { "x-team": "payments" }, maxInFlight: 7 });
    expect(changed!.secret).toBe("");
    expect(timestampDate(changed!.updatedAt!).getTime()).toBeGreaterThan(timestampDate(endpoint!.updatedAt!).getTime() - 1);
    expect((await admin().getEndpoint({ id: endpoint!.id })).endpoint).toMatchObject({ url: `${r.url}/b`, description: "first" });
  });

  it("names what is wrong", async () => {
    const { endpoint } = await admin().createEndpoint({ tenantId: "upd", url: `${r.url}/c` });
    const id = endpoint!.id;
    expect(await codeAndMessage(admin().updateEndpoint({ endpoint: { id }, updateMask: { paths: [] } }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("update_mask"),
    ]);
    expect(await codeAndMessage(admin().updateEndpoint({ endpoint: { id }, updateMask: { paths: ["secret"] } }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("RotateEndpointSecret"),
    ]);
    expect(await codeAndMessage(admin().updateEndpoint({ endpoint: { id }, updateMask: { paths: ["url", "tenant_id"] } }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("update_mask.paths[1]"),
    ]);
    expect(
      await codeAndMessage(admin().updateEndpoint({ endpoint: { id, timeoutSeconds: 301 }, updateMask: { paths: ["timeout_seconds"] } })),
    ).toEqual([Code.InvalidArgument, expect.stringContaining("endpoint.timeout_seconds")]);
    expect(
      await codeAndMessage(
        admin().updateEndpoint({ endpoint: { id, headers: { "webhook-signature": "x" } }, updateMask: { paths: ["headers"] } }),
      ),
    ).toEqual([Code.InvalidArgument, expect.stringContaining("endpoint.headers")]);
    expect(await codeAndMessage(admin().updateEndpoint({ endpoint: { id: "ep_nope" }, updateMask: { paths: ["url"] } }))).toEqual([
      Code.NotFound,
      expect.any(String),
    ]);
    // Nothing was half-written.
    expect((await admin().getEndpoint({ id })).endpoint!.timeoutSeconds).toBe(0);
  });

  it("ignores values outside the mask, even ones it could not read", async () => {
    const { endpoint } = await admin().createEndpoint({ tenantId: "upd", url: `${r.url}/d`, signatureScheme: SignatureScheme.GITHUB });
    const id = endpoint!.id;
    const unreadable = {
      id,
      description: "changed",
      signatureScheme: 99 as SignatureScheme,
      retryPolicy: { policy: { case: "exponential" as const, value: { maxAttempts: 3 } } },
    };
    const { endpoint: changed } = await admin().updateEndpoint({ endpoint: unreadable, updateMask: { paths: ["description"] } });
    expect(changed).toMatchObject({ description: "changed", signatureScheme: SignatureScheme.GITHUB });
    expect(await codeAndMessage(admin().updateEndpoint({ endpoint: unreadable, updateMask: { paths: ["signature_scheme"] } }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("endpoint.signature_scheme"),
    ]);
    expect(await codeAndMessage(admin().updateEndpoint({ endpoint: unreadable, updateMask: { paths: ["retry_policy"] } }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("endpoint.retry_policy.exponential.base"),
    ]);
    expect((await admin().getEndpoint({ id })).endpoint!.signatureScheme).toBe(SignatureScheme.GITHUB);
  });

  it("pauses and resumes: waiting deliveries stay while paused and go out on resume", async () => {
    const { endpoint } = await admin().createEndpoint({ tenantId: "pause", url: `${r.url}/pause` });
    const id = endpoint!.id;
    await admin().updateEndpoint({ endpoint: { id, disabled: true }, updateMask: { paths: ["disabled"] } });
    // A delivery made before the pause (publishes skip paused endpoints).
    const before = r.requests.length;
    await db.query(
      `INSERT INTO events (id, tenant_id, event_type, body) VALUES ('evt_01JPAUSE0000000000000000000', 'pause', 't.e', '{}')`,
    );
    await db.query(
      `WITH d AS (
         INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status)
         VALUES ('dlv_01JPAUSE00000000000000000', 'evt_01JPAUSE0000000000000000000', $1, 'pause', 't.e', 1)
         RETURNING id, event_id, endpoint_id, tenant_id, seq
       )
       INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, due_at)
       SELECT id, endpoint_id, tenant_id, seq, now() FROM d`,
      [id],
    );
    await new Promise((res) => setTimeout(res, 500));
    expect(r.requests.filter((q) => q.path === "/pause").length).toBe(0);
    const { endpoint: resumed } = await admin().updateEndpoint({ endpoint: { id, disabled: false }, updateMask: { paths: ["disabled"] } });
    expect(resumed).toMatchObject({ disabled: false, disabledReason: "" });
    await expect.poll(() => r.requests.slice(before).filter((q) => q.path === "/pause").length, { timeout: 5_000 }).toBe(1);
  });
});

describe("RotateEndpointSecret", () => {
  const verifies = (secret: string, req: ReceivedRequest) => {
    try {
      new Webhook(secret).verify(req.body, req.headers as Record<string, string>);
      return true;
    } catch {
      return false;
    }
  };

  it("signs with both secrets during the grace period, then with the new one only", async () => {
    const { endpoint } = await admin().createEndpoint({ tenantId: "rot", url: `${r.url}/rot` });
    const old = endpoint!.secret;
    const rotated = await admin().rotateEndpointSecret({ id: endpoint!.id, gracePeriod: durationFromMs(1_500) });
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(old);
    expect(timestampDate(rotated.previousSecretExpiresAt!).getTime()).toBeGreaterThan(Date.now());
    const seen = r.requests.length;
    await ingest().publish({ tenantId: "rot", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
    await expect.poll(() => r.requests.slice(seen).filter((q) => q.path === "/rot").length).toBe(1);
    const during = r.requests.slice(seen).find((q) => q.path === "/rot")!;
    expect(verifies(rotated.secret, during)).toBe(true);
    expect(verifies(old, during)).toBe(true);
    await new Promise((res) => setTimeout(res, 1_600));
    const later = r.requests.length;
    await ingest().publish({ tenantId: "rot", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
    await expect.poll(() => r.requests.slice(later).filter((q) => q.path === "/rot").length).toBe(1);
    const after = r.requests.slice(later).find((q) => q.path === "/rot")!;
    expect(verifies(rotated.secret, after)).toBe(true);
    expect(verifies(old, after)).toBe(false);
  });

  it("retires the old secret at once with a zero grace, takes a given secret, and checks it", async () => {
    const { endpoint } = await admin().createEndpoint({ tenantId: "rot", url: `${r.url}/rot0` });
    const given = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;
    const rotated = await admin().rotateEndpointSecret({ id: endpoint!.id, secret: given, gracePeriod: durationFromMs(0) });
    expect(rotated).toMatchObject({ secret: given });
    expect(rotated.previousSecretExpiresAt).toBeUndefined();
    const [row] = await db.query<{ secrets: { secret: string; expiresAt: null }[] }>("SELECT secrets FROM endpoints WHERE id = $1", [
      endpoint!.id,
    ]);
    // One secret left, stored sealed (see test/signing/secret-box.test.ts).
    expect(row!.secrets).toHaveLength(1);
    expect(row!.secrets[0]!.secret).toMatch(/^enc:v1:/);
    expect(JSON.stringify(row)).not.toContain(given.slice(6));
    expect(await codeAndMessage(admin().rotateEndpointSecret({ id: endpoint!.id, secret: "nope" }))).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("secret"),
    ]);
    expect(
      await codeAndMessage(admin().rotateEndpointSecret({ id: endpoint!.id, gracePeriod: durationFromMs(31 * 86_400_000) })),
    ).toEqual([Code.InvalidArgument, expect.stringContaining("grace_period")]);
  });
});
