/**
 * Sorts the errors of database calls into transient and permanent, for the
 * writes that run in the background and must decide whether to try again.
 *
 * Transient: the same statement with the same values may well succeed in a
 * moment: the connection was refused, reset or cut, the server is shutting
 * down, starting up or in recovery (or a standby after a failover), the
 * transaction lost a serialization conflict or a deadlock, a lock or
 * statement timeout struck, there were too many connections or too little
 * memory or disk. Permanent: everything else, above all the data errors
 * (SQLSTATE class 22: a NUL character in text, a timestamp out of range)
 * and constraint violations (class 23) that the same values meet every
 * time, but also a statement the server cannot run (class 42, a bug).
 * Something unknown is permanent, so that a caller isolating bad input (the
 * outcome writer halves its batch) does so rather than retrying for ever;
 * a transient error it took for permanent costs one retry of a delivery.
 *
 * Pure: it reads the PostgreSQL error's SQLSTATE (`code`, set by pg), the
 * socket's error code (Node's `ECONNREFUSED` and the like, also on an
 * AggregateError of several addresses), and, for the few errors pg, its
 * pool and knex raise without a code, their message; and the same of the
 * error's `cause`.
 */

/** What a failed database call calls for. */
export type DatabaseErrorKind = "transient" | "permanent";

/** SQLSTATE classes whose every condition is transient. */
const TRANSIENT_CLASSES = new Set([
  // Connection exception: cannot connect, connection lost.
  "08",
  // Insufficient resources: too many connections, out of memory, disk full.
  "53",
]);

/** Transient conditions of other classes. */
const TRANSIENT_CODES = new Set([
  // Transaction rollback: serialization failure, completion unknown, deadlock.
  "40001",
  "40003",
  "40P01",
  // Lock not available (lock_timeout, NOWAIT); object in use.
  "55P03",
  "55006",
  // Operator intervention: query canceled (statement_timeout), admin and
  // crash shutdown, starting up or in recovery, idle session timeout.
  "57014",
  "57P01",
  "57P02",
  "57P03",
  "57P05",
  // A read-only transaction: connected to a standby, as after a failover.
  "25006",
  // Idle in transaction timeout.
  "25P03",
  // System error, I/O error.
  "58000",
  "58030",
]);

/** Node's error codes of sockets and name lookups that may clear by themselves. */
const TRANSIENT_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EADDRNOTAVAIL",
  "EAI_AGAIN",
  "ENOTFOUND",
]);

/** Errors pg, pg-pool and knex raise without a code when a connection is lost or cannot be had. */
const TRANSIENT_MESSAGES =
  /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect|Query read timeout|Knex: Timeout acquiring a connection)/;

/** A SQLSTATE: five digits or upper-case letters. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Sorts `err`, thrown by a database call, into transient or permanent (see the module comment). */
export function classifyDatabaseError(err: unknown): DatabaseErrorKind {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === "object" && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === "string") {
      if (TRANSIENT_SOCKET_CODES.has(code)) return "transient";
      if (SQLSTATE.test(code)) return TRANSIENT_CLASSES.has(code.slice(0, 2)) || TRANSIENT_CODES.has(code) ? "transient" : "permanent";
    }
    if (typeof message === "string" && TRANSIENT_MESSAGES.test(message)) return "transient";
  }
  return "permanent";
}

/** Whether `err` is worth retrying as it is (see {@link classifyDatabaseError}). */
export function isTransientDatabaseError(err: unknown): boolean {
  return classifyDatabaseError(err) === "transient";
}
