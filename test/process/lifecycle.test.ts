/**
 * Hookline as a process: started the way `npm start` starts it, reached with
 * `buf curl` through server reflection (no schema given), and stopped by
 * SIGTERM after the delivery in flight has finished and been recorded.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { useTestDatabase } from "../support/database.js";
import { testEnv } from "../support/hookline.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { useReceiver } from "../support/receiver.js";

const run = promisify(execFile);
const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

const receiver = useReceiver();
const db = useTestDatabase();

async function bufCurl(url: string, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const args = ["curl", "--protocol", "grpc", "--http2-prior-knowledge"];
  if (body !== undefined) args.push("-d", JSON.stringify(body));
  const { stdout } = await run(BUF, [...args, `${url}/${method}`]);
  return JSON.parse(stdout);
}

describe("a Hookline process", () => {
  let proc: HooklineProcess;

  afterAll(async () => {
    await proc?.kill("SIGKILL");
  });

  it("serves reflection, so buf curl lists and calls services without a schema", async () => {
    proc = await spawnHookline(testEnv(db.url));
    const { stdout } = await run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", proc.url]);
    expect(stdout.trim().split("\n")).toEqual(
      expect.arrayContaining(["hookline.v1.EventIngest", "hookline.v1.WebhookAdmin", "grpc.health.v1.Health"]),
    );
    expect(await bufCurl(proc.url, "grpc.health.v1.Health/Check")).toEqual({ status: "SERVING" });
    expect(await bufCurl(proc.url, "grpc.health.v1.Health/Check", { service: "hookline.v1.EventIngest" })).toEqual({
      status: "SERVING",
    });
    const created = await bufCurl(proc.url, "hookline.v1.WebhookAdmin/CreateEndpoint", {
      tenant_id: "cli",
      url: `${receiver.url}/cli`,
    });
    expect(created).toMatchObject({ endpoint: { tenantId: "cli", secret: expect.stringMatching(/^whsec_/) } });
    const published = await bufCurl(proc.url, "hookline.v1.EventIngest/Publish", {
      tenant_id: "cli",
      event_type: "cli.test",
      data: { hello: "world" },
    });
    expect(published).toMatchObject({ eventId: expect.stringMatching(/^evt_/), deliveryCount: 1 });
    await expect.poll(() => receiver.requests.some((r) => r.path === "/cli"), { timeout: 10_000 }).toBe(true);
  });

  it("finishes and records the delivery in flight on SIGTERM, then exits 0", async () => {
    const slowReceiver = await startReceiverWithDelay(700);
    try {
      const created = await bufCurl(proc.url, "hookline.v1.WebhookAdmin/CreateEndpoint", {
        tenant_id: "term",
        url: `${slowReceiver.url}/slow`,
      });
      expect(created).toHaveProperty("endpoint");
      const published = (await bufCurl(proc.url, "hookline.v1.EventIngest/Publish", {
        tenant_id: "term",
        event_type: "slow.one",
        payload_json: "{}",
      })) as { eventId: string };
      await slowReceiver.started;
      const code = await proc.kill("SIGTERM");
      expect(code).toBe(0);
      const rows = await db.query<{ status: number; attempt_count: number; locked_by: string | null }>(
        "SELECT d.status, d.attempt_count, q.locked_by FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id WHERE d.event_id = $1",
        [published.eventId],
      );
      expect(rows).toEqual([{ status: 3, attempt_count: 1, locked_by: null }]);
      expect(proc.logs.some((l) => l.msg === "Hookline stopped")).toBe(true);
    } finally {
      await slowReceiver.close();
    }
  });
});

describe("a Hookline process whose delivery outlasts the shutdown timeout", () => {
  it("gives the lease back on SIGTERM, so the delivery is due at once for another process, with no attempt used", async () => {
    const proc = await spawnHookline(testEnv(db.url, { HOOKLINE_SHUTDOWN_TIMEOUT: "300ms" }));
    const hanging = await startReceiverWithDelay(10_000);
    try {
      await bufCurl(proc.url, "hookline.v1.WebhookAdmin/CreateEndpoint", { tenant_id: "hang", url: `${hanging.url}/hang` });
      const published = (await bufCurl(proc.url, "hookline.v1.EventIngest/Publish", {
        tenant_id: "hang",
        event_type: "hang.one",
        payload_json: "{}",
      })) as { eventId: string };
      await hanging.started;
      expect(await proc.kill("SIGTERM")).toBe(0);
      const rows = await db.query<{ status: number; attempt_count: number; locked_by: string | null; due: boolean }>(
        "SELECT d.status, d.attempt_count, q.locked_by, q.due_at <= now() AS due FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id WHERE d.event_id = $1",
        [published.eventId],
      );
      expect(rows).toEqual([{ status: 1, attempt_count: 0, locked_by: null, due: true }]);
    } finally {
      await proc.kill("SIGKILL");
      await hanging.close();
    }
  });
});

/** A receiver that holds each request for `delayMs` before answering 200. */
async function startReceiverWithDelay(delayMs: number) {
  const http = await import("node:http");
  let markStarted: () => void = () => {};
  const started = new Promise<void>((r) => {
    markStarted = r;
  });
  const server = http.createServer((req, res) => {
    req.resume();
    markStarted();
    setTimeout(() => res.writeHead(200).end("late"), delayMs);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    started,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
