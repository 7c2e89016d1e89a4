import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/store/embedded-postgres.js";
import { freePort } from "../support/free-port.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describe("the embedded PostgreSQL module", () => {
  it("leaves the process's exit code alone (embedded-postgres's exit hook used to force 0)", () => {
    const script = 'import("./src/store/embedded-postgres.ts").then(() => { process.exitCode = 3; });';
    const result = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(3);
  });

  it("leaves SIGTERM to Hookline's own graceful shutdown", () => {
    const script =
      'import("./src/store/embedded-postgres.ts").then(() => { process.on("SIGTERM", () => { console.log("mine"); process.exit(7); }); process.kill(process.pid, "SIGTERM"); setTimeout(() => {}, 2000); });';
    const result = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(result.stdout.trim()).toBe("mine");
    expect(result.status).toBe(7);
  });
});

/**
 * Any local user can reach 127.0.0.1. The embedded server's superuser
 * (who can run `COPY ... FROM PROGRAM` as the server's user, and read the
 * endpoints' header values) had the fixed, documented password "hookline";
 * it now has a random one, in a file only Hookline's user can read.
 */
describe("the embedded server's superuser", () => {
  let dir: string;
  let port: number;
  let db: EmbeddedDatabase | undefined;
  const cluster = () => join(dir, "pg");
  const OLD_URL = () => `postgres://postgres:hookline@127.0.0.1:${port}/postgres`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "hookline-pg-access-"));
    // Reachable by the "postgres" user that runs the server when run as root.
    await chmod(dir, 0o755);
    port = await freePort();
  });

  afterAll(async () => {
    await db?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Connects and runs `sql`; rejects as the server refuses. */
  async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  }

  it("refuses the old fixed password, and has a random one kept in a file of mode 0600", { timeout: 60_000 }, async () => {
    db = await startEmbeddedPostgres({ dir: cluster(), port });
    const refused = await query(OLD_URL(), "SELECT 1").catch((err: { code?: string }) => err);
    expect(refused).toMatchObject({ code: "28P01" }); // invalid_password

    const file = `${cluster()}.password`;
    const st = await stat(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(process.getuid?.());
    const password = (await readFile(file, "utf8")).trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(decodeURIComponent(new URL(db.serverUrl).password)).toBe(password);

    // TCP on 127.0.0.1 only, no Unix socket, SCRAM only.
    const [settings] = await query(
      db.serverUrl,
      "SELECT current_setting('listen_addresses') AS listen, current_setting('unix_socket_directories') AS sockets, " +
        "(SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'postgres') AS scram",
    );
    expect(settings).toEqual({ listen: "127.0.0.1", sockets: "", scram: true });
    const rules = await query(db.serverUrl, "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY rule_number");
    expect(rules).toEqual([{ type: "host", address: "127.0.0.1", auth_method: "scram-sha-256" }]);
  });

  it("gives a cluster made by an older Hookline (the fixed password, no password file) a new password at start", { timeout: 60_000 }, async () => {
    // The state an older Hookline left: "hookline" and no file.
    await query(db!.serverUrl, "ALTER ROLE postgres WITH PASSWORD 'hookline'");
    expect(await query(OLD_URL(), "SELECT 1 AS one")).toEqual([{ one: 1 }]);
    const before = (await readFile(`${cluster()}.password`, "utf8")).trim();
    await db!.stop();
    await rm(`${cluster()}.password`);

    db = await startEmbeddedPostgres({ dir: cluster(), port });
    const refused = await query(OLD_URL(), "SELECT 1").catch((err: { code?: string }) => err);
    expect(refused).toMatchObject({ code: "28P01" });
    const after = (await readFile(`${cluster()}.password`, "utf8")).trim();
    expect(after).not.toBe(before);
    expect(await query(db.serverUrl, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
  });
});
