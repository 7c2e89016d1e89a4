/**
 * A revoked API key keeps no open stream: WatchDeliveries ends and
 * PublishStream refuses further events with UNAUTHENTICATED within 1 s of
 * the revocation, on the process that revoked it, on another process
 * sharing the database, and when the key is revoked by hand in SQL while
 * the processes' LISTEN connections are down (the notification is missed;
 * the periodic check of open streams' keys ends them). Events stored
 * before the revocation stay stored, none after it is. A watch whose
 * client does not read, and so cannot be sent its status, is reset.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { EventIngest, type PublishRequestSchema } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WatchDeliveriesRequestSchema, WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, sleep } from "../support/chaos.js";
import { client, type Protocol } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { type TestHookline, useTestHookline } from "../support/hookline.js";
import { envelope } from "../support/raw-http.js";
import { useReceiver } from "../support/receiver.js";

const ADMIN = "admin-token-0123456789abcdef";
/** The bound: streams end within 1 s of the revocation. */
const WITHIN_MS = 1_000;
/** Events PublishStream stores per statement (event-ingest.ts): the first batch is stored before the revocation. */
const BATCH = 500;

const receiver = useReceiver(() => ({ status: 200 }));
const db = useTestDatabase();
// Two processes on one database.
const a = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: ADMIN });
const b = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: ADMIN });

const event = (tenantId: string, i: number): MessageInitShape<typeof PublishRequestSchema> => ({
  tenantId,
  eventType: "t.e",
  payload: { case: "payloadJson", value: `{"i":${i}}` },
});

async function storedEvents(tenantId: string): Promise<number> {
  return Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE tenant_id = $1", [tenantId]))[0]!.n);
}

/** Ends every Hookline LISTEN connection to the test database, and waits until they are gone. */
async function dropListeners(): Promise<void> {
  const listeners = "FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'hookline-listener'";
  await db.query(`SELECT pg_terminate_backend(pid) ${listeners}`);
  await expect.poll(async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n ${listeners}`))[0]!.n), { interval: 5 }).toBe(0);
}

/** How a call ended, and when. */
interface Ending {
  code: Code | "ok";
  message: string;
  at: number;
}

function ending(err: unknown): Ending {
  if (err === undefined) return { code: "ok", message: "", at: Date.now() };
  const e = ConnectError.from(err);
  return { code: e.code, message: e.rawMessage, at: Date.now() };
}

/**
 * Opens a WatchDeliveries stream and a PublishStream with fresh API keys of
 * `tenant` on `on`, checks both work, revokes both keys with `revoke`, and
 * returns how each stream ended and how long after the revocation began.
 */
async function revokeDuringStreams(
  on: TestHookline,
  tenant: string,
  protocols: { watch: Protocol; publish: Protocol },
  revoke: (keyIds: string[]) => Promise<void>,
) {
  const root = client(WebhookAdmin, "connect-http2", a.url, ADMIN);
  await root.createEndpoint({ tenantId: tenant, url: `${receiver.url}/${tenant}` });
  const watchKey = await root.createApiKey({ tenantId: tenant, scope: ApiKeyScope.ADMIN, description: "watcher" });
  const publishKey = await root.createApiKey({ tenantId: tenant, scope: ApiKeyScope.INGEST, description: "publisher" });
  const watchers = on.updates.watcherCount;

  // The watch, reading all the time.
  const seen: string[] = [];
  const watchAbort = new AbortController();
  const watched = (async () => {
    try {
      for await (const u of client(WebhookAdmin, protocols.watch, on.url, watchKey.token).watchDeliveries({}, { signal: watchAbort.signal })) {
        seen.push(u.eventId);
      }
      return ending(undefined);
    } catch (err) {
      return ending(err);
    }
  })();
  await expect.poll(() => on.updates.watcherCount).toBe(watchers + 1);

  // The publisher: a first batch, then an event every 10 ms until its call ends.
  let sent = 0;
  let publishing = true;
  async function* events() {
    for (; sent < BATCH; sent++) yield event(tenant, sent);
    while (publishing) {
      await sleep(10);
      yield event(tenant, sent++);
    }
  }
  const published = client(EventIngest, protocols.publish, on.url, publishKey.token)
    .publishStream(events())
    .then(
      () => ending(undefined),
      (err: unknown) => ending(err),
    );
  // Both work: the first batch is stored, and the watch sees its deliveries.
  await expect.poll(() => storedEvents(tenant), { timeout: 10_000 }).toBe(BATCH);
  await expect.poll(() => seen.length, { timeout: 10_000 }).toBeGreaterThan(0);
  const sentBefore = sent;

  const revokedAt = Date.now();
  await revoke([watchKey.apiKey!.id, publishKey.apiKey!.id]);
  const [watch, publish] = await Promise.all([
    Promise.race([watched, sleep(10_000).then(() => ending(new ConnectError("still open after 10 s", Code.DeadlineExceeded)))]),
    Promise.race([published, sleep(10_000).then(() => ending(new ConnectError("still open after 10 s", Code.DeadlineExceeded)))]),
  ]);
  publishing = false;
  watchAbort.abort();
  await published;
  await watched;
  return {
    watch: { ...watch, afterMs: watch.at - revokedAt },
    publish: { ...publish, afterMs: publish.at - revokedAt },
    sentAfter: sent - sentBefore,
    stored: await storedEvents(tenant),
    watchersLeft: on.updates.watcherCount - watchers,
  };
}

function expectEnded(r: Awaited<ReturnType<typeof revokeDuringStreams>>) {
  expect(r.watch.code).toBe(Code.Unauthenticated);
  expect(r.watch.message).toMatch(/revoked/);
  expect(r.watch.afterMs).toBeLessThan(WITHIN_MS);
  expect(r.publish.code).toBe(Code.Unauthenticated);
  expect(r.publish.message).toContain(`the first ${BATCH} events were stored`);
  expect(r.publish.afterMs).toBeLessThan(WITHIN_MS);
  // Sent after the revocation, refused: only the batch stored before it is kept.
  expect(r.sentAfter).toBeGreaterThan(0);
  expect(r.stored).toBe(BATCH);
  expect(r.watchersLeft).toBe(0);
}

it("revoked by another process: both streams end within 1 s", async () => {
  const admin = client(WebhookAdmin, "connect-http2", a.url, ADMIN);
  const r = await revokeDuringStreams(b, "elsewhere", { watch: "connect-http1", publish: "connect-http2" }, async (ids) => {
    await Promise.all(ids.map((id) => admin.revokeApiKey({ id })));
  });
  report("streams of a key revoked by another process", {
    "watch ended after (ms)": r.watch.afterMs,
    "publish stream ended after (ms)": r.publish.afterMs,
    "events sent after the revocation (refused)": r.sentAfter,
  });
  expectEnded(r);
});

it("revoked by the same process: both streams end within 1 s", async () => {
  const admin = client(WebhookAdmin, "grpc", a.url, ADMIN);
  const r = await revokeDuringStreams(a, "here", { watch: "grpc", publish: "grpc" }, async (ids) => {
    await Promise.all(ids.map((id) => admin.revokeApiKey({ id })));
  });
  report("streams of a key revoked by the same process", {
    "watch ended after (ms)": r.watch.afterMs,
    "publish stream ended after (ms)": r.publish.afterMs,
  });
  expectEnded(r);
});

it("revoked in SQL while the LISTEN connections are down: the periodic check ends both streams within 1 s", async () => {
  const r = await revokeDuringStreams(b, "missed", { watch: "grpc-web", publish: "connect-http2" }, async (ids) => {
    // Every Hookline LISTEN connection of this database dropped (they come back after 1 s): the notification is lost.
    await dropListeners();
    await db.query("UPDATE api_keys SET revoked_at = now() WHERE id = ANY($1::text[])", [ids]);
  });
  report("streams of a key revoked while notifications are missed", {
    "watch ended after (ms)": r.watch.afterMs,
    "publish stream ended after (ms)": r.publish.afterMs,
  });
  expectEnded(r);
});

it("a key that is not revoked keeps its streams through the checks, and calls with a revoked key are refused", async () => {
  const root = client(WebhookAdmin, "connect-http2", a.url, ADMIN);
  const kept = await root.createApiKey({ tenantId: "kept", scope: ApiKeyScope.ADMIN });
  const other = await root.createApiKey({ tenantId: "kept", scope: ApiKeyScope.ADMIN });
  const watch = (token: string) => {
    const abort = new AbortController();
    const ended = (async () => {
      try {
        for await (const _ of client(WebhookAdmin, "grpc", b.url, token).watchDeliveries({}, { signal: abort.signal })) {
          // reading
        }
        return ending(undefined);
      } catch (err) {
        return abort.signal.aborted ? undefined : ending(err);
      }
    })();
    return { abort, ended };
  };
  const keptWatch = watch(kept.token);
  let keptEnded: Ending | undefined;
  void keptWatch.ended.then((e) => {
    keptEnded = e;
  });
  const otherWatch = watch(other.token);
  await expect.poll(() => b.updates.watcherCount).toBe(2);
  // Only a check of every open stream's key can end the other one (its
  // notification is lost), so once it has ended, the kept key was checked
  // after it too.
  await dropListeners();
  await db.query("UPDATE api_keys SET revoked_at = now() WHERE id = $1", [other.apiKey!.id]);
  expect((await otherWatch.ended)?.code).toBe(Code.Unauthenticated);
  expect(keptEnded).toBeUndefined();
  expect(b.updates.watcherCount).toBe(1);
  const refused = await client(WebhookAdmin, "grpc", b.url, other.token)
    .listEndpoints({})
    .then(
      () => "ok",
      (err: unknown) => ConnectError.from(err).code,
    );
  expect(refused).toBe(Code.Unauthenticated);
  keptWatch.abort.abort();
  await keptWatch.ended;
});

it("a watch whose client does not read is reset within 1 s of its key's revocation", async () => {
  const root = client(WebhookAdmin, "connect-http2", a.url, ADMIN);
  await root.createEndpoint({ tenantId: "deaf", url: `${receiver.url}/deaf` });
  const key = await root.createApiKey({ tenantId: "deaf", scope: ApiKeyScope.ADMIN });
  const watchers = b.updates.watcherCount;
  // A flow-control window of 0: Hookline can send headers but no message.
  const session = http2.connect(b.url, { settings: { initialWindowSize: 0 } });
  session.on("error", () => {});
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/hookline.v1.WebhookAdmin/WatchDeliveries",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${key.token}`,
    });
    stream.on("error", () => {});
    const closed = new Promise<{ at: number; rstCode: number }>((resolve) => stream.on("close", () => resolve({ at: Date.now(), rstCode: stream.rstCode ?? -1 })));
    const answered = new Promise<void>((resolve) => stream.on("response", () => resolve()));
    stream.end(envelope(0, toBinary(WatchDeliveriesRequestSchema, create(WatchDeliveriesRequestSchema, {}))));
    await expect.poll(() => b.updates.watcherCount).toBe(watchers + 1);
    // Its headers go out with its first update, which stays unsent.
    await client(EventIngest, "connect-http2", a.url, ADMIN).publish(event("deaf", 0));
    await answered;
    const revokedAt = Date.now();
    await root.revokeApiKey({ id: key.apiKey!.id });
    const end = await Promise.race([closed, sleep(10_000).then(() => ({ at: Date.now(), rstCode: -1 }))]);
    report("a watch that does not read, of a revoked key", { "reset after (ms)": end.at - revokedAt, "RST_STREAM code": end.rstCode });
    expect(end.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    expect(end.at - revokedAt).toBeLessThan(WITHIN_MS);
    await expect.poll(() => b.updates.watcherCount).toBe(watchers);
  } finally {
    session.destroy();
  }
});
