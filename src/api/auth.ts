/**
 * Authentication at the edge: an interceptor that reads the bearer token,
 * finds the caller (domain/auth.ts) and puts it in the call's context
 * values, where handlers read it to scope what they touch to its tenant.
 *
 * - Health checks and reflection are open (probes and tools need no token).
 * - No token, or one that is unknown or revoked: Unauthenticated.
 * - An ingest token or key calling WebhookAdmin: PermissionDenied.
 * With no environment token configured, authentication is off and every
 * caller is unrestricted (Hookline then listens on loopback only).
 */
import { Code, ConnectError, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { type Authenticator, type Principal, UNRESTRICTED } from "../domain/auth.js";

/** The authenticated caller of an RPC. */
export const callerKey = createContextKey<Principal>(UNRESTRICTED, { description: "the authenticated caller" });

/** The caller of the RPC `ctx` belongs to. */
export function callerOf(ctx: HandlerContext): Principal {
  return ctx.values.get(callerKey);
}

const PROTECTED = new Set<string>([EventIngest.typeName, WebhookAdmin.typeName]);

/** The server interceptor; see the module comment. */
export function authInterceptor(auth: Authenticator): Interceptor {
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
    return next(req);
  };
}
