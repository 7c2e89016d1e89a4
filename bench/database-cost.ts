/**
 * What Hookline costs the database, read from PostgreSQL's own counters by
 * the benchmark's observer connection:
 * - WAL bytes: `pg_current_wal_lsn()`, exact at any moment;
 * - statements: `pg_stat_statements` (calls and execution time of each
 *   statement, updated as each statement ends), Hookline's only: the
 *   observer's own statements carry a marker comment and are left out;
 * - rows inserted, updated (HOT or not) and deleted, per table, from
 *   `pg_stat_user_tables`, and transactions from `pg_stat_database`, less
 *   the observer's own.
 *
 * - transactions that wrote, from the next transaction id, exact at any
 *   moment.
 *
 * Table rows and transactions are cumulative statistics, which each backend
 * keeps to itself and adds to the shared ones only now and then (PostgreSQL
 * 15 and later): at the end of a transaction once a second has passed since
 * its last report, else once it has been idle for PGSTAT_IDLE_INTERVAL
 * (10 s, a constant of pgstat.h), and when it exits. So they are read only
 * once they are complete ({@link Observer.settle}): 11 s after the work to
 * count ended, or as soon as every other backend of the database has exited
 * or been idle that long. Two reads a couple of seconds apart can agree and
 * still miss up to a second of a backend's work, which arrives up to 10 s
 * later. One more catch: a backend reports its transaction count only
 * together with some table's statistics (or when it exits), so transactions
 * that read no table (`SELECT 1`, `SET`, `LISTEN`) can stay unreported for
 * the backend's whole life. Stopping a Hookline process therefore reports
 * at once the like transactions of its whole life (43 for a short-lived
 * idle one), which is why the phases that count transactions do not end by
 * stopping it.
 */
import pg from "pg";

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Marks the observer's statements in pg_stat_statements. At the end: the
 * stored text of a statement drops leading comments (PostgreSQL 18).
 */
const MARK = "/* hookline-bench */";

/** How long after the last work its statistics are surely shared: PGSTAT_IDLE_INTERVAL and a margin. */
export const STATS_FLUSH_BOUND_MS = 11_000;

/** Row changes of one table (or of all). */
export interface TableRows {
  inserted: number;
  /** Updates that were HOT (no index entry written). */
  hotUpdated: number;
  /** Updates that were not HOT. */
  updated: number;
  deleted: number;
  /** Autovacuum and autoanalyze runs. */
  autovacuums: number;
}

/** Counters of the calls of one statement. */
export interface StatementCalls {
  /** The statement's text (as pg_stat_statements keeps it: constants as $n). */
  query: string;
  calls: number;
  /** Execution time, ms. */
  execMs: number;
  /** Rows returned or changed. */
  rows: number;
}

/** The cumulative counters, read once complete. */
export interface Counters {
  /** By table name. */
  tables: Map<string, TableRows>;
  /** Transactions of the database (committed and rolled back) less the observer's own. */
  transactions: number;
  /** Checkpoints so far (timed and requested); undefined where not readable. */
  checkpoints: number | undefined;
}

/**
 * The benchmark's own connection to the database under test. It marks its
 * statements (see MARK) and counts them: each is one transaction, taken out
 * of the database's transactions.
 */
export class Observer {
  private sent = 0;

  private constructor(
    private readonly client: pg.Client,
    /** Its server process (`pg_backend_pid()`). */
    readonly backendPid: number,
    /** Whether pg_stat_statements can be read here. */
    readonly statementsAvailable: boolean,
  ) {}

  /** Connects to the database at `url`. */
  static async connect(url: string): Promise<Observer> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const pid = (await client.query(`SELECT pg_backend_pid() AS pid ${MARK}`)).rows[0].pid as number;
    let statements = true;
    try {
      await client.query(`SELECT 1 FROM pg_stat_statements LIMIT 1 ${MARK}`);
    } catch {
      statements = false;
    }
    const observer = new Observer(client, pid, statements);
    observer.sent = 2 + (statements ? 1 : 0);
    return observer;
  }

  /** Runs one statement (one transaction) and returns its rows. */
  async query<R>(text: string, values?: unknown[]): Promise<R[]> {
    this.sent++;
    return (await this.client.query(`${text} ${MARK}`, values)).rows as R[];
  }

  /** The current WAL write position, in bytes. */
  async walLsn(): Promise<number> {
    const [row] = await this.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    const [hi, lo] = row!.lsn.split("/").map((h) => Number.parseInt(h, 16));
    return hi! * 2 ** 32 + lo!;
  }

  /**
   * The next transaction id to be assigned: the difference of two reads is
   * the number of transactions that wrote in between (in every database of
   * the server), each of which waited for its commit's WAL flush.
   */
  async nextXid(): Promise<number> {
    const [row] = await this.query<{ xid: string }>("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid");
    return Number(row!.xid);
  }

  /**
   * The calls of every statement run in this database so far but the
   * observer's, by statement (user, query id, top level); undefined when
   * pg_stat_statements is not available.
   */
  async statements(): Promise<Map<string, StatementCalls> | undefined> {
    if (!this.statementsAvailable) return undefined;
    const rows = await this.query<{ key: string; query: string; calls: string; exec_ms: number; rows: string }>(
      `SELECT userid::text || '/' || queryid::text || '/' || toplevel::text AS key, query, calls, total_exec_time AS exec_ms, rows
       FROM pg_stat_statements
       WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND query NOT LIKE $1`,
      [`%${MARK}`],
    );
    return new Map(rows.map((r) => [r.key, { query: r.query, calls: Number(r.calls), execMs: r.exec_ms, rows: Number(r.rows) }]));
  }

  /**
   * Waits until the cumulative statistics of the work that ended at
   * `quietSince` (a `performance.timeOrigin + performance.now()` time) are
   * shared (see the module comment).
   */
  async settle(quietSince: number): Promise<void> {
    while (now() < quietSince + STATS_FLUSH_BOUND_MS) {
      const [row] = await this.query<{ busy: number }>(
        `SELECT count(*)::int AS busy FROM pg_stat_activity
         WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND pid <> pg_backend_pid()
           AND NOT (state = 'idle' AND state_change < now() - make_interval(secs => $1::float8 / 1000))`,
        [STATS_FLUSH_BOUND_MS],
      );
      if (row!.busy === 0) return;
      await sleep(250);
    }
  }

  /** The cumulative counters; complete for work that ended before the last {@link settle}. */
  async counters(): Promise<Counters> {
    // Read afresh, with the observer's own statistics shared: a backend
    // asked to flush does so when it next goes idle, before it answers, but
    // only if it has statistics of some table pending, so this statement
    // reads one (its transaction counts are kept back until then).
    await this.query("SELECT pg_stat_clear_snapshot()");
    await this.query("SELECT pg_stat_force_next_flush() FROM pg_database WHERE datname = current_database()");
    const ownBefore = this.sent;
    const [db] = await this.query<{ xacts: string }>(
      "SELECT xact_commit + xact_rollback AS xacts FROM pg_stat_database WHERE datname = current_database()",
    );
    const tables = await this.query<{
      relname: string;
      ins: string;
      upd: string;
      hot: string;
      del: string;
      vacuums: string;
    }>(
      `SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del,
              autovacuum_count + autoanalyze_count AS vacuums
       FROM pg_stat_user_tables`,
    );
    return {
      // The database's count holds the observer's statements before this read (each one transaction).
      transactions: Number(db!.xacts) - ownBefore,
      tables: new Map(
        tables.map((t) => [
          t.relname,
          {
            inserted: Number(t.ins),
            hotUpdated: Number(t.hot),
            updated: Number(t.upd) - Number(t.hot),
            deleted: Number(t.del),
            autovacuums: Number(t.vacuums),
          },
        ]),
      ),
      checkpoints: await this.checkpoints(),
    };
  }

  private async checkpoints(): Promise<number | undefined> {
    for (const text of [
      "SELECT num_timed + num_requested AS n FROM pg_stat_checkpointer", // PostgreSQL 17+
      "SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter",
    ]) {
      try {
        const [row] = await this.query<{ n: string }>(text);
        return Number(row!.n);
      } catch {
        // The other view.
      }
    }
    return undefined;
  }

  /** Closes the connection. */
  close(): Promise<void> {
    return this.client.end();
  }
}

const NO_ROWS: TableRows = { inserted: 0, hotUpdated: 0, updated: 0, deleted: 0, autovacuums: 0 };

/** Row changes between two reads: in all, and by table (tables with changes only, most first). */
export function rowsBetween(before: Counters, after: Counters): { total: TableRows; byTable: [string, TableRows][] } {
  const total = { ...NO_ROWS };
  const byTable: [string, TableRows][] = [];
  for (const [name, a] of after.tables) {
    const b = before.tables.get(name) ?? NO_ROWS;
    const d: TableRows = {
      inserted: a.inserted - b.inserted,
      hotUpdated: a.hotUpdated - b.hotUpdated,
      updated: a.updated - b.updated,
      deleted: a.deleted - b.deleted,
      autovacuums: a.autovacuums - b.autovacuums,
    };
    if (d.inserted + d.hotUpdated + d.updated + d.deleted + d.autovacuums === 0) continue;
    byTable.push([name, d]);
    for (const k of Object.keys(total) as (keyof TableRows)[]) total[k] += d[k];
  }
  const changed = (r: TableRows) => r.inserted + r.hotUpdated + r.updated + r.deleted;
  byTable.sort((x, y) => changed(y[1]) - changed(x[1]));
  return { total, byTable };
}

/** Statement calls between two reads, most called first. */
export function statementsBetween(
  before: Map<string, StatementCalls>,
  after: Map<string, StatementCalls>,
): StatementCalls[] {
  const out: StatementCalls[] = [];
  for (const [key, a] of after) {
    const b = before.get(key);
    const calls = a.calls - (b?.calls ?? 0);
    if (calls > 0) out.push({ query: a.query, calls, execMs: a.execMs - (b?.execMs ?? 0), rows: a.rows - (b?.rows ?? 0) });
  }
  return out.sort((x, y) => y.calls - x.calls);
}

/** Calls and execution time (ms) of the statements, in all. */
export function totalCalls(statements: readonly StatementCalls[]): { calls: number; execMs: number } {
  return statements.reduce((t, s) => ({ calls: t.calls + s.calls, execMs: t.execMs + s.execMs }), { calls: 0, execMs: 0 });
}

/**
 * A statement's text in one short line: the tables it writes (and whether
 * it locks rows), then its beginning; Hookline's statements are long
 * CTEs that all begin alike.
 */
export function shortText(query: string, length = 60): string {
  const text = query.replace(/\s+/g, " ").trim();
  // (Not the UPDATE of "FOR UPDATE OF" or "DO UPDATE SET".)
  const writes = [...text.matchAll(/(?<!FOR |DO )\b(INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)"?/gi)].map(
    (m) => `${m[1]!.split(" ")[0]!.toLowerCase()} ${m[2]}`,
  );
  if (/FOR UPDATE/i.test(text)) writes.push(/SKIP LOCKED/i.test(text) ? "lock skip-locked" : "lock");
  const head = text.length > length ? `${text.slice(0, length)}...` : text;
  return `${writes.length > 0 ? `[${[...new Set(writes)].join(", ")}] ` : ""}\`${head.replace(/`/g, "'")}\``;
}

/**
 * Short texts of `statements` (see {@link shortText}); statements whose short
 * texts are alike (the scheduler's claims by id and over the window) get
 * the part of their text where they differ from the others.
 */
export function statementLabels(statements: readonly StatementCalls[]): Map<StatementCalls, string> {
  const flat = (q: string) => q.replace(/\s+/g, " ").trim();
  const groups = new Map<string, StatementCalls[]>();
  for (const s of statements) groups.set(shortText(s.query), [...(groups.get(shortText(s.query)) ?? []), s]);
  const out = new Map<StatementCalls, string>();
  for (const [label, group] of groups) {
    for (const s of group) {
      const text = flat(s.query);
      let at = text.length;
      for (const other of group) {
        if (other === s) continue;
        const o = flat(other.query);
        let i = 0;
        while (i < text.length && text[i] === o[i]) i++;
        at = Math.min(at, i);
      }
      out.set(s, group.length === 1 ? label : `${label} differing at \`...${text.slice(Math.max(0, at - 15), at + 45).replace(/`/g, "'")}...\``);
    }
  }
  return out;
}

/** The `n` statements with the most calls and those with the most time, per event, as note lines. */
export function topStatements(statements: readonly StatementCalls[], events: number, n = 5): string[] {
  const f = (x: number, d: number) => x.toLocaleString("en", { minimumFractionDigits: d, maximumFractionDigits: d });
  const byCalls = [...statements].sort((a, b) => b.calls - a.calls).slice(0, n);
  const byTime = [...statements].sort((a, b) => b.execMs - a.execMs).slice(0, n);
  const label = statementLabels([...new Set([...byCalls, ...byTime])]);
  const each = (s: StatementCalls) => `${f((s.execMs / s.calls) * 1000, 0)} us and ${f(s.rows / s.calls, 1)} rows each`;
  return [
    `by calls: ${byCalls.map((s) => `${f(s.calls / events, 3)} calls/event (${each(s)}) ${label.get(s)}`).join("; ")}`,
    `by time: ${byTime.map((s) => `${f((s.execMs / events) * 1000, 1)} us/event (${f(s.calls / events, 3)} calls/event, ${each(s)}) ${label.get(s)}`).join("; ")}`,
  ];
}

/** Row changes per event as note text: in all, or for one table. */
export function rowsPerEvent(r: TableRows, events: number): string {
  const f = (x: number) => (x / events).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return `${f(r.inserted)} inserted, ${f(r.updated)} updated (not HOT), ${f(r.hotUpdated)} updated (HOT), ${f(r.deleted)} deleted`;
}
