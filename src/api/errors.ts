/**
 * The one place where errors become Connect codes. Domain errors map to
 * their codes with their messages; anything unexpected becomes `Internal`
 * with a generic message (the original is logged and kept as `cause`, never
 * sent to the client).
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  LimitExceededError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  ValidationError,
} from "../domain/errors.js";
import { shorten } from "../domain/validate.js";
import { isTransientDatabaseError } from "../store/database-errors.js";
import { requestIdKey } from "./request-log.js";

/**
 * Maps any thrown value to the ConnectError the client should see.
 * `signal` is the call's: once it has aborted (the client cancelled or
 * disconnected, or the call's deadline passed), whatever the handler threw
 * is a consequence, such as a request body cut off (Node's "aborted",
 * ECONNRESET, which is not the database's) or an outbound request aborted,
 * and the call ends as Canceled, or DeadlineExceeded, logged at debug.
 */
export function toConnectError(err: unknown, log: Logger, procedure: string, signal?: AbortSignal): ConnectError {
  if (signal?.aborted) return callEnded(signal.reason, err, log, procedure);
  // Only the client's side cancels (connect-node turns an HTTP/2 CANCEL
  // reset into Canceled): a request stream read when the reset arrives can
  // throw it before the call's signal has aborted, on a busy machine.
  if (err instanceof ConnectError && err.code === Code.Canceled) return callEnded(undefined, err, log, procedure);
  if (err instanceof ConnectError) return err;
  if (err instanceof ValidationError) return new ConnectError(err.message, Code.InvalidArgument, undefined, undefined, err);
  if (err instanceof NotFoundError) return new ConnectError(err.message, Code.NotFound, undefined, undefined, err);
  if (err instanceof AlreadyExistsError) return new ConnectError(err.message, Code.AlreadyExists, undefined, undefined, err);
  if (err instanceof FailedPreconditionError) {
    return new ConnectError(err.message, Code.FailedPrecondition, undefined, undefined, err);
  }
  if (err instanceof PermissionDeniedError) {
    return new ConnectError(err.message, Code.PermissionDenied, undefined, undefined, err);
  }
  if (err instanceof UnauthenticatedError) {
    return new ConnectError(err.message, Code.Unauthenticated, undefined, undefined, err);
  }
  if (err instanceof LimitExceededError) {
    return new ConnectError(err.message, Code.ResourceExhausted, undefined, undefined, err);
  }
  if (isClientGone(err)) {
    log.debug({ procedure }, "client went away mid-call");
    return new ConnectError("the client went away", Code.Canceled, undefined, undefined, err);
  }
  // What the same call may well get through in a moment (see
  // database-errors.ts): the database down, restarting or out of
  // connections, a deadlock or serialization conflict, a statement or lock
  // timeout.
  if (isTransientDatabaseError(err)) {
    log.warn({ err, procedure }, "database unavailable");
    return new ConnectError("the database is unavailable; try again", Code.Unavailable, undefined, undefined, err);
  }
  log.error({ err, procedure }, "internal error");
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** The error of a call whose signal aborted with `reason`; see {@link toConnectError}. */
function callEnded(reason: unknown, err: unknown, log: Logger, procedure: string): ConnectError {
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) {
    log.debug({ procedure }, "deadline passed mid-call");
    return reason;
  }
  log.debug({ procedure }, "client went away mid-call");
  return new ConnectError("the client went away", Code.Canceled, undefined, undefined, err);
}

/** Node's errors for writing to a response whose client has gone (a cancelled stream). */
const CLIENT_GONE_CODES = new Set(["ERR_STREAM_DESTROYED", "ERR_STREAM_WRITE_AFTER_END", "ERR_STREAM_PREMATURE_CLOSE", "ERR_HTTP2_INVALID_STREAM"]);

function isClientGone(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && CLIENT_GONE_CODES.has(code);
}

/** A server interceptor that applies {@link toConnectError} to every RPC, streams included. */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    // Made only when an error is logged: most calls log nothing here.
    const callLog = () => log.child({ requestId: req.contextValues.get(requestIdKey) || undefined });
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: mapStreamErrors(res.message, callLog, procedure, req.signal) };
    } catch (err) {
      throw bounded(toConnectError(err, callLog(), procedure, req.signal));
    }
  };
}

async function* mapStreamErrors<T>(stream: AsyncIterable<T>, log: () => Logger, procedure: string, signal: AbortSignal): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (err) {
    throw bounded(toConnectError(err, log(), procedure, signal));
  }
}

/**
 * The longest error message sent, in UTF-16 code units. Messages quote
 * request values (an id, a name), which can be megabytes; gRPC sends the
 * message percent-encoded in a trailer, and a header block over HTTP/2's
 * limits (64 KB in Node) resets the stream and then the whole connection,
 * failing every other call on it (fuzzing found this with a 70,000-character
 * id). 500 units encode to at most 4.5 KB, under gRPC clients' 8 KB limit.
 */
const MAX_MESSAGE = 500;

/** A surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `err`, its message cut to {@link MAX_MESSAGE} and made well-formed: a
 * lone surrogate makes connect-es fail to percent-encode the grpc-message
 * trailer, and the call is never answered.
 */
function bounded(err: ConnectError): ConnectError {
  const message = shorten(err.rawMessage, MAX_MESSAGE).replace(LONE_SURROGATE, "\uFFFD");
  if (message === err.rawMessage) return err;
  const cut = new ConnectError(message, err.code, err.metadata, undefined, err.cause);
  cut.details = err.details;
  return cut;
}
