/**
 * A PostgreSQL server for a test run or a benchmark: DATABASE_URL's server
 * when set, otherwise an embedded one in a temporary directory, removed on
 * stop.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../../src/store/embedded-postgres.js";
import { freePort } from "./free-port.js";

/** A server to make databases on. */
export interface PostgresServer {
  /** URL of a database on it that exists (swap the path for others). */
  serverUrl: string;
  /** Stops the embedded server and removes its files; nothing for DATABASE_URL. */
  stop(): Promise<void>;
}

/**
 * Starts (or, with DATABASE_URL, borrows) a PostgreSQL server. `settings`
 * are passed to an embedded server (`-c name=value`); a borrowed one keeps
 * its own.
 */
export async function startPostgresServer(settings?: Readonly<Record<string, string>>): Promise<PostgresServer> {
  if (process.env.DATABASE_URL) return { serverUrl: process.env.DATABASE_URL, stop: async () => {} };
  const dir = await mkdtemp(join(tmpdir(), "hookline-pg-"));
  // Reachable by the "postgres" user that runs the server when run as root.
  await chmod(dir, 0o755);
  const embedded = await startEmbeddedPostgres({ dir: join(dir, "pg"), port: await freePort(), settings });
  return {
    serverUrl: embedded.serverUrl,
    async stop() {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
