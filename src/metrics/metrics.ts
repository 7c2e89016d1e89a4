/**
 * Prometheus metrics (prom-client), served at `GET /metrics` on the API port.
 * One registry per Hookline instance. Counters and the latency histogram are
 * counted as things happen in this process; queue depth, the oldest due
 * delivery, open circuits, watchers and pool use are read when scraped.
 * Labels never carry tenant or event ids. One gauge carries endpoint ids:
 * in-flight attempts of the {@link TOP_ENDPOINTS} busiest endpoints at
 * scrape time, the rest summed under `endpoint="_other"`, so a scrape has
 * at most TOP_ENDPOINTS + 1 of its series whatever the number of endpoints.
 * The Node.js process's standard metrics follow (see processRegistry).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Sql } from "../store/sql.js";

let processMetrics: Registry | undefined;

/**
 * prom-client's standard metrics of the Node.js process (process_* and
 * nodejs_*: CPU, resident memory, heap, event loop lag, GC, handles), in a
 * registry of their own made once per process: they describe the process,
 * not an instance, and their event-loop monitor and GC observer are never
 * stopped, so a process running several instances (the tests) keeps one set.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
  }
  return processMetrics;
}

/** What a scrape reads from the rest of the process. */
export interface MetricSources {
  sql: Sql;
  /** Attempts in flight and deliveries in the ready buffer here (undefined without a scheduler). */
  scheduler?: () => { inFlight: number; buffered: number };
  /** The busiest endpoints here by attempts in flight (undefined without a scheduler). */
  busiestEndpoints?: (top: number) => { endpoints: Array<[string, number]>; others: number } | undefined;
  watchers: () => number;
  /** Bytes the watchers' queued updates take (bounded by HOOKLINE_WATCH_BUFFER_BYTES). */
  watchBuffer?: () => number;
  /** Unary calls in progress (see api/call-limit.ts). */
  callsInProgress: () => number;
  pool: () => { used: number; free: number; pending: number; max: number };
}

/** How many endpoints get their own series in `hookline_endpoint_attempts_in_flight`. */
export const TOP_ENDPOINTS = 20;

const QUEUE = `
SELECT count(*)::int AS due,
       coalesce(extract(epoch FROM now() - min(next_attempt_at)), 0)::float8 AS oldest
FROM deliveries
WHERE status IN (1, 2) AND next_attempt_at <= now() AND locked_by IS NULL`;

const CIRCUITS = `SELECT count(*)::int AS n FROM endpoints WHERE circuit_open_until > now() AND deleted_at IS NULL`;

/** Hookline's metrics. */
export class Metrics {
  readonly registry = new Registry();
  private readonly published = new Counter({ name: "hookline_events_published_total", help: "Events stored by publishes (duplicates not counted).", registers: [this.registry] });
  private readonly attempts = new Counter({
    name: "hookline_attempts_total",
    help: "Delivery attempts made by this process, by result: 2xx, 3xx, 4xx, 5xx, or the error class without a response (timeout, connection, ssrf, ...).",
    labelNames: ["result"],
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: "hookline_deliveries_finished_total",
    help: "Deliveries that ended after an attempt made here, by final status.",
    labelNames: ["status"],
    registers: [this.registry],
  });
  private readonly callsRefused = new Counter({
    name: "hookline_calls_refused_total",
    help: "Unary RPCs refused with RESOURCE_EXHAUSTED because HOOKLINE_MAX_CONCURRENT_CALLS were in progress.",
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "hookline_attempt_duration_seconds",
    help: "Duration of delivery attempts (request sent to response read).",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    // Made now, not at the first scrape, so GC and event loop are observed from the start.
    processRegistry();
    const r = [this.registry];
    let queue: Promise<{ due: number; oldest: number }> | undefined;
    // Both queue gauges from one query per scrape.
    const readQueue = () => {
      queue ??= sources.sql.query<{ due: number; oldest: number }>(QUEUE, []).then(
        (rows) => {
          setImmediate(() => {
            queue = undefined;
          });
          return rows[0]!;
        },
        (err: unknown) => {
          queue = undefined;
          throw err;
        },
      );
      return queue;
    };
    new Gauge({
      name: "hookline_queue_due",
      help: "Deliveries due now and not being attempted (all processes).",
      registers: r,
      async collect() {
        this.set((await readQueue()).due);
      },
    });
    new Gauge({
      name: "hookline_queue_oldest_due_seconds",
      help: "How long the oldest due delivery has waited (0 when none).",
      registers: r,
      async collect() {
        this.set(Math.max(0, (await readQueue()).oldest));
      },
    });
    new Gauge({
      name: "hookline_circuits_open",
      help: "Endpoints whose circuit breaker is open (all processes).",
      registers: r,
      async collect() {
        this.set((await sources.sql.query<{ n: number }>(CIRCUITS, []))[0]!.n);
      },
    });
    new Gauge({
      name: "hookline_attempts_in_flight",
      help: "Delivery attempts in flight in this process.",
      registers: r,
      collect() {
        this.set(sources.scheduler?.().inFlight ?? 0);
      },
    });
    new Gauge({
      name: "hookline_endpoint_attempts_in_flight",
      help: `Delivery attempts in flight in this process to each of the ${TOP_ENDPOINTS} busiest endpoints; the others are summed as endpoint="_other".`,
      labelNames: ["endpoint"],
      registers: r,
      collect() {
        this.reset();
        const busiest = sources.busiestEndpoints?.(TOP_ENDPOINTS);
        if (!busiest) return;
        for (const [endpoint, n] of busiest.endpoints) this.set({ endpoint }, n);
        if (busiest.others > 0) this.set({ endpoint: "_other" }, busiest.others);
      },
    });
    new Gauge({
      name: "hookline_deliveries_buffered",
      help: "Deliveries leased ahead in this process's ready buffer.",
      registers: r,
      collect() {
        this.set(sources.scheduler?.().buffered ?? 0);
      },
    });
    new Gauge({
      name: "hookline_status_watchers",
      help: "WatchDeliveries streams open on this process.",
      registers: r,
      collect() {
        this.set(sources.watchers());
      },
    });
    new Gauge({
      name: "hookline_status_buffer_bytes",
      help: "Bytes of updates the WatchDeliveries streams of this process hold for their clients, as counted against HOOKLINE_WATCH_BUFFER_BYTES.",
      registers: r,
      collect() {
        this.set(sources.watchBuffer?.() ?? 0);
      },
    });
    new Gauge({
      name: "hookline_calls_in_progress",
      help: "Unary RPCs being handled by this process (bounded by HOOKLINE_MAX_CONCURRENT_CALLS).",
      registers: r,
      collect() {
        this.set(sources.callsInProgress());
      },
    });
    new Gauge({
      name: "hookline_db_pool_connections",
      help: "Database pool connections of this process, by state (used, free, max) and calls waiting for one (pending).",
      labelNames: ["state"],
      registers: r,
      collect() {
        const p = sources.pool();
        this.set({ state: "used" }, p.used);
        this.set({ state: "free" }, p.free);
        this.set({ state: "pending" }, p.pending);
        this.set({ state: "max" }, p.max);
      },
    });
  }

  /** Counts `n` stored events. */
  eventsPublished(n: number): void {
    if (n > 0) this.published.inc(n);
  }

  /** Counts one call refused by the call limit. */
  callRefused(): void {
    this.callsRefused.inc();
  }

  /** Counts one attempt and, when it ended the delivery, the delivery. */
  attempt(responseStatus: number, errorClass: string, durationMs: number, ended: "succeeded" | "failed" | null): void {
    const result = responseStatus > 0 ? `${Math.floor(responseStatus / 100)}xx` : errorClass || "error";
    this.attempts.inc({ result });
    this.latency.observe(durationMs / 1000);
    if (ended) this.finished.inc({ status: ended });
  }

  /** The Prometheus text exposition: this instance's metrics, then the process's. */
  async text(): Promise<{ contentType: string; body: string }> {
    const [own, process] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    return { contentType: this.registry.contentType, body: `${own}\n${process}` };
  }
}
