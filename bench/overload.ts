/**
 * `npm run bench:overload`: Hookline's memory under a publish flood it
 * cannot keep up with. Publishes `--rate` unary Publish calls a second for
 * `--seconds`, open loop (not waiting for answers) over 4 HTTP/2
 * connections, to a Hookline built from dist/ with its own embedded
 * PostgreSQL in a temporary directory and the scheduler off, its heap
 * capped at `--heap` MB. Prints the process's resident memory and heap
 * (from its /metrics) every 2 s and how the calls ended. Without a bound on
 * streams per connection, 2,000/s for 8 s ran a 256 MB heap out of memory;
 * see docs/reliability.md.
 *
 *   npm run bench:overload -- --rate 2000 --seconds 8 --heap 256 [--env HOOKLINE_HTTP2_MAX_STREAMS=1000]
 */
import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { PublishRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";
import { GrpcLoad } from "./grpc-load.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
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

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.address() as { port: number };
  await new Promise((res) => server.close(res));
  return port;
}

const dir = await mkdtemp(join(tmpdir(), "hookline-overload-"));
// Run as root, the embedded PostgreSQL runs as "postgres" and must reach it.
await chmod(dir, 0o755);
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const extra = Object.fromEntries(args.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
const child = spawn(process.execPath, [`--max-old-space-size=${args.heap}`, "dist/src/main.js"], {
  cwd: ROOT,
  env: {
    ...process.env,
    HOOKLINE_PORT: String(port),
    HOOKLINE_DATA_DIR: dir,
    HOOKLINE_LOG_LEVEL: "error",
    HOOKLINE_SCHEDULER: "false",
    HOOKLINE_EMBEDDED_PG_PORT: String(await freePort()),
    ...extra,
  },
  stdio: ["ignore", "inherit", "inherit"],
});
let exited: string | undefined;
child.on("exit", (code, signal) => {
  exited = `Hookline exited (${signal ?? `code ${code}`})`;
});

async function memory(label: string): Promise<void> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const mb = (name: string) => (Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]) / 1048576).toFixed(0);
  console.log(`${label.padEnd(8)} rss ${mb("process_resident_memory_bytes")} MB, heap used ${mb("nodejs_heap_size_used_bytes")} MB`);
}

try {
  for (let i = 0; ; i++) {
    if (exited) throw new Error(exited);
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    if (i > 240) throw new Error("Hookline did not get ready in 60 s");
    await sleep(250);
  }
  await memory("idle");
  const load = new GrpcLoad(url);
  const message = toBinary(
    PublishRequestSchema,
    create(PublishRequestSchema, { tenantId: "overload", eventType: "o.e", payload: { case: "payloadJson", value: JSON.stringify({ pad: "x".repeat(200) }) } }),
  );
  const codes = new Map<string, number>();
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
        () => void codes.set("ok", (codes.get("ok") ?? 0) + 1),
        (err: Error) => {
          const key = /grpc-status \d+/.exec(err.message)?.[0] ?? "connection lost";
          codes.set(key, (codes.get(key) ?? 0) + 1);
        },
      ),
    );
  }
  await Promise.all(calls);
  clearInterval(sampler);
  const elapsed = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`${total} calls at ${rate}/s, all ended after ${elapsed} s: ${[...codes].map(([k, v]) => `${k} ${v}`).join(", ")}`);
  if (exited) console.log(exited);
  else await memory("after");
  load.close();
} finally {
  if (!exited) {
    child.kill("SIGTERM");
    await new Promise((res) => child.on("exit", res));
  }
  await rm(dir, { recursive: true, force: true });
}
