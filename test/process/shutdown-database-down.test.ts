/**
 * A real Hookline process stopped with SIGTERM while its database is gone
 * and attempt outcomes wait to be written: the stop takes no longer than
 * HOOKLINE_SHUTDOWN_TIMEOUT (plus, when the database does not answer at
 * all, the grace its last steps get), and the log names the deliveries
 * whose outcomes were given up. Gone two ways: stopped (connections are
 * refused at once) and not answering (a proxy in front of it stops passing
 * anything, as a network dropping packets or a hung server would).
 */
import { afterAll, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { testEnv } from "../support/hookline.js";
import { useStoppablePostgres } from "../support/postgres-server.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { useReceiver } from "../support/receiver.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const SHUTDOWN_TIMEOUT_MS = 3_000;
/** What a stop may wait past the timeout for its last steps when the database does not answer (STOP_GRACE_MS in src/app.ts). */
const STOP_GRACE_MS = 2_000;
/**
 * What a stop may take beyond that: closing the server and the pool, and
 * the process exiting, on a loaded 2-core machine. A stop that waited for
 * the database would take until it came back: for ever, here.
 */
const MARGIN_MS = 3_000;
const EVENTS = 5;
const ABANDONED = "attempt outcomes not written by the shutdown timeout; their deliveries are retried once their leases expire";

const postgres = useStoppablePostgres();
const receiver = useReceiver();
const processes: HooklineProcess[] = [];
let proxy: TcpProxy | undefined;

afterAll(async () => {
  for (const p of processes) await p.kill("SIGKILL");
  await proxy?.close();
});

/**
 * Starts Hookline on `databaseUrl`, publishes EVENTS events to a receiver
 * that holds their requests, takes the database away with `cut` once all
 * are in flight, lets the receiver answer, and once the process has
 * handed every outcome to its writer (it logs each attempt at debug) and
 * says what `stuck` looks for, sends SIGTERM. Returns the exit code, how
 * long the stop took, and the log.
 */
async function stopWithDatabaseGone(
  databaseUrl: string,
  tenantId: string,
  cut: () => Promise<void>,
  stuck: (line: Record<string, unknown>) => boolean = () => true,
) {
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => {
    answer = resolve;
  });
  receiver.reply(async () => {
    await answered;
    return { status: 200 };
  });
  const hookline = await spawnHookline(testEnv(databaseUrl, { HOOKLINE_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`, HOOKLINE_LOG_LEVEL: "debug" }), 60_000);
  processes.push(hookline);
  const admin = client(WebhookAdmin, "connect-http1", hookline.url);
  const ingest = client(EventIngest, "connect-http1", hookline.url);
  await admin.createEndpoint({ tenantId, url: `${receiver.url}/${tenantId}` });
  const before = receiver.requests.length;
  await ingest.publishBatch({
    events: Array.from({ length: EVENTS }, (_, i) => ({ tenantId, eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
  });
  await receiver.waitFor(before + EVENTS);
  await cut();
  answer();
  const logs = hookline.logs;
  await expect.poll(() => logs.filter((l) => l.msg === "attempt succeeded").length, { timeout: 30_000 }).toBe(EVENTS);
  await expect.poll(() => logs.some(stuck), { timeout: 30_000 }).toBe(true);
  const signalled = performance.now();
  const code = await hookline.kill("SIGTERM");
  return { code, tookMs: performance.now() - signalled, logs };
}

it("ends within HOOKLINE_SHUTDOWN_TIMEOUT with the database stopped and outcomes unwritten, naming the deliveries given up", { timeout: 120_000 }, async () => {
  await postgres.start();
  const { code, tookMs, logs } = await stopWithDatabaseGone(postgres.url, "stopped", () => postgres.stop(), (l) => l.msg === "writing attempt outcomes failed; retrying");
  expect(code).toBe(0);
  expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + MARGIN_MS);
  const abandoned = logs.find((l) => l.msg === ABANDONED);
  expect(abandoned).toMatchObject({ level: 40, outcomes: EVENTS, deliveries: expect.any(Array) });
  expect(new Set((abandoned as { deliveries: string[] }).deliveries).size).toBe(EVENTS);
  expect(logs.some((l) => l.msg === "Hookline stopped")).toBe(true);
});

it("ends within HOOKLINE_SHUTDOWN_TIMEOUT and its grace with the database not answering at all, naming what it stopped waiting for", { timeout: 120_000 }, async () => {
  await postgres.start();
  const server = new URL(postgres.url);
  proxy = await startTcpProxy(server.hostname, Number(server.port));
  const throughProxy = new URL(postgres.url);
  throughProxy.port = String(proxy.port);
  const frozen = proxy;
  const { code, tookMs, logs } = await stopWithDatabaseGone(throughProxy.toString(), "hung", async () => frozen.freeze());
  expect(code).toBe(0);
  expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + STOP_GRACE_MS + MARGIN_MS);
  expect(logs.find((l) => l.msg === ABANDONED)).toMatchObject({ level: 40, outcomes: EVENTS });
  expect(logs.find((l) => l.msg === "stopped without waiting longer for these: the database does not answer")).toMatchObject({
    level: 50,
    waitingFor: expect.arrayContaining(["database pool"]),
  });
});
