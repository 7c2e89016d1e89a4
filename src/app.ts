/**
 * A whole Hookline process, started and stopped as one: database (embedded
 * or DATABASE_URL), API server and delivery scheduler, each switched by
 * configuration. `main.ts` runs it for `npm start`; tests run it in-process.
 */
import { randomBytes } from "node:crypto";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { authInterceptor, transportResetKey } from "./api/auth.js";
import { CallLimit } from "./api/call-limit.js";
import { REQUEST_JSON_OPTIONS } from "./api/request-json.js";
import { requestLogInterceptor } from "./api/request-log.js";
import { errorInterceptor } from "./api/errors.js";
import { Authenticator } from "./domain/auth.js";
import { EventTypeRegistry } from "./domain/event-types.js";
import { KeyRevocations } from "./domain/key-revocations.js";
import { SchemaPool } from "./domain/schema-pool.js";
import { HealthState } from "./api/health.js";
import { routes, SERVICE_NAMES } from "./api/routes.js";
import { withProbes } from "./api/probes.js";
import { hostGuardContextValues, hostGuardInterceptor, withHostGuard } from "./api/host-guard.js";
import { defaultConsoleDir, withConsole } from "./api/console.js";
import { Metrics } from "./metrics/metrics.js";

/** The knex (tarn) pool's counters that the metrics read. */
interface KnexPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}
import { type ApiServer, resetStream, startApiServer } from "./api/server.js";
import { connectionLimitsOf } from "./api/connection-limits.js";
import type { Config } from "./config.js";
import { AddressGuard } from "./delivery/address-guard.js";
import { HttpClient } from "./delivery/http-client.js";
import { Scheduler } from "./delivery/scheduler.js";
import { TenantSlots } from "./delivery/test-event.js";
import type { PublishContext } from "./domain/publish.js";
import { probeDatabase } from "./store/database-health.js";
import { InsertQueue } from "./store/sql/insert-queue.js";
import { type EmbeddedDatabase, embeddedClusterDir, startEmbeddedPostgres } from "./store/embedded-postgres.js";
import { openStore, type Store } from "./store/store.js";
import { checkSecretKey, sealStoredSecrets } from "./store/sql/endpoint-secrets.js";
import { dataDirSecretKey, SecretBox } from "./signing/secret-box.js";
import { RetentionSweeper } from "./retention/sweeper.js";
import { UpdateHub } from "./status-stream/hub.js";

/** A running Hookline process. */
export interface Hookline {
  /** The API's base URL, when the API is enabled. */
  readonly url: string | undefined;
  readonly store: Store;
  readonly scheduler: Scheduler | undefined;
  readonly health: HealthState;
  /** The status stream's reader of the log (WatchDeliveries). */
  readonly updates: UpdateHub;
  /** The threads that compile event type schemas and check payloads. */
  readonly schemas: SchemaPool;
  /** Unary calls in progress now, as `hookline_calls_in_progress` reports them. */
  readonly callsInProgress: number;
  /** Graceful stop: NOT_SERVING, stop accepting, drain deliveries, close the database. */
  stop(): Promise<void>;
}

/**
 * How long a stop waits past HOOKLINE_SHUTDOWN_TIMEOUT for its last steps
 * (giving leases back, closing the pool), which take milliseconds while
 * the database answers. Stopping the embedded PostgreSQL comes after it,
 * unbounded: its own stop escalates (see embedded-postgres.ts).
 */
const STOP_GRACE_MS = 2_000;

/** A moment `ms` from now: `passed` resolves with false then, unless cancelled first. */
function afterMs(ms: number): { passed: Promise<false>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const passed = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return { passed, cancel: () => clearTimeout(timer) };
}

/** Starts a Hookline process with `config`. */
export async function startHookline(config: Config, log: Logger): Promise<Hookline> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.databaseUrl;
  if (url === undefined) {
    const dir = await embeddedClusterDir(config.dataDir, config.dataDirIsDefault);
    log.info({ dir, port: config.embeddedPostgresPort }, "DATABASE_URL is unset; starting embedded PostgreSQL");
    embedded = await startEmbeddedPostgres({
      dir,
      port: config.embeddedPostgresPort,
      onLog: (line) => log.debug({ postgres: line }),
      log: log.child({ component: "embedded-postgres" }),
      restartTimeoutMs: config.embeddedPostgresRestartTimeoutMs,
    });
    url = await embedded.ensureDatabase("hookline");
  }

  // Names this process's connections, so its scheduler can skip the wake-ups
  // of its own publishes (it takes those by id; see Scheduler.take).
  const applicationName = `hookline-${randomBytes(6).toString("hex")}`;
  const dbLog = log.child({ component: "database" });
  const store = await openStore(url, config.dbPoolSize, applicationName, (message) => dbLog.warn(message), config.dbStatementTimeoutMs);
  // Endpoint secrets are encrypted at rest (see signing/secret-box.ts).
  const secrets = new SecretBox(config.secretKey ?? (await dataDirSecretKey(config.dataDir)));
  await checkSecretKey(store.sql, secrets).catch(async (err: unknown) => {
    await store.close();
    await embedded?.stop();
    throw err;
  });
  const sealed = await sealStoredSecrets(store.sql, secrets);
  if (sealed > 0) log.info({ endpoints: sealed }, "encrypted endpoint secrets stored in plaintext");
  const pool = (store.orm.em.getConnection().getKnex().client as { pool?: KnexPool }).pool;
  const metrics = new Metrics({
    sql: store.sql,
    // Read when scraped, by then they exist.
    callsInProgress: () => callLimit.current,
    scheduler: () => scheduler?.load() ?? { inFlight: 0, buffered: 0 },
    busiestEndpoints: (top) => scheduler?.busiestEndpoints(top),
    watchers: () => updates.watcherCount,
    connections: () => server?.connections ?? 0,
    watchBuffer: () => updates.bufferedBytes,
    pool: () => ({
      used: pool?.numUsed() ?? 0,
      free: pool?.numFree() ?? 0,
      pending: pool?.numPendingAcquires() ?? 0,
      max: config.dbPoolSize,
    }),
  });
  const callLimit = new CallLimit(config.maxConcurrentCalls, () => metrics.callRefused());
  const health = new HealthState();
  // One guard for deliveries and endpoint creation, so both judge alike.
  const addressGuard = new AddressGuard(config.allowedCidrs);
  const scheduler = config.schedulerEnabled
    ? new Scheduler({
        sql: store.sql,
        databaseUrl: url,
        applicationName,
        secrets,
        log: log.child({ component: "scheduler" }),
        maxInFlight: config.maxInFlight,
        claimBatchSize: config.claimBatchSize,
        pollIntervalMs: config.pollIntervalMs,
        leaseMarginMs: config.leaseMarginMs,
        requestTimeoutMs: config.requestTimeoutMs,
        responseBodyLimit: config.responseBodyLimit,
        addressGuard,
        defaultRetryPolicy: config.retryPolicy,
        jitter: config.retryJitter,
        throttleMinDelayMs: config.throttleMinDelayMs,
        retryAfterCapMs: config.retryAfterCapMs,
        endpointMaxInFlight: config.endpointMaxInFlight,
        circuitFailureThreshold: config.circuitFailureThreshold,
        circuitCooldownMs: config.circuitCooldownMs,
        circuitMaxCooldownMs: config.circuitMaxCooldownMs,
        disableAfterMs: config.disableAfterMs,
        metrics,
      })
    : undefined;
  await scheduler?.start();
  const retention = config.schedulerEnabled
    ? new RetentionSweeper(store.sql, config.retentionMs, log.child({ component: "retention" }))
    : undefined;
  retention?.start();

  // New deliveries are leased to this process's scheduler by the publish
  // statement itself when it has room (see insert-events.ts).
  const inserts = new InsertQueue(
    store.sql,
    config.idempotencyWindowMs,
    undefined,
    config.publishWriters,
    config.publishPendingBytes,
    scheduler ? { begin: (parts) => scheduler.beginLease(parts), end: (lease, leased) => scheduler.endLease(lease, leased) } : undefined,
  );
  // Tenant-controlled schema work runs in threads, with a deadline, tenants served in turn (domain/schema-pool.ts).
  const schemaLog = log.child({ component: "schemas" });
  const schemas = new SchemaPool({
    workers: config.schemaWorkers,
    timeoutMs: config.schemaTimeoutMs,
    maxQueuedPerTenant: config.schemaQueue,
    onSuspended: (tenantId, eventType, reason) =>
      schemaLog.warn({ tenantId, eventType, reason }, "event type schema suspended in this process: its check was stopped at its deadline"),
    onWorkerError: (err) => schemaLog.error({ err }, "a schema worker stopped unexpectedly; starting another"),
  });
  const eventTypes = new EventTypeRegistry(() => store.em(), schemas, config.strictEventTypes, (tenantId, eventType, reason) =>
    schemaLog.warn({ tenantId, eventType, reason }, "a stored event type schema cannot be used; its publishes fail until it is replaced"),
  );
  const publish: PublishContext = {
    eventTypes,
    insert: async (events) => {
      const results = await inserts.insert(events);
      metrics.eventsPublished(results.filter((r) => !r.duplicate).length);
      return results;
    },
    maxPayloadBytes: config.maxPayloadBytes,
    onDeliveriesCreated: scheduler ? (ids) => scheduler.take(ids) : undefined,
  };

  const updates = new UpdateHub({
    sql: store.sql,
    databaseUrl: url,
    log: log.child({ component: "status-stream" }),
    bufferBytes: config.watchBufferBytes,
  });

  const auth = new Authenticator(store.sql, config);
  // Ends the streams of API keys revoked here or by another process.
  const revocations = new KeyRevocations({ sql: store.sql, databaseUrl: url, log: log.child({ component: "auth" }) });
  // SendTestEvent's own connections, apart from the scheduler's. No limit
  // per origin: test sends of tenants whose endpoints share a host must not
  // wait behind one another's slow ones, and a connection per send lets an
  // abandoned send end at once (behind a per-origin limit, undici opens a
  // connection for each queued aborted request before dropping it: on a
  // loaded 2-core machine, 1,000 aborted sends took 3.8 s to settle with 32
  // connections, 1.0-1.7 s with no limit). What bounds them is
  // HOOKLINE_TEST_EVENT_CONCURRENCY per tenant and
  // HOOKLINE_MAX_CONCURRENT_CALLS in all.
  const testHttp = new HttpClient({ bodyLimit: config.responseBodyLimit, guard: addressGuard, connectionsPerOrigin: null });
  if (config.apiEnabled && !auth.enforced) {
    log.warn(
      { host: config.host },
      "no HOOKLINE_ADMIN_TOKEN or HOOKLINE_INGEST_TOKEN: the API takes calls without authentication, on loopback only",
    );
  }

  let server: ApiServer | undefined;
  if (config.apiEnabled) {
    const hostGuard = hostGuardContextValues(!auth.enforced);
    const handler = connectNodeAdapter({
      routes: routes({
        store,
        publish,
        health,
        addressGuard,
        updates,
        testEvents: {
          http: testHttp,
          defaultTimeoutMs: config.requestTimeoutMs,
          maxTimeoutMs: config.testEventTimeoutMs,
          slots: new TenantSlots(config.testEventConcurrency),
          maxPayloadBytes: config.maxPayloadBytes,
          secrets,
        },
        eventTypes,
        secrets,
        readMaxBytes: config.maxRequestBytes,
      }),
      interceptors: [
        requestLogInterceptor(log.child({ component: "api" })),
        errorInterceptor(log),
        hostGuardInterceptor(),
        callLimit.interceptor(),
        authInterceptor(auth, revocations),
      ],
      // Open mode answers only requests addressed to loopback names (see
      // host-guard.ts); a call may end its own HTTP stream (auth.ts: a revoked
      // key's stream whose client does not read).
      contextValues: (req) => hostGuard(req).set(transportResetKey, () => resetStream(req)),
      // Larger request messages are refused with ResourceExhausted before parsing.
      readMaxBytes: config.maxRequestBytes,
      // A misspelt field or enum name is an error, not silently ignored;
      // see request-json.ts.
      jsonOptions: REQUEST_JSON_OPTIONS,
    });
    // Liveness: a restart of the process may help where the embedded
    // PostgreSQL could not be restarted in time.
    const notLive = () => (embedded?.failed ? "the embedded PostgreSQL is down and could not be restarted" : undefined);
    const site = withHostGuard(
      withConsole(withProbes(handler, health, metrics, notLive), {
        enabled: config.consoleEnabled,
        dir: config.consoleDir ?? defaultConsoleDir(),
      }),
      !auth.enforced,
    );
    server = await startApiServer(site, config.host, config.port, config.http2MaxStreams, connectionLimitsOf(config, () => metrics.connectionRefused()));
    log.info(
      { url: server.url, console: config.consoleEnabled ? `${server.url}/console/` : undefined },
      "Hookline is serving Connect, gRPC and gRPC-Web",
    );
  }
  const serving = (status: ServingStatus) => {
    health.set("", status);
    for (const name of SERVICE_NAMES) health.set(name, status);
  };
  serving(ServingStatus.SERVING);
  const probe = probeDatabase(store.sql, (healthy, err) => {
    if (healthy) log.info("database reachable again: SERVING");
    else log.error({ err }, "database unreachable: NOT_SERVING");
    serving(healthy ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  });

  log.info({ url: server?.url, api: config.apiEnabled, scheduler: config.schedulerEnabled }, "Hookline started");

  let stopping: Promise<void> | undefined;
  return {
    url: server?.url,
    store,
    scheduler,
    health,
    updates,
    schemas,
    get callsInProgress() {
      return callLimit.current;
    },
    stop() {
      stopping ??= (async () => {
        // Each part of the stop is waited for until the shutdown timeout
        // plus STOP_GRACE_MS at most: a database that does not answer at
        // all (a network dropping packets, a hung server; not one that
        // refuses, which fails at once) holds queries and connections for
        // ever, and so would the pool's close and the scheduler's last
        // statements.
        const deadline = afterMs(config.shutdownTimeoutMs + STOP_GRACE_MS);
        const waitingFor = new Set<string>();
        const bounded = async (part: string, stopped: Promise<unknown> | undefined) => {
          waitingFor.add(part);
          if (await Promise.race([Promise.resolve(stopped).then(() => true), deadline.passed])) waitingFor.delete(part);
        };
        probe.stop();
        health.setAll(ServingStatus.NOT_SERVING);
        // Open status streams end now, so the server can drain.
        await bounded("status stream", updates.close());
        await bounded("key revocations", revocations.close());
        // Both within one shutdown timeout, not one after the other.
        await Promise.all([
          bounded("API server", server?.close(config.shutdownTimeoutMs)),
          bounded("scheduler", scheduler?.stop(config.shutdownTimeoutMs)),
          bounded("retention", retention?.stop()),
        ]);
        await testHttp.close();
        await schemas.close();
        await bounded("database pool", store.close());
        deadline.cancel();
        if (waitingFor.size > 0) {
          log.error({ waitingFor: [...waitingFor] }, "stopped without waiting longer for these: the database does not answer");
        }
        await embedded?.stop();
        log.info("Hookline stopped");
      })();
      return stopping;
    },
  };
}
