/**
 * Malformed bytes on every protocol, sent by hand (node:http, node:http2
 * and raw TCP, no RPC client) to every method of EventIngest and
 * WebhookAdmin: random and mutated protobuf, broken JSON, JSON with wrong
 * field types and unknown fields, wrong content types, gRPC frames that are
 * truncated, flagged as compressed, or longer than HOOKLINE_MAX_REQUEST_BYTES,
 * oversized bodies, gRPC-Web trailer frames sent by a client, Connect GETs
 * with a broken `message`, HTTP/2 streams reset halfway, streaming
 * envelopes to unary methods, and bytes that are not HTTP at all.
 *
 * Every request must get a proper answer in time: an RPC code that blames
 * the request (or an HTTP status for a request that is not an RPC), never
 * Unknown, a server error, a hang or a dropped connection. The exceptions,
 * counted apart: Internal where connect-es itself answers a protocol error
 * so, as gRPC servers do (LIBRARY_INTERNAL), and a WatchDeliveries call
 * that parsed and so stays open. A client calling normally alongside is
 * served throughout, and the heap of this process (the server runs in it)
 * stays flat from batch to batch.
 *
 * Short: 5 batches of 300 inputs; long (npm run test:chaos): 20 of 1,500.
 * The seed is fixed unless HOOKLINE_CHAOS_SEED is set, and printed.
 */
import { type DescMethod, toBinary, toJsonString } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { messageArbitrary } from "../support/arbitrary.js";
import { chaosSeed, report, scale } from "../support/chaos.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { heapUsedAfterGc } from "../support/memory.js";
import { envelope, RawClient, type RawRequest, type RawResult, rpcStatus } from "../support/raw-http.js";

const SEED = chaosSeed(20_261_126);
const BATCHES = scale(5, 20);
const PER_BATCH = scale(300, 1_500);
/** The server's limit on a request message, set low so oversized requests stay cheap. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** Longer than any answer takes; reaching it is a hang. */
const ANSWER_TIMEOUT_MS = 10_000;
/** How long a WatchDeliveries call may stay open without sending anything before the client gives up on it. */
const WATCH_OPEN_MS = 300;
/**
 * Heap growth from the first batch to the last that counts as a leak. The
 * HTTP/2 streams Node left open (see src/api/server.ts) grew it by about
 * 1 KB per input, 29 MB over the long run's 30,000 inputs; now it grows
 * 2-3 MB, all in the first batches.
 */
const HEAP_BOUND_BYTES = 16 * 1024 * 1024;

const METHODS: DescMethod[] = [...EventIngest.methods, ...WebhookAdmin.methods];
const pathOf = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;
const isStreaming = (m: DescMethod) => m.methodKind !== "unary";

/** How a request travels. */
const WIRES = ["connect-h1", "connect-h2", "grpc", "grpc-web-h1", "grpc-web-h2"] as const;
type Wire = (typeof WIRES)[number];
/** The wires whose messages are framed (length-prefixed) for every method; Connect frames only streams. */
const FRAMED_WIRES = ["grpc", "grpc-web-h1", "grpc-web-h2"] as const;

/** One input: an HTTP request, or bytes on a bare TCP connection. */
type Case = { category: string; request: RawRequest } | { category: string; tcp: Uint8Array };

interface Framing {
  /** The envelope's flags (0 for a plain message). */
  flags?: number;
  /** The length the envelope declares, when it differs from the payload's. */
  declared?: number;
  /** More envelopes after the first. */
  extra?: Uint8Array[];
}

/** A request carrying `payload` to `method` the way `wire` carries a message, in JSON when `json`. */
function rpcRequest(wire: Wire, method: DescMethod, payload: Uint8Array, json: boolean, framing: Framing = {}): RawRequest {
  const request = carry(wire, method, payload, json, framing);
  // A watch that parses stays open until it has something to send.
  if (method.methodKind === "server_streaming") request.openMs = WATCH_OPEN_MS;
  return request;
}

function carry(wire: Wire, method: DescMethod, payload: Uint8Array, json: boolean, framing: Framing): RawRequest {
  const codec = json ? "json" : "proto";
  const framed = (p: Uint8Array) => [envelope(framing.flags ?? 0, p, framing.declared), ...(framing.extra ?? [])];
  const path = pathOf(method);
  switch (wire) {
    case "connect-h1":
    case "connect-h2": {
      const http = wire === "connect-h1" ? "1.1" : "2";
      if (isStreaming(method)) {
        return { http, method: "POST", path, headers: { "content-type": `application/connect+${codec}` }, body: framed(payload) };
      }
      return { http, method: "POST", path, headers: { "content-type": `application/${codec}`, "connect-protocol-version": "1" }, body: [payload] };
    }
    case "grpc":
      return { http: "2", method: "POST", path, headers: { "content-type": `application/grpc+${codec}`, te: "trailers" }, body: framed(payload) };
    case "grpc-web-h1":
    case "grpc-web-h2":
      return {
        http: wire === "grpc-web-h1" ? "1.1" : "2",
        method: "POST",
        path,
        headers: { "content-type": `application/grpc-web+${codec}`, "x-grpc-web": "1" },
        body: framed(payload),
      };
  }
}

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));
const method = fc.constantFrom(...METHODS);
const wire = fc.constantFrom<Wire>(...WIRES);
const framedWire = fc.constantFrom<Wire>(...FRAMED_WIRES);

/** A valid binary request message of `m`, drawn from its descriptor. */
function validBytes(m: DescMethod): fc.Arbitrary<Uint8Array> {
  return messageArbitrary(m.input, { maxDepth: 2 }).map((msg) => toBinary(m.input, msg));
}

/** A valid-looking JSON request of `m` (its fields, plausible values). */
function validJson(m: DescMethod): fc.Arbitrary<string> {
  return messageArbitrary(m.input, { maxDepth: 2 }).map((msg) => {
    try {
      return toJsonString(m.input, msg);
    } catch {
      return "{}";
    }
  });
}

/** JSON text of a value of the wrong type (or out of range) for a field of this kind. */
function wrongValue(kind: string): fc.Arbitrary<string> {
  const any = fc.oneof(
    fc.constantFrom("null", "true", "1.5", "-1", "1e400", "-0", '"1e400"', '""', '"NaN"', '"Infinity"', "[]", "{}", '[1,"a"]', '{"a":1}'),
    fc.constantFrom("2147483648", "-2147483649", "4294967296", "9223372036854775808", "18446744073709551616", '"9223372036854775808"'),
    fc.string({ maxLength: 10 }).map((t) => JSON.stringify(t)),
    fc.integer().map(String),
  );
  switch (kind) {
    case "timestamp":
      return fc.oneof(
        fc.constantFrom('"2024-13-45T99:00:00Z"', '"10000-01-01T00:00:00Z"', '"0000-01-01T00:00:00Z"', '"yesterday"', '"2024-01-01"', "1700000000"),
        any,
      );
    case "duration":
      return fc.oneof(fc.constantFrom('"1.5h"', '"-99999999999999s"', '"1e9s"', '"s"', '"5"', "5", '"315576000001s"'), any);
    case "mask":
      return fc.oneof(fc.constantFrom('"a,,b"', '"Url"', '"url,"', "3", '["url"]'), any);
    default:
      return any;
  }
}

function fieldKind(m: DescMethod, name: string): string {
  const field = m.input.fields.find((f) => f.jsonName === name)!;
  if (field.fieldKind === "message") {
    if (field.message.typeName === "google.protobuf.Timestamp") return "timestamp";
    if (field.message.typeName === "google.protobuf.Duration") return "duration";
    if (field.message.typeName === "google.protobuf.FieldMask") return "mask";
  }
  return field.fieldKind;
}

/** Bytes with one change: a byte flipped, the end cut off, or a byte inserted. */
function mutated(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(bytes, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("flip", "cut", "insert")).map(([b, at, byte, how]) => {
    if (b.length === 0) return new Uint8Array([byte]);
    const i = at % b.length;
    if (how === "cut") return b.slice(0, i);
    if (how === "insert") return new Uint8Array([...b.slice(0, i), byte, ...b.slice(i)]);
    const out = b.slice();
    out[i] = out[i]! ^ (byte | 1);
    return out;
  });
}

const CATEGORIES: Record<string, fc.Arbitrary<Case>> = {
  "random protobuf": fc.tuple(method, wire, fc.uint8Array({ maxLength: 300 })).map(([m, w, bytes]) => ({
    category: "random protobuf",
    request: rpcRequest(w, m, bytes, false),
  })),
  "mutated protobuf": fc
    .tuple(method, wire)
    .chain(([m, w]) => mutated(validBytes(m)).map((bytes) => ({ category: "mutated protobuf", request: rpcRequest(w, m, bytes, false) }))),
  "broken JSON": fc
    .tuple(
      method,
      wire,
      fc.oneof(
        fc.string({ unit: "binary", maxLength: 60 }),
        fc.json().chain((text) => fc.nat(text.length).map((n) => text.slice(0, n))),
        fc.constantFrom("", "null", "[]", "1", '"x"', "{", '{"tenantId":}', "\ufeff{}", "{}garbage", '{"tenantId":"a","tenantId":"b"}', "{'a':1}"),
      ),
    )
    .map(([m, w, text]) => ({ category: "broken JSON", request: rpcRequest(w, m, utf8(text), true) })),
  "JSON field of the wrong type": fc
    .tuple(method, wire)
    .chain(([m, w]) =>
      fc
        .constantFrom(...m.input.fields.map((f) => f.jsonName))
        .chain((name) => wrongValue(fieldKind(m, name)).map((value) => `{${JSON.stringify(name)}:${value}}`))
        .map((body) => ({ category: "JSON field of the wrong type", request: rpcRequest(w, m, utf8(body), true) })),
    ),
  "unknown field": fc
    .tuple(method, wire, fc.string({ minLength: 1, maxLength: 12 }), fc.boolean())
    .filter(([m, , key]) => !m.input.fields.some((f) => f.jsonName === key || f.name === key))
    .map(([m, w, key, json]) => {
      // In binary, field number 999 (varint): proto3 keeps unknown fields, so this one may well succeed.
      const payload = json ? utf8(JSON.stringify({ [key]: 1 })) : new Uint8Array([0xb8, 0x3e, 0x01]);
      return { category: "unknown field", request: rpcRequest(w, m, payload, json) };
    }),
  "wrong content type": fc
    .tuple(
      method,
      fc.constantFrom<"1.1" | "2">("1.1", "2"),
      fc.oneof(
        fc.constantFrom("text/plain", "application/xml", "", "application/json; charset=utf-16", "multipart/form-data", "application/x-www-form-urlencoded", "application/grpc", "application/grpc-web-text", "application/connect+xml"),
        fc.stringMatching(/^[a-z]{1,8}\/[a-z+.-]{1,12}$/),
      ),
    )
    .chain(([m, http, type]) =>
      validJson(m).map((json) => ({
        category: "wrong content type",
        request: { http, method: "POST" as const, path: pathOf(m), headers: type === "" ? {} : ({ "content-type": type } as Record<string, string>), body: [utf8(json)] },
      })),
    ),
  "truncated frame": fc
    .tuple(method, framedWire, fc.uint8Array({ maxLength: 100 }), fc.integer({ min: 1, max: 5_000 }))
    .map(([m, w, bytes, missing]) => ({
      category: "truncated frame",
      request: rpcRequest(w, m, bytes, false, { declared: bytes.length + missing }),
    })),
  "wrong compressed flag": fc
    .tuple(method, framedWire, fc.uint8Array({ maxLength: 100 }), fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 0x7f })), fc.boolean())
    .map(([m, w, bytes, flags, gzip]) => {
      const request = rpcRequest(w, m, bytes, false, { flags });
      // With an encoding named, the payload is not gzip data either.
      if (gzip) request.headers["grpc-encoding"] = "gzip";
      return { category: "wrong compressed flag", request };
    }),
  "oversized length prefix": fc
    .tuple(method, framedWire, fc.constantFrom(MAX_REQUEST_BYTES + 1, 2 ** 24, 2 ** 31, 2 ** 32 - 1), fc.uint8Array({ maxLength: 20 }))
    .map(([m, w, declared, bytes]) => ({ category: "oversized length prefix", request: rpcRequest(w, m, bytes, false, { declared }) })),
  "oversized body": fc
    .tuple(method, wire, fc.integer({ min: 1, max: 32 * 1024 }), fc.boolean())
    .map(([m, w, over, json]) => {
      const size = MAX_REQUEST_BYTES + over;
      const payload = json ? utf8(JSON.stringify({ [m.input.fields[0]!.jsonName]: "x".repeat(size) })) : new Uint8Array(size).fill(0x0a);
      return { category: "oversized body", request: rpcRequest(w, m, payload, json) };
    }),
  "gRPC-Web trailers from the client": fc
    .tuple(method, fc.constantFrom<Wire>("grpc-web-h1", "grpc-web-h2"), fc.uint8Array({ maxLength: 60 }), fc.boolean())
    .map(([m, w, bytes, first]) => {
      const trailer = envelope(0x80, bytes.length % 2 ? bytes : utf8("grpc-status: 0\r\ngrpc-message: hi\r\n"));
      const request = first ? rpcRequest(w, m, new Uint8Array(0), false, { flags: 0x80 }) : rpcRequest(w, m, new Uint8Array(0), false, { extra: [trailer] });
      if (first) request.body = [trailer];
      return { category: "gRPC-Web trailers from the client", request };
    }),
  "Connect GET with a bad message": fc
    .tuple(
      method,
      fc.constantFrom<"1.1" | "2">("1.1", "2"),
      fc.constantFrom("json", "proto", "xml", undefined),
      fc.oneof(fc.string({ unit: "binary", maxLength: 40 }), fc.base64String({ maxLength: 40 }), fc.constant(undefined)),
      fc.constantFrom("1", "0", "yes", undefined),
      fc.constantFrom("identity", "gzip", "br", undefined),
    )
    .map(([m, http, encoding, message, base64, compression]) => {
      const query = new URLSearchParams({ connect: "v1" });
      if (encoding) query.set("encoding", encoding);
      if (message !== undefined) query.set("message", message);
      if (base64) query.set("base64", base64);
      if (compression) query.set("compression", compression);
      return { category: "Connect GET with a bad message", request: { http, method: "GET" as const, path: `${pathOf(m)}?${query}`, headers: {}, body: [] } };
    }),
  "stream reset halfway": fc
    .tuple(method, wire, fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 10_000 }))
    .map(([m, w, bytes, missing]) => {
      const request = rpcRequest(w, m, bytes, false, { declared: bytes.length + missing });
      return { category: "stream reset halfway", request: { ...request, abort: true } };
    }),
  "streaming envelope to a unary method": fc
    .tuple(fc.constantFrom(...METHODS.filter((m) => !isStreaming(m))), fc.constantFrom<"1.1" | "2">("1.1", "2"), fc.boolean())
    .chain(([m, http, json]) =>
      (json ? validJson(m).map(utf8) : validBytes(m)).map((payload) => ({
        category: "streaming envelope to a unary method",
        request: { http, method: "POST" as const, path: pathOf(m), headers: { "content-type": `application/connect+${json ? "json" : "proto"}` }, body: [envelope(0, payload)] },
      })),
    ),
  "unknown path": fc
    .tuple(fc.constantFrom("/", "/hookline.v1.EventIngest/Nope", "/hookline.v1.Nope/Publish", "/hookline.v1.EventIngest", "/%00", "/hookline.v1.EventIngest/Publish/extra"), wire)
    .map(([path, w]) => {
      const request = rpcRequest(w, METHODS[0]!, new Uint8Array(0), false);
      return { category: "unknown path", request: { ...request, path } };
    }),
  "not HTTP": fc.uint8Array({ minLength: 1, maxLength: 200 }).map((tcp) => ({ category: "not HTTP", tcp })),
};

let raw: RawClient;

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_SCHEDULER: "false", HOOKLINE_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES) });

beforeAll(async () => {
  raw = new RawClient(app.url, ANSWER_TIMEOUT_MS);
});

afterAll(async () => {
  raw?.close();
});

/** Codes that blame the request (Unimplemented: connect-es's answer to a unary call without its message). */
const PROPER_CODES = new Set(["OK", "InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition", "PermissionDenied", "ResourceExhausted", "Unauthenticated", "OutOfRange", "Unimplemented"]);
/** Plain HTTP refusals of what is not a call the server knows. */
const HTTP_REFUSALS = new Set(["HTTP 400", "HTTP 404", "HTTP 405", "HTTP 415"]);
/**
 * connect-es answers these protocol errors itself, before Hookline's code
 * runs, with Internal, as gRPC's own servers do (grpc-go for the first two;
 * the gRPC status code guide for the third): a binary message it cannot
 * decode, a message flagged compressed without an encoding, and a
 * compressed message that does not decompress (zlib errors other than bad
 * data, such as a truncated stream).
 */
const LIBRARY_INTERNAL: [prefix: string, label: string][] = [
  ["parse binary: ", "undecodable binary"],
  ["received compressed envelope, but do not know how to decompress", "compressed flag without encoding"],
  ["decompression failed", "compressed data truncated"],
];

/** The only outcome some categories may have. */
const EXPECTED: Record<string, RegExp> = {
  "oversized length prefix": / ResourceExhausted$/,
  "oversized body": / ResourceExhausted$/,
  "streaming envelope to a unary method": /^http HTTP 415$/,
  "unknown path": /^http HTTP 404$/,
  "stream reset halfway": /^aborted$/,
  "not HTTP": /^tcp (answered|closed)$/,
};

type Result = RawResult | "answered" | "closed" | "timeout";

/** The outcome's name, and why it is not a proper answer (undefined when it is). */
function judge(c: Case, result: Result): { outcome: string; wrong?: string } {
  if (typeof result === "string") return { outcome: `tcp ${result}`, wrong: result === "timeout" ? "no answer and no close" : undefined };
  if (result.kind === "open") {
    const watch = "request" in c && c.request.openMs !== undefined;
    return { outcome: "stream open", wrong: watch ? undefined : "open stream on a method that does not stream" };
  }
  if (result.kind !== "response") return { outcome: result.kind, wrong: result.kind === "aborted" ? undefined : result.kind === "error" ? result.error : "no answer in time" };
  const status = rpcStatus(result.response);
  const library = status.code === "Internal" ? LIBRARY_INTERNAL.find(([prefix]) => status.message.startsWith(prefix)) : undefined;
  if (library) return { outcome: `${status.protocol} Internal (${library[1]})` };
  const outcome = `${status.protocol} ${status.code}`;
  const proper = status.protocol === "http" ? HTTP_REFUSALS.has(status.code) : PROPER_CODES.has(status.code);
  return { outcome, wrong: proper ? undefined : `${outcome}: ${status.message}` };
}

function tally(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** What a case was, for a failure message. */
function describeCase(c: Case): string {
  if ("tcp" in c) return `TCP ${Buffer.from(c.tcp).toString("hex")}`;
  const r = c.request;
  return `HTTP/${r.http} ${r.method} ${r.path} ${JSON.stringify(r.headers)} body ${Buffer.concat(r.body).toString("hex").slice(0, 400)}`;
}

it("answers malformed bytes on every protocol with a proper error, keeps serving, and keeps its heap flat", async () => {
  const bystander = createClient(EventIngest, createGrpcTransport({ baseUrl: app.url }));
  let served = 0;
  let stop = false;
  const bystanderFailures: unknown[] = [];
  const bystanding = (async () => {
    while (!stop) {
      try {
        await bystander.publish({ tenantId: "bystander", eventType: "still.here", payload: { case: "payloadJson", value: "{}" } });
        served++;
      } catch (err) {
        bystanderFailures.push(err);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const outcomes = new Map<string, number>();
  const categories = new Map<string, number>();
  const input = fc.oneof(...Object.values(CATEGORIES));
  const heap: number[] = [];
  const rss: number[] = [];
  let inputs = 0;
  try {
    for (let batch = 0; batch < BATCHES; batch++) {
      await fc.assert(
        fc.asyncProperty(input, async (c) => {
          inputs++;
          tally(categories, c.category);
          const result = "tcp" in c ? await raw.sendTcp(c.tcp) : await raw.send(c.request);
          const { outcome, wrong } = judge(c, result);
          tally(outcomes, outcome);
          expect(wrong, `${c.category}: ${describeCase(c)}`).toBeUndefined();
          const expected = EXPECTED[c.category];
          if (expected) expect(outcome, `${c.category}: ${describeCase(c)}`).toMatch(expected);
        }),
        { seed: SEED + batch, numRuns: PER_BATCH },
      );
      heap.push(heapUsedAfterGc());
      rss.push(process.memoryUsage().rss);
    }
  } finally {
    stop = true;
    await bystanding;
  }

  const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const sorted = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  report("fuzz: malformed bytes", {
    seed: SEED,
    "inputs tried": inputs,
    ...Object.fromEntries(sorted(outcomes).map(([o, n]) => [`outcome ${o}`, n])),
    ...Object.fromEntries(sorted(categories).map(([c, n]) => [`category ${c}`, n])),
    "bystander calls served": served,
    "bystander calls failed": bystanderFailures.length,
    "heap after each batch (MB)": heap.map(mb).join(", "),
    "heap growth, first to last batch (MB)": mb(heap.at(-1)! - heap[0]!),
    "rss after each batch (MB)": rss.map(mb).join(", "),
  });
  expect(bystanderFailures).toEqual([]);
  expect(served).toBeGreaterThan(0);
  // Batch 1 is the warm-up (connections, code paths, caches); growth after it would be a leak.
  expect(heap.at(-1)! - heap[0]!).toBeLessThan(HEAP_BOUND_BYTES);
  await expect(bystander.publish({ tenantId: "bystander", eventType: "still.here", payload: { case: "payloadJson", value: "{}" } })).resolves.toBeDefined();
}, scale(120_000, 1_800_000));
