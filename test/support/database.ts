/**
 * A fresh database per test file, cloned from the migrated template made in
 * global-setup.ts, on the run's one real PostgreSQL.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { databaseUrl } from "../../src/store/embedded-postgres.js";
import { madeBeforeAll } from "./made-before-all.js";

/** A database of one test file. */
export interface TestDatabase {
  url: string;
  /** Runs SQL directly, for assertions on what was (not) written. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Drops the database. */
  drop(): Promise<void>;
}

/** Creates a new database from the migrated template, or an empty one (for migration tests). */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const serverUrl = inject("pgServerUrl");
  const name = `hookline_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(options.empty ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${inject("templateDatabase")}`);
  await admin.end();
  const url = databaseUrl(serverUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // pool.end() resolves before its clients' sockets close, so DROP ... WITH
  // (FORCE) can terminate one still closing; the pool would re-emit that
  // FATAL as an 'error' event, an uncaught exception without this listener.
  // A query's own errors still reach its caller.
  pool.on("error", () => {});
  return {
    url,
    query: async (text, values) => (await pool.query(text, values)).rows,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A database made from the template before the tests of the file (or describe block) this is called in, and dropped after them. */
export function useTestDatabase(): TestDatabase {
  return madeBeforeAll(createTestDatabase, (db) => db.drop());
}
