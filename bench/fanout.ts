/**
 * `node --import tsx bench/fanout.ts [endpoints] [runs]`: only the fan-out
 * phase of the bench. One Hookline (from dist/), `endpoints` endpoints of
 * one tenant (default 1,000) on the bench's receiver; each run publishes
 * one event and prints the time from the publish to the last arrival, and
 * to the 50th and 90th percentile arrival.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PublishRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../gen/hookline/v1/webhook_admin_pb.js";
import { GrpcLoad } from "./grpc-load.js";
import { benchDatabase, ReceiverProcess, spawnBenchHookline } from "./run.js";

const now = () => performance.timeOrigin + performance.now();
const endpoints = Number(process.argv[2] ?? 1_000);
const runs = Number(process.argv[3] ?? 3);

const db = await benchDatabase();
const receiver = await ReceiverProcess.start();
const hookline = await spawnBenchHookline(db.url);
try {
  const admin = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: hookline.url }));
  let made = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (made < endpoints) {
        made++;
        await admin.createEndpoint({ tenantId: "fanout", url: `${receiver.url}/fanout` });
      }
    }),
  );
  const load = new GrpcLoad(hookline.url);
  const event = toBinary(
    PublishRequestSchema,
    create(PublishRequestSchema, { tenantId: "fanout", eventType: "bench.event", payload: { case: "payloadJson", value: `{"pad":"${"x".repeat(200)}"}` } }),
  );
  for (let run = 1; run <= runs; run++) {
    receiver.send({ cmd: "reset" });
    const t0 = now();
    await load.call("/hookline.v1.EventIngest/Publish", [event]);
    const answered = now() - t0;
    const s = await receiver.waitFor(endpoints, 60_000);
    console.log(`run ${run}: 1 event to ${endpoints} endpoints: Publish answered in ${answered.toFixed(0)} ms, first arrival ${(s.firstAt - t0).toFixed(0)} ms, last ${(s.lastAt - t0).toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
  load.close();
} finally {
  await hookline.kill("SIGTERM");
  receiver.stop();
  await db.drop();
}
