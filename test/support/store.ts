/**
 * The store (the ORM's pool and raw SQL on it) on a test database of its
 * own, for the unit tests of the SQL operations in src/store/sql/.
 */
import { beforeEach } from "vitest";
import type { Sql } from "../../src/store/sql.js";
import { openStore, type Store } from "../../src/store/store.js";
import { useTestDatabase, type TestDatabase } from "./database.js";
import { madeBeforeAll } from "./made-before-all.js";
import { emptyTables } from "./rows.js";

/** What {@link useTestStore} makes. */
export interface TestStore {
  /** The database, for writing and reading rows directly (see rows.ts). */
  db: TestDatabase;
  store: Store;
  /** The store's raw SQL, what the operations under test take. */
  sql: Sql;
}

/**
 * A fresh database with a store open on it (pool of `poolSize`), made
 * before the file's tests and dropped after them, its tables emptied
 * before each test.
 */
export function useTestStore(poolSize = 2): TestStore {
  const db = useTestDatabase();
  const store = madeBeforeAll(
    () => openStore(db.url, poolSize),
    (s) => s.close(),
  );
  beforeEach(() => emptyTables(db));
  const sql: Sql = {
    query: <R extends object>(text: string, values?: unknown[], prepare?: boolean) => store.sql.query<R>(text, values, prepare),
  };
  return { db, store, sql };
}
