/**
 * The package's TypeScript client (hookline/client) over every protocol,
 * with a token, and the example in examples/ run as a user would run it.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createHooklineClient, DeliveryStatus } from "../../src/client/index.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TOKEN = "client-test-admin-token-0123456789";

const r = useReceiver(() => ({ status: 200 }));
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: TOKEN });

describe("createHooklineClient", () => {
  it.each(["connect", "grpc", "grpc-web"] as const)("publishes and administers over %s with a token", async (protocol) => {
    const hookline = createHooklineClient({ baseUrl: app.url, token: TOKEN, protocol });
    const { endpoint } = await hookline.admin.createEndpoint({ tenantId: `c-${protocol}`, url: `${r.url}/${protocol}` });
    const { eventId, deliveryCount } = await hookline.ingest.publish({
      tenantId: `c-${protocol}`,
      eventType: "t.e",
      payload: { case: "payloadJson", value: "{}" },
    });
    expect(deliveryCount).toBe(1);
    await expect
      .poll(async () => (await hookline.admin.listDeliveries({ eventId })).deliveries[0]?.status, { timeout: 5_000 })
      .toBe(DeliveryStatus.SUCCEEDED);
    expect((await hookline.admin.getEndpoint({ id: endpoint!.id })).endpoint!.url).toBe(`${r.url}/${protocol}`);
  });

  it("without the token is refused", async () => {
    const anonymous = createHooklineClient({ baseUrl: app.url });
    await expect(anonymous.admin.listEndpoints({ tenantId: "x" })).rejects.toThrow(/token/);
  });
});

describe("examples/publish-and-wait.ts", () => {
  it("runs against a live Hookline and prints the delivery's success", async () => {
    // The example imports "hookline/client", the package's export (dist/).
    await promisify(execFile)("npm", ["run", "build", "--silent"], { cwd: ROOT });
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", "examples/publish-and-wait.ts"], {
      cwd: ROOT,
      env: { ...process.env, HOOKLINE_URL: app.url, HOOKLINE_TOKEN: TOKEN, RECEIVER_URL: `${r.url}/example`, HOOKLINE_PROTOCOL: "grpc" },
      timeout: 30_000,
    });
    expect(stdout).toMatch(/^endpoint ep_/m);
    expect(stdout).toMatch(/^event evt_\w+, 1 deliveries$/m);
    expect(stdout).toMatch(/^delivery dlv_\w+: SUCCEEDED \(HTTP 200, attempt 1\)$/m);
  }, 60_000);
});
