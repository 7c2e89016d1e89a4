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
  ValidationError,
} from "../domain/errors.js";
import { requestIdKey } from "./request-log.js";

/** Maps any thrown value to the ConnectError the client should see. */
export function toConnectError(err: unknown, log: Logger, procedure: string): ConnectError {
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
  if (err instanceof LimitExceededError) {
    return new ConnectError(err.message, Code.ResourceExhausted, undefined, undefined, err);
  }
  if (isDatabaseUnavailable(err)) {
    log.warn({ err, procedure }, "database unavailable");
    return new ConnectError("the database is unavailable; try again", Code.Unavailable, undefined, undefined, err);
  }
  log.error({ err, procedure }, "internal error");
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P02", "57P03", "53300"]);

function isDatabaseUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string") {
    const message = (err as { message?: unknown })?.message;
    return typeof message === "string" && /Connection terminated|Knex: Timeout acquiring a connection/.test(message);
  }
  return UNAVAILABLE_CODES.has(code) || code.startsWith("08");
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
      return { ...res, message: mapStreamErrors(res.message, callLog, procedure) };
    } catch (err) {
      throw toConnectError(err, callLog(), procedure);
    }
  };
}

async function* mapStreamErrors<T>(stream: AsyncIterable<T>, log: () => Logger, procedure: string): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (err) {
    throw toConnectError(err, log(), procedure);
  }
}
