/**
 * The embedded PostgreSQL's postmaster is killed with SIGKILL while
 * deliveries are in flight. Hookline, run as `npm start` runs it (a child
 * process, no DATABASE_URL, its own HOOKLINE_DATA_DIR), starts the server
 * again by itself; delivery resumes and no accepted event is lost, while
 * /healthz stays 200. When the server cannot come back (its data directory
 * is gone), /healthz turns 503 after HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT,
 * and SIGTERM ends the process within HOOKLINE_SHUTDOWN_TIMEOUT although
 * attempt outcomes cannot be written; once the directory is back, the next
 * process delivers those events too (their leases expired).
 */
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, sleep } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { freePort } from "../support/free-port.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

const SHUTDOWN_TIMEOUT_MS = 2_000;
// The server was down 1.1-2.8 s per kill here, crash recovery included (on
// 2 busy cores): 6 s keeps the healing case under the bound and the case
// that cannot heal short.
const RESTART_TIMEOUT_MS = 6_000;

let dataDir: string;
let env: Record<string, string>;
let proc: HooklineProcess | undefined;
let r: Receiver;
let replyDelayMs = 300;
const accepted = new Set<string>();

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "hookline-pg-crash-"));
  // Reachable by the "postgres" user that runs the server when run as root.
  await chmod(dataDir, 0o755);
  env = {
    HOOKLINE_DATA_DIR: dataDir,
    HOOKLINE_EMBEDDED_PG_PORT: String(await freePort()),
    HOOKLINE_HOST: "127.0.0.1",
    HOOKLINE_PORT: "0",
    HOOKLINE_ALLOWED_CIDRS: "127.0.0.0/8",
    HOOKLINE_POLL_INTERVAL: "200ms",
    HOOKLINE_RETRY_SCHEDULE: "100ms,200ms,500ms,1s,1s,1s,1s,1s,1s,1s",
    // Leases of 3 s: what a stopped process leaves unwritten is due soon.
    HOOKLINE_REQUEST_TIMEOUT: "2s",
    HOOKLINE_LEASE_MARGIN: "1s",
    HOOKLINE_SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms`,
    HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT: `${RESTART_TIMEOUT_MS}ms`,
  };
  r = await startReceiver();
  // Latency, so the kill lands while requests are in flight.
  r.reply(async () => {
    await sleep(replyDelayMs);
    return { status: 200 };
  });
  proc = await spawnHookline(env, 120_000);
}, 180_000);

afterAll(async () => {
  await proc?.kill("SIGKILL");
  await r?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** The postmaster's pid, from its lock file, if it is running. */
function postmaster(dir = join(dataDir, "pg")): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

const status = async (path: string) => (await fetch(`${proc!.url}${path}`)).status;

/** Event ids the receiver got, with how often. */
function delivered(): Map<string, number> {
  const seen = new Map<string, number>();
  for (const req of r.requests) {
    const id = String(req.headers["webhook-id"]);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return seen;
}

/** Publishes one event every `everyMs` until `stop()`; counts the refusals by code. */
function publishing(url: string, tenantId: string, everyMs: number) {
  const ingest = client(EventIngest, "connect-http1", url);
  const refused = new Map<string, number>();
  let on = true;
  const loop = (async () => {
    const calls: Promise<void>[] = [];
    for (let i = 0; on; i++) {
      calls.push(
        ingest.publish({ tenantId, eventType: "crash.tick", payload: { case: "payloadJson", value: `{"i":${i}}` } }).then(
          (res) => void accepted.add(res.eventId),
          (err: unknown) => {
            const code = Code[ConnectError.from(err).code];
            refused.set(code, (refused.get(code) ?? 0) + 1);
          },
        ),
      );
      await sleep(everyMs);
    }
    await Promise.all(calls);
  })();
  return {
    refused,
    async stop() {
      on = false;
      await loop;
    },
  };
}

it("restarts a postmaster killed with SIGKILL mid-delivery, and delivery resumes with nothing lost", { timeout: 120_000 }, async () => {
  const p = proc!;
  await client(WebhookAdmin, "connect-http1", p.url).createEndpoint({ tenantId: "crash", url: `${r.url}/hook` });
  const healthz: number[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      healthz.push(await status("/healthz").catch(() => 0));
      await sleep(100);
    }
  })();
  const pub = publishing(p.url, "crash", 20);

  await r.waitFor(20, 30_000);
  await expect.poll(() => r.concurrency.now, { timeout: 10_000, interval: 5 }).toBeGreaterThan(0);
  const before = postmaster()!;
  const inFlightAtKill = r.concurrency.now;
  const killedAt = performance.now();
  process.kill(before, "SIGKILL");

  // A new postmaster, started by Hookline itself.
  await expect.poll(() => postmaster() !== undefined && postmaster() !== before, { timeout: 30_000, interval: 50 }).toBe(true);
  const restartedMs = Math.round(performance.now() - killedAt);
  await expect.poll(() => p.logs.some((l) => l.msg === "embedded PostgreSQL restarted"), { timeout: 10_000 }).toBe(true);
  const downMs = p.logs.find((l) => l.msg === "embedded PostgreSQL restarted")?.downMs;
  await expect.poll(() => status("/readyz"), { timeout: 15_000, interval: 100 }).toBe(200);
  const acceptedAtRestart = accepted.size;
  await expect.poll(() => accepted.size, { timeout: 15_000 }).toBeGreaterThan(acceptedAtRestart + 20);
  await pub.stop();

  await expect.poll(() => [...accepted].filter((id) => !delivered().has(id)).length, { timeout: 60_000, interval: 250 }).toBe(0);
  watching = false;
  await watcher;
  const seen = delivered();
  const lost = [...accepted].filter((id) => !seen.has(id)).length;
  report("embedded PostgreSQL killed mid-delivery", {
    "requests in flight at the kill": inFlightAtKill,
    "new postmaster after (ms)": restartedMs,
    "server down, crash recovery included (ms)": Number(downMs),
    accepted: accepted.size,
    "publishes refused (by code)": [...pub.refused].map(([c, n]) => `${c}:${n}`).join(" ") || 0,
    lost,
    "delivered twice or more": [...seen.values()].filter((n) => n > 1).length,
    "/healthz answers not 200": healthz.filter((s) => s !== 200).length,
  });
  expect(lost).toBe(0);
  expect([...pub.refused.keys()].filter((c) => c !== "Unavailable")).toEqual([]);
  expect(healthz.filter((s) => s !== 200)).toEqual([]);
});

it(
  "fails /healthz when the server cannot come back, and stops on SIGTERM within the shutdown timeout",
  { timeout: 120_000 },
  async () => {
    const p = proc!;
    replyDelayMs = 1_000;
    const pub = publishing(p.url, "crash", 50);
    const requestsBefore = r.requests.length;
    await r.waitFor(requestsBefore + 3, 30_000);
    await pub.stop();
    await expect.poll(() => r.concurrency.now, { timeout: 10_000, interval: 5 }).toBeGreaterThan(0);

    // The data directory goes away, then the server: no restart can work.
    const pid = postmaster()!;
    await rename(join(dataDir, "pg"), join(dataDir, "pg.away"));
    const killedAt = performance.now();
    process.kill(pid, "SIGKILL");
    const healthzSoonAfter = await status("/healthz");
    await expect.poll(() => status("/healthz"), { timeout: RESTART_TIMEOUT_MS + 15_000, interval: 100 }).toBe(503);
    const unhealthyAfterMs = Math.round(performance.now() - killedAt);
    expect(await status("/readyz")).toBe(503);
    // The requests in flight at the kill have been answered; their outcomes wait for the database.
    await expect.poll(() => r.concurrency.now, { timeout: 10_000 }).toBe(0);
    await expect.poll(() => p.logs.some((l) => l.msg === "writing attempt outcomes failed; retrying"), { timeout: 10_000 }).toBe(true);

    const termAt = performance.now();
    const exit = await Promise.race([p.kill("SIGTERM"), sleep(30_000).then(() => "still running after 30 s")]);
    const stopMs = Math.round(performance.now() - termAt);
    if (typeof exit === "string") await p.kill("SIGKILL");
    proc = undefined;

    // Back: the directory returns and a new process delivers what the last one could not record.
    await rename(join(dataDir, "pg.away"), join(dataDir, "pg"));
    replyDelayMs = 0;
    proc = await spawnHookline(env, 120_000);
    await expect.poll(() => [...accepted].filter((id) => !delivered().has(id)).length, { timeout: 60_000, interval: 250 }).toBe(0);

    report("embedded PostgreSQL that cannot come back", {
      "/healthz right after the kill": healthzSoonAfter,
      "/healthz 503 after (ms)": unhealthyAfterMs,
      "HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT (ms)": RESTART_TIMEOUT_MS,
      "SIGTERM to exit (ms)": stopMs,
      "HOOKLINE_SHUTDOWN_TIMEOUT (ms)": SHUTDOWN_TIMEOUT_MS,
      "exit code": String(exit),
      "outcomes given up at the stop": String(p.logs.find((l) => typeof l.outcomes === "number" && String(l.msg).startsWith("attempt outcomes not written"))?.outcomes ?? 0),
      "lost after the next start": [...accepted].filter((id) => !delivered().has(id)).length,
    });
    expect(healthzSoonAfter).toBe(200);
    expect(unhealthyAfterMs).toBeGreaterThanOrEqual(RESTART_TIMEOUT_MS);
    expect(exit).toBe(0);
    // The timeout, plus the process's own start of the stop and exit on a busy machine.
    expect(stopMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 3_000);
  },
);
