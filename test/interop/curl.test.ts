/**
 * The Connect protocol with nothing but curl and JSON: unary calls as plain
 * HTTP POSTs, errors as JSON with their code, and the bearer token header.
 * Skipped (and counted as skipped) where no curl is installed.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";

const run = promisify(execFile);
const TOKEN = "curl-interop-admin-token-0123456";
const hasCurl = await run("curl", ["--version"]).then(
  () => true,
  () => false,
);

let db: TestDatabase;
let app: TestHookline;

beforeAll(async () => {
  if (!hasCurl) return;
  db = await createTestDatabase();
  app = await startTestHookline(db.url, { HOOKLINE_ADMIN_TOKEN: TOKEN, HOOKLINE_SCHEDULER: "false" });
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

/** curl -s -w status: returns [HTTP status, parsed JSON body]. */
async function curl(path: string, body: unknown, token?: string): Promise<[number, Record<string, unknown>]> {
  const args = ["-s", "-w", "\\n%{http_code}", "-X", "POST", "-H", "content-type: application/json", "--data", JSON.stringify(body)];
  if (token) args.push("-H", `authorization: Bearer ${token}`);
  const { stdout } = await run("curl", [...args, `${app.url}${path}`]);
  const lines = stdout.split("\n");
  const status = Number(lines.pop());
  return [status, JSON.parse(lines.join("\n") || "{}")];
}

it.skipIf(!hasCurl)("creates an endpoint and publishes with JSON over the Connect protocol", async () => {
  const [s1, created] = await curl("/hookline.v1.WebhookAdmin/CreateEndpoint", { tenantId: "curl", url: "http://127.0.0.1:9/x" }, TOKEN);
  expect(s1).toBe(200);
  expect(created).toMatchObject({ endpoint: { tenantId: "curl", secret: expect.stringMatching(/^whsec_/) } });
  const [s2, published] = await curl(
    "/hookline.v1.EventIngest/Publish",
    { tenantId: "curl", eventType: "order.created", payloadJson: '{"orderId":"o_1"}' },
    TOKEN,
  );
  expect(s2).toBe(200);
  expect(published).toMatchObject({ eventId: expect.stringMatching(/^evt_/), deliveryCount: 1 });
  expect(await curl("/hookline.v1.EventIngest/Publish", { tenantId: "curl", eventType: "bad type", payloadJson: "{}" }, TOKEN)).toEqual([
    400,
    { code: "invalid_argument", message: expect.stringMatching(/^event_type: /) },
  ]);
  expect(await curl("/hookline.v1.EventIngest/Publish", { tenantId: "curl", eventType: "a.b" })).toEqual([
    401,
    { code: "unauthenticated", message: expect.stringContaining("token") },
  ]);
});
