/**
 * The DNS-rebinding guard of open mode.
 *
 * Without HOOKLINE_ADMIN_TOKEN or HOOKLINE_INGEST_TOKEN, Hookline serves
 * every call without authentication and listens on loopback only. A web
 * page could still reach it: its own name (`evil.example`) is made to
 * resolve to 127.0.0.1 after the page has loaded, and the browser, which
 * judges the same-origin rule by name, lets the page call "its own" server
 * and read the answers. Every such request carries the page's name in
 * `Host` (HTTP/1.1) or `:authority` (HTTP/2), so in open mode a request is
 * served only when each of those it carries names loopback: `localhost`, a
 * name under `.localhost` (browsers resolve those to loopback themselves,
 * RFC 6761 section 6.3, so no page can rebind them), an address in
 * 127.0.0.0/8 or `[::1]`, with any port. Others are refused with 403:
 *
 * - RPCs (every POST) go on to Connect, where {@link hostGuardInterceptor},
 *   the first interceptor after the error mapping, refuses them with
 *   PERMISSION_DENIED in their own protocol (gRPC, gRPC-Web or Connect), so
 *   every client reports a clear code and message, not a bare HTTP status;
 * - everything else (/metrics, /console, unknown paths) gets a plain 403;
 * - the probes `GET /healthz` and `GET /readyz` are served whatever the
 *   Host: they are read-only and tell no more than "up" and "ready", and
 *   health checkers often address the machine by its own name (Debian maps
 *   it to 127.0.1.1), which is not a loopback name.
 *
 * With a token set, requests are authenticated instead and any Host is
 * served (Hookline may then be reached through any name).
 */
import type http from "node:http";
import type http2 from "node:http2";
import { Code, ConnectError, createContextKey, createContextValues, type ContextValues, type Interceptor } from "@connectrpc/connect";
import ipaddr from "ipaddr.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: Request, res: Response) => void;

/** `Host` / `:authority` syntax: a bracketed IPv6 address or a name without colons, then an optional port. */
const AUTHORITY = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/;

/**
 * Whether a `Host` or `:authority` value names this machine's loopback:
 * `localhost` or `*.localhost` (any case, a trailing dot allowed),
 * 127.x.y.z, `[::1]` (or `[::ffff:127.x.y.z]`), each with any port or none.
 */
export function isLoopbackAuthority(value: string): boolean {
  const m = AUTHORITY.exec(value);
  if (!m) return false;
  const [, v6, name] = m;
  if (v6 !== undefined) {
    if (!ipaddr.IPv6.isValid(v6)) return false;
    const address = ipaddr.IPv6.parse(v6);
    return (address.isIPv4MappedAddress() ? address.toIPv4Address() : address).range() === "loopback";
  }
  const host = name!.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  // Dotted decimal only: browsers write every IPv4 address that way, and
  // ipaddr.js would also read forms such as "0x7f.1" or "2130706433".
  return ipaddr.IPv4.isValidFourPartDecimal(host) && ipaddr.IPv4.parse(host).range() === "loopback";
}

/** The names a request is addressed to: its `:authority` (HTTP/2) and `Host` headers, those present. */
function authorities(req: Request): string[] {
  const out: string[] = [];
  const authority = req.headers[":authority"];
  if (typeof authority === "string") out.push(authority);
  if (typeof req.headers.host === "string") out.push(req.headers.host);
  return out;
}

/** The first name `req` is addressed to that is not loopback, "" when it names none, undefined when it is loopback. */
function foreignAuthority(req: Request): string | undefined {
  const names = authorities(req);
  if (names.length === 0) return "";
  return names.find((n) => !isLoopbackAuthority(n));
}

/** Why a request addressed to `authority` is refused. */
function refusal(authority: string): string {
  const named = authority === "" ? "a request without Host" : `Host ${JSON.stringify(authority.slice(0, 100))}`;
  return (
    `${named} is refused: without HOOKLINE_ADMIN_TOKEN or HOOKLINE_INGEST_TOKEN, Hookline answers only requests ` +
    "addressed to localhost, 127.0.0.1 or [::1] (DNS rebinding guard); call it by one of those names, or set a token"
  );
}

/** Set on RPCs addressed to a name the guard refuses: the name, or "" when none was given. */
const misdirectedKey = createContextKey<string | undefined>(undefined, { description: "the refused Host of a misdirected request" });

/**
 * The `contextValues` option of connectNodeAdapter: marks each RPC addressed
 * to a name that is not loopback, for {@link hostGuardInterceptor} (the
 * interceptor does not see HTTP/2's `:authority`). Marks nothing when
 * `enabled` is false (a token is set).
 */
export function hostGuardContextValues(enabled: boolean): (req: Request) => ContextValues {
  return (req) => {
    const values = createContextValues();
    if (enabled) values.set(misdirectedKey, foreignAuthority(req));
    return values;
  };
}

/** Refuses the RPCs that {@link hostGuardContextValues} marked, with PERMISSION_DENIED. */
export function hostGuardInterceptor(): Interceptor {
  return (next) => async (req) => {
    const authority = req.contextValues.get(misdirectedKey);
    if (authority !== undefined) throw new ConnectError(refusal(authority), Code.PermissionDenied);
    return next(req);
  };
}

/** Wraps the whole site with the guard when `enabled` (open mode); see the module comment. */
export function withHostGuard(next: Handler, enabled: boolean): Handler {
  if (!enabled) return next;
  return (req, res) => {
    const authority = foreignAuthority(req);
    const path = (req.url ?? "").split("?")[0];
    const probe = (path === "/healthz" || path === "/readyz") && (req.method === "GET" || req.method === "HEAD");
    if (authority === undefined || probe || req.method === "POST") {
      next(req, res);
      return;
    }
    const out = res as http.ServerResponse;
    out.writeHead(403, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" });
    out.end(`${refusal(authority)}\n`);
  };
}
