/**
 * `npm run bench:drain`: only the backlog phase of the bench, for working on
 * the cost of a delivery. A Hookline with the scheduler off takes a backlog
 * of --events events (PublishBatch of 1,000, one endpoint with
 * `max_in_flight` 64) and stops; a second one, with the scheduler on,
 * delivers it to the bench receiver. Printed per run: deliveries/s, the CPU
 * of Hookline and of PostgreSQL per delivery, the WAL and the statements
 * per delivery (delivery only, the publish is outside the window), and the
 * statements with the most time.
 *
 * Options: --events N (default 30,000), --runs N (default 2; each run
 * publishes a new backlog), --every S (print the deliveries/s of each S
 * seconds as the backlog drains, to see whether the rate falls as it goes,
 * with what PostgreSQL's maintenance did meanwhile: the tables autovacuum
 * was working on, and the checkpoints).
 * HOOKLINE_PROFILE_DIR=dir writes a CPU profile of the delivering Hookline.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { WebhookAdmin } from "../gen/hookline/v1/webhook_admin_pb.js";
import { Observer, statementsBetween, topStatements, totalCalls } from "./database-cost.js";
import { GrpcLoad, publishBatches } from "./grpc-load.js";
import { liveDeliveries } from "./history.js";
import { cpuMs, PostgresCpu } from "./process-usage.js";
import { benchDatabase, ReceiverProcess, spawnBenchHookline } from "./run.js";

const now = () => performance.timeOrigin + performance.now();
const SIZE = 1000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: "string", default: "30000" },
      runs: { type: "string", default: "2" },
      every: { type: "string" },
    },
  });
  const events = Math.ceil(Number(values.events) / SIZE) * SIZE;
  const db = await benchDatabase();
  const observer = await Observer.connect(db.url);
  const postgres = await PostgresCpu.ofBackend(observer.backendPid);
  const receiver = await ReceiverProcess.start();
  const profileDir = process.env.HOOKLINE_PROFILE_DIR;
  // One key for every process of the run: the endpoint's secret is sealed with it.
  const key = randomBytes(32).toString("hex");
  delete process.env.HOOKLINE_PROFILE_DIR;
  // Killed on the way out, also when a run fails: a Hookline left behind
  // keeps retrying its database and takes CPU from the next measurement.
  const live = new Set<{ kill: (signal: NodeJS.Signals) => Promise<unknown> }>();
  try {
    let received = 0;
    for (let run = 1; run <= Number(values.runs); run++) {
      // The backlog, published with the scheduler off.
      const ingest = await spawnBenchHookline(db.url, { HOOKLINE_SCHEDULER: "false" }, key);
      live.add(ingest);
      const admin = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: ingest.url }));
      if (run === 1) await admin.createEndpoint({ tenantId: "bench", url: `${receiver.url}/drain`, maxInFlight: 64 });
      const load = new GrpcLoad(ingest.url);
      await publishBatches(load, events, SIZE);
      load.close();
      await ingest.kill("SIGTERM");
      live.delete(ingest);

      // The delivery.
      const wal0 = await observer.walLsn();
      const statements0 = await observer.statements();
      const pg0 = postgres ? await postgres.cpuMs() : Number.NaN;
      if (profileDir) process.env.HOOKLINE_PROFILE_DIR = profileDir;
      const hookline = await spawnBenchHookline(db.url, {}, key);
      live.add(hookline);
      delete process.env.HOOKLINE_PROFILE_DIR;
      // Hookline's CPU from when it serves (its start is not a delivery's
      // cost), over the deliveries that arrived after that.
      const hooklineMs0 = await cpuMs(hookline.child.pid!);
      const before = (await receiver.stats()).count;
      const t0 = now();
      const timeoutMs = Math.max(300_000, events * 5);
      if (values.every) {
        // The rate of each interval, until the backlog is delivered.
        const everyMs = Number(values.every) * 1000;
        let last = before;
        let lastAt = t0;
        while (last < received + events && now() - t0 < timeoutMs) {
          await new Promise((r) => setTimeout(r, Math.min(everyMs, 1_000)));
          if (now() - lastAt < everyMs) continue;
          const count = (await receiver.stats()).count;
          const [maintenance] = await observer.query<{ vacuuming: string | null; checkpoints: string }>(
            `SELECT (SELECT string_agg(DISTINCT c.relname || ' (' || p.phase || ')', ', ')
                       FROM pg_stat_progress_vacuum p JOIN pg_class c ON c.oid = p.relid) AS vacuuming,
                    (SELECT num_timed + num_requested FROM pg_stat_checkpointer)::text AS checkpoints`,
          ).catch(() => []); // pg_stat_checkpointer is PostgreSQL 17's: older servers print "?".
          console.log(
            `  ${((now() - t0) / 1000).toFixed(0)} s: ${(count - before).toLocaleString("en")} delivered, ${((count - last) / ((now() - lastAt) / 1000)).toFixed(0)}/s; ` +
              `checkpoints so far ${maintenance?.checkpoints ?? "?"}, autovacuum on ${maintenance?.vacuuming ?? "nothing"}`,
          );
          last = count;
          lastAt = now();
        }
      }
      const stats = await receiver.waitFor(received + events, timeoutMs);
      const elapsed = now() - t0;
      const measured = stats.count - before;
      received = stats.count;
      while ((await liveDeliveries(observer)) > 0) await new Promise((r) => setTimeout(r, 20));
      const hooklineMs = (await cpuMs(hookline.child.pid!)) - hooklineMs0;
      const pgMs = postgres ? (await postgres.cpuMs()) - pg0 : Number.NaN;
      const wal = (await observer.walLsn()) - wal0;
      const statements1 = await observer.statements();
      await hookline.kill("SIGTERM");
      live.delete(hookline);
      const f = (x: number) => x.toFixed(0);
      console.log(
        `run ${run}: ${measured.toLocaleString("en")} deliveries in ${f(elapsed)} ms (${f(measured / (elapsed / 1000))}/s, ` +
          `from when Hookline served); CPU per delivery Hookline ${f((hooklineMs * 1000) / measured)} us, ` +
          `PostgreSQL ${f((pgMs * 1000) / events)} us; WAL ${f(wal / events)} B per delivery`,
      );
      if (statements0 && statements1) {
        const s = statementsBetween(statements0, statements1);
        const t = totalCalls(s);
        console.log(`  ${(t.calls / events).toFixed(3)} statements per delivery, ${((t.execMs * 1000) / events).toFixed(1)} us of execution`);
        for (const line of topStatements(s, events)) console.log(`  ${line}`);
      }
    }
  } finally {
    for (const p of live) await p.kill("SIGKILL").catch(() => {});
    receiver.stop();
    await observer.close();
    await db.drop();
  }
}

await main();
