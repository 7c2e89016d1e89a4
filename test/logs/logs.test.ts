/**
 * What Hookline writes to its log, read from a real process's logger:
 * request ids (given or made, sent back on success and on error, on every
 * protocol), one line per RPC, one line per attempt (debug on success, warn
 * on failure), and never a secret or a payload.
 */
import { Writable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { REQUEST_ID_HEADER, requestId } from "../../src/api/request-log.js";
import { createLogger } from "../../src/log.js";
import { client, PROTOCOLS } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";
import { captureLog, LEVEL } from "../support/log.js";

const captured = captureLog("debug");
const { lines, raw } = captured;
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_RETRY_SCHEDULE: "50ms" }, captured.log);
const r = useReceiver((_, req) => ({ status: req.path === "/bad" ? 503 : 200, body: "receiver says SECRET-RESPONSE-MARKER" }));

describe("request ids", () => {
  for (const protocol of PROTOCOLS) {
    it(`keeps a sane x-request-id, sends it back and logs it (${protocol})`, async () => {
      const admin = client(WebhookAdmin, protocol, app.url);
      const id = `req-${protocol}-0001`;
      let header: string | null = null;
      await admin.listEndpoints({ tenantId: "logs" }, { headers: { [REQUEST_ID_HEADER]: id }, onHeader: (h) => (header = h.get(REQUEST_ID_HEADER)) });
      expect(header).toBe(id);
      const line = lines.find((l) => l.requestId === id);
      expect(line).toMatchObject({ level: LEVEL.debug, msg: "rpc ok", procedure: "hookline.v1.WebhookAdmin/ListEndpoints" });
      expect(line!.durationMs).toBeTypeOf("number");
    });

    it(`puts the request id on errors and logs the code (${protocol})`, async () => {
      const admin = client(WebhookAdmin, protocol, app.url);
      const err = await admin.getEndpoint({ id: "ep_nope" }, { headers: { [REQUEST_ID_HEADER]: `err-${protocol}` } }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.NotFound);
      expect(err!.metadata.get(REQUEST_ID_HEADER)).toBe(`err-${protocol}`);
      expect(lines.find((l) => l.requestId === `err-${protocol}`)).toMatchObject({ level: LEVEL.info, msg: "rpc failed", code: "NotFound" });
    });
  }

  it("makes an id when none or a strange one is sent", async () => {
    expect(requestId(null)).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(requestId("has spaces and ünicode")).not.toBe("has spaces and ünicode");
    expect(requestId("x".repeat(129))).toHaveLength(16);
    expect(requestId("a.b:c-d_e")).toBe("a.b:c-d_e");
    // Made ids do not repeat, across refills of the pool they are drawn from.
    const made = Array.from({ length: 1_000 }, () => requestId(null));
    expect(new Set(made).size).toBe(1_000);
    expect(made.every((id) => /^[A-Za-z0-9_-]{16}$/.test(id))).toBe(true);
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    let header: string | null = null;
    await admin.listEndpoints({ tenantId: "logs" }, { headers: { [REQUEST_ID_HEADER]: "bad id\t" }, onHeader: (h) => (header = h.get(REQUEST_ID_HEADER)) });
    expect(header).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(lines.some((l) => l.requestId === header && l.msg === "rpc ok")).toBe(true);
  });
});

describe("attempts", () => {
  it("logs a success at debug and a failure at warn with what comes next, never the payload or a secret", async () => {
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const ingest = client(EventIngest, "connect-http2", app.url);
    const good = (await admin.createEndpoint({ tenantId: "logs", url: `${r.url}/good`, eventTypes: ["log.*"] })).endpoint!;
    const bad = (await admin.createEndpoint({ tenantId: "logs", url: `${r.url}/bad`, eventTypes: ["log.*"] })).endpoint!;
    const { eventId } = await ingest.publish({
      tenantId: "logs",
      eventType: "log.e",
      payload: { case: "payloadJson", value: '{"card":"SECRET-PAYLOAD-MARKER"}' },
    });
    await expect.poll(() => lines.filter((l) => l.event === eventId && l.endpoint === bad.id).length, { timeout: 10_000 }).toBe(2);
    const ok = lines.find((l) => l.event === eventId && l.endpoint === good.id);
    expect(ok).toMatchObject({ level: LEVEL.debug, msg: "attempt succeeded", attempt: 1, status: 200 });
    const [retry, final] = lines.filter((l) => l.event === eventId && l.endpoint === bad.id);
    expect(retry).toMatchObject({ level: LEVEL.warn, msg: "attempt failed; will retry", attempt: 1, status: 503 });
    expect(retry!.nextAttemptAt).toBeTypeOf("string");
    expect(final).toMatchObject({ level: LEVEL.warn, msg: "attempt failed; delivery failed", attempt: 2, status: 503 });
    expect(final!.delivery).toBe(retry!.delivery);
    const everything = raw.join("\n");
    expect(everything).not.toContain("SECRET-PAYLOAD-MARKER");
    expect(everything).not.toContain("SECRET-RESPONSE-MARKER");
    expect(everything).not.toContain(good.secret);
    expect(everything).not.toContain(bad.secret.slice(6));
  });
});

describe("format", () => {
  const sink = (isTTY: boolean) => {
    const out: string[] = [];
    const stream = Object.assign(
      new Writable({
        write(chunk, _encoding, done) {
          out.push(String(chunk));
          done();
        },
      }),
      { isTTY },
    ) as unknown as NodeJS.WriteStream;
    return { out, stream };
  };

  it("writes JSON lines when stdout is not a terminal, coloured lines when it is", () => {
    const file = sink(false);
    createLogger("info", "auto", file.stream).info({ delivery: "dlv_1", secret: "s3cret" }, "hello");
    expect(JSON.parse(file.out.join(""))).toMatchObject({ level: 30, msg: "hello", delivery: "dlv_1", secret: "[redacted]", service: "hookline" });

    const tty = sink(true);
    createLogger("info", "auto", tty.stream).info({ delivery: "dlv_1", secret: "s3cret" }, "hello");
    const text = tty.out.join("");
    expect(text).toContain("\u001b["); // coloured
    expect(text).toMatch(/INFO.*hello/);
    expect(text).toContain("dlv_1");
    expect(text).not.toContain("s3cret");
    expect(() => JSON.parse(text)).toThrow();
  });

  it("follows HOOKLINE_LOG_FORMAT over the terminal check", () => {
    const tty = sink(true);
    createLogger("info", "json", tty.stream).info("x");
    expect(JSON.parse(tty.out.join(""))).toMatchObject({ msg: "x" });
    const file = sink(false);
    createLogger("info", "pretty", file.stream).info("y");
    expect(file.out.join("")).toMatch(/INFO: y/);
    expect(file.out.join("")).not.toContain("\u001b[");
  });
});
