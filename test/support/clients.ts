/**
 * The clients users reach Hookline with, each over a real socket: Connect
 * over HTTP/1.1 and HTTP/2, gRPC (h2c) and gRPC-Web.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { bearerToken } from "../../src/client/index.js";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { madeBeforeAll } from "./made-before-all.js";

/** The transports under test, by name. */
export const PROTOCOLS = ["connect-http1", "connect-http2", "grpc", "grpc-web"] as const;
/** One of {@link PROTOCOLS}. */
export type Protocol = (typeof PROTOCOLS)[number];

/** Makes a transport of `protocol` to `baseUrl`; with `token`, every call carries it as a bearer token. */
export function transport(protocol: Protocol, baseUrl: string, token?: string): Transport {
  const interceptors = token ? [bearerToken(token)] : [];
  switch (protocol) {
    case "connect-http1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
    case "connect-http2":
      return createConnectTransport({ baseUrl, httpVersion: "2", interceptors });
    case "grpc":
      return createGrpcTransport({ baseUrl, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
  }
}

/** A typed client of `service` over `protocol`, optionally with a bearer token. */
export function client<S extends DescService>(service: S, protocol: Protocol, baseUrl: string, token?: string): Client<S> {
  return createClient(service, transport(protocol, baseUrl, token));
}

/**
 * A typed client of `service` over `protocol` to the Hookline `app` (made
 * by useTestHookline), made once it serves, before the tests of the file
 * (or describe block) this is called in.
 */
export function useClient<S extends DescService>(service: S, protocol: Protocol, app: { readonly url: string }, token?: string): Client<S> {
  return madeBeforeAll(
    async () => client(service, protocol, app.url, token),
    async () => {},
  );
}
