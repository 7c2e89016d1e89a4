/**
 * Opens the database: MikroORM for entities and migrations, and the raw
 * connection pool underneath it for the hot paths (see ./sql.ts).
 */

import { Migrator } from "@mikro-orm/migrations";
import { MikroORM, type Options } from "@mikro-orm/postgresql";
import { entities } from "./entities/index.js";
import { migrationsList } from "./migrations/index.js";

/** Options of {@link openOrm}. */
export interface OrmOptions {
  /** postgres:// URL of the database. */
  url: string;
  /** Most connections the pool opens. */
  poolSize: number;
  /**
   * The connections' application_name: the delivery trigger sends it with
   * its notification, so a process can tell its own publishes apart.
   */
  applicationName?: string;
  /** Writes the ORM's debug output (queries) when set. */
  debugLog?: (message: string) => void;
  /**
   * Receives the query builder's (knex) warnings and errors, such as a
   * connection lost; knex writes them with console.log otherwise, which
   * would put plain text between the JSON log lines. Dropped when unset.
   */
  onDriverWarning?: (message: string) => void;
  /**
   * The connections' `statement_timeout`, in ms (unset or 0: none). A
   * statement that runs longer is cancelled by the server (SQLSTATE 57014,
   * a transient error: see database-errors.ts), so a runaway query or one
   * waiting on a lock cannot hold a pool connection for ever.
   */
  statementTimeoutMs?: number;
}

/** Creates the MikroORM instance for Hookline's schema. Does not migrate. */
export async function openOrm(options: OrmOptions): Promise<MikroORM> {
  const warn = (message: unknown) => options.onDriverWarning?.(String(message));
  const config: Options = {
    clientUrl: options.url,
    entities,
    extensions: [Migrator],
    // No reflection and no discovery from files: the schemas are explicit, so
    // tsc, vitest and tsx all see the same metadata.
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    pool: { min: 0, max: options.poolSize },
    driverOptions: {
      connection: {
        application_name: options.applicationName ?? "hookline",
        ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
      },
      log: { warn: warn, error: warn, deprecate: warn, debug: () => {} },
    },
    migrations: {
      migrationsList,
      tableName: "hookline_migrations",
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
    // Timestamps are always timestamptz and read back as Date in UTC.
    forceUtcTimezone: true,
    debug: options.debugLog !== undefined,
    logger: options.debugLog,
    allowGlobalContext: false,
  };
  return MikroORM.init(config);
}

/** Applies every pending migration. Safe to run from several processes at once. */
export async function migrate(orm: MikroORM): Promise<void> {
  const knex = orm.em.getConnection().getKnex();
  // An advisory lock makes concurrent starts of several replicas take turns.
  await knex.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(727274)");
    await orm.getMigrator().up();
  });
}
