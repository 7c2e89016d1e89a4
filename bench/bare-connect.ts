/**
 * What the RPC stack alone costs: a bare connect-node server (no Hookline
 * layers, no database) answering Publish with an empty reply, loaded at a
 * fixed rate by the bench's gRPC load generator. Prints the server's cores.
 * Usage: node --import tsx bench/bare-connect.ts [rate] [seconds]; RUNS=n runs
 * (default 3), BARE_INTERCEPTORS=n pass-through interceptors.
 */
import { fork } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EventIngest, PublishRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";
import { GrpcLoad } from "./grpc-load.js";
import { cpuMs } from "./process-usage.js";

if (process.argv[2] === "serve") {
  // BARE_INTERCEPTORS=n: n pass-through interceptors, to price each layer.
  const interceptors: Interceptor[] = Array.from({ length: Number(process.env.BARE_INTERCEPTORS ?? 0) }, () => (next) => async (req) => await next(req));
  const handler = connectNodeAdapter({
    interceptors,
    routes: (router) =>
      router.service(EventIngest, {
        publish: async () => ({ eventIds: ["evt_1"] }),
      } as never),
  });
  process.on("SIGINT", () => process.exit(0));
  const server = http2.createServer(handler).listen(0, "127.0.0.1", () => process.send!((server.address() as AddressInfo).port));
} else {
  const rate = Number(process.argv[2] ?? 500);
  const seconds = Number(process.argv[3] ?? 8);
  const child = fork(new URL(import.meta.url).pathname, ["serve"], { execArgv: ["--import", "tsx", ...(process.env.PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROFILE_DIR}`] : [])] });
  const port = await new Promise<number>((r) => child.once("message", (m) => r(m as number)));
  const load = new GrpcLoad(`http://127.0.0.1:${port}`);
  const body = toBinary(PublishRequestSchema, create(PublishRequestSchema, { tenantId: "bench", eventType: "bench.event", payload: { case: "payloadJson", value: `{"pad":"${"x".repeat(200)}"}` } }));
  const call = () => load.call("/hookline.v1.EventIngest/Publish", [body]);
  await Promise.all(Array.from({ length: 500 }, call));
  for (let run = 0; run < Number(process.env.RUNS ?? 3); run++) {
    const c0 = await cpuMs(child.pid!);
    const t0 = performance.now();
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < rate * seconds; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait - 1));
      calls.push(call());
    }
    await Promise.all(calls);
    console.log(`bare connect-node at ${rate}/s: ${(((await cpuMs(child.pid!)) - c0) / (performance.now() - t0)).toFixed(3)} cores`);
  }
  load.close();
  child.kill("SIGINT");
}
