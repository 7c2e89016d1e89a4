/**
 * `npm run bench:latency`: only the fixed-rate phase of the bench, for
 * working on publish-to-receiver latency and the cores it costs. One
 * Hookline (API and scheduler, from dist/), one endpoint, the bench's
 * receiver and gRPC load generator; prints p50/p90/p99 and the cores of
 * Hookline and PostgreSQL per run, so several runs give a range.
 *
 * Options: --rate N (default 500), --seconds N (default 8), --runs N
 * (default 3), --warm-up S (seconds of publishing at the rate before the
 * runs, default 3), --env K=V (extra Hookline environment, repeatable; with
 * HOOKLINE_SCHEDULER=false only the publishes are measured).
 * HOOKLINE_PROFILE_DIR=dir writes a CPU profile of Hookline there
 * (`node --cpu-prof`, see test/support/process.ts).
 */
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PublishRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../gen/hookline/v1/webhook_admin_pb.js";
import { Observer, statementsBetween, topStatements, totalCalls } from "./database-cost.js";
import { benchPayload, GrpcLoad } from "./grpc-load.js";
import { liveDeliveries } from "./history.js";
import { cpuMs, PostgresCpu } from "./process-usage.js";
import { benchDatabase, ReceiverProcess, settingsFrom, spawnBenchHookline } from "./run.js";

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: "string", default: "500" },
      seconds: { type: "string", default: "8" },
      runs: { type: "string", default: "3" },
      "warm-up": { type: "string", default: "3" },
      env: { type: "string", multiple: true, default: [] },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const extra = settingsFrom(values.env);
  const db = await benchDatabase();
  const receiver = await ReceiverProcess.start();
  const observer = await Observer.connect(db.url);
  const postgres = await PostgresCpu.ofBackend(observer.backendPid);
  const hookline = await spawnBenchHookline(db.url, extra);
  try {
    const admin = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: hookline.url }));
    const { endpoint } = await admin.createEndpoint({ tenantId: "bench", url: `${receiver.url}/bench`, maxInFlight: 64 });
    receiver.send({ cmd: "secret", secret: endpoint!.secret });
    const load = new GrpcLoad(hookline.url);
    const publish = (i: number) =>
      load.call("/hookline.v1.EventIngest/Publish", [
        toBinary(PublishRequestSchema, create(PublishRequestSchema, { tenantId: "bench", eventType: "bench.event", payload: { case: "payloadJson", value: benchPayload(i) } })),
      ]);
    // Warm up: connections, the JIT, prepared statements; then --warm-up
    // seconds at the rate (a fresh process's first seconds cost a quarter
    // more CPU while V8 compiles; see bench/run.ts, warmUpSeconds).
    const warmUp = 200 + Math.round(rate * Number(values["warm-up"]));
    for (let i = 0; i < warmUp; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, warmUp - i) }, (_, j) => publish(i + j)));
      if (i >= 200) await sleep(Math.max(0, (200 * 1000) / rate - 50));
    }
    const delivering = extra.HOOKLINE_SCHEDULER !== "false";
    if (delivering) await receiver.waitFor(warmUp, 60_000);
    for (let run = 1; run <= Number(values.runs); run++) {
      receiver.send({ cmd: "reset" });
      const cpu0 = await cpuMs(hookline.child.pid!);
      const pg0 = postgres ? await postgres.cpuMs() : Number.NaN;
      const statements0 = await observer.statements();
      const total = Math.round(rate * seconds);
      const t0 = now();
      const calls: Promise<unknown>[] = [];
      const publishLatencies: number[] = [];
      for (let i = 0; i < total; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - now();
        if (wait > 1) await sleep(wait - 1);
        const sent = now();
        calls.push(publish(i).then(() => publishLatencies.push(now() - sent)));
      }
      await Promise.all(calls);
      const s = delivering ? await receiver.waitFor(total, 60_000) : { latencies: [] };
      while (delivering && (await liveDeliveries(observer)) > 0) await sleep(10);
      const elapsed = now() - t0;
      const cores = ((await cpuMs(hookline.child.pid!)) - cpu0) / elapsed;
      const pgCores = postgres ? ((await postgres.cpuMs()) - pg0) / elapsed : Number.NaN;
      const statements1 = await observer.statements();
      const statements = statements0 && statements1 ? statementsBetween(statements0, statements1) : [];
      const sorted = [...s.latencies].sort((a, b) => a - b);
      const pub = publishLatencies.sort((a, b) => a - b);
      console.log(
        `run ${run}: ${rate}/s x ${seconds}s  arrival p50 ${percentile(sorted, 50).toFixed(2)} p90 ${percentile(sorted, 90).toFixed(2)} ` +
          `p99 ${percentile(sorted, 99).toFixed(2)} ms; Publish answered p50 ${percentile(pub, 50).toFixed(2)} p99 ${percentile(pub, 99).toFixed(2)} ms; ` +
          `cores Hookline ${cores.toFixed(2)} PostgreSQL ${pgCores.toFixed(2)}`,
      );
      console.log(`  statements per event ${(totalCalls(statements).calls / total).toFixed(2)}: ${topStatements(statements, total).join("; ")}`);
    }
    load.close();
  } finally {
    await hookline.kill("SIGTERM");
    await observer.close();
    receiver.stop();
    await db.drop();
  }
}

await main();
