/**
 * Property-based fuzzing of every RPC of EventIngest and WebhookAdmin, found
 * from the generated service descriptors, with request messages drawn from
 * their descriptors (test/support/arbitrary.ts): random and boundary values
 * in every field, mixed with plausible ones (existing ids, valid tenants,
 * the test receiver's URL) so calls get past the first check and reach the
 * database. Calls go to a real server over real sockets, as Connect (JSON
 * over HTTP/1.1, binary over HTTP/2) and gRPC, as four kinds of caller.
 *
 * Every call must succeed or fail with a code that blames the request
 * (never Internal, Unknown or a dropped connection); InvalidArgument must
 * name the field; the server must answer a known-good call afterwards; and
 * the database must hold exactly what the successful calls wrote, all of it
 * consistent. One Internal is the library's, not Hookline's, and counted
 * apart: connect-es answers a binary message it cannot decode (a Struct
 * nested deeper than protobuf-es's recursion limit of 100) with Internal
 * "parse binary: ...", before any of Hookline's code runs, as grpc-go does.
 *
 * Short: 40 requests per method; long (npm run test:chaos): 1,000. The seed
 * is fixed unless HOOKLINE_CHAOS_SEED is set, and printed with the figures.
 */
import type { DescMethod, Message } from "@bufbuild/protobuf";
import { toJsonString } from "@bufbuild/protobuf";
import { type CallOptions, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { bearerToken } from "../../src/client/index.js";
import { ENDPOINT_FIELDS } from "../../src/domain/endpoints.js";
import { encodePageToken } from "../../src/domain/validate.js";
import { type Hint, messageArbitrary } from "../support/arbitrary.js";
import { chaosSeed, report, scale } from "../support/chaos.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const RUNS_PER_METHOD = scale(40, 1_000);
const SEED = chaosSeed(20_261_125);
/** How long a WatchDeliveries call streams before the test aborts it. */
const WATCH_MS = 100;
const ADMIN_TOKEN = "fuzz-admin-token";

/** Codes that blame the request or the caller, not the server. */
const ALLOWED = [
  "InvalidArgument",
  "NotFound",
  "AlreadyExists",
  "FailedPrecondition",
  "PermissionDenied",
  "ResourceExhausted",
  "Unauthenticated",
  "OutOfRange",
];

/** How connect-es starts the Internal error it answers an undecodable binary message with. */
const UNDECODABLE = "parse binary: ";

const WIRES = ["connect-json", "connect-proto", "grpc"] as const;
type Wire = (typeof WIRES)[number];
/** Who calls: the admin token, an admin key of tenant "fuzz", an ingest key of "fuzz", or no one. */
const CALLERS = ["admin", "tenant-key", "ingest-key", "anonymous"] as const;
type Caller = (typeof CALLERS)[number];

const METHODS: DescMethod[] = [...EventIngest.methods, ...WebhookAdmin.methods];

const tokens = new Map<Caller, string | undefined>();
const transports = new Map<string, Transport>();

/** Rows made before fuzzing starts, which the hints point at. */
const known = {
  endpoints: [] as string[],
  /** Endpoints that DeleteEndpoint may delete (the others stay for the other methods). */
  doomedEndpoints: [] as string[],
  events: [] as string[],
  deliveries: [] as string[],
  /** API keys RevokeApiKey may revoke (not the callers' keys). */
  doomedKeys: [] as string[],
  cursor: "",
  /** An endpoint of a tenant no request names, read to tell the server is healthy. */
  sentinel: "",
};

/** What the successful calls wrote, to compare with the database afterwards. */
const written = { endpoints: 0, events: 0, eventTypes: 0, apiKeys: 0 };
const outcomes = new Map<string, number>();
const byWire = new Map<string, number>();
let inputs = 0;
let unencodableAsJson = 0;

function tally(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function transport(wire: Wire, caller: Caller): Transport {
  const key = `${wire}/${caller}`;
  let t = transports.get(key);
  if (!t) {
    const token = tokens.get(caller);
    const interceptors = token ? [bearerToken(token)] : [];
    const baseUrl = app.url;
    t =
      wire === "grpc"
        ? createGrpcTransport({ baseUrl, interceptors })
        : createConnectTransport({ baseUrl, interceptors, httpVersion: wire === "connect-json" ? "1.1" : "2", useBinaryFormat: wire === "connect-proto" });
    transports.set(key, t);
  }
  return t;
}

type AnyMethod = (request: unknown, options?: CallOptions) => unknown;

async function* each<T>(items: readonly T[]): AsyncIterable<T> {
  for (const item of items) yield item;
}

/** Calls `method` with `request` (a list of messages for client streaming); returns the response, or the updates streamed. */
async function invoke(method: DescMethod, request: Message | Message[], t: Transport): Promise<unknown> {
  const call = (createClient(method.parent, t) as unknown as Record<string, AnyMethod>)[method.localName]!;
  switch (method.methodKind) {
    case "unary":
      return await call(request);
    case "client_streaming":
      return await call(each(request as Message[]));
    case "server_streaming": {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), WATCH_MS);
      const updates: unknown[] = [];
      try {
        for await (const update of call(request, { signal: abort.signal }) as AsyncIterable<unknown>) updates.push(update);
        return updates;
      } catch (err) {
        // The test's own abort ends a healthy stream.
        if (abort.signal.aborted && ConnectError.from(err).code === Code.Canceled) return updates;
        throw err;
      } finally {
        clearTimeout(timer);
      }
    }
    default:
      throw new Error(`no fuzzing for ${method.methodKind} methods`);
  }
}

/** Counts the rows a successful call wrote. */
function recordWrites(method: DescMethod, response: unknown): void {
  const results = (response as { results?: { duplicate: boolean }[] }).results;
  switch (method.name) {
    case "CreateEndpoint":
      written.endpoints++;
      break;
    case "CreateEventType":
      written.eventTypes++;
      break;
    case "CreateApiKey":
      written.apiKeys++;
      break;
    case "Publish":
      if (!(response as { duplicate: boolean }).duplicate) written.events++;
      break;
    case "PublishBatch":
    case "PublishStream":
      written.events += results!.filter((r) => !r.duplicate).length;
      break;
  }
}

/**
 * Whether an InvalidArgument message names the field: Hookline's start with
 * a field of the request ("tenant_id: ...", "events[3].channels[0]: ...",
 * "retry_policy.exponential.base: ..."); those of the JSON decoder name the
 * field or message it could not decode.
 */
function namesField(method: DescMethod, message: string): boolean {
  if (/^cannot decode (field |message |enum )?[\w.]+ from JSON: /.test(message)) return true;
  const first = /^([a-z_][a-z0-9_]*)[[.:]/.exec(message)?.[1];
  if (first === undefined) return false;
  const names = new Set([...method.input.fields.map((f) => f.name), ...method.input.oneofs.map((o) => o.name)]);
  // PublishStream numbers its messages as PublishBatch does.
  if (method.methodKind === "client_streaming") names.add("events");
  // Messages are cut at 500 characters (see src/api/errors.ts), which can drop the ": ".
  return names.has(first) && (message.includes(": ") || message.endsWith("…"));
}

function jsonEncodable(method: DescMethod, request: Message | Message[]): boolean {
  try {
    for (const m of Array.isArray(request) ? request : [request]) toJsonString(method.input, m);
    return true;
  } catch {
    return false;
  }
}

/** Plausible values by field, so that many requests reach the database. */
function hints(): Hint {
  const endpointIds = fc.constantFrom(...known.endpoints);
  const token = (ids: string[]) => fc.oneof(fc.constant(""), fc.constantFrom(...ids.map(encodePageToken)));
  const eventTypes = fc.constantFrom("fuzz.created", "fuzz.updated", "fuzz.other");
  return (field, part) => {
    const message = field.parent.name;
    if (part === "key") return field.name === "headers" ? fc.constantFrom("x-fuzz", "X-Trace-Id", "authorization") : undefined;
    switch (field.name) {
      case "tenant_id":
        return fc.constantFrom("fuzz", "fuzz", "fuzz", "fuzz-b", "");
      case "id":
        if (message === "DeleteEndpointRequest") return fc.constantFrom(...known.doomedEndpoints);
        if (message === "GetDeliveryRequest" || message === "RetryDeliveryRequest") return fc.constantFrom(...known.deliveries);
        if (message === "RevokeApiKeyRequest") return fc.constantFrom(...known.doomedKeys);
        return endpointIds;
      case "endpoint_id":
        return endpointIds;
      case "event_id":
        return fc.constantFrom(...known.events);
      case "url":
        return fc.constantFrom(`${receiver.url}/fuzz`, `${receiver.url}/other?x=1`, "http://127.0.0.1:1/refused");
      case "event_type":
        return eventTypes;
      case "event_types":
        return fc.oneof(eventTypes, fc.constant("fuzz.*"));
      case "name":
        return fc.oneof(eventTypes, fc.stringMatching(/^fuzz\.[a-z]{1,8}$/));
      case "channels":
        return fc.constantFrom("eu", "us");
      case "secret":
        return fc.constantFrom("", `whsec_${Buffer.alloc(32, 1).toString("base64")}`);
      case "page_token":
        return token([...known.endpoints, ...known.deliveries]);
      case "after_cursor":
        return fc.constantFrom("", known.cursor);
      case "payload_json":
        return fc.constantFrom("{}", '{"n":1}', '{"n":"one"}', "[]", '{"nested":{"a":[1,2,3]}}');
      case "idempotency_key":
        return fc.oneof(fc.constantFrom("", "", "key-1", "key-2"), fc.uuid());
      case "description":
        return fc.string({ maxLength: 20 });
      case "headers":
        return fc.constantFrom("v", "Bearer abc");
      case "page_size":
      case "attempt_limit":
        return fc.constantFrom(0, 1, 2, 10);
      case "timeout_seconds":
        return fc.integer({ min: 0, max: 300 });
      case "max_in_flight":
        return fc.integer({ min: 0, max: 10 });
      case "max_attempts":
        return fc.integer({ min: 1, max: 10 });
      case "rate_limit_per_second":
        return fc.constantFrom(0, 10, 0.5, 1e-7);
      case "update_mask":
        return fc.uniqueArray(fc.constantFrom(...ENDPOINT_FIELDS), { minLength: 1, maxLength: 3 }).map((paths) => ({ paths }));
      case "scope":
        return fc.constantFrom(ApiKeyScope.INGEST, ApiKeyScope.ADMIN);
      case "schema":
        return fc.constantFrom({ type: "object" }, { type: "object", properties: { n: { type: "number" } }, required: ["n"] });
    }
    return undefined;
  };
}

/** The request of one call: a message, or a few for a client stream. */
function requestArbitrary(method: DescMethod): fc.Arbitrary<Message | Message[]> {
  const message = messageArbitrary(method.input, { hint: hints() });
  return method.methodKind === "client_streaming" ? fc.array(message, { minLength: 0, maxLength: 5 }) : message;
}

const callerArbitrary = fc.constantFrom<Caller>(...Array<Caller>(14).fill("admin"), "tenant-key", "tenant-key", "tenant-key", "ingest-key", "ingest-key", "anonymous");

const receiver = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: ADMIN_TOKEN, HOOKLINE_REQUEST_TIMEOUT: "1s" });

beforeAll(async () => {
  tokens.set("admin", ADMIN_TOKEN);
  tokens.set("anonymous", undefined);
  const admin = createClient(WebhookAdmin, transport("grpc", "admin"));
  const ingest = createClient(EventIngest, transport("grpc", "admin"));
  tokens.set("tenant-key", (await admin.createApiKey({ tenantId: "fuzz", scope: ApiKeyScope.ADMIN })).token);
  tokens.set("ingest-key", (await admin.createApiKey({ tenantId: "fuzz", scope: ApiKeyScope.INGEST })).token);
  for (let i = 0; i < 2; i++) known.doomedKeys.push((await admin.createApiKey({ tenantId: "fuzz", scope: ApiKeyScope.INGEST })).apiKey!.id);
  for (const [tenantId, n] of [["fuzz", 3], ["fuzz-b", 1]] as const) {
    for (let i = 0; i < n; i++) {
      const { endpoint } = await admin.createEndpoint({ tenantId, url: `${receiver.url}/${tenantId}/${i}`, eventTypes: i === 0 ? [] : ["fuzz.*"] });
      known.endpoints.push(endpoint!.id);
    }
  }
  for (let i = 0; i < 3; i++) known.doomedEndpoints.push((await admin.createEndpoint({ tenantId: "fuzz", url: `${receiver.url}/doomed` })).endpoint!.id);
  known.sentinel = (await admin.createEndpoint({ tenantId: "sentinel", url: `${receiver.url}/sentinel` })).endpoint!.id;
  await admin.createEventType({ tenantId: "fuzz", name: "fuzz.created", schema: { type: "object", properties: { n: { type: "number" } } } });
  const since = new Date();
  for (const tenantId of ["fuzz", "fuzz-b"]) {
    const { eventId } = await ingest.publish({ tenantId, eventType: "fuzz.created", payload: { case: "payloadJson", value: '{"n":1}' } });
    known.events.push(eventId);
  }
  const { deliveries } = await admin.listDeliveries({});
  known.deliveries.push(...deliveries.map((d) => d.id));
  for await (const update of admin.watchDeliveries({ since: { seconds: BigInt(Math.floor(since.getTime() / 1000) - 1) } })) {
    known.cursor = update.cursor;
    break;
  }
  expect(known.deliveries.length).toBeGreaterThan(0);
  expect(known.cursor).not.toBe("");
});

/** A known-good call: the server still answers. */
async function expectHealthy(): Promise<void> {
  const admin = createClient(WebhookAdmin, transport("grpc", "admin"));
  const { endpoint } = await admin.getEndpoint({ id: known.sentinel });
  expect(endpoint?.url).toBe(`${receiver.url}/sentinel`);
}

describe.each(METHODS.map((m) => [`${m.parent.name}.${m.name}`, m] as const))("%s", (_name, method) => {
  it(
    "answers every request with success or an error that blames the request, and keeps serving",
    async () => {
      const seed = SEED + METHODS.indexOf(method);
      await fc.assert(
        fc.asyncProperty(requestArbitrary(method), callerArbitrary, fc.constantFrom(...WIRES), async (request, caller, wanted) => {
          let wire: Wire = wanted;
          if (wire === "connect-json" && !jsonEncodable(method, request)) {
            // Out-of-range Timestamps and Durations have no JSON form: send them in binary.
            unencodableAsJson++;
            wire = "connect-proto";
          }
          inputs++;
          tally(byWire, wire);
          try {
            const response = await invoke(method, request, transport(wire, caller));
            tally(outcomes, "OK");
            recordWrites(method, response);
          } catch (err) {
            const e = ConnectError.from(err);
            const code = Code[e.code];
            const what = `${method.name} over ${wire} as ${caller}: ${code} "${e.rawMessage.slice(0, 300)}"`;
            if (e.code === Code.Internal && e.rawMessage.startsWith(UNDECODABLE)) {
              // connect-es answers a binary message it cannot decode (here: a
              // Struct nested deeper than the decoder's recursion limit) with
              // Internal, as grpc-go does; Hookline's code never sees the call.
              tally(outcomes, "Internal (undecodable binary)");
              return;
            }
            tally(outcomes, code);
            expect(ALLOWED, what).toContain(code);
            if (e.code === Code.InvalidArgument) expect(namesField(method, e.rawMessage), `names no field: ${what}`).toBe(true);
          }
        }),
        { seed, numRuns: RUNS_PER_METHOD },
      );
      await expectHealthy();
    },
    scale(90_000, 1_800_000),
  );
});

describe("after fuzzing", () => {
  it("the database holds exactly what the successful calls wrote, all of it consistent", async () => {
    await expectHealthy();
    const [counts] = await db.query<Record<string, number>>(`
      SELECT (SELECT count(*)::int FROM endpoints) AS endpoints,
             (SELECT count(*)::int FROM events) AS events,
             (SELECT count(*)::int FROM event_types) AS event_types,
             (SELECT count(*)::int FROM api_keys) AS api_keys`);
    // Made in beforeAll: 2 + 2 keys, 4 + 3 + 1 endpoints, 1 event type, 2 events.
    expect(counts).toEqual({
      endpoints: 8 + written.endpoints,
      events: 2 + written.events,
      event_types: 1 + written.eventTypes,
      api_keys: 4 + written.apiKeys,
    });
    const NAME = "'^[A-Za-z0-9._:-]+$'";
    const [broken] = await db.query<Record<string, number>>(`
      SELECT
        (SELECT count(*)::int FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)
                                                   OR NOT EXISTS (SELECT 1 FROM endpoints ep WHERE ep.id = d.endpoint_id)) AS orphan_deliveries,
        (SELECT count(*)::int FROM deliveries d JOIN events e ON e.id = d.event_id JOIN endpoints ep ON ep.id = d.endpoint_id
          WHERE d.tenant_id <> e.tenant_id OR d.tenant_id <> ep.tenant_id OR d.event_type <> e.event_type) AS deliveries_across_tenants,
        (SELECT count(*)::int FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)) AS orphan_attempts,
        (SELECT count(*)::int FROM delivery_updates u WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = u.delivery_id)) AS orphan_updates,
        (SELECT count(*)::int FROM endpoints WHERE tenant_id !~ ${NAME} OR length(tenant_id) > 128 OR url !~ '^https?://'
          OR jsonb_typeof(secrets) <> 'array' OR jsonb_array_length(secrets) = 0
          OR timeout_ms NOT BETWEEN 1000 AND 300000 OR max_in_flight NOT BETWEEN 1 AND 1000
          OR rate_limit_per_second < 0.001 OR rate_limit_per_second > 100000) AS bad_endpoints,
        (SELECT count(*)::int FROM events WHERE tenant_id !~ ${NAME} OR event_type !~ ${NAME} OR length(event_type) > 256
          OR NOT pg_input_is_valid(body, 'json')) AS bad_events,
        (SELECT count(*)::int FROM (SELECT 1 FROM events WHERE idempotency_key IS NOT NULL
          GROUP BY tenant_id, idempotency_key HAVING count(*) > 1) dup) AS duplicated_idempotency_keys,
        (SELECT count(*)::int FROM idempotency_keys k WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = k.event_id)) AS orphan_idempotency_keys,
        (SELECT count(*)::int FROM event_types WHERE tenant_id !~ ${NAME} OR name !~ ${NAME}) AS bad_event_types,
        (SELECT count(*)::int FROM api_keys WHERE tenant_id !~ ${NAME} OR scope NOT IN (1, 2)) AS bad_api_keys`);
    expect(broken).toEqual(Object.fromEntries(Object.keys(broken!).map((k) => [k, 0])));

    const sorted = [...outcomes.entries()].sort((a, b) => b[1] - a[1]);
    report("fuzz: rpc fields", {
      seed: SEED,
      methods: METHODS.length,
      "inputs tried": inputs,
      ...Object.fromEntries(sorted.map(([code, n]) => [`outcome ${code}`, n])),
      ...Object.fromEntries([...byWire.entries()].map(([wire, n]) => [`over ${wire}`, n])),
      "sent in binary (no JSON form)": unencodableAsJson,
      "rows written": `${written.endpoints} endpoints, ${written.events} events, ${written.eventTypes} event types, ${written.apiKeys} api keys`,
    });
  });
});
