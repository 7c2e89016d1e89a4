/**
 * `npm run bench:ingest`: only the bulk ingest phase of the bench, for
 * working on PublishBatch. One Hookline with the scheduler off (so delivery
 * does not compete), one endpoint subscribed, batches of --size events
 * (default 1,000) with 4 calls in flight; prints events/s and the CPU of
 * Hookline and PostgreSQL per event, per run.
 *
 * Options: --size N, --events N per run (default 50,000), --runs N
 * (default 3). HOOKLINE_PROFILE_DIR=dir writes a CPU profile of Hookline.
 */
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { WebhookAdmin } from "../gen/hookline/v1/webhook_admin_pb.js";
import { Observer } from "./database-cost.js";
import { GrpcLoad, publishBatches } from "./grpc-load.js";
import { cpuMs, PostgresCpu } from "./process-usage.js";
import { benchDatabase, spawnBenchHookline } from "./run.js";

const now = () => performance.timeOrigin + performance.now();

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: "string", default: "1000" },
      events: { type: "string", default: "50000" },
      runs: { type: "string", default: "3" },
    },
  });
  const size = Number(values.size);
  const perRun = Number(values.events);
  const db = await benchDatabase();
  const observer = await Observer.connect(db.url);
  const postgres = await PostgresCpu.ofBackend(observer.backendPid);
  const hookline = await spawnBenchHookline(db.url, { HOOKLINE_SCHEDULER: "false" });
  try {
    const admin = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: hookline.url }));
    await admin.createEndpoint({ tenantId: "bench", url: "http://127.0.0.1:9/bench", maxInFlight: 64 });
    const load = new GrpcLoad(hookline.url);
    const publish = (total: number) => publishBatches(load, total, size);
    await publish(5 * size);
    for (let run = 1; run <= Number(values.runs); run++) {
      const cpu0 = await cpuMs(hookline.child.pid!);
      const pg0 = postgres ? await postgres.cpuMs() : Number.NaN;
      const t0 = now();
      await publish(perRun);
      const elapsed = now() - t0;
      const hooklineUs = (((await cpuMs(hookline.child.pid!)) - cpu0) * 1000) / perRun;
      const pgUs = postgres ? (((await postgres.cpuMs()) - pg0) * 1000) / perRun : Number.NaN;
      console.log(
        `run ${run}: PublishBatch of ${size}: ${Math.round(perRun / (elapsed / 1000)).toLocaleString("en")} events/s; ` +
          `CPU per event Hookline ${hooklineUs.toFixed(0)} us, PostgreSQL ${pgUs.toFixed(0)} us`,
      );
    }
    load.close();
  } finally {
    await hookline.kill("SIGTERM");
    await observer.close();
    await db.drop();
  }
}

await main();
