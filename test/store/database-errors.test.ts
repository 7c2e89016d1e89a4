/**
 * Sorting database errors into transient and permanent: by SQLSTATE, by
 * socket error code and by the driver's messages, and on the errors real
 * PostgreSQL and a refused connection raise.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { classifyDatabaseError, isTransientDatabaseError } from "../../src/store/database-errors.js";
import { freePort } from "../support/free-port.js";
import { useTestDatabase } from "../support/database.js";

/** An error as pg raises it for a SQLSTATE. */
const sqlState = (code: string) => Object.assign(new Error(`error ${code}`), { code });

describe("classifyDatabaseError", () => {
  it.each([
    ["08006", "connection failure"],
    ["08001", "cannot connect"],
    ["40001", "serialization failure"],
    ["40P01", "deadlock"],
    ["53300", "too many connections"],
    ["53200", "out of memory"],
    ["55P03", "lock not available"],
    ["57014", "statement timeout"],
    ["57P01", "admin shutdown"],
    ["57P02", "crash shutdown"],
    ["57P03", "starting up or in recovery"],
    ["25006", "read-only: a standby"],
    ["58030", "I/O error"],
  ])("takes SQLSTATE %s (%s) for transient", (code) => {
    expect(classifyDatabaseError(sqlState(code))).toBe("transient");
  });

  it.each([
    ["22021", "a NUL character in text"],
    ["22007", "a malformed timestamp"],
    ["22008", "a timestamp out of range"],
    ["22P02", "invalid text for a type"],
    ["23505", "unique violation"],
    ["23503", "foreign key violation"],
    ["42P01", "undefined table"],
    ["42703", "undefined column"],
    ["40002", "a deferred constraint"],
    ["XX000", "internal error"],
  ])("takes SQLSTATE %s (%s) for permanent", (code) => {
    expect(classifyDatabaseError(sqlState(code))).toBe("permanent");
  });

  it.each(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"])(
    "takes the socket error %s for transient",
    (code) => {
      expect(classifyDatabaseError(Object.assign(new Error(code), { code }))).toBe("transient");
    },
  );

  it.each([
    "Connection terminated unexpectedly",
    "Connection terminated",
    "Connection terminated due to connection timeout",
    "timeout exceeded when trying to connect",
    "Client has encountered a connection error and is not queryable",
    "Knex: Timeout acquiring a connection. The pool is probably full. Are you missing a .transacting(trx) call?",
  ])("takes the driver's '%s', which has no code, for transient", (message) => {
    expect(classifyDatabaseError(new Error(message))).toBe("transient");
  });

  it("looks at the cause of a wrapping error", () => {
    expect(classifyDatabaseError(new Error("write failed", { cause: sqlState("57P01") }))).toBe("transient");
    expect(classifyDatabaseError(new Error("write failed", { cause: sqlState("22021") }))).toBe("permanent");
  });

  it("takes anything else for permanent", () => {
    expect(classifyDatabaseError(new TypeError("Do not know how to serialize a BigInt"))).toBe("permanent");
    expect(classifyDatabaseError("a string")).toBe("permanent");
    expect(classifyDatabaseError(undefined)).toBe("permanent");
    expect(isTransientDatabaseError(sqlState("23505"))).toBe(false);
    expect(isTransientDatabaseError(sqlState("40001"))).toBe(true);
  });
});

describe("classifyDatabaseError on real errors", () => {
  const db = useTestDatabase();

  /** What `fn` throws, run on a connection of its own. */
  async function thrownBy(fn: (c: pg.Client) => Promise<unknown>): Promise<unknown> {
    const c = new pg.Client({ connectionString: db.url });
    c.on("error", () => {});
    await c.connect();
    try {
      await fn(c);
    } catch (err) {
      return err;
    } finally {
      await c.end().catch(() => {});
    }
    throw new Error("it did not fail");
  }

  it("takes PostgreSQL's refusals of values and statements for permanent", async () => {
    const refusals: Array<[string, unknown[], string]> = [
      // Values as the outcome writer sends them: parameters.
      ["SELECT $1::text", ["a\u0000b"], "22021"],
      ["SELECT $1::timestamptz", [new Date(Number.NaN)], "22007"],
      ["SELECT 1 / $1::int", [0], "22012"],
      ["SELECT * FROM no_such_table", [], "42P01"],
    ];
    for (const [text, values, code] of refusals) {
      const err = await thrownBy((c) => c.query(text, values));
      expect(err, text).toMatchObject({ code });
      expect(classifyDatabaseError(err), text).toBe("permanent");
    }
  });

  it("takes a lock timeout, a statement timeout and a terminated connection for transient", async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query("CREATE TABLE IF NOT EXISTS locked (id int)");
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE locked IN ACCESS EXCLUSIVE MODE");
      const lockTimeout = await thrownBy(async (c) => {
        await c.query("SET lock_timeout = '50ms'");
        await c.query("SELECT * FROM locked");
      });
      expect(lockTimeout).toMatchObject({ code: "55P03" });
      expect(classifyDatabaseError(lockTimeout)).toBe("transient");
    } finally {
      await holder.query("ROLLBACK");
      await holder.end();
    }
    const statementTimeout = await thrownBy(async (c) => {
      await c.query("SET statement_timeout = '50ms'");
      await c.query("SELECT pg_sleep(10)");
    });
    expect(statementTimeout).toMatchObject({ code: "57014" });
    expect(classifyDatabaseError(statementTimeout)).toBe("transient");
    const terminated = await thrownBy((c) => c.query("SELECT pg_terminate_backend(pg_backend_pid())"));
    expect(classifyDatabaseError(terminated)).toBe("transient");
  });

  it("takes a refused connection for transient", async () => {
    const c = new pg.Client({ host: "127.0.0.1", port: await freePort(), user: "nobody", database: "none" });
    const refused = await c.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toMatchObject({ code: "ECONNREFUSED" });
    expect(classifyDatabaseError(refused)).toBe("transient");
  });
});
