/**
 * DNS rebinding in open mode (no token set): a web page whose own name was
 * made to resolve to 127.0.0.1 calls Hookline as "its own" server, with its
 * name in Host / :authority. Such requests are refused on every route and
 * every protocol, with a code each client understands, and nothing is
 * written; loopback names keep working; with a token set, any Host is
 * served (requests are authenticated instead).
 */
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventIngest, PublishRequestSchema } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WatchDeliveriesRequestSchema } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { isLoopbackAuthority } from "../../src/api/host-guard.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { grpcJsClients } from "../support/grpc-js.js";
import { startTestHookline, useTestHookline } from "../support/hookline.js";
import { envelope, RawClient, type RawRequest, type RawResult, rpcStatus } from "../support/raw-http.js";

let raw: RawClient;
let port: number;

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false" });

beforeAll(async () => {
  raw = new RawClient(app.url, 10_000);
  port = Number(new URL(app.url).port);
});

afterAll(async () => {
  raw?.close();
});

const PUBLISH = "/hookline.v1.EventIngest/Publish";
const WATCH = "/hookline.v1.WebhookAdmin/WatchDeliveries";
const publishJson = (tenant: string) => Buffer.from(JSON.stringify({ tenantId: tenant, eventType: "t.e", payloadJson: "{}" }));
const publishProto = (tenant: string) => toBinary(PublishRequestSchema, create(PublishRequestSchema, { tenantId: tenant, eventType: "t.e", payload: { case: "payloadJson", value: "{}" } }));

/** Names a page can make resolve to 127.0.0.1, or that are not loopback names at all. */
const FOREIGN = ["evil.example", "evil.example:PORT", "localhost.evil.example:PORT", "127.0.0.1.nip.io:PORT", "10.0.0.1:PORT", "[::2]:PORT", "0x7f.0.0.1:PORT", "2130706433:PORT", "localhost:PORT@evil.example"];
/** Names of this machine's loopback. */
const LOOPBACK = ["127.0.0.1:PORT", "localhost:PORT", "LOCALHOST:PORT", "localhost.:PORT", "localhost", "console.localhost:PORT", "127.1.2.3:PORT", "[::1]:PORT", "[0:0:0:0:0:0:0:1]:PORT", "[::ffff:127.0.0.1]:PORT"];
const withPort = (name: string) => name.replace("PORT", String(port));

/** Every way a request names its host, over each HTTP version. */
function addressed(http: "1.1" | "2", host: string): Record<string, string> {
  return http === "1.1" ? { host } : { ":authority": host };
}

/** Unary Publish over each wire, addressed to `host`. */
function publishRequests(host: string, tenant: string): Array<[string, RawRequest]> {
  const framed = [envelope(0, publishProto(tenant))];
  return [
    ["connect-h1", { http: "1.1", method: "POST", path: PUBLISH, headers: { ...addressed("1.1", host), "content-type": "application/json" }, body: [publishJson(tenant)] }],
    ["connect-h2", { http: "2", method: "POST", path: PUBLISH, headers: { ...addressed("2", host), "content-type": "application/json" }, body: [publishJson(tenant)] }],
    ["grpc", { http: "2", method: "POST", path: PUBLISH, headers: { ...addressed("2", host), "content-type": "application/grpc", te: "trailers" }, body: framed }],
    ["grpc-web-h1", { http: "1.1", method: "POST", path: PUBLISH, headers: { ...addressed("1.1", host), "content-type": "application/grpc-web+proto" }, body: framed }],
    ["grpc-web-h2", { http: "2", method: "POST", path: PUBLISH, headers: { ...addressed("2", host), "content-type": "application/grpc-web+proto" }, body: framed }],
  ];
}

function response(result: RawResult) {
  if (result.kind !== "response") throw new Error(`no response: ${JSON.stringify(result)}`);
  return result.response;
}

describe("open mode (no token)", () => {
  it("tells loopback names from others", () => {
    for (const name of LOOPBACK) expect(isLoopbackAuthority(withPort(name)), name).toBe(true);
    for (const name of [...FOREIGN, "", ":7070", "[::1", "local host", "127.0.0.256"]) expect(isLoopbackAuthority(withPort(name)), name).toBe(false);
  });

  it("refuses RPCs addressed to other names with PERMISSION_DENIED in every protocol, and stores nothing", async () => {
    for (const name of FOREIGN) {
      const host = withPort(name);
      for (const [wire, request] of publishRequests(host, "rebound")) {
        const status = rpcStatus(response(await raw.send(request)));
        expect(status.code, `${wire} ${host}`).toBe("PermissionDenied");
        expect(status.message, `${wire} ${host}`).toMatch(/is refused: without HOOKLINE_ADMIN_TOKEN or HOOKLINE_INGEST_TOKEN, .*DNS rebinding/);
      }
    }
    // A server stream (Connect streaming over HTTP/1.1) ends with the same error.
    const watch = envelope(0, toBinary(WatchDeliveriesRequestSchema, create(WatchDeliveriesRequestSchema, { tenantId: "rebound" })));
    const stream = response(
      await raw.send({ http: "1.1", method: "POST", path: WATCH, headers: { host: "evil.example", "content-type": "application/connect+proto" }, body: [watch] }),
    );
    expect(rpcStatus(stream).code).toBe("PermissionDenied");
    expect(await db.query("SELECT id FROM events WHERE tenant_id = 'rebound'")).toEqual([]);
  });

  it("refuses a gRPC client (grpc-js) whose channel names another authority", async () => {
    const clients = grpcJsClients(app.url, { "grpc.default_authority": "evil.example" });
    try {
      const err = (await clients.ingest.call("Publish", { tenant_id: "rebound", event_type: "t.e", payload_json: "{}" }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(err.details).toContain("DNS rebinding");
    } finally {
      clients.close();
    }
  });

  it("refuses /metrics, /console and unknown paths with a plain 403 over HTTP/1.1 and HTTP/2, and serves the probes", async () => {
    for (const http of ["1.1", "2"] as const) {
      for (const path of ["/metrics", "/console/", "/console", "/nothing"]) {
        const res = response(await raw.send({ http, method: "GET", path, headers: addressed(http, "evil.example"), body: [] }));
        expect(res.status, `${http} ${path}`).toBe(403);
        expect(res.headers["content-type"]).toBe("text/plain; charset=utf-8");
        expect(res.body.toString()).toMatch(/^Host "evil.example" is refused: .*DNS rebinding guard/);
      }
      for (const path of ["/healthz", "/readyz"]) {
        const res = response(await raw.send({ http, method: "GET", path, headers: addressed(http, "evil.example"), body: [] }));
        expect([res.status, res.body.toString()], `${http} ${path}`).toEqual([200, "ok\n"]);
      }
    }
  });

  it("refuses an HTTP/2 request whose Host header names another host beside a loopback :authority", async () => {
    const res = response(
      await raw.send({ http: "2", method: "GET", path: "/metrics", headers: { ":authority": withPort("localhost:PORT"), host: "evil.example" }, body: [] }),
    );
    expect(res.status).toBe(403);
  });

  it("refuses an HTTP/1.0 request without Host", async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("error", reject);
      socket.on("close", () => resolve(Buffer.concat(chunks).toString()));
      socket.end("GET /metrics HTTP/1.0\r\n\r\n");
    });
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain("a request without Host is refused");
  });

  it("serves loopback names on every protocol, and the typed clients on 127.0.0.1 and localhost", async () => {
    for (const name of LOOPBACK) {
      const host = withPort(name);
      for (const [wire, request] of publishRequests(host, "home")) {
        expect(rpcStatus(response(await raw.send(request))).code, `${wire} ${host}`).toBe("OK");
      }
      const metrics = response(await raw.send({ http: "1.1", method: "GET", path: "/metrics", headers: { host }, body: [] }));
      expect(metrics.status, host).toBe(200);
    }
    for (const url of [app.url, app.url.replace("127.0.0.1", "localhost")]) {
      const res = await client(EventIngest, "connect-http1", url).publish({ tenantId: "home", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
      expect(res.eventId).toMatch(/^evt_/);
    }
    const clients = grpcJsClients(app.url.replace("127.0.0.1", "localhost"));
    try {
      expect((await clients.ingest.call("Publish", { tenant_id: "home", event_type: "t.e", payload_json: "{}" })).event_id).toMatch(/^evt_/);
    } finally {
      clients.close();
    }
  });
});

describe("with a token", () => {
  it("serves any Host: requests are authenticated instead", async () => {
    const token = "rebinding-admin-token-0123456789";
    const authed = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false", HOOKLINE_ADMIN_TOKEN: token });
    const r = new RawClient(authed.url, 10_000);
    try {
      for (const [wire, request] of publishRequests("evil.example", "tokened")) {
        request.headers.authorization = `Bearer ${token}`;
        expect(rpcStatus(response(await r.send(request))).code, wire).toBe("OK");
      }
      expect(response(await r.send({ http: "1.1", method: "GET", path: "/metrics", headers: { host: "evil.example" }, body: [] })).status).toBe(200);
    } finally {
      r.close();
      await authed.stop();
    }
  });
});
