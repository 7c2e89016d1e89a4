/** The mapping of thrown values to Connect codes, and what gets logged. */
import { Writable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { expect, it } from "vitest";
import { toConnectError } from "../../src/api/errors.js";
import { LimitExceededError, NotFoundError, ValidationError } from "../../src/domain/errors.js";

function capture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino(
    { level: "debug" },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  return { log, lines };
}

const nodeError = (code: string) => Object.assign(new Error(code), { code });

it("maps domain errors to their codes with their messages, logging nothing", () => {
  const { log, lines } = capture();
  expect(toConnectError(new ValidationError("url", "must be http or https"), log, "p").code).toBe(Code.InvalidArgument);
  expect(toConnectError(new NotFoundError("endpoint", "ep_1"), log, "p").code).toBe(Code.NotFound);
  expect(toConnectError(new LimitExceededError("too big"), log, "p").rawMessage).toBe("too big");
  expect(lines).toEqual([]);
});

it("takes a client that went away mid-stream for a cancel, not an internal error", () => {
  const { log, lines } = capture();
  for (const code of ["ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END", "ERR_HTTP2_INVALID_STREAM"]) {
    expect(toConnectError(nodeError(code), log, "hookline.v1.WebhookAdmin/WatchDeliveries").code).toBe(Code.Canceled);
  }
  expect(lines.every((l) => l.level === 20)).toBe(true);
});

it("says Unavailable when the database is down and Internal, with a generic message, for the rest", () => {
  const { log, lines } = capture();
  expect(toConnectError(nodeError("ECONNREFUSED"), log, "p").code).toBe(Code.Unavailable);
  const internal = toConnectError(new Error("secret detail"), log, "p");
  expect(internal.code).toBe(Code.Internal);
  expect(internal.rawMessage).toBe("internal error");
  expect(lines.map((l) => [l.level, l.msg])).toEqual([
    [40, "database unavailable"],
    [50, "internal error"],
  ]);
  expect(toConnectError(new ConnectError("as is", Code.Aborted), log, "p").code).toBe(Code.Aborted);
});

it("says Unavailable for every transient database error (store/database-errors.ts), and Internal for permanent ones", () => {
  const { log } = capture();
  const sqlState = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code });
  // Deadlock, serialization failure, statement timeout, lock timeout, too many connections, a standby.
  for (const code of ["40P01", "40001", "57014", "55P03", "53300", "25006"]) {
    expect([code, Code[toConnectError(sqlState(code), log, "p").code]]).toEqual([code, "Unavailable"]);
  }
  expect(toConnectError(new Error("Knex: Timeout acquiring a connection. The pool is probably full."), log, "p").code).toBe(Code.Unavailable);
  expect(toConnectError(new Error("wrapped", { cause: sqlState("57P01") }), log, "p").code).toBe(Code.Unavailable);
  // A constraint violation or a statement the server cannot run is a bug, not a moment's trouble.
  for (const code of ["23505", "22021", "42P01"]) {
    expect([code, Code[toConnectError(sqlState(code), log, "p").code]]).toEqual([code, "Internal"]);
  }
});

it("takes whatever a call whose client went away throws for a cancel, and a passed deadline for DeadlineExceeded, at debug", () => {
  const { log, lines } = capture();
  const gone = new AbortController();
  gone.abort();
  // A request body cut off over HTTP/1.1 (Node's "aborted"), an aborted outbound request.
  for (const err of [Object.assign(new Error("aborted"), { code: "ECONNRESET" }), gone.signal.reason]) {
    const mapped = toConnectError(err, log, "hookline.v1.EventIngest/PublishStream", gone.signal);
    expect([Code[mapped.code], mapped.rawMessage]).toEqual(["Canceled", "the client went away"]);
  }
  const late = new AbortController();
  late.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  expect(toConnectError(late.signal.reason, log, "p", late.signal).code).toBe(Code.DeadlineExceeded);
  expect(lines.map((l) => [l.level, l.msg])).toEqual([
    [20, "client went away mid-call"],
    [20, "client went away mid-call"],
    [20, "deadline passed mid-call"],
  ]);
  // The same reset without an aborted call is still the database's.
  expect(toConnectError(nodeError("ECONNRESET"), log, "p", new AbortController().signal).code).toBe(Code.Unavailable);
});

it("takes an HTTP/2 cancel that arrives before the call's signal aborted for a client gone, at debug", () => {
  const { log, lines } = capture();
  // What connect-node makes of a stream reset with CANCEL, read from the request stream.
  const reset = new ConnectError("http/2 stream closed with error code CANCEL (0x8)", Code.Canceled);
  const mapped = toConnectError(reset, log, "hookline.v1.EventIngest/PublishStream", new AbortController().signal);
  expect([Code[mapped.code], mapped.rawMessage]).toEqual(["Canceled", "the client went away"]);
  expect(lines.map((l) => [l.level, l.msg])).toEqual([[20, "client went away mid-call"]]);
});
