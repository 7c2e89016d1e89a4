/**
 * SendTestEvent: a signed hookline.test event reaches the endpoint now, the
 * attempt comes back in the response, and nothing is stored or retried.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, expect, it } from "vitest";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

let db: TestDatabase;
let app: Awaited<ReturnType<typeof startTestHookline>>;
let r: Receiver;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestHookline(db.url);
  r = await startReceiver();
});

afterAll(async () => {
  await app?.stop();
  await r?.close();
  await db?.drop();
});

const count = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);

it("sends a signed test event and returns the attempt, storing nothing", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/test`, headers: { "x-env": "staging" } });
  r.reply(() => ({ status: 202, body: "thanks" }));
  const { attempt } = await admin.sendTestEvent({ id: endpoint!.id, data: { hello: "world" } });
  expect(attempt).toMatchObject({ number: 1, responseStatus: 202, responseBody: "thanks", error: "", errorClass: "" });
  expect(attempt!.startedAt).toBeDefined();
  const req = r.requests.at(-1)!;
  expect(req.headers["x-env"]).toBe("staging");
  const body = new Webhook(endpoint!.secret).verify(req.body, req.headers as Record<string, string>) as { type: string; data: unknown };
  expect(body).toMatchObject({ type: "hookline.test", data: { hello: "world" } });
  expect(await count("events")).toBe(0);
  expect(await count("deliveries")).toBe(0);
  expect(await count("attempts")).toBe(0);
});

it("reports a failing endpoint in the attempt, without retrying or touching its health", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/down` });
  r.reply(() => ({ status: 500, body: "boom" }));
  const before = r.requests.length;
  const { attempt } = await admin.sendTestEvent({ id: endpoint!.id });
  expect(attempt).toMatchObject({ responseStatus: 500, responseBody: "boom", error: "HTTP 500" });
  await new Promise((res) => setTimeout(res, 200));
  expect(r.requests.length).toBe(before + 1);
  expect(JSON.parse(r.requests.at(-1)!.body).data).toEqual({});
  const [row] = await db.query<{ consecutive_failures: number }>("SELECT consecutive_failures FROM endpoints WHERE id = $1", [endpoint!.id]);
  expect(row!.consecutive_failures).toBe(0);
  // Nothing listens here: a connection error, in the attempt.
  const { endpoint: closed } = await admin.createEndpoint({ tenantId: "t", url: "http://127.0.0.1:9/nothing" });
  const { attempt: refused } = await admin.sendTestEvent({ id: closed!.id });
  expect(refused).toMatchObject({ responseStatus: 0, errorClass: "connection" });
  const err = await admin.sendTestEvent({ id: "ep_missing" }).catch((e: unknown) => ConnectError.from(e));
  expect((err as ConnectError).code).toBe(Code.NotFound);
});
