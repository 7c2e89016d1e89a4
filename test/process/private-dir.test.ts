/**
 * As root (the default user of most containers), from a checkout under a
 * directory closed to other users (`/root`, a `mktemp -d` folder): the
 * embedded PostgreSQL runs as the user `postgres`, which can reach neither
 * node_modules nor the default `./.hookline`. The server started the way
 * `npm start` starts it still serves (binaries copied, cluster kept under
 * /var/lib/hookline, see src/store/embedded-postgres-setup.ts), and a
 * HOOKLINE_DATA_DIR set to a place `postgres` cannot reach stops the start
 * with one line, no stack trace.
 *
 * Only as root; skipped otherwise. The checkout is this one's files
 * (tracked and new, as `git ls-files` lists them) with node_modules
 * hard-linked in, in a fresh mode-0700 directory.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { freePort } from "../support/free-port.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const AS_ROOT = process.getuid?.() === 0;

let outer: string;
let checkout: string;
let proc: HooklineProcess | undefined;
let clusterHome: string | undefined;

describe.skipIf(!AS_ROOT)("as root, from a checkout in a directory closed to other users (skipped: not running as root)", () => {
  beforeAll(async () => {
    outer = await mkdtemp(join(tmpdir(), "hookline-private-"));
    expect((await stat(outer)).mode & 0o777).toBe(0o700);
    checkout = join(outer, "hookline");
    const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
      .split("\0")
      .filter((f) => f !== "" && existsSync(join(ROOT, f)));
    for (const f of files) {
      await mkdir(dirname(join(checkout, f)), { recursive: true });
      await copyFile(join(ROOT, f), join(checkout, f));
    }
    // Hard links where the file system allows (fast), else a copy.
    const linked = spawnSync("cp", ["-al", join(ROOT, "node_modules"), join(checkout, "node_modules")]);
    if (linked.status !== 0) {
      await rm(join(checkout, "node_modules"), { recursive: true, force: true });
      execFileSync("cp", ["-a", join(ROOT, "node_modules"), join(checkout, "node_modules")]);
    }
  }, 120_000);

  afterAll(async () => {
    await proc?.kill("SIGKILL");
    if (outer) await rm(outer, { recursive: true, force: true });
    if (clusterHome) await rm(clusterHome, { recursive: true, force: true });
  });

  it("starts with the default data directory, serves, and stops on SIGTERM", { timeout: 180_000 }, async () => {
    const env = { HOOKLINE_PORT: "0", HOOKLINE_EMBEDDED_PG_PORT: String(await freePort()) };
    proc = await spawnHookline(env, 150_000, "sources", checkout);
    const starting = proc.logs.find((l) => l.msg === "DATABASE_URL is unset; starting embedded PostgreSQL");
    const dir = String(starting?.dir);
    clusterHome = dirname(dir);
    expect(dir).toMatch(/^\/var\/lib\/hookline\/clusters\/[0-9a-f]{16}\/pg$/);
    const asRoot = proc.logs.find((l) => l.msg === "Hookline runs as root: the embedded PostgreSQL runs as another user");
    expect(String(asRoot?.binaries)).toMatch(/^\/var\/lib\/hookline\/postgres\/[^/]+\/bin$/);

    expect((await fetch(`${proc.url}/healthz`)).status).toBe(200);
    await expect.poll(async () => (await fetch(`${proc!.url}/readyz`)).status, { timeout: 10_000 }).toBe(200);
    const { endpoint } = await client(WebhookAdmin, "connect-http1", proc.url).createEndpoint({
      tenantId: "private",
      url: "https://example.com/hook",
    });
    expect(endpoint?.id).toMatch(/^ep_/);
    // Hookline's own files stay in the checkout: the secret key.
    expect((await stat(join(checkout, ".hookline", "secret.key"))).mode & 0o777).toBe(0o600);

    expect(await proc.kill("SIGTERM")).toBe(0);
    proc = undefined;
  });

  it("stops with one line saying what to do when HOOKLINE_DATA_DIR is set where the postgres user cannot reach", { timeout: 60_000 }, () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: checkout,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        HOOKLINE_DATA_DIR: join(outer, "data"),
        HOOKLINE_PORT: "0",
        HOOKLINE_LOG_LEVEL: "silent",
      },
      encoding: "utf8",
      timeout: 50_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^hookline: failed to start: .*cannot reach .* set HOOKLINE_DATA_DIR to a directory it can reach/);
  });
});
