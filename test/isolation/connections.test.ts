/**
 * Connection limits on the API port, with raw sockets: connections that
 * never speak, or speak too slowly (slowloris: one header line at a time;
 * a body a byte at a time; an HTTP/2 preface without SETTINGS), are closed
 * after HOOKLINE_HEADERS_TIMEOUT / HOOKLINE_REQUEST_READ_TIMEOUT; HTTP/2
 * connections without streams are sent GOAWAY after HOOKLINE_IDLE_TIMEOUT
 * even while they PING; past HOOKLINE_MAX_CONNECTIONS new connections are
 * closed at once while an existing client keeps working. Working clients
 * are never cut: WatchDeliveries streams quiet for longer than every
 * timeout still receive updates, and a grpc-js channel with keep-alive
 * pings still calls after its idle connection was closed.
 *
 * The timeouts are scaled down (1 s instead of 10 s) so the file runs in
 * seconds; docs/configuration.md gives the defaults.
 */
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeliveryUpdate } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale } from "../support/chaos.js";
import { client, type Protocol, PROTOCOLS } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { loadConfig } from "../../src/config.js";
import { grpcJsClients } from "../support/grpc-js.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { RawClient, type RawResult, rpcStatus } from "../support/raw-http.js";

const db = useTestDatabase();

/** The scaled-down limits of most tests here. */
const LIMITS = {
  HOOKLINE_SCHEDULER: "false",
  HOOKLINE_HEADERS_TIMEOUT: "1s",
  HOOKLINE_REQUEST_READ_TIMEOUT: "2s",
  HOOKLINE_IDLE_TIMEOUT: "1s",
};
/**
 * How long a test waits for the server to close a connection before calling
 * it kept. Longer in the long version: its thousands of connections can
 * outrun the listen backlog on a busy machine, and a client whose handshake
 * the kernel finished is accepted by Hookline only seconds later.
 */
const KEPT_MS = scale(8_000, 30_000);

/** A raw TCP connection and how it ended. */
interface Raw {
  socket: net.Socket;
  /** Resolves when the server closed it, with what it sent and when, or "kept" after KEPT_MS. */
  ended: Promise<{ afterMs: number; answer: string } | "kept">;
}

/** Connects to `port` and resolves once connected; times count from then. */
async function connect(port: number): Promise<Raw> {
  const socket = net.connect(port, "127.0.0.1");
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.on("error", () => {});
  const closed = once(socket, "close");
  await once(socket, "connect");
  const start = Date.now();
  const ended = new Promise<{ afterMs: number; answer: string } | "kept">((resolve) => {
    const timer = setTimeout(() => resolve("kept"), KEPT_MS);
    void closed.then(() => {
      clearTimeout(timer);
      resolve({ afterMs: Date.now() - start, answer: Buffer.concat(chunks).toString() });
    });
  });
  return { socket, ended };
}

/** Writes `head` now, then `parts` one every `everyMs` while the socket is open. */
function drip(socket: net.Socket, head: string, parts: string[], everyMs: number): void {
  if (head) socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= parts.length) return clearInterval(timer);
    socket.write(parts[i++]!);
  }, everyMs);
  socket.on("close", () => clearInterval(timer));
}

it("has the documented defaults, and a header timeout within the request timeout", () => {
  expect(loadConfig({})).toMatchObject({ headersTimeoutMs: 10_000, requestReadTimeoutMs: 300_000, idleTimeoutMs: 65_000, maxConnections: 10_000 });
  expect(() => loadConfig({ HOOKLINE_HEADERS_TIMEOUT: "2m", HOOKLINE_REQUEST_READ_TIMEOUT: "1m" })).toThrow(
    /HOOKLINE_HEADERS_TIMEOUT=2m is longer than HOOKLINE_REQUEST_READ_TIMEOUT=1m/,
  );
  expect(() => loadConfig({ HOOKLINE_MAX_CONNECTIONS: "0" })).toThrow(/HOOKLINE_MAX_CONNECTIONS=0: expected a whole number from 1/);
});

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** What the server sent before closing, for the report. */
function answered(answer: string): string {
  if (answer === "") return "";
  return answer.startsWith("HTTP/") ? ` with ${answer.split("\r\n")[0]}` : ` with ${answer.length} bytes of HTTP/2 frames`;
}

describe("timeouts", () => {
  let app: TestHookline;
  let port: number;

  beforeAll(async () => {
    app = await startTestHookline(db.url, LIMITS);
    port = Number(new URL(app.url).port);
  });

  afterAll(async () => {
    await app?.stop();
  });

  it("closes connections that never finish their first request or preface after HOOKLINE_HEADERS_TIMEOUT", async () => {
    const cases: Array<[string, (s: net.Socket) => void]> = [
      ["silent", () => {}],
      ["half an HTTP/2 preface", (s) => s.write("PRI * HT")],
      ["an HTTP/2 preface a byte every 300 ms", (s) => drip(s, "", [...PREFACE], 300)],
      ["the HTTP/2 preface without SETTINGS", (s) => s.write(PREFACE)],
      ["half an HTTP/1.1 request line", (s) => s.write("GET /metr")],
      ["slowloris: a header line every 200 ms", (s) => drip(s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n", Array.from({ length: 100 }, (_, i) => `X-Slow-${i}: ${i}\r\n`), 200)],
      ["slow body: a byte every 200 ms", (s) =>
          drip(s, "POST /hookline.v1.EventIngest/Publish HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n", Array.from({ length: 1000 }, () => " "), 200)],
    ];
    // The long version opens many of each, 100 at a time: more at once
    // overflow the listen backlog (511), and the kernel makes clients
    // retry their SYN a second later.
    const copies = scale(1, 300);
    const conns: Array<readonly [string, Raw]> = [];
    for (let i = 0; i < copies; i += Math.ceil(100 / cases.length)) {
      const batch = Math.min(Math.ceil(100 / cases.length), copies - i);
      const opened = await Promise.all(
        cases.flatMap(([name, act]) =>
          Array.from({ length: batch }, async () => {
            const raw = await connect(port);
            act(raw.socket);
            return [name, raw] as const;
          }),
        ),
      );
      conns.push(...opened);
    }
    const ends = await Promise.all(conns.map(async ([name, raw]) => [name, await raw.ended] as const));
    const figures: Record<string, string> = {};
    for (const [name] of cases) {
      const mine = ends.filter(([n]) => n === name).map(([, e]) => e);
      const closed = mine.flatMap((e) => (e === "kept" ? [] : [e]));
      const times = closed.map((e) => e.afterMs);
      const kept = mine.length - closed.length;
      figures[name] = `${closed.length} closed after ${Math.min(...times)}-${Math.max(...times)} ms${answered(closed[0]?.answer ?? "")}${kept ? `, ${kept} kept after ${KEPT_MS} ms` : ""}`;
    }
    report(`connections: slow or silent clients, ${copies} of each (headers 1 s, request 2 s)`, figures);
    for (const [name, ended] of ends) {
      expect(ended, name).not.toBe("kept");
      if (ended === "kept") continue;
      // Nothing is cut before its time.
      expect(ended.afterMs, name).toBeGreaterThanOrEqual(name.startsWith("slow body") ? 1_900 : 900);
      if (name.startsWith("slow")) expect(ended.answer, name).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    }
  }, 2 * KEPT_MS + 30_000);

  it("sends GOAWAY to an HTTP/2 connection without streams after HOOKLINE_IDLE_TIMEOUT, PINGs or not", async () => {
    const idle = http2.connect(app.url);
    idle.on("error", () => {});
    const pinging = http2.connect(app.url);
    pinging.on("error", () => {});
    // (Between the server's GOAWAY and the "close" event the session can be
    // destroyed already: ping() then throws.)
    const pings = setInterval(() => {
      if (!pinging.destroyed && !pinging.closed) pinging.ping(() => {});
    }, 200);
    pinging.once("close", () => clearInterval(pings));
    const start = Date.now();
    const [idleEnd, pingingEnd] = await Promise.all([once(idle, "close").then(() => Date.now() - start), once(pinging, "close").then(() => Date.now() - start)]);
    clearInterval(pings);
    report("connections: HTTP/2 idle timeout 1 s", { idleClosedAfterMs: idleEnd, pingingClosedAfterMs: pingingEnd });
    expect(idleEnd).toBeGreaterThanOrEqual(900);
    expect(pingingEnd).toBeGreaterThanOrEqual(900);
  });

  it("keeps WatchDeliveries streams quiet for longer than every timeout, on every protocol, and grpc-js with keep-alive pings calls on", async () => {
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    await admin.createEndpoint({ tenantId: "quiet", url: "https://receiver.example/hook" });
    const aborts: AbortController[] = [];
    const received = new Map<Protocol, DeliveryUpdate[]>();
    const watches = PROTOCOLS.map(async (protocol) => {
      const abort = new AbortController();
      aborts.push(abort);
      const got: DeliveryUpdate[] = [];
      received.set(protocol, got);
      try {
        for await (const u of client(WebhookAdmin, protocol, app.url).watchDeliveries({ tenantId: "quiet" }, { signal: abort.signal })) got.push(u);
      } catch (err) {
        if (!abort.signal.aborted) throw new Error(`${protocol}: ${ConnectError.from(err).message}`);
      }
    });
    const grpcJs = grpcJsClients(app.url, {
      "grpc.keepalive_time_ms": 200,
      "grpc.keepalive_timeout_ms": 5_000,
      "grpc.keepalive_permit_without_calls": 1,
    });
    try {
      await expect.poll(() => app.updates.watcherCount, { timeout: 10_000 }).toBe(PROTOCOLS.length);
      expect((await grpcJs.admin.call("ListEndpoints", { tenant_id: "quiet" })).endpoints).toHaveLength(1);
      // Witnesses opened now, once the watchers are quiet: an HTTP/2
      // connection without streams (closed after the idle timeout) and a
      // request whose body never ends (cut after the request timeout, the
      // longest). By the time both are closed, the watchers have been quiet
      // for longer than every limit.
      const witness = http2.connect(app.url);
      witness.on("error", () => {});
      const slowBody = await connect(Number(new URL(app.url).port));
      slowBody.socket.write("POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 10\r\n\r\n");
      await once(witness, "close");
      expect(await slowBody.ended).not.toBe("kept");

      expect(app.updates.watcherCount).toBe(PROTOCOLS.length);
      await client(EventIngest, "connect-http2", app.url).publish({ tenantId: "quiet", eventType: "q.e", payload: { case: "payloadJson", value: "{}" } });
      await expect.poll(() => PROTOCOLS.filter((p) => (received.get(p)?.length ?? 0) > 0), { timeout: 10_000 }).toEqual([...PROTOCOLS]);
      // The grpc-js channel's idle connection was closed too; it reconnects for the next call.
      expect((await grpcJs.admin.call("ListEndpoints", { tenant_id: "quiet" })).endpoints).toHaveLength(1);
    } finally {
      grpcJs.close();
      for (const a of aborts) a.abort();
      await Promise.all(watches);
    }
  });
});

describe("HOOKLINE_MAX_CONNECTIONS", () => {
  it("closes connections past the cap at once while an existing client keeps working, and takes new ones once some close", async () => {
    const cap = 20;
    // Silent connections stay for the whole test.
    const app = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false", HOOKLINE_MAX_CONNECTIONS: String(cap), HOOKLINE_HEADERS_TIMEOUT: "60s" });
    const port = Number(new URL(app.url).port);
    // The existing client: one HTTP/2 connection, for the metrics too.
    const existing = new RawClient(app.url, 10_000);
    const metric = async (name: string) => {
      const r = await existing.send({ http: "2", method: "GET", path: "/metrics", headers: {}, body: [] });
      if (r.kind !== "response") throw new Error(`metrics: ${JSON.stringify(r)}`);
      const line = r.response.body.toString().split("\n").find((l) => l.startsWith(`${name} `));
      return Number(line?.split(" ")[1]);
    };
    const publish = async (tenant: string): Promise<RawResult> =>
      existing.send({
        http: "2",
        method: "POST",
        path: "/hookline.v1.EventIngest/Publish",
        headers: { "content-type": "application/json" },
        body: [Buffer.from(JSON.stringify({ tenantId: tenant, eventType: "c.e", payloadJson: "{}" }))],
      });
    const silent: Raw[] = [];
    try {
      expect(await metric("hookline_connections_open")).toBe(1);
      for (let i = 1; i < cap; i++) silent.push(await connect(port));
      await expect.poll(() => metric("hookline_connections_open"), { timeout: 10_000 }).toBe(cap);

      const extra = await Promise.all(Array.from({ length: 10 }, () => connect(port)));
      const ends = await Promise.all(extra.map((r) => r.ended));
      report("connections: past the cap of 20", { refused: ends.filter((e) => e !== "kept").length, closedWithinMs: Math.max(...ends.map((e) => (e === "kept" ? Number.POSITIVE_INFINITY : e.afterMs))) });
      for (const e of ends) {
        expect(e).not.toBe("kept");
        if (e !== "kept") expect(e.answer).toBe("");
      }
      // Polled: /metrics may answer from a rendering a tenth of a second old (RENDERS_PER_SECOND).
      await expect.poll(() => metric("hookline_connections_refused_total"), { timeout: 5_000 }).toBe(10);
      // The existing client is served, and the silent ones are still open.
      const ok = await publish("capped");
      expect(ok.kind === "response" && rpcStatus(ok.response).code).toBe("OK");
      expect(await metric("hookline_connections_open")).toBe(cap);

      // Once some close, new clients get in.
      for (const r of silent.splice(0, 5)) r.socket.destroy();
      await expect.poll(() => metric("hookline_connections_open"), { timeout: 10_000 }).toBe(cap - 5);
      const fresh = await client(EventIngest, "connect-http1", app.url).publish({ tenantId: "capped", eventType: "c.e", payload: { case: "payloadJson", value: "{}" } });
      expect(fresh.eventId).toMatch(/^evt_/);
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.Unavailable) throw new Error(`a client was refused: ${err.message}`);
      throw err;
    } finally {
      for (const r of silent) r.socket.destroy();
      existing.close();
      await app.stop();
    }
  });
});
