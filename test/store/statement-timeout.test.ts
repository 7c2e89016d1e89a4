/**
 * HOOKLINE_DB_STATEMENT_TIMEOUT: every statement of the store's pool is
 * bounded by the server's statement_timeout, and one cancelled for it is a
 * transient error (the API answers UNAVAILABLE, background writes retry),
 * with the connection fit for the next statement.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { classifyDatabaseError } from "../../src/store/database-errors.js";
import { openStore, type Store } from "../../src/store/store.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

let db: TestDatabase;
let bounded: Store;
let unbounded: Store;

beforeAll(async () => {
  db = await createTestDatabase();
  bounded = await openStore(db.url, 2, "hookline-test", undefined, 300);
  unbounded = await openStore(db.url, 2, "hookline-test");
});

afterAll(async () => {
  await bounded?.close();
  await unbounded?.close();
  await db?.drop();
});

it("cancels a statement that runs past the timeout with a transient error, and the pool goes on", async () => {
  expect(await bounded.sql.query("SHOW statement_timeout")).toEqual([{ statement_timeout: "300ms" }]);
  const err = await bounded.sql.query("SELECT pg_sleep(5)").then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((err as { code?: string }).code).toBe("57014");
  expect(classifyDatabaseError(err)).toBe("transient");
  // Both connections of the pool still answer.
  const answers = await Promise.all([bounded.sql.query("SELECT 1 AS one"), bounded.sql.query("SELECT 1 AS one")]);
  expect(answers).toEqual([[{ one: 1 }], [{ one: 1 }]]);
  // The ORM's admin paths share the pool, and the bound.
  const [row] = await bounded.em().getConnection().execute<{ statement_timeout: string }[]>("SHOW statement_timeout");
  expect(row!.statement_timeout).toBe("300ms");
});

it("sets no bound without a timeout", async () => {
  expect(await unbounded.sql.query("SHOW statement_timeout")).toEqual([{ statement_timeout: "0" }]);
});
