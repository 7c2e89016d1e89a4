/**
 * With DATABASE_URL unset, Hookline starts its own embedded PostgreSQL in
 * the data directory, and what it stored is there after a restart.
 */
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { startHookline } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { client } from "../support/clients.js";
import { freePort } from "../support/free-port.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});


describe("embedded PostgreSQL", () => {
  it("is started when DATABASE_URL is unset and keeps data across restarts", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "hookline-data-"));
    await chmod(dataDir, 0o755);
    dirs.push(dataDir);
    const config = loadConfig({
      HOOKLINE_DATA_DIR: dataDir,
      HOOKLINE_PORT: "0",
      HOOKLINE_EMBEDDED_PG_PORT: String(await freePort()),
      HOOKLINE_SCHEDULER: "false",
    });
    expect(config.databaseUrl).toBeUndefined();
    const log = pino({ level: "silent" });

    const first = await startHookline(config, log);
    const { endpoint } = await client(WebhookAdmin, "connect-http1", first.url!).createEndpoint({
      tenantId: "persist",
      url: "https://example.com/hook",
    });
    await first.stop();

    const second = await startHookline(config, log);
    try {
      const got = await client(WebhookAdmin, "connect-http1", second.url!).getEndpoint({ id: endpoint!.id });
      expect(got.endpoint?.url).toBe("https://example.com/hook");
    } finally {
      await second.stop();
    }
  }, 60_000);

  it("stops a start that cannot work with one line naming the cause, without a stack trace", { timeout: 60_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "hookline-data-"));
    await chmod(dataDir, 0o755);
    dirs.push(dataDir);
    // Another program holds the embedded server's port.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as { port: number };
    try {
      const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
        cwd: fileURLToPath(new URL("../..", import.meta.url)),
        env: {
          PATH: process.env.PATH ?? "",
          HOOKLINE_DATA_DIR: dataDir,
          HOOKLINE_PORT: "0",
          HOOKLINE_EMBEDDED_PG_PORT: String(port),
          HOOKLINE_LOG_LEVEL: "silent",
        },
        encoding: "utf8",
        timeout: 50_000,
      });
      expect(result.status).toBe(1);
      const lines = result.stderr.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^hookline: failed to start: the embedded PostgreSQL on 127.0.0.1:${port}: .*Address already in use`));
    } finally {
      taken.close();
    }
  });
});
