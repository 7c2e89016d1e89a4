/**
 * SendTestEvent: a signed hookline.test event reaches the endpoint now, the
 * attempt comes back in the response, and nothing is stored or retried.
 * Custom headers: whatever CreateEndpoint and UpdateEndpoint accept is
 * what undici sends, byte for byte (property-based, against a real
 * receiver); what it cannot send is refused at the door.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { RESERVED_HEADERS } from "../../src/domain/endpoints.js";
import { chaosSeed, scale } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const r = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db);

const count = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);

it("sends a signed test event and returns the attempt, storing nothing", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/test`, headers: { "x-env": "staging" } });
  r.reply(() => ({ status: 202, body: "thanks" }));
  const { attempt } = await admin.sendTestEvent({ id: endpoint!.id, data: { hello: "world" } });
  expect(attempt).toMatchObject({ number: 1, responseStatus: 202, responseBody: "thanks", error: "", errorClass: "" });
  expect(attempt!.startedAt).toBeDefined();
  const req = r.requests.at(-1)!;
  expect(req.headers["x-env"]).toBe("staging");
  const body = new Webhook(endpoint!.secret).verify(req.body, req.headers as Record<string, string>) as { type: string; data: unknown };
  expect(body).toMatchObject({ type: "hookline.test", data: { hello: "world" } });
  expect(await count("events")).toBe(0);
  expect(await count("deliveries")).toBe(0);
  expect(await count("attempts")).toBe(0);
});

it("reports a failing endpoint in the attempt, without retrying or touching its health", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/down` });
  r.reply(() => ({ status: 500, body: "boom" }));
  const before = r.requests.length;
  const { attempt } = await admin.sendTestEvent({ id: endpoint!.id });
  expect(attempt).toMatchObject({ responseStatus: 500, responseBody: "boom", error: "HTTP 500" });
  await new Promise((res) => setTimeout(res, 200));
  expect(r.requests.length).toBe(before + 1);
  expect(JSON.parse(r.requests.at(-1)!.body).data).toEqual({});
  const [row] = await db.query<{ consecutive_failures: number }>("SELECT consecutive_failures FROM endpoints WHERE id = $1", [endpoint!.id]);
  expect(row!.consecutive_failures).toBe(0);
  // Nothing listens here: a connection error, in the attempt.
  const { endpoint: closed } = await admin.createEndpoint({ tenantId: "t", url: "http://127.0.0.1:9/nothing" });
  const { attempt: refused } = await admin.sendTestEvent({ id: closed!.id });
  expect(refused).toMatchObject({ responseStatus: 0, errorClass: "connection" });
  const err = await admin.sendTestEvent({ id: "ep_missing" }).catch((e: unknown) => ConnectError.from(e));
  expect((err as ConnectError).code).toBe(Code.NotFound);
});

describe("custom headers", () => {
  /** A receiver that keeps each request's raw header lines, as they arrived. */
  async function rawReceiver(): Promise<{ url: string; raw: string[][]; close: () => Promise<void> }> {
    const raw: string[][] = [];
    const server = http.createServer((req, res) => {
      raw.push(req.rawHeaders);
      req.resume();
      req.on("end", () => res.end("ok"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      raw,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  const TOKEN = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const VISIBLE = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join("");
  const name = fc.string({ unit: fc.constantFrom(...TOKEN), minLength: 1, maxLength: 40 });
  // A field value: visible ASCII, with spaces and tabs only between visible characters.
  const value = fc.oneof(
    fc.constant(""),
    fc
      .tuple(fc.constantFrom(...VISIBLE), fc.string({ unit: fc.constantFrom(...VISIBLE, " ", "\t"), maxLength: 60 }), fc.constantFrom(...VISIBLE))
      .map(([a, mid, b]) => `${a}${mid}${b}`),
    fc.constantFrom(...VISIBLE),
  );
  const validSets = fc.dictionary(name, value, { maxKeys: 8 }).map((h) =>
    // Distinct without case, none that Hookline sets itself or refuses.
    Object.fromEntries(
      Object.entries(h).filter(([n], i, all) => !RESERVED_HEADERS.has(n.toLowerCase()) && n.toLowerCase() !== "expect" && all.findIndex(([m]) => m.toLowerCase() === n.toLowerCase()) === i),
    ),
  );
  // Anything a client could send: odd names and values, spaces at the ends, Latin-1, beyond U+00FF.
  const wildName = fc.oneof(name, fc.constantFrom("Expect", "expect", "X-Dup", "x-dup", "Host", "bad name", "é"));
  const wildValue = fc.oneof(value, fc.string({ unit: fc.constantFrom("a", " ", "\t", "é", "€", "😀", "\u007f", "\u0001", "ÿ"), maxLength: 6 }));
  const wildSets = fc.dictionary(wildName, wildValue, { maxKeys: 4 });

  it("every header set that is accepted arrives at a real receiver exactly as given", async () => {
    const receiver = await rawReceiver();
    const admin = client(WebhookAdmin, "grpc", app.url);
    const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${receiver.url}/h` });
    const fixed = { "X-Empty": "", "X-Tabs": "a\tb  c", "X-All": VISIBLE, [TOKEN]: "token name" };
    let accepted = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.constant(fixed), validSets, wildSets), async (headers) => {
          const update = await admin.updateEndpoint({ endpoint: { id: endpoint!.id, headers }, updateMask: { paths: ["headers"] } }).then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
          if (update !== undefined) {
            expect(update.code, update.rawMessage).toBe(Code.InvalidArgument);
            expect(update.rawMessage).toMatch(/^endpoint\.headers\[/);
            return;
          }
          accepted++;
          const { attempt } = await admin.sendTestEvent({ id: endpoint!.id });
          expect(attempt!.error).toBe("");
          const raw = receiver.raw.at(-1)!;
          const received = new Map<string, string>();
          for (let i = 0; i < raw.length; i += 2) received.set(raw[i]!.toLowerCase(), raw[i + 1]!);
          for (const [n, v] of Object.entries(headers)) expect(received.get(n.toLowerCase()), n).toBe(v);
        }),
        { numRuns: scale(40, 400), seed: chaosSeed(15) },
      );
    } finally {
      await receiver.close();
    }
    expect(accepted).toBeGreaterThan(scale(40, 400) / 4);
  });

  it("refuses what undici cannot send, and names that differ only in case, at create and update", async () => {
    const admin = client(WebhookAdmin, "grpc", app.url);
    const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/h2` });
    const cases: [Record<string, string>, RegExp][] = [
      [{ Expect: "100-continue" }, /headers\[Expect\]: cannot be sent by Hookline's HTTP client$/],
      [{ "X-Key": "1", "x-key": "2" }, /headers\[x-key\]: differs from X-Key only in case/],
      [{ "x-a": "café" }, /headers\[x-a\]: value must be visible ASCII characters/],
      [{ "x-a": "€" }, /headers\[x-a\]: value must be visible ASCII characters/],
      [{ "x-a": " padded" }, /headers\[x-a\]: value must be visible ASCII/],
      [{ "x-a": "padded\t" }, /headers\[x-a\]: value must be visible ASCII/],
      [{ "x-a": "del\u007f" }, /headers\[x-a\]: value must be visible ASCII/],
    ];
    for (const [headers, message] of cases) {
      for (const call of [
        () => admin.createEndpoint({ tenantId: "t", url: `${r.url}/h3`, headers }),
        () => admin.updateEndpoint({ endpoint: { id: endpoint!.id, headers }, updateMask: { paths: ["headers"] } }),
      ]) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect(err?.code, JSON.stringify(headers)).toBe(Code.InvalidArgument);
        expect(err!.rawMessage).toMatch(message);
      }
    }
    expect((await admin.getEndpoint({ id: endpoint!.id })).endpoint!.headers).toEqual({});
  });
});
