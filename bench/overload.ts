/**
 * `npm run bench:overload`: Hookline's memory under a publish flood it
 * cannot keep up with. Publishes `--rate` unary Publish calls a second for
 * `--seconds`, open loop (not waiting for answers) over 4 HTTP/2
 * connections, to a Hookline built from dist/ (scheduler off, heap capped
 * at `--heap` MB) on a fresh database, as `npm run bench` does. Prints the
 * process's resident memory and heap (from its /metrics) every 2 s and how
 * the calls ended. Without a bound on streams per connection, 2,000/s for
 * 8 s ran a 256 MB heap out of memory; see docs/reliability.md.
 *
 *   npm run bench:overload -- --rate 2000 --seconds 8 --heap 256 [--env HOOKLINE_HTTP2_MAX_STREAMS=1000]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { PublishRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";
import { spawnHookline } from "../test/support/process.js";
import { GrpcLoad } from "./grpc-load.js";
import { benchDatabase } from "./run.js";

const { values: args } = parseArgs({
  options: {
    rate: { type: "string", default: "2000" },
    seconds: { type: "string", default: "8" },
    heap: { type: "string", default: "256" },
    env: { type: "string", multiple: true, default: [] },
  },
});
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const db = await benchDatabase();
try {
  const hookline = await spawnHookline(
    {
      DATABASE_URL: db.url,
      HOOKLINE_HOST: "127.0.0.1",
      HOOKLINE_PORT: "0",
      HOOKLINE_SECRET_KEY: randomBytes(32).toString("hex"),
      HOOKLINE_SCHEDULER: "false",
      NODE_OPTIONS: `--max-old-space-size=${args.heap}`,
      ...Object.fromEntries(args.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
    },
    60_000,
    "build",
  );
  let exited: string | undefined;
  hookline.child.on("exit", (code, signal) => {
    exited = `Hookline exited (${signal ?? `code ${code}`})`;
  });
  const memory = async (label: string) => {
    const text = await (await fetch(`${hookline.url}/metrics`)).text();
    const mb = (name: string) => (Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]) / 1048576).toFixed(0);
    console.log(`${label.padEnd(8)} rss ${mb("process_resident_memory_bytes")} MB, heap used ${mb("nodejs_heap_size_used_bytes")} MB`);
  };

  await memory("idle");
  const load = new GrpcLoad(hookline.url);
  const message = toBinary(
    PublishRequestSchema,
    create(PublishRequestSchema, { tenantId: "overload", eventType: "o.e", payload: { case: "payloadJson", value: JSON.stringify({ pad: "x".repeat(200) }) } }),
  );
  const outcomes = new Map<string, number>();
  const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  const t0 = performance.now();
  const sampler = setInterval(() => {
    if (!exited) void memory(`${((performance.now() - t0) / 1000).toFixed(0)} s`).catch(() => {});
  }, 2000);
  const calls: Promise<void>[] = [];
  const total = rate * seconds;
  for (let i = 0; i < total; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait - 1);
    calls.push(
      load.call("/hookline.v1.EventIngest/Publish", [message]).then(
        () => void count("ok"),
        (err: Error) => void count(/grpc-status \d+/.exec(err.message)?.[0] ?? "connection lost"),
      ),
    );
  }
  await Promise.all(calls);
  clearInterval(sampler);
  const elapsed = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`${total} calls at ${rate}/s, all ended after ${elapsed} s: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  if (exited) console.log(exited);
  else await memory("after");
  load.close();
  if (!exited) await hookline.kill("SIGTERM");
} finally {
  await db.drop();
}
