/**
 * Hostile tenant: SendTestEvent to an endpoint that never answers, called
 * many times and abandoned by the client. Before the fix each such call held
 * a call slot for the endpoint's whole timeout (up to 300 s), so 2,000 of
 * them left every other tenant's Publish with RESOURCE_EXHAUSTED. Now the
 * outbound request ends when the caller cancels, disconnects or its deadline
 * passes; a test send lasts at most HOOKLINE_TEST_EVENT_TIMEOUT; and a tenant
 * has at most HOOKLINE_TEST_EVENT_CONCURRENCY of them in flight.
 */
import { setMaxListeners } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale, sleep } from "../support/chaos.js";
import { client, PROTOCOLS } from "../support/clients.js";
import { envelope, RawClient, type RawRequest, rpcStatus } from "../support/raw-http.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline, useTestHookline } from "../support/hookline.js";
import { scrapeMetrics } from "../support/metrics.js";
import { useReceiver } from "../support/receiver.js";

/** Abandoned test sends: a few hundred here, the 2,100 in the long version. */
const SENDS = scale(200, 2_100);
/** Call slots: fewer than the sends, so that held slots would refuse everyone else; the default in the long version. */
const CALL_SLOTS = scale(150, 2_000);
/**
 * The per-tenant cap of test sends in flight: set high in the short version,
 * so that many calls are abandoned in flight (on every protocol); the
 * default in the long version, the scenario as it now plays out.
 * (With 1,900 in flight, the long version measured 4.6 s from abandoning to
 * 0 calls in progress on a loaded 2-core machine, client, server and
 * receiver in one process: about 2.5 ms per abandoned call.)
 */
const PER_TENANT = scale(50, 10);

// A receiver that takes the request and never answers, but on /answers.
const r = useReceiver((_, req) => (req.path === "/answers" ? { status: 200, body: "ok" } : new Promise(() => {})));
const db = useTestDatabase();
const app = useTestHookline(db, {
  HOOKLINE_MAX_CONCURRENT_CALLS: String(CALL_SLOTS),
  HOOKLINE_TEST_EVENT_CONCURRENCY: String(PER_TENANT),
});

/** The gauge as /metrics reports it (a scrape is slow on a busy machine: the drain is timed on the app's own count). */
const scrapedCallsInProgress = async () => (await scrapeMetrics(app.url)).get("hookline_calls_in_progress") ?? Number.NaN;

/** Polls `check` every 10 ms until it holds; resolves the milliseconds it took, or rejects after `limitMs`. */
async function until(check: () => boolean | Promise<boolean>, limitMs: number, what: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(10);
  }
}

const codeOf = (e: unknown) => ConnectError.from(e).code;

async function hangingEndpoint(tenantId: string, path: string): Promise<string> {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId, url: `${r.url}/${path}`, timeoutSeconds: 300 });
  return endpoint!.id;
}

/** Publishes for tenant "victim" one after another until stopped; counts refusals and times each call. */
function publishLoop() {
  const ingest = client(EventIngest, "connect-http2", app.url);
  const latencies: number[] = [];
  const errors: string[] = [];
  let running = true;
  const state = { inFlight: 0 };
  const done = (async () => {
    while (running) {
      const started = performance.now();
      state.inFlight = 1;
      try {
        await ingest.publish({ tenantId: "victim", eventType: "order.created", payload: { case: "payloadJson", value: '{"n":1}' } });
      } catch (e) {
        errors.push(`${Code[codeOf(e)]}: ${ConnectError.from(e).rawMessage}`);
      }
      state.inFlight = 0;
      latencies.push(performance.now() - started);
    }
  })();
  return {
    latencies,
    errors,
    /** 1 while a publish is in progress, else 0. */
    get inFlight() {
      return state.inFlight;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN);
};

it(`${SENDS} abandoned test sends to a silent endpoint free their call slots within 1 s; another tenant publishes throughout`, { timeout: scale(60_000, 600_000) }, async () => {
  const id = await hangingEndpoint("attacker", "silent");
  const { endpoint: otherEndpoint } = await client(WebhookAdmin, "connect-http2", app.url).createEndpoint({ tenantId: "other", url: `${r.url}/answers` });
  const answering = otherEndpoint!.id;
  const victim = publishLoop();
  // The victim's latency before the flood, for comparison.
  await until(() => victim.latencies.length >= 20, 20_000, "victim publishes before the flood");
  const baseline = victim.latencies.length;
  // Spread over the four protocols, and over connections: an HTTP/2 connection
  // carries 256 calls at once (HOOKLINE_HTTP2_MAX_STREAMS), its client queues the rest.
  const clients = Array.from({ length: Math.ceil(SENDS / 200) * PROTOCOLS.length }, (_, i) => client(WebhookAdmin, PROTOCOLS[i % PROTOCOLS.length]!, app.url));
  const abandon = new AbortController();
  // One listener per call.
  setMaxListeners(SENDS * 2, abandon.signal);
  const outcomes = new Map<string, number>();
  let settled = 0;
  const calls = Array.from({ length: SENDS }, (_, i) =>
    clients[i % clients.length]!.sendTestEvent({ id }, { signal: abandon.signal }).then(
      () => "answered",
      (e: unknown) => {
        const err = ConnectError.from(e);
        if (err.code === Code.ResourceExhausted && !err.rawMessage.includes("HOOKLINE_TEST_EVENT_CONCURRENCY")) return "server busy";
        return Code[err.code];
      },
    ).then((outcome) => {
      settled++;
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }),
  );
  // Every send is in progress or answered (refused) by now, and the receiver has
  // those in flight; then the client gives up on all of them.
  const sendsInProgress = () => app.callsInProgress - victim.inFlight;
  // (Or, on the code before the fix, every call slot is held.)
  await until(() => settled + sendsInProgress() >= SENDS || app.callsInProgress >= CALL_SLOTS, 30_000, "every send in progress or answered");
  await r.waitFor(Math.min(sendsInProgress(), 32), 20_000);
  const heldBefore = app.callsInProgress;
  // Another tenant's test send is not held up by the attacker's.
  const other = await client(WebhookAdmin, "connect-http2", app.url).sendTestEvent({ id: answering }).catch((e: unknown) => ConnectError.from(e));
  const otherOk = !(other instanceof ConnectError) && other.attempt?.responseStatus === 200;
  const receiverOpen = r.concurrency.now;
  const abandonedAt = performance.now();
  abandon.abort();
  const [drainMs, closedMs] = await Promise.all([
    // Back to 0 but for the victim's own publish, which may be in progress.
    until(() => app.callsInProgress - victim.inFlight <= 0, 5_000, "calls in progress back to 0").catch(() => Number.POSITIVE_INFINITY),
    until(() => r.concurrency.now === 0, 5_000, "receiver's requests closed").catch(() => Number.POSITIVE_INFINITY),
  ]);
  // The victim goes on publishing after the sends are gone, then stops.
  const publishedBefore = victim.latencies.length;
  await until(() => victim.latencies.length >= publishedBefore + 20, 20_000, "victim publishes after the flood");
  await victim.stop();
  await Promise.all(calls);
  const scraped = await scrapedCallsInProgress();
  report("abandoned test sends", {
    sends: SENDS,
    callSlots: CALL_SLOTS,
    perTenantCap: PER_TENANT,
    callsInProgressBeforeAbandon: heldBefore,
    receiverRequestsOpenBeforeAbandon: receiverOpen,
    msToZeroCallsInProgress: Math.round(drainMs),
    msToReceiverSocketsClosed: Math.round(closedMs),
    sinceAbandonMs: Math.round(performance.now() - abandonedAt),
    outcomes: JSON.stringify(Object.fromEntries(outcomes)),
    otherTenantTestSend: other instanceof ConnectError ? `${Code[other.code]}: ${other.rawMessage}` : `HTTP ${other.attempt?.responseStatus}`,
    victimPublishes: victim.latencies.length,
    victimErrors: victim.errors.length,
    victimBeforeP50Ms: percentile(victim.latencies.slice(0, baseline), 50),
    victimBeforeMaxMs: percentile(victim.latencies.slice(0, baseline), 100),
    victimDuringP50Ms: percentile(victim.latencies.slice(baseline), 50),
    victimDuringP99Ms: percentile(victim.latencies.slice(baseline), 99),
    victimDuringMaxMs: percentile(victim.latencies.slice(baseline), 100),
  });
  expect(victim.errors.slice(0, 3)).toEqual([]);
  expect(otherOk).toBe(true);
  expect(drainMs).toBeLessThan(1_000);
  expect(scraped).toBe(0);
  // On the old code the receiver kept them for the endpoint's 300 s.
  expect(closedMs).toBeLessThan(5_000);
  // The cap held the rest off at once, naming its limit; none got a server-busy refusal.
  expect(outcomes.get("server busy") ?? 0).toBe(0);
  expect(outcomes.get("ResourceExhausted")).toBe(SENDS - PER_TENANT);
  expect(outcomes.get("Canceled")).toBe(PER_TENANT);
});

describe("the outbound request ends with the call", () => {
  for (const protocol of PROTOCOLS) {
    it(`when the client cancels (${protocol})`, async () => {
      const id = await hangingEndpoint(`cancel-${protocol}`, `cancel-${protocol}`);
      const seen = r.requests.length;
      const abort = new AbortController();
      const call = client(WebhookAdmin, protocol, app.url)
        .sendTestEvent({ id }, { signal: abort.signal })
        .catch((e: unknown) => ConnectError.from(e));
      await r.waitFor(seen + 1);
      const open = r.concurrency.now;
      abort.abort();
      expect(((await call) as ConnectError).code).toBe(Code.Canceled);
      await until(() => r.concurrency.now === open - 1 && app.callsInProgress === 0, 5_000, "request to the endpoint closed");
    });
  }

  // Raw requests, which stay open past their deadline: the server ends them.
  it("when the caller's deadline passes: connect-timeout-ms (Connect, HTTP/1.1) and grpc-timeout (gRPC, HTTP/2)", async () => {
    const id = await hangingEndpoint("deadline", "deadline");
    const client1 = new RawClient(app.url, 10_000);
    const body = Buffer.from(JSON.stringify({ id }));
    const requests: RawRequest[] = [
      {
        http: "1.1",
        method: "POST",
        path: "/hookline.v1.WebhookAdmin/SendTestEvent",
        headers: { "content-type": "application/json", "connect-protocol-version": "1", "connect-timeout-ms": "500" },
        body: [body],
      },
      {
        http: "2",
        method: "POST",
        path: "/hookline.v1.WebhookAdmin/SendTestEvent",
        headers: { "content-type": "application/grpc+json", te: "trailers", "grpc-timeout": "500m" },
        body: [envelope(0, body)],
      },
    ];
    for (const req of requests) {
      const seen = r.requests.length;
      const open = r.concurrency.now;
      const started = performance.now();
      const answer = client1.send(req);
      await r.waitFor(seen + 1);
      const result = await answer;
      const ms = performance.now() - started;
      expect(result.kind).toBe("response");
      if (result.kind !== "response") continue;
      expect(rpcStatus(result.response).code, `HTTP/${req.http}`).toBe("DeadlineExceeded");
      // Answered at the deadline, not at the endpoint's 300 s or the cap's 30 s.
      expect(ms).toBeLessThan(10_000);
      await until(() => r.concurrency.now === open && app.callsInProgress === 0, 5_000, "request to the endpoint closed");
    }
    client1.close();
  });
});

describe("HOOKLINE_TEST_EVENT_TIMEOUT", () => {
  let capped: TestHookline;
  beforeAll(async () => {
    capped = await startTestHookline(db.url, { HOOKLINE_TEST_EVENT_TIMEOUT: "1s" });
  });
  afterAll(async () => {
    await capped?.stop();
  });

  it("caps a test send below the endpoint's own timeout", async () => {
    const admin = client(WebhookAdmin, "connect-http2", capped.url);
    const { endpoint } = await admin.createEndpoint({ tenantId: "capped", url: `${r.url}/capped`, timeoutSeconds: 300 });
    const { attempt } = await admin.sendTestEvent({ id: endpoint!.id });
    expect(attempt).toMatchObject({ responseStatus: 0, errorClass: "timeout", error: "timeout after 1000 ms" });
    expect(attempt!.durationMs).toBeGreaterThanOrEqual(990);
    expect(attempt!.durationMs).toBeLessThan(10_000);
  });
});
