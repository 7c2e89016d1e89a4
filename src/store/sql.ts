/**
 * Raw SQL on the ORM's own connection pool, for the hot paths.
 *
 * MikroORM (through knex) is used for the admin paths. The delivery hot paths
 * (publish fan-out, claiming, writing outcomes) are single set-based
 * statements with array parameters (`unnest($1::text[])`), which need the
 * driver's native `$n` placeholders: knex rewrites `?` bindings and would
 * expand arrays into lists. So they borrow a pooled `pg` client from the same
 * pool the ORM uses, run one statement, and give it back.
 */
import type { MikroORM } from "@mikro-orm/postgresql";
import type pg from "pg";

/** Runs parameterised SQL on a pooled connection. */
export interface Sql {
  /**
   * Runs one statement and returns its rows. Statements of the hot paths
   * are prepared once per connection (named after their text), so
   * PostgreSQL plans them once instead of on every call.
   */
  query<R extends object = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  /** Runs `fn` inside one transaction on one connection. */
  transaction<T>(fn: (tx: Pick<Sql, "query">) => Promise<T>): Promise<T>;
}

interface KnexClient {
  acquireConnection(): Promise<pg.PoolClient>;
  releaseConnection(connection: pg.PoolClient): Promise<void>;
}

/** Wraps the ORM's pool as {@link Sql}. */
export function sqlFromOrm(orm: MikroORM): Sql {
  const client = orm.em.getConnection().getKnex().client as KnexClient;
  async function withConnection<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const connection = await client.acquireConnection();
    try {
      return await fn(connection);
    } finally {
      await client.releaseConnection(connection);
    }
  }
  return {
    query: (text, values) => withConnection(async (c) => (await c.query({ name: statementName(text), text, values })).rows as never),
    transaction: (fn) =>
      withConnection(async (c) => {
        await c.query("BEGIN");
        try {
          const result = await fn({
            query: async (text, values) => (await c.query({ name: statementName(text), text, values })).rows as never,
          });
          await c.query("COMMIT");
          return result;
        } catch (err) {
          await c.query("ROLLBACK").catch(() => {});
          throw err;
        }
      }),
  };
}

const names = new Map<string, string>();

/** A stable prepared-statement name per statement text (statements with parameters only). */
function statementName(text: string): string | undefined {
  if (!text.includes("$1")) return undefined;
  let name = names.get(text);
  if (name === undefined) {
    name = `hookline_${names.size}`;
    names.set(text, name);
  }
  return name;
}
