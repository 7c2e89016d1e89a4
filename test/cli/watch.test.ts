/**
 * `hookline watch` run as a real process: one line per status update (or
 * NDJSON), and across a restart of the Hookline it watches (same port, same
 * database, events published meanwhile through another process) it
 * reconnects and resumes after the last line it printed, missing nothing and
 * repeating nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHooklineClient } from "../../src/client/index.js";
import { runCli, startCli, type CliProcess } from "../support/cli.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { freePort } from "../support/free-port.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

type App = TestHookline;
let db: TestDatabase;
let port: number;
let app: App | undefined;
let other: App | undefined;
let watcher: CliProcess | undefined;
let r: Receiver;

beforeAll(async () => {
  db = await createTestDatabase();
  port = await freePort();
  app = await startTestHookline(db.url, { HOOKLINE_PORT: String(port) });
  r = await startReceiver();
});

afterAll(async () => {
  await watcher?.stop();
  await app?.stop();
  await other?.stop();
  await r?.close();
  await db?.drop();
});

/** Publishes `n` events of `tenantId` through the Hookline at `url`. */
async function publish(url: string, tenantId: string, n: number): Promise<void> {
  const { ingest } = createHooklineClient({ baseUrl: url });
  await ingest.publishBatch({
    events: Array.from({ length: n }, () => ({ tenantId, eventType: "watch.e", payload: { case: "payloadJson" as const, value: "{}" } })),
  });
}

/** The fields of a line of `hookline watch`. */
function parseLine(line: string): { kind: string; delivery: string; cursor: string } {
  const m = /^\S+Z (\w+) +(dlv_\w+) evt_\w+ ep_\w+ \S+ \S+ .*cursor=(\S+)$/.exec(line);
  if (!m) throw new Error(`not a watch line: ${line}`);
  return { kind: m[1]!, delivery: m[2]!, cursor: m[3]! };
}

describe("hookline watch", () => {
  it("prints one line per update, or one DeliveryUpdate of JSON per line, replaying --since and stopping at --count", async () => {
    await createHooklineClient({ baseUrl: app!.url }).admin.createEndpoint({ tenantId: "past", url: `${r.url}/past` });
    await publish(app!.url, "past", 1);
    await r.waitFor(1);
    const env = { HOOKLINE_URL: app!.url };
    const [text, json] = await Promise.all([
      runCli(["watch", "--tenant", "past", "--since", "5m", "--count", "2"], env),
      runCli(["watch", "--tenant", "past", "--since", "5m", "--status", "succeeded", "--type", "watch.*", "--count", "1", "--json"], env),
    ]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines.map((l) => parseLine(l).kind)).toEqual(["CREATED", "SUCCEEDED"]);
    expect(lines[1]).toMatch(/ past watch\.e attempt=1 http=200 \d+ms cursor=\S+$/);
    // Not a terminal: no colour.
    expect(text.stdout).not.toContain("\x1b[");
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      kind: "DELIVERY_UPDATE_KIND_SUCCEEDED",
      status: "DELIVERY_STATUS_SUCCEEDED",
      tenantId: "past",
      cursor: parseLine(lines[1]!).cursor,
    });

    // --cursor resumes right after a line printed before.
    const after = await runCli(["watch", "--tenant", "past", "--cursor", parseLine(lines[0]!).cursor, "--count", "1"], env);
    expect(after.stdout).toBe(`${lines[1]}\n`);
  });

  it("resumes after a restart of the server on the same port, without gaps or repeats", async () => {
    const tenant = "live";
    await createHooklineClient({ baseUrl: app!.url }).admin.createEndpoint({ tenantId: tenant, url: `${r.url}/live` });
    const received = () => r.requests.filter((q) => q.path === "/live").length;
    watcher = startCli(["watch", "--tenant", tenant], { HOOKLINE_URL: app!.url });
    // It starts live: publish once it is watching.
    await expect.poll(() => app!.updates.watcherCount, { timeout: 15_000 }).toBe(1);
    await publish(app!.url, tenant, 2);
    await watcher.waitForLines(4);

    await app!.stop();
    app = undefined;
    // Meanwhile another process on the same database takes events and delivers them.
    other = await startTestHookline(db.url);
    await publish(other.url, tenant, 3);
    await expect.poll(received, { timeout: 15_000 }).toBe(5);
    await expect.poll(() => watcher!.stderr(), { timeout: 15_000 }).toMatch(/reconnecting in [\d.]+s, resuming after cursor \S+/);

    app = await startTestHookline(db.url, { HOOKLINE_PORT: String(port) });
    await publish(app.url, tenant, 1);
    // Two updates per delivery (CREATED, SUCCEEDED), in log order: a repeat would come before the last one.
    const lines = await watcher.waitForLines(12, 30_000);
    const updates = lines.map(parseLine);
    expect(new Set(updates.map((u) => u.cursor)).size).toBe(12);
    const kinds = new Map<string, string[]>();
    for (const u of updates) kinds.set(u.delivery, [...(kinds.get(u.delivery) ?? []), u.kind]);
    const deliveries = await db.query<{ id: string }>("SELECT id FROM deliveries WHERE tenant_id = $1", [tenant]);
    expect([...kinds.keys()].sort()).toEqual(deliveries.map((d) => d.id).sort());
    for (const k of kinds.values()) expect(k).toEqual(["CREATED", "SUCCEEDED"]);
    expect(await watcher.stop()).toBe(0);
    expect(watcher.lines).toHaveLength(12);
  }, 90_000);
});
