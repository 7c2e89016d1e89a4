/**
 * A Python client: stubs generated from proto/ with the standard
 * grpc_tools.protoc, and clients/python/publish_and_watch.py run against a
 * live Hookline with a token (unary calls and a server stream).
 *
 * It needs Debian's python3-grpcio and python3-grpc-tools for the system
 * Python; .ci/run installs them and sets HOOKLINE_REQUIRE_PYTHON_INTEROP=1,
 * which turns their absence into a failure. Elsewhere the test is skipped,
 * saying what to install.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const PYTHON = "/usr/bin/python3";
const TOKEN = "python-interop-admin-token-0123";

async function hasGrpc(): Promise<boolean> {
  try {
    await run(PYTHON, ["-c", "import grpc, grpc_tools.protoc"]);
    return true;
  } catch {
    return false;
  }
}

const available = await hasGrpc();
if (!available && process.env.HOOKLINE_REQUIRE_PYTHON_INTEROP === "1") {
  throw new Error(`${PYTHON} cannot import grpc and grpc_tools: apt-get install python3-grpcio python3-grpc-tools`);
}

let db: TestDatabase;
let app: TestHookline;
let r: Receiver;
let out: string;

beforeAll(async () => {
  if (!available) return;
  db = await createTestDatabase();
  app = await startTestHookline(db.url, { HOOKLINE_ADMIN_TOKEN: TOKEN });
  r = await startReceiver();
  r.reply(() => ({ status: 200 }));
  out = await mkdtemp(join(tmpdir(), "hookline-py-"));
});

afterAll(async () => {
  await app?.stop();
  await r?.close();
  await db?.drop();
  if (out) await rm(out, { recursive: true, force: true });
});

it.skipIf(!available)("publishes and watches its delivery from Python stubs made by grpc_tools.protoc", async () => {
  const protos = (await readdir(join(ROOT, "proto/hookline/v1"))).map((f) => `proto/hookline/v1/${f}`);
  await run(PYTHON, ["-m", "grpc_tools.protoc", "-Iproto", `--python_out=${out}`, `--grpc_python_out=${out}`, ...protos], { cwd: ROOT });
  const { stdout } = await run(PYTHON, ["clients/python/publish_and_watch.py"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PYTHONPATH: out,
      HOOKLINE_TARGET: new URL(app.url).host,
      HOOKLINE_TOKEN: TOKEN,
      RECEIVER_URL: `${r.url}/py`,
    },
    timeout: 60_000,
  });
  const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
  expect(lines[0]).toEqual({ endpoint: expect.stringMatching(/^ep_/) });
  expect(lines[1]).toEqual({ event: expect.stringMatching(/^evt_/), deliveries: 1 });
  expect(lines[2]).toEqual({ delivery: expect.stringMatching(/^dlv_/), status: "DELIVERY_STATUS_SUCCEEDED", http: 200 });
  expect(r.requests.filter((q) => q.path === "/py")).toHaveLength(1);
}, 90_000);
