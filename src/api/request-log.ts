/**
 * Request ids and one log line per RPC. The id is the caller's
 * `x-request-id` when it sends a sane one (up to 128 letters, digits and
 * `._:-`), otherwise a new random one; it is sent back in the
 * `x-request-id` response header (in the error metadata when the call
 * fails), kept in the call's context values for other log lines, and
 * written on the RPC's line: at debug when it succeeded, at info when it
 * failed (server faults are also logged at warn/error, with the same id, by
 * errors.ts). Streams get their line when they end.
 */
import { randomFillSync } from "node:crypto";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";

/** The header carrying the request id, both ways. */
export const REQUEST_ID_HEADER = "x-request-id";

/** The request id of the call. */
export const requestIdKey = createContextKey<string>("", { description: "the request id" });

const SANE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Bytes of a new request id (16 characters of base64url). */
const ID_BYTES = 12;
/**
 * Randomness for new request ids, drawn from a pooled buffer: a
 * randomBytes call per RPC was about 1.5 % of the process's CPU serving
 * 500 unary publishes/s.
 */
const pool = Buffer.alloc(ID_BYTES * 256);
let next = pool.length;

/** The request id for a call whose `x-request-id` header is `given`. */
export function requestId(given: string | null): string {
  if (given !== null && SANE.test(given)) return given;
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  next += ID_BYTES;
  return pool.toString("base64url", next - ID_BYTES, next);
}

/** The interceptor; put it first, so it sees errors as clients get them. */
export function requestLogInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const id = requestId(req.header.get(REQUEST_ID_HEADER));
    req.contextValues.set(requestIdKey, id);
    const started = performance.now();
    const line = (err?: unknown) => {
      const fields = { requestId: id, procedure: `${req.service.typeName}/${req.method.name}`, durationMs: Math.round(performance.now() - started) };
      if (err === undefined) {
        log.debug(fields, "rpc ok");
      } else {
        const e = ConnectError.from(err);
        log.info({ ...fields, code: Code[e.code], error: e.rawMessage }, "rpc failed");
      }
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      if (err instanceof ConnectError) err.metadata.set(REQUEST_ID_HEADER, id);
      line(err);
      throw err;
    }
    res.header.set(REQUEST_ID_HEADER, id);
    if (!res.stream) {
      line();
      return res;
    }
    return { ...res, message: logStreamEnd(res.message, id, line) };
  };
}

async function* logStreamEnd<T>(stream: AsyncIterable<T>, id: string, line: (err?: unknown) => void): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (err) {
    if (err instanceof ConnectError) err.metadata.set(REQUEST_ID_HEADER, id);
    line(err);
    throw err;
  }
  line();
}
