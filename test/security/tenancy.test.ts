/**
 * Authentication and tenancy, exhaustively: every RPC of EventIngest and
 * WebhookAdmin, taken from the generated service descriptors (a method added
 * later without a request here fails the first test), called with no token,
 * a wrong token, a forged and a revoked API key, the ingest token, and
 * tenant B's keys, each time with a valid request naming tenant A's objects.
 * None may succeed against A, no response or stream message may carry
 * anything of A that the request did not name, and A's rows are the same
 * before and after. The same requests, naming B's own objects, succeed for
 * B's key: the refusals come from tenancy, not from bad requests.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type CallOptions, type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report } from "../support/chaos.js";
import { PROTOCOLS, type Protocol, transport } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

const ADMIN_TOKEN = "tenancy-admin-token-0123456789";
const INGEST_TOKEN = "tenancy-ingest-token-0123456789";
const A = "alpha-corp";
const B = "beta-corp";
/** The protocols the matrix runs over: all four (Connect over HTTP/1.1 and HTTP/2, gRPC, gRPC-Web). */
const MATRIX_PROTOCOLS: readonly Protocol[] = PROTOCOLS;
/** How long a stream that may stay empty is read. */
const STREAM_READ_MS = 1_000;

/** A tenant's objects, which the requests name. */
interface Target {
  tenantId: string;
  /** A live endpoint with one delivered event. */
  endpointId: string;
  /** A second endpoint, the one DeleteEndpoint names. */
  spareEndpointId: string;
  eventId: string;
  deliveryId: string;
  eventType: string;
  idempotencyKey: string;
  /** A key of the tenant that no caller uses, the one RevokeApiKey names. */
  spareApiKeyId: string;
  /** When the objects were made. */
  since: Date;
  /** The live endpoint's signing secret. */
  secret: string;
}

/** What tenant B's admin key gets for a request naming A's objects. */
type AsOtherTenant =
  /** A's object, named by id, looks missing. */
  | "NotFound"
  /** A's tenant, named, is refused. */
  | "PermissionDenied"
  /** The request names no tenant, so it acts in B's own, where A's ids find nothing: it succeeds, empty of A. */
  | "own tenant";

/** One request to a method, and what tenant B's admin key gets for it. */
interface Variant<R> {
  what: string;
  request: R;
  asOtherTenant: AsOtherTenant;
}

type RequestOf<F> = F extends (request: infer R, options?: CallOptions) => unknown ? R : never;
/** A request builder for every method of a service: the compiler and the first test require each one. */
type Requests<S extends DescService> = { [M in keyof Client<S>]: (t: Target) => Variant<RequestOf<Client<S>[M]>>[] };

let receiver: Receiver;
/** A fresh name per call, for what must be unique (event type names). */
let unique = 0;

/** A client stream of `items` that still shows them when logged (for the echo check). */
function streamOf<T>(items: T[]): AsyncIterable<T> & { items: T[] } {
  async function* gen() {
    yield* items;
  }
  return Object.assign(gen(), { items });
}

const event = (t: Target, idempotencyKey = "") => ({
  tenantId: t.tenantId,
  eventType: t.eventType,
  payload: { case: "payloadJson" as const, value: '{"from":"tenancy matrix"}' },
  idempotencyKey,
});

const INGEST_REQUESTS: Requests<typeof EventIngest> = {
  publish: (t) => [
    { what: "naming the tenant", request: event(t), asOtherTenant: "PermissionDenied" },
    {
      what: "in the caller's tenant, with the other tenant's idempotency key",
      request: { ...event(t, t.idempotencyKey), tenantId: "" },
      asOtherTenant: "own tenant",
    },
  ],
  publishBatch: (t) => [{ what: "naming the tenant", request: { events: [event(t)] }, asOtherTenant: "PermissionDenied" }],
  publishStream: (t) => [{ what: "naming the tenant", request: streamOf([event(t)]), asOtherTenant: "PermissionDenied" }],
};

const ADMIN_REQUESTS: Requests<typeof WebhookAdmin> = {
  createEndpoint: (t) => [
    {
      what: "in the tenant",
      request: { tenantId: t.tenantId, url: `${receiver.url}/made-by-matrix`, description: "made by the tenancy matrix" },
      asOtherTenant: "PermissionDenied",
    },
  ],
  getEndpoint: (t) => [{ what: "by id", request: { id: t.endpointId }, asOtherTenant: "NotFound" }],
  updateEndpoint: (t) => [
    {
      what: "by id",
      request: { endpoint: { id: t.endpointId, description: "changed by the matrix" }, updateMask: { paths: ["description"] } },
      asOtherTenant: "NotFound",
    },
  ],
  deleteEndpoint: (t) => [{ what: "by id", request: { id: t.spareEndpointId }, asOtherTenant: "NotFound" }],
  listEndpoints: (t) => [{ what: "of the tenant", request: { tenantId: t.tenantId }, asOtherTenant: "PermissionDenied" }],
  rotateEndpointSecret: (t) => [{ what: "by id", request: { id: t.endpointId }, asOtherTenant: "NotFound" }],
  sendTestEvent: (t) => [{ what: "by id", request: { id: t.endpointId }, asOtherTenant: "NotFound" }],
  getEndpointStats: (t) => [{ what: "by id", request: { id: t.endpointId }, asOtherTenant: "NotFound" }],
  createEventType: (t) => [
    { what: "in the tenant", request: { tenantId: t.tenantId, name: `matrix.made.${++unique}` }, asOtherTenant: "PermissionDenied" },
  ],
  listEventTypes: (t) => [{ what: "of the tenant", request: { tenantId: t.tenantId }, asOtherTenant: "PermissionDenied" }],
  listDeliveries: (t) => [
    { what: "of the tenant and endpoint", request: { tenantId: t.tenantId, endpointId: t.endpointId }, asOtherTenant: "PermissionDenied" },
    { what: "by endpoint and event only", request: { endpointId: t.endpointId, eventId: t.eventId }, asOtherTenant: "own tenant" },
    { what: "by event type only", request: { eventType: t.eventType }, asOtherTenant: "own tenant" },
  ],
  getDelivery: (t) => [{ what: "by id", request: { id: t.deliveryId }, asOtherTenant: "NotFound" }],
  retryDelivery: (t) => [{ what: "by id", request: { id: t.deliveryId }, asOtherTenant: "NotFound" }],
  recoverEndpoint: (t) => [
    { what: "by endpoint", request: { endpointId: t.endpointId, since: timestampFromDate(t.since) }, asOtherTenant: "NotFound" },
  ],
  watchDeliveries: (t) => [
    // `since` replays the status log: without tenancy, A's past updates would come at once.
    { what: "of the tenant, replayed", request: { tenantId: t.tenantId, since: timestampFromDate(t.since) }, asOtherTenant: "PermissionDenied" },
    {
      what: "by endpoint only, replayed",
      request: { endpointId: t.endpointId, since: timestampFromDate(t.since) },
      asOtherTenant: "own tenant",
    },
    {
      what: "by event and type only, replayed",
      request: { eventId: t.eventId, eventTypes: [t.eventType], since: timestampFromDate(t.since) },
      asOtherTenant: "own tenant",
    },
  ],
  createApiKey: (t) => [{ what: "for the tenant", request: { tenantId: t.tenantId, scope: ApiKeyScope.ADMIN }, asOtherTenant: "PermissionDenied" }],
  listApiKeys: (t) => [{ what: "of the tenant", request: { tenantId: t.tenantId }, asOtherTenant: "PermissionDenied" }],
  revokeApiKey: (t) => [{ what: "by id", request: { id: t.spareApiKeyId }, asOtherTenant: "NotFound" }],
};

const SERVICES = [
  { service: EventIngest as DescService, requests: INGEST_REQUESTS as Record<string, (t: Target) => Variant<unknown>[]> },
  { service: WebhookAdmin as DescService, requests: ADMIN_REQUESTS as Record<string, (t: Target) => Variant<unknown>[]> },
];

/** How a call ended, and everything it returned, as text. */
interface Outcome {
  code: Code | "ok";
  messages: number;
  text: string;
}

const json = (value: unknown) => JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/**
 * Calls `method` with `request` as the holder of `token`. A stream is read
 * until it ends, fails, or `readMs` passes (or, with `firstOnly`, its first
 * message arrives).
 */
async function call(
  protocol: Protocol,
  token: string | undefined,
  service: DescService,
  method: DescMethod,
  request: unknown,
  options: { readMs?: number; firstOnly?: boolean } = {},
): Promise<Outcome> {
  // Calling by name, for every method alike: the request builders above are typed per method.
  const fn = (clientOf(service, protocol, token) as unknown as Record<string, (r: unknown, o?: CallOptions) => unknown>)[method.localName]!;
  const received: unknown[] = [];
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.readMs ?? 10_000);
  try {
    if (method.methodKind === "server_streaming") {
      for await (const message of fn(request, { signal: abort.signal }) as AsyncIterable<unknown>) {
        received.push(message);
        if (options.firstOnly) break;
      }
    } else {
      received.push(await (fn(request, { signal: abort.signal }) as Promise<unknown>));
    }
    return { code: "ok", messages: received.length, text: json(received) };
  } catch (err) {
    if (abort.signal.aborted && method.methodKind === "server_streaming") return { code: "ok", messages: received.length, text: json(received) };
    const e = ConnectError.from(err);
    return { code: e.code, messages: received.length, text: json([received, e.rawMessage, [...e.metadata.entries()], e.details]) };
  } finally {
    clearTimeout(timer);
    // Ends a stream left after its first message, which would stay open on the server.
    abort.abort();
  }
}

let db: TestDatabase;
let app: TestHookline;
let alpha: Target;
/** Tokens: A's admin key (the live test's control), B's admin and ingest keys, and A's revoked and forged keys. */
const keys = { alphaAdmin: "", betaAdmin: "", betaIngest: "", alphaRevoked: "", alphaForged: "" };

const clients = new Map<string, Client<DescService>>();
/** One client per service, protocol and token, so calls share their connections. */
function clientOf<S extends DescService>(service: S, protocol: Protocol, token: string | undefined): Client<S> {
  const key = `${service.typeName} ${protocol} ${token ?? ""}`;
  let c = clients.get(key);
  if (!c) {
    c = createClient(service, transport(protocol, app.url, token)) as Client<DescService>;
    clients.set(key, c);
  }
  return c as Client<S>;
}
const admin = (token = ADMIN_TOKEN, p: Protocol = "connect-http2") => clientOf(WebhookAdmin, p, token);
const ingest = (token = ADMIN_TOKEN) => clientOf(EventIngest, "connect-http2", token);

/** Resolves with what `check` finds once it finds something (a delivery ends when its outcome is written; nothing announces it). */
async function settled<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not settled after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Makes a tenant's objects, with one event delivered, as the environment admin. */
async function makeTarget(tenantId: string): Promise<Target> {
  const since = new Date(Date.now() - 1_000);
  const tag = `${tenantId}-${++unique}`;
  const eventType = `${tenantId}.invoice.paid`;
  const { endpoint } = await admin().createEndpoint({ tenantId, url: `${receiver.url}/${tag}`, description: `endpoint of ${tag}` });
  const { endpoint: spare } = await admin().createEndpoint({ tenantId, url: `${receiver.url}/${tag}/spare`, eventTypes: ["never.sent"] });
  await admin()
    .createEventType({ tenantId, name: eventType, description: `type of ${tenantId}` })
    .catch((err: unknown) => {
      if (ConnectError.from(err).code !== Code.AlreadyExists) throw err;
    });
  const idempotencyKey = `key-of-${tag}`;
  const { eventId } = await ingest().publish({
    tenantId,
    eventType,
    payload: { case: "payloadJson", value: JSON.stringify({ secret: `payload of ${tag}` }) },
    idempotencyKey,
  });
  const delivered = await settled(`the delivery of ${tag}`, async () =>
    (await admin().listDeliveries({ eventId })).deliveries.find((d) => d.status === DeliveryStatus.SUCCEEDED),
  );
  const { apiKey } = await admin().createApiKey({ tenantId, scope: ApiKeyScope.INGEST, description: `spare key of ${tag}` });
  return {
    tenantId,
    endpointId: endpoint!.id,
    spareEndpointId: spare!.id,
    eventId,
    deliveryId: delivered.id,
    eventType,
    idempotencyKey,
    spareApiKeyId: apiKey!.id,
    since,
    secret: endpoint!.secret,
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  receiver = await startReceiver();
  app = await startTestHookline(db.url, { HOOKLINE_ADMIN_TOKEN: ADMIN_TOKEN, HOOKLINE_INGEST_TOKEN: INGEST_TOKEN });
  keys.alphaAdmin = (await admin().createApiKey({ tenantId: A, scope: ApiKeyScope.ADMIN })).token;
  keys.betaAdmin = (await admin().createApiKey({ tenantId: B, scope: ApiKeyScope.ADMIN })).token;
  keys.betaIngest = (await admin().createApiKey({ tenantId: B, scope: ApiKeyScope.INGEST })).token;
  const revoked = await admin().createApiKey({ tenantId: A, scope: ApiKeyScope.ADMIN });
  await admin().revokeApiKey({ id: revoked.apiKey!.id });
  keys.alphaRevoked = revoked.token;
  // A's key id with a made-up secret: the right shape, found by id, refused by its hash.
  keys.alphaForged = `${keys.alphaAdmin.slice(0, 31)}${"x".repeat(43)}`;
  alpha = await makeTarget(A);
});

afterAll(async () => {
  await app?.stop();
  await receiver?.close();
  await db?.drop();
});

describe("the requests", () => {
  it("cover every method of both services, from their descriptors", () => {
    for (const { service, requests } of SERVICES) {
      const methods = service.methods.map((m) => m.localName);
      for (const name of methods) expect(requests[name], `a request for ${service.typeName}.${name}`).toBeTypeOf("function");
      expect(Object.keys(requests).sort()).toEqual([...methods].sort());
    }
  });

  it.each(MATRIX_PROTOCOLS)("are valid: over %s, tenant B's admin key succeeds with each, naming its own objects", async (protocol) => {
    const beta = await makeTarget(B);
    const failures: string[] = [];
    for (const { service, requests } of SERVICES) {
      for (const method of service.methods) {
        for (const variant of requests[method.localName]!(beta)) {
          const outcome = await call(protocol, keys.betaAdmin, service, method, variant.request, { firstOnly: true });
          const label = `${method.name} ${variant.what}`;
          if (outcome.code !== "ok") failures.push(`${label}: ${Code[outcome.code]} ${outcome.text}`);
          else if (method.methodKind === "server_streaming" && outcome.messages === 0) failures.push(`${label}: no message`);
        }
      }
    }
    expect(failures).toEqual([]);
  });
});

describe("tenant B watching while A's events are delivered", () => {
  it("sees nothing of A, whatever it filters on, over every protocol", async () => {
    const watches = MATRIX_PROTOCOLS.flatMap((protocol) => [
      { protocol, who: "A", token: keys.alphaAdmin, request: {} },
      { protocol, who: "B", token: keys.betaAdmin, request: {} },
      { protocol, who: "B", token: keys.betaAdmin, request: { endpointId: alpha.endpointId } },
      { protocol, who: "B", token: keys.betaAdmin, request: { eventId: alpha.eventId } },
      { protocol, who: "B", token: keys.betaAdmin, request: { eventTypes: [alpha.eventType] } },
      { protocol, who: "B", token: keys.betaAdmin, request: { tenantId: A } },
    ]);
    const running = watches.map((w) => {
      const abort = new AbortController();
      const seen: { deliveryId: string; tenantId: string; status: DeliveryStatus }[] = [];
      const done = (async (): Promise<Code | "ended"> => {
        try {
          for await (const u of admin(w.token, w.protocol).watchDeliveries(w.request, { signal: abort.signal })) seen.push(u);
          return "ended";
        } catch (err) {
          return ConnectError.from(err).code;
        }
      })();
      return { ...w, abort, seen, done };
    });
    const opened = Date.now();
    // Every watch but the refused ones is registered before anything happens.
    await expect.poll(() => app.updates.watcherCount, { timeout: 5_000 }).toBe(watches.length - MATRIX_PROTOCOLS.length);

    await admin().retryDelivery({ id: alpha.deliveryId });
    const { results } = await ingest().publishBatch({
      events: [event(alpha), event(alpha)],
    });
    const { deliveries } = await admin().listDeliveries({ tenantId: A, createdAfter: timestampFromDate(new Date(opened - 1_000)) });
    const expected = [alpha.deliveryId, ...deliveries.filter((d) => results.some((r) => r.eventId === d.eventId)).map((d) => d.id)];
    expect(expected).toHaveLength(3);
    // A's own watches see each of them succeed: the events really flowed.
    for (const w of running.filter((r) => r.who === "A")) {
      await expect
        .poll(() => expected.every((id) => w.seen.some((u) => u.deliveryId === id && u.status === DeliveryStatus.SUCCEEDED)), { timeout: 10_000 })
        .toBe(true);
    }
    const left = STREAM_READ_MS - (Date.now() - opened);
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    for (const w of running) w.abort.abort();

    for (const w of running.filter((r) => r.who === "B")) {
      const ended = await w.done;
      const label = `${w.protocol} ${json(w.request)}`;
      expect(w.seen, label).toEqual([]);
      expect(ended, label).toBe("tenantId" in w.request ? Code.PermissionDenied : Code.Canceled);
    }
    await Promise.all(running.map((w) => w.done));
  });
});

describe("the matrix", () => {
  /** Callers, and what each gets for a request naming A's objects (undefined: not tried). */
  const callers: { name: string; token: () => string | undefined; expect(service: DescService, variant: Variant<unknown>): Code | "ok" | undefined }[] = [
    { name: "no token", token: () => undefined, expect: () => Code.Unauthenticated },
    { name: "a wrong token", token: () => "wrong-token-0123456789abcdef", expect: () => Code.Unauthenticated },
    { name: "a forged key of A", token: () => keys.alphaForged, expect: () => Code.Unauthenticated },
    { name: "a revoked key of A", token: () => keys.alphaRevoked, expect: () => Code.Unauthenticated },
    {
      name: "the ingest token",
      token: () => INGEST_TOKEN,
      // The ingest token publishes for every tenant by design: only WebhookAdmin is tried.
      expect: (service) => (service === WebhookAdmin ? Code.PermissionDenied : undefined),
    },
    {
      name: "B's ingest key",
      token: () => keys.betaIngest,
      expect: (service, variant) =>
        service === WebhookAdmin ? Code.PermissionDenied : variant.asOtherTenant === "own tenant" ? "ok" : Code[variant.asOtherTenant],
    },
    {
      name: "B's admin key",
      token: () => keys.betaAdmin,
      expect: (_service, variant) => (variant.asOtherTenant === "own tenant" ? "ok" : Code[variant.asOtherTenant]),
    },
  ];

  const figures = { calls: 0, leaks: 0, changes: 0 };
  let before: Snapshot;
  /** Text that is A's alone: ids, URLs, secrets, payloads, names. */
  let markers: string[];
  let alphaRequestsBefore: number;

  beforeAll(async () => {
    // Quiet first: every delivery of A has ended, so its rows only change if a call changes them.
    await settled("every delivery of A", async () => {
      const open = await db.query("SELECT 1 FROM deliveries WHERE tenant_id = $1 AND status <> $2", [A, DeliveryStatus.SUCCEEDED]);
      return open.length === 0 || undefined;
    });
    before = await snapshot(A);
    markers = await alphaMarkers();
    alphaRequestsBefore = receiver.requests.filter((r) => r.path.startsWith(`/${A}-`)).length;
  });

  it.each(MATRIX_PROTOCOLS)("over %s, no call succeeds against A or returns anything of A", async (protocol) => {
    const unexpected: string[] = [];
    for (const caller of callers) {
      for (const { service, requests } of SERVICES) {
        for (const method of service.methods) {
          for (const variant of requests[method.localName]!(alpha)) {
            const wanted = caller.expect(service, variant);
            if (wanted === undefined) continue;
            const outcome = await call(protocol, caller.token(), service, method, variant.request, { readMs: STREAM_READ_MS });
            figures.calls++;
            const label = `${caller.name}: ${method.name} ${variant.what}`;
            const asked = json(variant.request);
            const leaked = markers.filter((m) => outcome.text.includes(m) && !asked.includes(m));
            if (leaked.length > 0) {
              figures.leaks++;
              unexpected.push(`${label}: returned ${leaked.join(", ")}`);
            }
            if (outcome.code !== wanted) {
              unexpected.push(`${label}: ${outcome.code === "ok" ? "ok" : Code[outcome.code]}, expected ${wanted === "ok" ? "ok" : Code[wanted]}`);
            }
          }
        }
      }
    }
    expect(unexpected).toEqual([]);
  });

  it("changes nothing of A: its rows are the same, and its receiver got nothing", async () => {
    expect(figures.calls).toBeGreaterThan(0);
    const after = await snapshot(A);
    figures.changes = changedRows(before, after) + receiver.requests.filter((r) => r.path.startsWith(`/${A}-`)).length - alphaRequestsBefore;
    report("auth and tenancy", {
      rpcs: SERVICES.reduce((n, s) => n + s.service.methods.length, 0),
      calls: figures.calls,
      protocols: MATRIX_PROTOCOLS.join(", "),
      leaks: figures.leaks,
      changes: figures.changes,
    });
    expect(after).toEqual(before);
    expect(figures.changes).toBe(0);
  });
});

/** A tenant's rows in every table that holds them, as JSON text per row. */
type Snapshot = Record<string, string[]>;

const TENANT_TABLES: Record<string, string> = {
  endpoints: "SELECT * FROM endpoints WHERE tenant_id = $1 ORDER BY id",
  events: "SELECT * FROM events WHERE tenant_id = $1 ORDER BY id",
  deliveries: "SELECT * FROM deliveries WHERE tenant_id = $1 ORDER BY id",
  attempts: "SELECT a.* FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = $1 ORDER BY a.id",
  delivery_updates: "SELECT u.* FROM delivery_updates u JOIN deliveries d ON d.id = u.delivery_id WHERE d.tenant_id = $1 ORDER BY u.seq",
  event_types: "SELECT * FROM event_types WHERE tenant_id = $1 ORDER BY name",
  api_keys: "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY id",
  idempotency_keys: "SELECT * FROM idempotency_keys WHERE tenant_id = $1 ORDER BY key",
};

async function snapshot(tenantId: string): Promise<Snapshot> {
  const tables: Snapshot = {};
  for (const [table, sql] of Object.entries(TENANT_TABLES)) tables[table] = (await db.query(sql, [tenantId])).map(json);
  return tables;
}

/** Rows added, removed or changed between two snapshots. */
function changedRows(a: Snapshot, b: Snapshot): number {
  let n = 0;
  for (const table of Object.keys(TENANT_TABLES)) {
    const [x, y] = [new Set(a[table]), new Set(b[table])];
    n += [...x].filter((row) => !y.has(row)).length + [...y].filter((row) => !x.has(row)).length;
  }
  return n;
}

async function alphaMarkers(): Promise<string[]> {
  const ids = await db.query<{ id: string }>(
    `SELECT id FROM endpoints WHERE tenant_id = $1 UNION ALL SELECT id FROM events WHERE tenant_id = $1
     UNION ALL SELECT id FROM deliveries WHERE tenant_id = $1 UNION ALL SELECT id FROM api_keys WHERE tenant_id = $1
     UNION ALL SELECT a.id FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = $1`,
    [A],
  );
  const urls = await db.query<{ url: string }>("SELECT url FROM endpoints WHERE tenant_id = $1", [A]);
  return [
    A,
    alpha.eventType,
    alpha.idempotencyKey,
    alpha.secret,
    ...ids.map((r) => r.id),
    ...urls.map((r) => r.url),
  ];
}
