/**
 * The TypeScript client of Hookline: typed EventIngest and WebhookAdmin
 * clients, generated from the same .proto files as the server (gen/), over
 * one transport that carries the bearer token on every call.
 *
 * ```ts
 * import { createHooklineClient } from "hookline/client";
 * const hookline = createHooklineClient({ baseUrl: "http://127.0.0.1:7070", token: process.env.HOOKLINE_TOKEN });
 * await hookline.ingest.publish({ tenantId: "acme", eventType: "invoice.paid", payload: { case: "payloadJson", value: "{}" } });
 * ```
 *
 * In Node it uses @connectrpc/connect-node. In a browser, pass a transport
 * from @connectrpc/connect-web (`createConnectTransport` or
 * `createGrpcWebTransport`) as `transport`; the token is added to it the
 * same way.
 */
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";

export { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
export { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
export * from "../../gen/hookline/v1/api_key_pb.js";
export * from "../../gen/hookline/v1/delivery_pb.js";
export * from "../../gen/hookline/v1/endpoint_pb.js";
export * from "../../gen/hookline/v1/event_type_pb.js";

/** Options of {@link createHooklineClient}. */
export interface HooklineClientOptions {
  /** Where Hookline serves, e.g. "http://127.0.0.1:7070". */
  baseUrl: string;
  /** A bearer token: HOOKLINE_ADMIN_TOKEN, HOOKLINE_INGEST_TOKEN or an API key. */
  token?: string;
  /** "connect" (default; HTTP/2 unless `httpVersion` says 1.1), "grpc" or "grpc-web". */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** For "connect" and "grpc-web": the HTTP version to speak (default "2" for connect, "1.1" for grpc-web). */
  httpVersion?: "1.1" | "2";
  /** A ready transport (a browser's, from @connectrpc/connect-web); `protocol` and `httpVersion` are then ignored. */
  transport?: Transport;
}

/** Hookline's two services, typed. */
export interface HooklineClient {
  ingest: Client<typeof EventIngest>;
  admin: Client<typeof WebhookAdmin>;
}

/** Makes a client of both services over one transport; see the module comment. */
export function createHooklineClient(options: HooklineClientOptions): HooklineClient {
  const transport = options.transport ? withToken(options.transport, options.token) : nodeTransport(options);
  return { ingest: createClient(EventIngest, transport), admin: createClient(WebhookAdmin, transport) };
}

/** An interceptor that sends `token` as the bearer token of every call. */
export function bearerToken(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

function nodeTransport(o: HooklineClientOptions): Transport {
  const interceptors = o.token ? [bearerToken(o.token)] : [];
  switch (o.protocol ?? "connect") {
    case "connect":
      return createConnectTransport({ baseUrl: o.baseUrl, httpVersion: o.httpVersion ?? "2", interceptors });
    case "grpc":
      return createGrpcTransport({ baseUrl: o.baseUrl, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl: o.baseUrl, httpVersion: o.httpVersion ?? "1.1", interceptors });
    default:
      throw new Error(`unknown protocol ${String(o.protocol)}: use "connect", "grpc" or "grpc-web"`);
  }
}

/** A transport that adds the token to every call of `inner`. */
function withToken(inner: Transport, token: string | undefined): Transport {
  if (!token) return inner;
  const header = `Bearer ${token}`;
  return {
    unary: (method, signal, timeoutMs, h, message, contextValues) => {
      const headers = new Headers(h);
      headers.set("authorization", header);
      return inner.unary(method, signal, timeoutMs, headers, message, contextValues);
    },
    stream: (method, signal, timeoutMs, h, input, contextValues) => {
      const headers = new Headers(h);
      headers.set("authorization", header);
      return inner.stream(method, signal, timeoutMs, headers, input, contextValues);
    },
  };
}
