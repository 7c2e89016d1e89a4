/**
 * Authentication at the edge: an interceptor that reads the bearer token,
 * finds the caller (domain/auth.ts) and puts it in the call's context
 * values, where handlers read it to scope what they touch to its tenant.
 *
 * - Health checks and reflection are open (probes and tools need no token).
 * - No token, or one that is unknown or revoked: Unauthenticated.
 * - An ingest token or key calling WebhookAdmin: PermissionDenied.
 * - A stream opened with an API key (WatchDeliveries, PublishStream) ends
 *   with Unauthenticated once the key is revoked, whichever process revokes
 *   it (domain/key-revocations.ts): the handler's signal aborts, a server
 *   stream sends nothing more and ends, and a client stream's next message
 *   is refused (those stored before stay stored). A stream that has not
 *   ended RESET_AFTER_MS later (its client does not read) is reset.
 * With no environment token configured, authentication is off and every
 * caller is unrestricted (Hookline then listens on loopback only).
 */
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { type Authenticator, type Principal, UNRESTRICTED } from "../domain/auth.js";
import { UnauthenticatedError } from "../domain/errors.js";
import type { KeyRevocations, KeyStream } from "../domain/key-revocations.js";

/** The authenticated caller of an RPC. */
export const callerKey = createContextKey<Principal>(UNRESTRICTED, { description: "the authenticated caller" });

/**
 * Ends the call's HTTP stream at once (set for each request by app.ts, see
 * server.ts's resetStream): for a stream of a revoked key whose client does
 * not read, and so cannot be sent its status.
 */
export const transportResetKey = createContextKey<(() => void) | undefined>(undefined, { description: "resets the call's HTTP stream" });

/**
 * How long after its key's revocation a stream that has not ended (its
 * client does not read) is reset.
 */
const RESET_AFTER_MS = 250;

/** The caller of the RPC `ctx` belongs to. */
export function callerOf(ctx: HandlerContext): Principal {
  return ctx.values.get(callerKey);
}

const PROTECTED = new Set<string>([EventIngest.typeName, WebhookAdmin.typeName]);

/** The server interceptor; see the module comment. `revocations` tracks streams opened with API keys. */
export function authInterceptor(auth: Authenticator, revocations?: KeyRevocations): Interceptor {
  return (next) => async (req) => {
    if (!auth.enforced || !PROTECTED.has(req.service.typeName)) return next(req);
    const m = /^Bearer +(\S+) *$/i.exec(req.header.get("authorization") ?? "");
    if (!m) throw new ConnectError('missing token: send the header "authorization: Bearer <token>"', Code.Unauthenticated);
    const caller = await auth.authenticate(m[1]!);
    if (!caller) throw new ConnectError("the token is not valid (unknown or revoked)", Code.Unauthenticated);
    if (req.service.typeName === WebhookAdmin.typeName && caller.scope !== "admin") {
      throw new ConnectError("this token may only call EventIngest", Code.PermissionDenied);
    }
    req.contextValues.set(callerKey, caller);
    if (!req.stream || caller.keyId === undefined || !revocations) return next(req);
    const key = revocations.track(caller);
    // Released once the call ends, or its client is gone (a stream whose
    // client stopped reading may never be iterated to its end).
    const signal = linked(req.signal, key.signal);
    const release = () => {
      key.release();
      signal.release();
    };
    req.signal.addEventListener("abort", release, { once: true });
    // A client that does not read cannot be sent UNAUTHENTICATED: its stream
    // is reset, unless it has ended by then (resetStream checks).
    const reset = req.contextValues.get(transportResetKey);
    key.signal.addEventListener(
      "abort",
      () => setTimeout(() => reset?.(), RESET_AFTER_MS).unref(),
      { once: true },
    );
    const refusing = req.method.methodKind === "client_streaming" || req.method.methodKind === "bidi_streaming";
    try {
      const res = await next({ ...req, signal: signal.signal, message: refusing ? untilRevoked(req.message, key, () => {}) : req.message });
      // A client stream's handler has finished: its one answer goes out as it is.
      if (!res.stream || req.method.methodKind === "client_streaming") {
        release();
        return res;
      }
      return { ...res, message: untilRevoked(res.message, key, release) };
    } catch (err) {
      release();
      // The handler ended because the key was revoked: say so (unless it did).
      throw key.signal.aborted && !(err instanceof UnauthenticatedError) ? key.signal.reason : err;
    }
  };
}

/** A signal that aborts when `a` or `b` does; `release` detaches it from both. */
function linked(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const abort = (event: Event) => controller.abort((event.target as AbortSignal).reason);
  for (const s of [a, b]) {
    if (s.aborted) controller.abort(s.reason);
    else s.addEventListener("abort", abort, { once: true });
  }
  return {
    signal: controller.signal,
    release() {
      a.removeEventListener("abort", abort);
      b.removeEventListener("abort", abort);
    },
  };
}

/**
 * `messages` until `key` is revoked: then the next message (or the end) is
 * its UnauthenticatedError instead, and one awaited at that moment is
 * abandoned. `done` runs when the iteration ends, however it ends.
 */
async function* untilRevoked<T>(messages: AsyncIterable<T>, key: KeyStream, done: () => void): AsyncGenerator<T> {
  const it = messages[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      if (key.signal.aborted) throw key.signal.reason;
      const next = await untilAborted(it.next(), key.signal);
      if (next.done) {
        finished = true;
        if (key.signal.aborted) throw key.signal.reason;
        return;
      }
      yield next.value;
    }
  } finally {
    done();
    // Not awaited: a source stuck in a pending next() would hold this up.
    if (!finished) it.return?.()?.catch(() => {});
  }
}

/** `promise`, or a rejection with `signal`'s reason if it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
