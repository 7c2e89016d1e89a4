/**
 * Prometheus metrics (prom-client), served at `GET /metrics` on the API port.
 * One registry per Hookline instance. Counters and the latency histogram are
 * counted as things happen in this process; watchers, connections and pool
 * use are read when scraped; queue depth, the oldest due delivery and open
 * circuits come from the database, by one query at most once per
 * {@link METRICS_DB_MAX_AGE_MS} whatever the number of scrapes, and the
 * text is written at most {@link RENDERS_PER_SECOND} times a second (see
 * Metrics.text), so a flood of scrapes costs little.
 * Labels never carry tenant or event ids. One gauge carries endpoint ids:
 * in-flight attempts of the {@link TOP_ENDPOINTS} busiest endpoints at
 * scrape time, the rest summed under `endpoint="_other"`, so a scrape has
 * at most TOP_ENDPOINTS + 1 of its series whatever the number of endpoints.
 * The Node.js process's standard metrics follow (see processRegistry).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Sql } from "../store/sql.js";
import { readQueueGauges } from "../store/sql/queue-gauges.js";

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
  /** Connections open on the API port (undefined without the API). */
  connections?: () => number;
  /** Bytes the watchers' queued updates take (bounded by HOOKLINE_WATCH_BUFFER_BYTES). */
  watchBuffer?: () => number;
  /** Unary calls in progress (see api/call-limit.ts). */
  callsInProgress: () => number;
  pool: () => { used: number; free: number; pending: number; max: number };
}

/** How many endpoints get their own series in `hookline_endpoint_attempts_in_flight`. */
export const TOP_ENDPOINTS = 20;

/**
 * How long the database-derived gauges are reused: scrapes within this of
 * the query that read them get the same values (the oldest due delivery's
 * age grows with the clock meanwhile), and scrapes that arrive while it
 * runs share it. Before, every scrape queried the database: 200 scrapes at
 * once sent 284 statements, took 2.5-3.8 s, and held up publishes waiting
 * for the same pool (median 15-22 ms quiet, 55-65 ms during them). Prometheus
 * scrapes every 15 s or more, so a second changes nothing it sees.
 */
export const METRICS_DB_MAX_AGE_MS = 1_000;

/**
 * `load`, shared: calls within `maxAgeMs` of the last successful result get
 * it (with when it was read, `performance.now()`), and calls while a load
 * runs wait for that one. A failure is not kept (the next call tries
 * again), but the calls that waited for it share it.
 */
export function sharedFor<T>(maxAgeMs: number, load: () => Promise<T>): () => Promise<{ value: T; at: number }> {
  let last: { value: T; at: number } | undefined;
  let running: Promise<{ value: T; at: number }> | undefined;
  return () => {
    if (last && performance.now() - last.at < maxAgeMs) return Promise.resolve(last);
    running ??= load().then(
      (value) => {
        last = { value, at: performance.now() };
        running = undefined;
        return last;
      },
      (err: unknown) => {
        running = undefined;
        throw err;
      },
    );
    return running;
  };
}

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
  private readonly connectionsRefused = new Counter({
    name: "hookline_connections_refused_total",
    help: "Connections to the API port closed as soon as accepted because HOOKLINE_MAX_CONNECTIONS were open.",
    registers: [this.registry],
  });
  private readonly unwritable = new Counter({
    name: "hookline_outcomes_unwritable_total",
    help: "Attempt outcomes the database refused for good (a permanent error, such as a value it cannot store): not stored; their deliveries are attempted again once their leases expire.",
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
    const readDatabase = sharedFor(METRICS_DB_MAX_AGE_MS, () => readQueueGauges(sources.sql));
    new Gauge({
      name: "hookline_queue_due",
      help: "Deliveries due now and not being attempted (all processes; read at most once a second).",
      registers: r,
      async collect() {
        this.set((await readDatabase()).value.due);
      },
    });
    new Gauge({
      name: "hookline_queue_oldest_due_seconds",
      help: "How long the oldest due delivery has waited (0 when none).",
      registers: r,
      async collect() {
        const { value, at } = await readDatabase();
        // Read up to a second ago: it has waited that much longer since.
        this.set(value.due > 0 ? Math.max(0, value.oldest) + (performance.now() - at) / 1000 : 0);
      },
    });
    new Gauge({
      name: "hookline_circuits_open",
      help: "Endpoints whose circuit breaker is open (all processes; read at most once a second).",
      registers: r,
      async collect() {
        this.set((await readDatabase()).value.circuits);
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
      name: "hookline_connections_open",
      help: "Connections open on the API port of this process (bounded by HOOKLINE_MAX_CONNECTIONS).",
      registers: r,
      collect() {
        this.set(sources.connections?.() ?? 0);
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

  /** Counts one connection refused by the connection cap. */
  connectionRefused(): void {
    this.connectionsRefused.inc();
  }

  /**
   * The counters of each label value, kept: finding a child by its labels
   * hashes them on every call (a few of the handful of values there are).
   */
  private readonly attemptsBy = new Map<string, Counter.Internal>();
  private readonly finishedBy = new Map<string, Counter.Internal>();

  /** Counts one attempt and, when it ended the delivery, the delivery. */
  attempt(responseStatus: number, errorClass: string, durationMs: number, ended: "succeeded" | "failed" | null): void {
    const result = responseStatus > 0 ? `${Math.floor(responseStatus / 100)}xx` : errorClass || "error";
    child(this.attemptsBy, this.attempts, "result", result).inc();
    this.latency.observe(durationMs / 1000);
    if (ended) child(this.finishedBy, this.finished, "status", ended).inc();
  }

  /** Counts one attempt outcome the database refused for good (see delivery/outcome-writer.ts). */
  outcomeUnwritable(): void {
    this.unwritable.inc();
  }

  /**
   * The Prometheus text exposition: this instance's metrics, then the
   * process's. Writing it takes about 3 ms of CPU on a busy 2-core machine,
   * so 200 scrapes at once cost 0.5-1.3 s of the event loop. Now a scrape
   * that arrives while one is being written shares it, and past
   * {@link RENDERS_PER_SECOND} renderings (in bursts of as many) a scrape
   * gets the latest one, at most a tenth of a second old under a flood.
   * Scrapes at a human or Prometheus pace always get a fresh one.
   */
  text(): Promise<MetricsText> {
    if (this.rendering) return this.rendering;
    if (this.latest && !this.renderBudget()) return Promise.resolve(this.latest);
    this.rendering = this.render().finally(() => {
      this.rendering = undefined;
    });
    return this.rendering;
  }

  private rendering: Promise<MetricsText> | undefined;
  private latest: MetricsText | undefined;
  /** Token bucket of renderings: holds RENDERS_PER_SECOND, refills at that rate. */
  private budget = { tokens: RENDERS_PER_SECOND, at: performance.now() };

  /** Takes one rendering from the budget, if there is one left. */
  private renderBudget(): boolean {
    const now = performance.now();
    this.budget.tokens = Math.min(RENDERS_PER_SECOND, this.budget.tokens + ((now - this.budget.at) / 1000) * RENDERS_PER_SECOND);
    this.budget.at = now;
    if (this.budget.tokens < 1) return false;
    this.budget.tokens -= 1;
    return true;
  }

  private async render(): Promise<MetricsText> {
    const [own, process] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    this.latest = { contentType: this.registry.contentType, body: `${own}\n${process}` };
    return this.latest;
  }
}

/** A rendered scrape. */
export interface MetricsText {
  contentType: string;
  body: string;
}

/**
 * Renderings of the metrics text per second at most (see Metrics.text): 3%
 * of a core at 3 ms each, and more than any number of Prometheus servers
 * scraping every 15 s and a person reloading need.
 */
export const RENDERS_PER_SECOND = 10;

/** The child of `counter` for `label` = `value`, made once and kept in `children`. */
function child(children: Map<string, Counter.Internal>, counter: Counter, label: string, value: string): Counter.Internal {
  let c = children.get(value);
  if (!c) {
    c = counter.labels({ [label]: value });
    children.set(value, c);
  }
  return c;
}
