/**
 * The store: everything the domain needs from the database, opened once per
 * process and passed down. Domain code gets a fresh EntityManager per call
 * (`em()`), so no state leaks between requests.
 */
import type { EntityManager, MikroORM } from "@mikro-orm/postgresql";
import { migrate, openOrm } from "./orm.js";
import { type Sql, sqlFromOrm } from "./sql.js";

/** The database handles of one Hookline process. */
export interface Store {
  /** The ORM, for migrations and admin paths. */
  readonly orm: MikroORM;
  /** Raw SQL on the same pool, for the hot paths. */
  readonly sql: Sql;
  /** The database URL (the LISTEN connection uses it). */
  readonly url: string;
  /** A fresh EntityManager for one unit of work. */
  em(): EntityManager;
  /** Closes the pool. */
  close(): Promise<void>;
}

/**
 * Opens the database at `url`, applies pending migrations and returns the
 * store. `applicationName` names this process's connections; `onDriverWarning`
 * gets the query builder's warnings (see orm.ts); `statementTimeoutMs` bounds
 * each statement of the store's pool.
 *
 * Migrations run first on connections of their own without that bound: one
 * that rewrites a table of millions of rows may take minutes, and must not
 * be cancelled halfway (each runs in a transaction, so it would be rolled
 * back, and every start would try again and fail the same way).
 */
export async function openStore(
  url: string,
  poolSize: number,
  applicationName?: string,
  onDriverWarning?: (message: string) => void,
  statementTimeoutMs?: number,
): Promise<Store> {
  const migrator = await openOrm({ url, poolSize: 2, applicationName, onDriverWarning });
  try {
    await migrate(migrator);
  } finally {
    await migrator.close(true);
  }
  const orm = await openOrm({ url, poolSize, applicationName, onDriverWarning, statementTimeoutMs });
  return {
    orm,
    sql: sqlFromOrm(orm),
    url,
    em: () => orm.em.fork(),
    close: () => orm.close(true),
  };
}
