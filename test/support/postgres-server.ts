/**
 * A PostgreSQL server for a test run or a benchmark: DATABASE_URL's server
 * when set, otherwise an embedded one in a temporary directory, removed on
 * stop.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { databaseUrl, type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/store/embedded-postgres.js";
import { freePort } from "./free-port.js";
import { madeBeforeAll } from "./made-before-all.js";

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

/**
 * Makes database `name` on the server at `serverUrl` anew (dropped first if
 * a run before left it) and returns its URL: for the bench scripts that
 * build their own schema and backlog (explain.ts, db-cost.ts, claim-decay.ts).
 */
export async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  return databaseUrl(serverUrl, name);
}

/** A PostgreSQL of a test's own, which the test stops and starts again (same data, same port). */
export interface StoppablePostgres {
  /** URL of its database `hookline`. */
  readonly url: string;
  /** Stops the server; the data stays. */
  stop(): Promise<void>;
  /** Starts it again on the same data and port. */
  start(): Promise<void>;
  /** Stops it and removes its files. */
  remove(): Promise<void>;
}

/**
 * Starts an embedded PostgreSQL of the caller's own (whatever DATABASE_URL
 * says: the shared server must not be stopped), in a temporary directory,
 * with a database `hookline`.
 */
export async function startStoppablePostgres(): Promise<StoppablePostgres> {
  const dir = await mkdtemp(join(tmpdir(), "hookline-pg-own-"));
  await chmod(dir, 0o755);
  const port = await freePort();
  const options = { dir: join(dir, "pg"), port };
  let server: EmbeddedDatabase | undefined = await startEmbeddedPostgres(options);
  const url = await server.ensureDatabase("hookline");
  return {
    url,
    async stop() {
      await server?.stop();
      server = undefined;
    },
    async start() {
      server ??= await startEmbeddedPostgres(options);
    },
    async remove() {
      await server?.stop();
      server = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A {@link startStoppablePostgres} server for the tests of the file (or
 * describe block) this is called in, removed after them; `timeoutMs` bounds
 * its start (initdb) on a slow machine.
 */
export function useStoppablePostgres(timeoutMs?: number): StoppablePostgres {
  return madeBeforeAll(startStoppablePostgres, (server) => server.remove(), timeoutMs);
}
