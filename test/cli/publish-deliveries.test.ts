/**
 * `hookline publish`, `hookline deliveries` and `hookline recover` run as
 * real processes against a real Hookline delivering to a real receiver:
 * single and bulk publishes (file, array, stdin) with progress on stderr,
 * listing, showing and retrying deliveries, and recovering an endpoint after
 * its receiver's outage.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJsonString } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { GetDeliveryResponseSchema } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { createHooklineClient, type HooklineClient } from "../../src/client/index.js";
import { runCli } from "../support/cli.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

let hookline: HooklineClient;
let env: Record<string, string>;
let dir: string;

const r = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db);

beforeAll(async () => {
  hookline = createHooklineClient({ baseUrl: app.url });
  env = { HOOKLINE_URL: app.url };
  dir = await mkdtemp(join(tmpdir(), "hookline-cli-"));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function endpoint(tenantId: string, path: string, retrySchedule?: string): Promise<string> {
  const delays = retrySchedule === "none" ? [] : undefined;
  const { endpoint } = await hookline.admin.createEndpoint({
    tenantId,
    url: `${r.url}${path}`,
    retryPolicy: delays ? { policy: { case: "schedule", value: { delays } } } : undefined,
  });
  return endpoint!.id;
}

async function deliveryCount(tenant: string): Promise<number> {
  const rows = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE tenant_id = $1", [tenant]);
  return rows[0]!.n;
}

describe("hookline publish", () => {
  it("publishes one event whose data reaches the receiver byte for byte", async () => {
    await endpoint("single", "/single");
    const data = '{"invoiceId": "inv_42", "amount": 12345678901234567890}';
    const [text, json] = await Promise.all([
      runCli(["publish", "invoice.paid", data, "--tenant", "single"], env),
      runCli(["publish", "invoice.sent", "{}", "--tenant", "single", "--channels", "eu", "--json"], env),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^event: +evt_\w+\ndeliveries: +1\nduplicate: +no\n$/);
    expect(JSON.parse(json.stdout)).toEqual({ eventId: expect.stringMatching(/^evt_/), deliveryCount: 1 });
    const received = await r.waitFor(2);
    const paid = received.find((q) => q.path === "/single" && q.body.includes("invoice.paid"))!;
    expect(paid.body).toContain(`"data":${data}`);
  });

  it("says so when an idempotency key was used before", async () => {
    const args = ["publish", "order.placed", '{"n":1}', "--tenant", "idem", "--idempotency-key", "order-1"];
    const first = await runCli(args, env);
    const again = await runCli([...args, "--json"], env);
    expect(first.stdout).toMatch(/^duplicate: +no$/m);
    expect(JSON.parse(again.stdout)).toMatchObject({ duplicate: true, eventId: /^event: +(evt_\w+)$/m.exec(first.stdout)![1] });
  });

  it("publishes an NDJSON file in batches, with progress on stderr", async () => {
    await endpoint("bulk", "/bulk");
    const lines = Array.from({ length: 250 }, (_, i) => JSON.stringify({ eventType: "bulk.e", data: { i }, idempotencyKey: `k${i}` }));
    const file = join(dir, "events.ndjson");
    await writeFile(file, `${lines.join("\n")}\n`);
    const res = await runCli(["publish", "--file", file, "--tenant", "bulk", "--batch-size", "100"], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe("published 100/250 events\npublished 200/250 events\npublished 250/250 events\n");
    expect(res.stdout).toBe("published 250 events (250 new, 0 duplicates), 250 deliveries\n");
    expect(await deliveryCount("bulk")).toBe(250);

    // Again, as JSON: one PublishResponse per event, in file order, all duplicates now.
    const json = await runCli(["--json", "publish", "--file", file, "--tenant", "bulk"], env);
    const results = json.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    expect(results).toHaveLength(250);
    expect(results.every((x) => x.duplicate === true)).toBe(true);
    expect(await deliveryCount("bulk")).toBe(250);
  });

  it("publishes one event per element of a JSON array in @file, and per line on stdin", async () => {
    await endpoint("array", "/array");
    const file = join(dir, "data.json");
    await writeFile(file, JSON.stringify([{ n: 1 }, { n: 2 }, { n: 3 }]));
    const [fromFile, fromStdin] = await Promise.all([
      runCli(["publish", "array.e", `@${file}`, "--tenant", "array", "--batch-size", "2"], env),
      runCli(["publish", "array.e", "-", "--tenant", "array"], env, '{"n":4}\n\n{"n":5}\n'),
    ]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stderr).toBe("published 2/3 events\npublished 3/3 events\n");
    expect(fromFile.stdout).toBe("published 3 events (3 new, 0 duplicates), 3 deliveries\n");
    expect(fromStdin.stdout).toBe("published 2 events (2 new, 0 duplicates), 2 deliveries\n");
    await expect
      .poll(() => r.requests.filter((q) => q.path === "/array").map((q) => JSON.parse(q.body).data.n).sort())
      .toEqual([1, 2, 3, 4, 5]);
  });

  it("stops at a refused batch, says what was stored, and numbers the event in the whole file", async () => {
    const file = join(dir, "bad.ndjson");
    const events = ["ok.a", "ok.b", "ok.c", "not valid", "ok.e"].map((eventType) => JSON.stringify({ eventType, data: {} }));
    await writeFile(file, events.join("\n"));
    const res = await runCli(["publish", "--file", file, "--tenant", "partial", "--batch-size", "2"], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/the first 2 of 5 events were published; the batch from events\[2\] on was not/);
    expect(res.stderr).toMatch(/^hookline: INVALID_ARGUMENT: events\[3\]\.event_type: /m);
    expect((await db.query("SELECT 1 FROM events WHERE tenant_id = 'partial'")).length).toBe(2);
  });

  it("refuses input that is not JSON objects, naming where, with exit code 2", async () => {
    const file = join(dir, "broken.ndjson");
    await writeFile(file, '{"eventType":"a","data":{}}\n{"eventType":\n');
    const [inline, ndjson, missing, both] = await Promise.all([
      runCli(["publish", "a.b", "{nope", "--tenant", "t"], env),
      runCli(["publish", "--file", file, "--tenant", "t"], env),
      runCli(["publish", "a.b", `@${join(dir, "missing.json")}`, "--tenant", "t"], env),
      runCli(["publish", "a.b", "{}", "--file", file], env),
    ]);
    expect(inline.code).toBe(2);
    expect(inline.stderr).toMatch(/^hookline: <data>: not JSON/);
    expect(ndjson.code).toBe(2);
    expect(ndjson.stderr).toMatch(/broken\.ndjson line 2: not JSON/);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*missing\.json: ENOENT/);
    expect(both.code).toBe(2);
  });
});

describe("hookline deliveries", () => {
  it("lists with filters, shows one with its attempts, and retries it", async () => {
    const ok = await endpoint("dlv", "/dlv-ok");
    const failing = await endpoint("dlv", "/dlv-fail", "none");
    r.reply((_, req) => (req.path === "/dlv-fail" ? { status: 500, body: "nope" } : { status: 200 }));
    const published = await hookline.ingest.publish({ tenantId: "dlv", eventType: "dlv.e", payload: { case: "payloadJson", value: "{}" } });
    await expect
      .poll(async () => (await hookline.admin.listDeliveries({ eventId: published.eventId })).deliveries.map((d) => d.status).sort())
      .toEqual([DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED].sort());

    const [all, failed, json] = await Promise.all([
      runCli(["deliveries", "list", "--tenant", "dlv", "--event", published.eventId, "--since", "10m"], env),
      runCli(["deliveries", "list", "--tenant", "dlv", "--status", "failed", "--type", "dlv.e"], env),
      runCli(["deliveries", "list", "--endpoint", ok, "--json"], env),
    ]);
    expect(all.code, all.stderr).toBe(0);
    const rows = all.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^ID +STATUS +ATTEMPTS +EVENT TYPE +ENDPOINT +CREATED +LAST$/);
    expect(rows).toHaveLength(3);
    const failedRows = failed.stdout.trimEnd().split("\n").slice(1);
    expect(failedRows).toHaveLength(1);
    expect(failedRows[0]).toMatch(new RegExp(`^dlv_\\w+ +FAILED +1 +dlv\\.e +${failing} +\\S+ +HTTP 500$`));
    const id = failedRows[0]!.split(" ")[0]!;
    expect(json.stdout.trimEnd().split("\n").map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ endpointId: ok, status: "DELIVERY_STATUS_SUCCEEDED" }),
    ]);

    const [shown, shownJson] = await Promise.all([
      runCli(["deliveries", "get", id], env),
      runCli(["deliveries", "get", id, "--json"], env),
    ]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^status: +FAILED$/m);
    expect(shown.stdout).toMatch(/^# +STARTED +STATUS +DURATION +ERROR\n1 +\S+ +500 +\d+ms +HTTP 500$/m);
    expect(fromJsonString(GetDeliveryResponseSchema, shownJson.stdout).delivery!.attempts[0]!.responseBody).toBe("nope");

    r.reply(() => ({ status: 200 }));
    const retried = await runCli(["deliveries", "retry", id], env);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(/^status: +RETRYING$/m);
    await expect.poll(async () => (await hookline.admin.getDelivery({ id })).delivery!.status).toBe(DeliveryStatus.SUCCEEDED);

    const unknown = await runCli(["deliveries", "retry", "dlv_01M84QR8HV51F708DC762E1011"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^hookline: NOT_FOUND: /);
  });
});

describe("hookline recover", () => {
  it("queues an endpoint's failed deliveries again, with progress on stderr", async () => {
    const id = await endpoint("rec", "/rec", "none");
    r.reply((_, req) => (req.path === "/rec" ? { status: 503 } : { status: 200 }));
    await hookline.ingest.publishBatch({
      events: Array.from({ length: 3 }, () => ({ tenantId: "rec", eventType: "rec.e", payload: { case: "payloadJson" as const, value: "{}" } })),
    });
    await expect
      .poll(async () => (await hookline.admin.listDeliveries({ endpointId: id, status: DeliveryStatus.FAILED })).deliveries.length)
      .toBe(3);
    r.reply(() => ({ status: 200 }));

    const res = await runCli(["recover", id, "--since", "10m"], env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`^recovering ${id}\\.\\.\\.$`, "m"));
    expect(res.stdout).toMatch(new RegExp(`^queued again 3 failed deliveries of ${id} created from \\S+Z\\n$`));
    await expect
      .poll(async () => (await hookline.admin.listDeliveries({ endpointId: id, status: DeliveryStatus.SUCCEEDED })).deliveries.length)
      .toBe(3);

    const json = await runCli(["recover", id, "--since", "10m", "--until", "now", "--json"], env);
    expect(JSON.parse(json.stdout)).toEqual({});
    const bad = await runCli(["recover", id, "--since", "yesterday"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/option '--since <time>' argument 'yesterday' is invalid/);
  });
});
