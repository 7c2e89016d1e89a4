/**
 * What the views get from Hookline: the client's type, and the one place
 * that turns RPC errors into what the console says about them. (No browser
 * APIs here, so the feed's logic can be tested under Node.)
 */
import { Code, type Client, ConnectError } from "@connectrpc/connect";
import type { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";

/** A typed client of WebhookAdmin. */
export type AdminClient = Client<typeof WebhookAdmin>;

/** What went wrong with a call, sorted by what the user can do about it. */
export interface Problem {
  /**
   * - `unauthenticated`: no token, or one Hookline does not know: enter one;
   * - `permission`: the token may not do this (an ingest token, another tenant);
   * - `invalid`: the request was refused as it stands (a filter, an id);
   * - `unavailable`: Hookline or the network failed; trying again may work.
   */
  kind: "unauthenticated" | "permission" | "invalid" | "unavailable";
  /** The RPC code as the API docs write it, e.g. "PERMISSION_DENIED". */
  code: string;
  /** Hookline's message, e.g. "event_types[0]: ...". */
  message: string;
}

/** Whether `value` is a Problem rather than the message a call would have returned. */
export function isProblem(value: object): value is Problem {
  return !("$typeName" in value);
}

/** The Problem of a failed call. */
export function problemOf(err: unknown): Problem {
  const e = ConnectError.from(err);
  return { kind: kindOf(e.code), code: codeName(e.code), message: e.rawMessage };
}

function kindOf(code: Code): Problem["kind"] {
  switch (code) {
    case Code.Unauthenticated:
      return "unauthenticated";
    case Code.PermissionDenied:
      return "permission";
    case Code.InvalidArgument:
    case Code.NotFound:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
    case Code.AlreadyExists:
    case Code.Unimplemented:
      return "invalid";
    default:
      return "unavailable";
  }
}

/** "PERMISSION_DENIED" for Code.PermissionDenied. */
function codeName(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
