/**
 * Clients that go away or are refused, seen from a real Hookline process
 * (a child process, so client and server do not share an event loop, and
 * its JSON log lines are read as an operator would):
 *
 * - a streaming call refused for its token over HTTP/1.1 reaches the client
 *   as UNAUTHENTICATED, every time, although the client is still writing its
 *   request body (before the fix, the server's socket was closed at once and
 *   the client's next write got a reset: `Internal: write EPIPE`);
 * - a client that cancels or disconnects mid-call is logged as "client went
 *   away mid-call" at debug, never as "database unavailable" or an internal
 *   error.
 */
import { setMaxListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { EventIngest, type PublishRequestSchema } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { REQUEST_ID_HEADER } from "../../src/api/request-log.js";
import { report, scale, sleep } from "../support/chaos.js";
import { client, PROTOCOLS } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { testEnv } from "../support/hookline.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { useReceiver } from "../support/receiver.js";

const ADMIN_TOKEN = "admin-token-for-client-gone-tests-0001";
const INGEST_TOKEN = "ingest-token-for-client-gone-tests-0001";

let hl: HooklineProcess;

const r = useReceiver();
const db = useTestDatabase();

beforeAll(async () => {
  hl = await spawnHookline(
    testEnv(db.url, { HOOKLINE_ADMIN_TOKEN: ADMIN_TOKEN, HOOKLINE_INGEST_TOKEN: INGEST_TOKEN, HOOKLINE_LOG_LEVEL: "debug" }),
  );
});

afterAll(async () => {
  await hl?.kill();
});

type Line = Record<string, unknown> & { level: number; msg: string };
const linesOf = (requestId: string) => (hl.logs as Line[]).filter((l) => l.requestId === requestId);

/** Resolves when `check` holds, polling every 20 ms; rejects after `limitMs`. */
async function until(check: () => boolean | Promise<boolean>, limitMs: number, what: string): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(20);
  }
}

const outcome = (e: unknown) => {
  const err = ConnectError.from(e);
  return `${Code[err.code]}: ${err.rawMessage}`;
};

/** A PublishStream request body still being written when the answer comes: events of about 2 KB, written as fast as the connection takes them. */
async function* manyEvents(n: number): AsyncIterable<MessageInitShape<typeof PublishRequestSchema>> {
  const value = JSON.stringify({ pad: "x".repeat(2_000) });
  for (let i = 0; i < n; i++) yield { tenantId: "refused", eventType: "order.created", payload: { case: "payloadJson", value } };
}

describe("streams refused for their token over HTTP/1.1", () => {
  const CALLS = scale(200, 2_000);
  for (const protocol of ["connect-http1", "grpc-web"] as const) {
    it(`answers ${CALLS} refused PublishStream calls with UNAUTHENTICATED, never a write error (${protocol})`, { timeout: scale(60_000, 300_000) }, async () => {
      const tokens = ["wrong-token-0123456789abcdef0123456789", undefined];
      const outcomes = new Map<string, number>();
      let next = 0;
      // Ten at a time, each on its own connection (a refused call's connection is closed).
      const worker = async () => {
        while (next < CALLS) {
          const i = next++;
          const ingest = client(EventIngest, protocol, hl.url, tokens[i % tokens.length]);
          const got = await ingest.publishStream(manyEvents(50)).then(() => "OK", outcome);
          outcomes.set(got, (outcomes.get(got) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 10 }, worker));
      // A server stream, whose request is one small message.
      for (let i = 0; i < scale(20, 200); i++) {
        const admin = client(WebhookAdmin, protocol, hl.url, tokens[i % tokens.length]);
        const got = await (async () => {
          for await (const _ of admin.watchDeliveries({ tenantId: "refused" })) return "OK: message";
          return "OK";
        })().catch(outcome);
        outcomes.set(got, (outcomes.get(got) ?? 0) + 1);
      }
      report(`refused streams over HTTP/1.1 (${protocol})`, { calls: CALLS, outcomes: JSON.stringify(Object.fromEntries(outcomes)) });
      const unauthenticated = [...outcomes].filter(([k]) => k.startsWith("Unauthenticated: ")).reduce((n, [, v]) => n + v, 0);
      expect(Object.fromEntries([...outcomes].filter(([k]) => !k.startsWith("Unauthenticated: ")))).toEqual({});
      expect(unauthenticated).toBe(CALLS + scale(20, 200));
    });
  }
});

describe("clients that go away mid-call", () => {
  const hanging = async (tenantId: string) => {
    r.reply((_, req) => (req.path === "/hang" ? new Promise(() => {}) : { status: 200 }));
    const admin = client(WebhookAdmin, "connect-http2", hl.url, ADMIN_TOKEN);
    const { endpoint } = await admin.createEndpoint({ tenantId, url: `${r.url}/hang`, timeoutSeconds: 300 });
    return endpoint!.id;
  };

  /** Runs `call` with request id `id`, aborts it once `started` holds, and returns the call's log lines once its own line is written. */
  async function abandon(id: string, call: (signal: AbortSignal, headers: Record<string, string>) => Promise<unknown>, started: () => Promise<boolean> | boolean) {
    const abort = new AbortController();
    setMaxListeners(50, abort.signal);
    const settled = call(abort.signal, { [REQUEST_ID_HEADER]: id }).then(() => "OK", outcome);
    await until(started, 10_000, `${id} in progress`);
    abort.abort();
    expect(await settled).toMatch(/^Canceled: /);
    // The call's own line comes when the server is done with it.
    await until(() => linesOf(id).some((l) => l.msg === "rpc failed" || l.msg === "rpc ok"), 10_000, `${id} logged`);
    return linesOf(id);
  }

  for (const protocol of PROTOCOLS) {
    it(`logs a cancelled or disconnected client as gone, at debug (${protocol})`, async () => {
      const endpointId = await hanging(`gone-${protocol}`);
      const admin = client(WebhookAdmin, protocol, hl.url, ADMIN_TOKEN);
      const ingest = client(EventIngest, protocol, hl.url, INGEST_TOKEN);
      const seen = r.requests.length;
      const lines: Record<string, Line[]> = {};
      // A unary call waiting for an endpoint.
      lines.sendTestEvent = await abandon(
        `gone-test-${protocol}`,
        (signal, headers) => admin.sendTestEvent({ id: endpointId }, { signal, headers }),
        () => r.requests.length > seen,
      );
      // A client stream that stops halfway: the first 500 events are stored, then it waits.
      const tenantId = `gone-stream-${protocol}`;
      const stored = async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE tenant_id = $1", [tenantId]))[0]!.n) > 0;
      lines.publishStream = await abandon(
        `gone-stream-${protocol}`,
        (signal, headers) =>
          ingest.publishStream(
            (async function* () {
              for (let i = 0; i < 500; i++) yield { tenantId, eventType: "order.created", payload: { case: "payloadJson" as const, value: "{}" } };
              await new Promise((resolve) => signal.addEventListener("abort", resolve));
            })(),
            { signal, headers },
          ),
        stored,
      );
      // A server stream with a message out.
      const watchTenant = `gone-watch-${protocol}`;
      await admin.createEndpoint({ tenantId: watchTenant, url: `${r.url}/ok` });
      let received = false;
      lines.watchDeliveries = await abandon(
        `gone-watch-${protocol}`,
        async (signal, headers) => {
          for await (const _ of admin.watchDeliveries({ tenantId: watchTenant }, { signal, headers })) received = true;
        },
        async () => {
          await ingest.publish({ tenantId: watchTenant, eventType: "order.created", payload: { case: "payloadJson", value: "{}" } });
          return received;
        },
      );
      for (const [call, got] of Object.entries(lines)) {
        // Nothing at warn or above: no "database unavailable", no "internal error".
        expect(got.filter((l) => l.level >= 40).map((l) => `${call}: ${l.msg}`)).toEqual([]);
      }
      // The calls that were waiting on something say why they ended, at debug.
      for (const call of ["sendTestEvent", "publishStream"]) {
        expect(lines[call]!.find((l) => l.msg === "client went away mid-call"), call).toMatchObject({ level: 20 });
        expect(lines[call]!.find((l) => l.msg === "rpc failed"), call).toMatchObject({ code: "Canceled", error: "the client went away" });
      }
      // A watch just ends.
      expect(lines.watchDeliveries!.find((l) => l.msg === "rpc ok" || l.msg === "rpc failed")).toMatchObject({ level: 20, msg: "rpc ok" });
    });
  }
});
