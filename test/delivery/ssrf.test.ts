/**
 * The SSRF guard and the hardening of the outbound HTTP client, over real
 * sockets: blocked addresses are refused before anything is sent (for IP
 * literals and for names, after DNS), redirects are not followed, long
 * response bodies are cut at the cap, and CreateEndpoint refuses URLs that
 * can never be delivered to.
 *
 * Traffic goes to 127.0.0.1 only. Other hostile addresses (169.254.169.254)
 * appear only as values the guard refuses before connecting.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { AddressGuard } from "../../src/delivery/address-guard.js";
import { HttpClient, type HttpClientOptions } from "../../src/delivery/http-client.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

const nothingAllowed = new AddressGuard([]);
const loopbackAllowed = new AddressGuard(["127.0.0.0/8"]);
const BODY = '{"type":"ping"}';

const clients: HttpClient[] = [];
function httpClient(options: Partial<HttpClientOptions> & Pick<HttpClientOptions, "guard">): HttpClient {
  const c = new HttpClient({ bodyLimit: 4096, ...options });
  clients.push(c);
  return c;
}

let receiver: Receiver;
beforeEach(async () => {
  receiver = await startReceiver();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.destroy()));
  await receiver.close();
});

/** A TCP server on 127.0.0.1 that counts connections and answers none. */
async function connectionCounter(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("SSRF guard in the HTTP client", () => {
  it("refuses a receiver on 127.0.0.1 unless loopback is allowed, without connecting", async () => {
    const counter = await connectionCounter();
    try {
      const result = await httpClient({ guard: nothingAllowed }).post(new URL(`${counter.url}/hook`), {}, BODY, 5_000);
      expect(result).toEqual({
        status: 0,
        body: "",
        headers: {},
        error: {
          class: "ssrf",
          message: "127.0.0.1 is in 127.0.0.0/8 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS",
        },
      });
      expect(counter.connections()).toBe(0);
    } finally {
      await counter.close();
    }

    const refused = await httpClient({ guard: nothingAllowed }).post(new URL(`${receiver.url}/hook`), {}, BODY, 5_000);
    expect(refused.error?.class).toBe("ssrf");
    expect(receiver.requests).toHaveLength(0);
  });

  it("refuses a name that resolves to loopback (localhost), after DNS", async () => {
    const url = new URL(`${receiver.url.replace("127.0.0.1", "localhost")}/hook`);
    const result = await httpClient({ guard: nothingAllowed }).post(url, {}, BODY, 5_000);
    expect(result.status).toBe(0);
    expect(result.error?.class).toBe("ssrf");
    expect(result.error?.message).toMatch(/^localhost resolves to blocked addresses only: 127\.0\.0\.1 is in 127\.0\.0\.0\/8 \(loopback\)/);
    expect(receiver.requests).toHaveLength(0);
  });

  it("delivers to 127.0.0.1 and to localhost once 127.0.0.0/8 is allowed", async () => {
    const http = httpClient({ guard: loopbackAllowed });
    const byAddress = await http.post(new URL(`${receiver.url}/a`), {}, BODY, 5_000);
    const byName = await http.post(new URL(`${receiver.url.replace("127.0.0.1", "localhost")}/b`), {}, BODY, 5_000);
    expect([byAddress, byName]).toEqual([
      { status: 200, body: "ok", headers: {} },
      { status: 200, body: "ok", headers: {} },
    ]);
    expect(receiver.requests.map((r) => [r.path, r.body])).toEqual([
      ["/a", BODY],
      ["/b", BODY],
    ]);
  });

  it("judges the connected socket's address again before sending anything", async () => {
    // A guard that allows 127.0.0.1 once (the check before connecting) and
    // then changes its mind: only the check of the connected socket can stop it.
    let asked = 0;
    const fickle = new AddressGuard(["127.0.0.0/8"]);
    fickle.check = (ip) => (asked++ === 0 ? undefined : nothingAllowed.check(ip));
    const result = await httpClient({ guard: fickle }).post(new URL(`${receiver.url}/hook`), {}, BODY, 5_000);
    expect(asked).toBe(2);
    expect(result.error).toEqual({
      class: "ssrf",
      message: "127.0.0.1 is in 127.0.0.0/8 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS",
    });
    expect(receiver.requests).toHaveLength(0);
  });
});

describe("hardened responses", () => {
  it("does not follow a redirect to the cloud metadata address, naming it in the error", async () => {
    const metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/";
    // Only ever a value here: the guard would refuse it before connecting.
    expect(loopbackAllowed.check("169.254.169.254")).toMatch(/169\.254\.0\.0\/16/);
    receiver.reply(() => ({ status: 302, headers: { Location: metadata }, body: "moved" }));
    const result = await httpClient({ guard: loopbackAllowed }).post(new URL(`${receiver.url}/hook`), {}, BODY, 5_000);
    expect(result).toEqual({
      status: 302,
      body: "moved",
      headers: { location: metadata },
      error: { class: "http", message: `HTTP 302: redirects are not followed (to ${metadata})` },
    });
    expect(receiver.requests).toHaveLength(1);
  });

  it("returns the response headers of interest, lower-cased, and no others", async () => {
    receiver.reply(() => ({
      status: 429,
      headers: { "Retry-After": "120", "Content-Type": "text/plain; charset=utf-8", "X-Request-Id": "r1", "Set-Cookie": "a=b" },
      body: "slow down",
    }));
    const result = await httpClient({ guard: loopbackAllowed }).post(new URL(`${receiver.url}/hook`), {}, BODY, 5_000);
    expect(result).toEqual({
      status: 429,
      body: "slow down",
      headers: { "retry-after": "120", "content-type": "text/plain; charset=utf-8" },
      error: { class: "http", message: "HTTP 429" },
    });
  });

  it("keeps the first value of a repeated header", async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(503, [
        ["Retry-After", "30"],
        ["Retry-After", "60"],
      ]);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const result = await httpClient({ guard: loopbackAllowed }).post(new URL(`http://127.0.0.1:${port}/`), {}, BODY, 5_000);
      expect(result.headers).toEqual({ "retry-after": "30" });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("passes over informational answers (102, 103) to the response after them", async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeProcessing();
        res.writeEarlyHints({ link: "</style.css>; rel=preload" });
        res.writeHead(201, { "content-type": "text/plain" }).end("created");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const result = await httpClient({ guard: loopbackAllowed }).post(new URL(`http://127.0.0.1:${port}/`), {}, BODY, 5_000);
      expect(result).toEqual({ status: 201, body: "created", headers: { "content-type": "text/plain" } });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("rejects with the caller's reason when its signal aborts, and closes the connection", async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => {
      closed = resolve;
    });
    // Reads the request and never answers.
    const server = http.createServer((req) => {
      req.resume();
      req.socket.on("close", closed);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const controller = new AbortController();
      const arrived = new Promise<void>((resolve) => server.once("request", () => resolve()));
      const sent = httpClient({ guard: loopbackAllowed }).post(new URL(`http://127.0.0.1:${port}/`), {}, BODY, 30_000, controller.signal);
      await arrived;
      controller.abort(new Error("the caller went away"));
      await expect(sent).rejects.toThrow("the caller went away");
      await connectionClosed;
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("cuts a 10 MB response at the cap and closes the connection instead of reading on", async () => {
    // The server declares 10 MB, sends 1 MB and then waits: a client that read
    // to the end would wait for the timeout; one that stops at the cap returns
    // at once and closes the connection.
    const declared = 10 << 20;
    let closedByClient!: () => void;
    const closed = new Promise<void>((resolve) => {
      closedByClient = resolve;
    });
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": String(declared) });
      res.write("x".repeat(1 << 20));
      res.on("close", () => closedByClient());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const bodyLimit = 1000;
      const started = performance.now();
      const result = await httpClient({ guard: loopbackAllowed, bodyLimit }).post(
        new URL(`http://127.0.0.1:${port}/`),
        {},
        BODY,
        20_000,
      );
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(result).toEqual({ status: 200, body: "x".repeat(bodyLimit), headers: { "content-type": "text/plain" } });
      await closed;
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("keeps the first bodyLimit bytes of a whole 10 MB body", async () => {
    receiver.reply(() => ({ status: 500, body: "y".repeat(10 << 20) }));
    const result = await httpClient({ guard: loopbackAllowed, bodyLimit: 4096 }).post(new URL(`${receiver.url}/hook`), {}, BODY, 5_000);
    expect(result.status).toBe(500);
    expect(result.body).toBe("y".repeat(4096));
    expect(result.error).toEqual({ class: "http", message: "HTTP 500" });
  });

  it("keeps no body at all with a cap of 0", async () => {
    const result = await httpClient({ guard: loopbackAllowed, bodyLimit: 0 }).post(new URL(`${receiver.url}/hook`), {}, BODY, 5_000);
    expect(result).toEqual({ status: 200, body: "", headers: {} });
  });

  it("keeps the connection after a body within the cap, and closes it after a longer one", async () => {
    const remotePorts: number[] = [];
    const server = http.createServer((req, res) => {
      remotePorts.push(req.socket.remotePort!);
      res.end(req.url === "/long" ? "z".repeat(100_000) : "short");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const http = httpClient({ guard: loopbackAllowed, bodyLimit: 4096 });
      for (const path of ["/short", "/short", "/long", "/short"]) {
        await http.post(new URL(`http://127.0.0.1:${port}${path}`), {}, BODY, 5_000);
        // undici hands a finished connection back to its pool a tick after the body ends.
        await new Promise((resolve) => setImmediate(resolve));
      }
      const [first, second, third, fourth] = remotePorts;
      expect([second, third]).toEqual([first, first]);
      expect(fourth).not.toBe(first);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("Hookline with nothing allowed", () => {
  let db: TestDatabase;
  let app: TestHookline;
  let admin: ReturnType<typeof client<typeof WebhookAdmin>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestHookline(db.url, { HOOKLINE_ALLOWED_CIDRS: "" });
    admin = client(WebhookAdmin, "connect-http1", app.url);
  });

  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  async function createFailure(url: string): Promise<ConnectError> {
    const err = await admin.createEndpoint({ tenantId: "ssrf", url }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `CreateEndpoint ${url} should fail`).toBeInstanceOf(ConnectError);
    return err as ConnectError;
  }

  it.each([
    ["http://127.0.0.1:9/hook", "url: 127.0.0.1 is in 127.0.0.0/8 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS"],
    ["http://2130706433/hook", "url: 127.0.0.1 is in 127.0.0.0/8 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS"],
    ["http://[::1]:9/", "url: ::1 is in ::1/128 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS"],
    [
      "http://169.254.169.254/latest/meta-data/",
      "url: 169.254.169.254 is in 169.254.0.0/16 (link-local, cloud metadata), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS",
    ],
    [
      "http://localhost:9/hook",
      "url: localhost always resolves to loopback (127.0.0.0/8 or ::1), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS",
    ],
  ])("refuses CreateEndpoint for %s with InvalidArgument saying how to allow it, storing nothing", async (url, message) => {
    const err = await createFailure(url);
    expect(Code[err.code]).toBe("InvalidArgument");
    expect(err.rawMessage).toBe(message);
    const [{ n }] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM endpoints WHERE url = $1", [new URL(url).toString()]);
    expect(n).toBe(0);
  });

  it("still creates endpoints whose names are judged at delivery time", async () => {
    const { endpoint } = await admin.createEndpoint({ tenantId: "ssrf", url: "https://hooks.example.com/in" });
    expect(endpoint?.url).toBe("https://hooks.example.com/in");
  });

  it("refuses at delivery time an endpoint created while loopback was allowed, sending nothing", async () => {
    // An operator narrowed HOOKLINE_ALLOWED_CIDRS after the endpoint was created:
    // an API-only process that allows loopback creates it, this one delivers.
    const creator = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false" });
    try {
      await client(WebhookAdmin, "connect-http1", creator.url).createEndpoint({ tenantId: "narrowed", url: `${receiver.url}/hook` });
    } finally {
      await creator.stop();
    }
    const { eventId } = await client(EventIngest, "connect-http1", app.url).publish({
      tenantId: "narrowed",
      eventType: "a.b",
      payload: { case: "payloadJson", value: "{}" },
    });
    const firstAttempt = async () => {
      const [listed] = (await admin.listDeliveries({ eventId })).deliveries;
      if (!listed) return undefined;
      return (await admin.getDelivery({ id: listed.id })).delivery?.attempts.at(-1);
    };
    await expect.poll(async () => (await firstAttempt())?.errorClass, { timeout: 5_000 }).toBe("ssrf");
    const attempt = await firstAttempt();
    expect(attempt?.responseStatus).toBe(0);
    expect(attempt?.error).toBe("127.0.0.1 is in 127.0.0.0/8 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS");
    expect(receiver.requests).toHaveLength(0);
  });
});
