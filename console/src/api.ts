/**
 * The console's way to Hookline: a WebhookAdmin client over Connect-Web
 * (fetch) on the page's own origin, carrying the token from Settings.
 */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import type { AdminClient } from "./rpc.js";

/** A client of the Hookline that served the page; with `token`, every call carries it. */
export function adminClient(token: string): AdminClient {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createConnectTransport({
    baseUrl: window.location.origin,
    interceptors: token === "" ? [] : [bearer],
  });
  return createClient(WebhookAdmin, transport);
}
