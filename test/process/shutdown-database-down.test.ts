/**
 * A real Hookline process stopped with SIGTERM while its database is down
 * and attempt outcomes wait to be written: the stop takes no longer than
 * HOOKLINE_SHUTDOWN_TIMEOUT (plus the little a stop does after it), and
 * the log says which outcomes were given up.
 */
import { afterAll, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { testEnv } from "../support/hookline.js";
import { useStoppablePostgres } from "../support/postgres-server.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { useReceiver } from "../support/receiver.js";

const SHUTDOWN_TIMEOUT_MS = 3_000;
/**
 * What a stop may take past the timeout: closing the pool and the server,
 * and the process exiting, on a loaded 2-core machine. A stop that waited
 * for the database would take until it came back: for ever, here.
 */
const MARGIN_MS = 3_000;
const EVENTS = 5;

const postgres = useStoppablePostgres();
const receiver = useReceiver();
let hookline: HooklineProcess | undefined;

afterAll(async () => {
  await hookline?.kill("SIGKILL");
});

it("ends within HOOKLINE_SHUTDOWN_TIMEOUT with the database down and outcomes unwritten, logging the outcomes it gave up", { timeout: 90_000 }, async () => {
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  receiver.reply(async () => {
    await answered;
    return { status: 200 };
  });
  hookline = await spawnHookline(testEnv(postgres.url, { HOOKLINE_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms` }), 60_000);
  const admin = client(WebhookAdmin, "connect-http1", hookline.url);
  const ingest = client(EventIngest, "connect-http1", hookline.url);
  await admin.createEndpoint({ tenantId: "down", url: `${receiver.url}/hook` });
  const { results } = await ingest.publishBatch({
    events: Array.from({ length: EVENTS }, (_, i) => ({ tenantId: "down", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
  });
  // Every attempt is in flight; then the database goes, and the receiver answers.
  await receiver.waitFor(EVENTS);
  await postgres.stop();
  answer();
  const logs = hookline.logs;
  await expect.poll(() => logs.some((l) => l.msg === "writing attempt outcomes failed; retrying"), { timeout: 20_000 }).toBe(true);

  const signalled = performance.now();
  const code = await hookline.kill("SIGTERM");
  const tookMs = performance.now() - signalled;


  expect(code).toBe(0);
  expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + MARGIN_MS);
  const abandoned = logs.find((l) => l.msg === "attempt outcomes not written by the shutdown timeout; their deliveries are retried once their leases expire");
  expect(abandoned).toMatchObject({ level: 40, outcomes: EVENTS });
  const deliveries = (abandoned as { deliveries?: string[] }).deliveries ?? [];
  expect(deliveries).toHaveLength(EVENTS);
  expect(results.map((r) => r.deliveryCount)).toEqual(Array(EVENTS).fill(1));
  expect(logs.at(-1)).toMatchObject({ msg: "Hookline stopped" });
});
