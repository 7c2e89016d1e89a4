/**
 * A receiver that answers at random: 200, 500, 429 with Retry-After, no
 * answer until the request times out, or a connection reset. Every delivery
 * must end exactly as its endpoint's retry policy says given the answers the
 * receiver gave, every attempt the receiver saw must be stored with the
 * right result, in order, and the status log must tell the same story.
 *
 * Short: 40 events to 3 endpoints; long (npm run test:chaos): 400.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { chaosSeed, report, scale, seededRandom } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";

const EVENTS = scale(40, 400);
const TIMEOUT_MS = 1_000;
const RETRY_AFTER_S = 1;

type Answer = "200" | "500" | "429" | "hang" | "reset";
const ANSWERS: Array<[Answer, number]> = [
  ["200", 0.35],
  ["500", 0.25],
  ["429", 0.1],
  ["hang", 0.15],
  ["reset", 0.15],
];

function pick(rand: () => number): Answer {
  let x = rand();
  for (const [answer, p] of ANSWERS) {
    if (x < p) return answer;
    x -= p;
  }
  return "200";
}

/** Rows grouped by delivery id, in order (Map.groupBy needs Node 21). */
function byDelivery<T extends { delivery_id: string }>(rows: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) groups.set(row.delivery_id, [...(groups.get(row.delivery_id) ?? []), row]);
  return groups;
}

const seed = chaosSeed(20261123);
const rand = seededRandom(seed);
/** What the receiver answered, per delivery ("path event-id"), in order. */
const answered = new Map<string, Answer[]>();
const answerCounts = new Map<Answer, number>();
let server: http.Server;
let url: string;
let db: TestDatabase;
let app: TestHookline;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const key = `${req.url} ${req.headers["webhook-id"]}`;
      const answer = pick(rand);
      answered.set(key, [...(answered.get(key) ?? []), answer]);
      answerCounts.set(answer, (answerCounts.get(answer) ?? 0) + 1);
      switch (answer) {
        case "200":
          res.writeHead(200).end("ok");
          break;
        case "500":
          res.writeHead(500).end("boom");
          break;
        case "429":
          res.writeHead(429, { "retry-after": String(RETRY_AFTER_S) }).end("slow down");
          break;
        case "hang":
          setTimeout(() => res.destroy(), TIMEOUT_MS * 4);
          break;
        case "reset":
          req.socket.destroy();
          break;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  db = await createTestDatabase();
  app = await startTestHookline(db.url, {
    HOOKLINE_REQUEST_TIMEOUT: `${TIMEOUT_MS}ms`,
    HOOKLINE_THROTTLE_MIN_DELAY: "100ms",
    HOOKLINE_RETRY_JITTER: "0",
    // Circuits would delay attempts, never change how many; keep them out.
    HOOKLINE_CIRCUIT_FAILURES: "1000",
  });
});

afterAll(async () => {
  await app?.stop();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await db?.drop();
});

it("ends every delivery as its policy says, with every attempt stored and logged in order", { timeout: 300_000 }, async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const ms = (n: number) => ({ seconds: BigInt(Math.floor(n / 1000)), nanos: (n % 1000) * 1e6 });
  // Attempts allowed per endpoint path.
  const policies: Record<string, number> = {};
  const endpoint = async (path: string, maxAttempts: number, retryPolicy: Parameters<typeof admin.createEndpoint>[0]["retryPolicy"]) => {
    policies[path] = maxAttempts;
    return (await admin.createEndpoint({ tenantId: "chaos", url: `${url}${path}`, retryPolicy })).endpoint!;
  };
  await endpoint("/schedule", 4, { policy: { case: "schedule", value: { delays: [ms(50), ms(50), ms(50)] } } });
  await endpoint("/exponential", 6, { policy: { case: "exponential", value: { base: ms(20), cap: ms(200), maxAttempts: 6 } } });
  await endpoint("/once", 1, { policy: { case: "schedule", value: { delays: [] } } });
  for (let i = 0; i < EVENTS; i += 20) {
    await ingest.publishBatch({
      events: Array.from({ length: Math.min(20, EVENTS - i) }, (_, j) => ({
        tenantId: "chaos",
        eventType: "chaos.e",
        payload: { case: "payloadJson" as const, value: `{"i":${i + j}}` },
      })),
    });
  }
  const deliveries = EVENTS * Object.keys(policies).length;
  await expect
    .poll(async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM deliveries WHERE status IN (3, 4)"))[0]!.n, {
      timeout: 240_000,
      interval: 500,
    })
    .toBe(deliveries);

  const rows = await db.query<{ id: string; event_id: string; path: string; status: number }>(
    `SELECT d.id, d.event_id, substring(e.url from '[^/]*$') AS path, d.status FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id`,
  );
  const attempts = await db.query<{ delivery_id: string; number: number; response_status: number; error_class: string; started_at: Date; duration_ms: number }>(
    "SELECT delivery_id, number, response_status, error_class, started_at, duration_ms FROM delivery_attempts ORDER BY delivery_id, number",
  );
  const updates = await db.query<{ delivery_id: string; kind: number; attempt_number: number }>(
    "SELECT delivery_id, kind, attempt_number FROM delivery_updates ORDER BY xid, seq",
  );
  const attemptsOf = byDelivery(attempts);
  const updatesOf = byDelivery(updates);
  const problems: string[] = [];
  let retryAfterChecked = 0;
  for (const d of rows) {
    const path = `/${d.path}`;
    const seen = answered.get(`${path} ${d.event_id}`) ?? [];
    const stored = attemptsOf.get(d.id) ?? [];
    // What the policy says, given the answers.
    const firstSuccess = seen.indexOf("200");
    const expectAttempts = firstSuccess >= 0 ? firstSuccess + 1 : policies[path]!;
    const expectStatus = firstSuccess >= 0 ? DeliveryState.Succeeded : DeliveryState.Failed;
    if (seen.length !== expectAttempts) problems.push(`${d.id} ${path}: receiver saw ${seen.length} attempts (${seen}), policy says ${expectAttempts}`);
    if (d.status !== expectStatus) problems.push(`${d.id} ${path}: status ${d.status}, expected ${expectStatus} after ${seen}`);
    if (stored.length !== seen.length) problems.push(`${d.id}: ${stored.length} attempts stored, receiver saw ${seen.length}`);
    stored.forEach((a, i) => {
      const answer = seen[i];
      const result = a.response_status > 0 ? String(a.response_status) : a.error_class;
      const want = answer === "hang" ? "timeout" : answer === "reset" ? "connection" : answer;
      if (a.number !== i + 1 || result !== want) problems.push(`${d.id} attempt ${i + 1}: stored ${a.number}/${result}, receiver answered ${answer}`);
      const next = stored[i + 1];
      if (answer === "429" && next) {
        const waited = next.started_at.getTime() - (a.started_at.getTime() + a.duration_ms);
        if (waited < RETRY_AFTER_S * 1000 - 20) problems.push(`${d.id}: retried ${waited} ms after a 429 asking for ${RETRY_AFTER_S} s`);
        retryAfterChecked++;
      }
    });
    const kinds = (updatesOf.get(d.id) ?? []).map((u) => u.kind);
    const expectKinds = [
      DeliveryUpdateKind.CREATED,
      ...Array<number>(expectAttempts - 1).fill(DeliveryUpdateKind.RETRY_SCHEDULED),
      expectStatus === DeliveryState.Succeeded ? DeliveryUpdateKind.SUCCEEDED : DeliveryUpdateKind.FAILED,
    ];
    if (kinds.join() !== expectKinds.join()) problems.push(`${d.id}: status log ${kinds}, expected ${expectKinds}`);
  }
  report("receiver chaos", {
    seed,
    deliveries,
    attempts: attempts.length,
    ...Object.fromEntries(ANSWERS.map(([a]) => [`answered ${a}`, answerCounts.get(a) ?? 0])),
    succeeded: rows.filter((d) => d.status === DeliveryState.Succeeded).length,
    failed: rows.filter((d) => d.status === DeliveryState.Failed).length,
    "retries after a 429 checked for Retry-After": retryAfterChecked,
    "deliveries not as the policy says": problems.length,
  });
  expect(problems).toEqual([]);
});
