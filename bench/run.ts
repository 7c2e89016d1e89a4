/**
 * `npm run bench`: Hookline end to end on this machine, each figure next to a
 * baseline measured in the same run, so ratios hold on a noisy machine.
 *
 * Processes: PostgreSQL (embedded with pg_stat_statements loaded, or a fresh
 * database on DATABASE_URL's server), Hookline (API and scheduler, built
 * from dist/), a receiver (bench/receiver.ts) and, for the baseline, a raw
 * undici sender (bench/baseline.ts). This process is the publisher, and
 * reads the database's counters on a connection of its own
 * (bench/database-cost.ts).
 *
 * Options: --scale tiny|quick|full|huge (quick, the default, takes about
 * four minutes; full publishes the 100,000-event backlog; huge adds a
 * 1,000,000-event backlog and 10,000,000 delivered events of history, see
 * bench/README.md), --out FILE (where to write the results as Markdown;
 * default bench/RESULTS.md, "-" for none), --from sources|build (how to run
 * Hookline; default build).
 *
 * For trying the huge scale at a reduced size: BENCH_HUGE_BACKLOG and
 * BENCH_HUGE_HISTORY set its backlog and history sizes (events).
 */
import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { DeliveryStatus } from "../gen/hookline/v1/delivery_pb.js";
import { PublishBatchRequestSchema, PublishRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../gen/hookline/v1/webhook_admin_pb.js";
import { databaseUrl } from "../src/store/embedded-postgres.js";
import { startPostgresServer } from "../test/support/postgres-server.js";
import { type HooklineProcess, spawnHookline } from "../test/support/process.js";
import {
  type Counters,
  Observer,
  rowsBetween,
  rowsPerEvent,
  type StatementCalls,
  statementLabels,
  statementsBetween,
  topStatements,
  totalCalls,
} from "./database-cost.js";
import { benchPayload, GrpcLoad } from "./grpc-load.js";
import { generateHistory, liveDeliveries } from "./history.js";
import { cpuMs, PostgresCpu, rssMb, sampleRss } from "./process-usage.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How much work each figure gets. */
export interface Scale {
  unary: number;
  batch100: number;
  batch1000: number;
  stream: number;
  /** Seconds of each fixed-rate run (500/s, 1,000/s, the watchers' runs). */
  latencySeconds: number;
  /** Seconds of the run at QUIET_RATE. */
  quietSeconds: number;
  /**
   * Seconds at the low rate, not measured, before the fixed-rate runs: the
   * process that delivered the backlog has not served unary publishes yet,
   * and its first seconds of them cost a quarter more CPU while V8 compiles
   * (bench:latency, first run against the next: 0.88-0.99 cores against
   * 0.69-0.70 at 500/s), which at 500/s saturated it and queued the rest
   * of the run behind. A gateway serves at its steady state.
   */
  warmUpSeconds: number;
  lowRate: number;
  highRate: number;
  fanout: number;
  /** Status stream watchers attached during the watcher run. */
  watchers: number;
  /** A PublishBatch backlog drained after the rest, next to the first backlog's rate (huge only). */
  bigBacklog?: number;
  /** Delivered events of retained history for the latency and claim-cost comparison (huge only). */
  history?: number;
}

const full: Scale = {
  unary: 10_000,
  batch100: 20_000,
  batch1000: 50_000,
  stream: 20_000,
  latencySeconds: 20,
  quietSeconds: 20,
  warmUpSeconds: 5,
  lowRate: 500,
  highRate: 1_000,
  fanout: 1_000,
  watchers: 200,
};

/** The scales: tiny for `npm test`, quick by default, full for the 100,000 backlog, huge for size. */
export const SCALES: Record<string, Scale> = {
  tiny: {
    unary: 200,
    batch100: 300,
    batch1000: 1_000,
    stream: 300,
    latencySeconds: 1,
    quietSeconds: 2,
    warmUpSeconds: 0.5,
    lowRate: 100,
    highRate: 200,
    fanout: 20,
    watchers: 20,
  },
  quick: {
    unary: 5_000,
    batch100: 10_000,
    batch1000: 25_000,
    stream: 10_000,
    latencySeconds: 8,
    quietSeconds: 10,
    warmUpSeconds: 3,
    lowRate: 500,
    highRate: 1_000,
    fanout: 1_000,
    watchers: 200,
  },
  full,
  huge: {
    ...full,
    bigBacklog: Number(process.env.BENCH_HUGE_BACKLOG ?? 1_000_000),
    history: Number(process.env.BENCH_HUGE_HISTORY ?? 10_000_000),
  },
};

/** Concurrency of publishers and of deliveries to the benchmark endpoint (Hookline and baseline alike). */
const PUBLISH_CONCURRENCY = 64;
const DELIVERY_CONCURRENCY = 64;
/** Events per second of the nearly idle run: what a quiet system costs per event. */
const QUIET_RATE = 10;

/** One row of the results table. */
export interface Row {
  figure: string;
  hookline: string;
  baseline: string;
  ratio: string;
  target: string;
  verdict: "pass" | "miss" | "";
}

/** Everything one run measured. */
export interface BenchResult {
  scale: string;
  rows: Row[];
  machine: Record<string, string>;
  notes: string[];
}

interface ReceiverStats {
  count: number;
  distinct: number;
  duplicates: number;
  firstAt: number;
  lastAt: number;
  latencies: number[];
  verified: number;
  badSignatures: number;
}

export class ReceiverProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(): Promise<ReceiverProcess> {
    const child = fork(join(ROOT, "bench/receiver.ts"), { execArgv: ["--import", "tsx"], stdio: "inherit" });
    const url = await new Promise<string>((resolve, reject) => {
      child.once("message", (m: { url: string }) => resolve(m.url));
      child.once("exit", (code) => reject(new Error(`receiver exited with ${code}`)));
    });
    return new ReceiverProcess(child, url);
  }

  send(msg: object): void {
    this.child.send(msg);
  }

  stats(): Promise<ReceiverStats> {
    return new Promise((resolve) => {
      this.child.once("message", (m: ReceiverStats) => resolve(m));
      this.child.send({ cmd: "stats" });
    });
  }

  /** Waits until `n` requests arrived (or throws after `timeoutMs`). */
  async waitFor(n: number, timeoutMs: number): Promise<ReceiverStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats();
      if (s.count >= n) return s;
      if (Date.now() > deadline) throw new Error(`receiver got ${s.count} of ${n} requests in ${timeoutMs} ms`);
      await sleep(s.count === 0 ? 20 : 50);
    }
  }

  stop(): void {
    this.child.kill();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A bench Hookline's environment: on `databaseUrl`, loopback only (the receiver too), `extra` last. */
export function benchHooklineEnv(databaseUrl: string, secretKey: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    HOOKLINE_HOST: "127.0.0.1",
    HOOKLINE_PORT: "0",
    HOOKLINE_ALLOWED_CIDRS: "127.0.0.0/8",
    HOOKLINE_SECRET_KEY: secretKey,
    HOOKLINE_LOG_LEVEL: "info",
    HOOKLINE_DB_POOL_SIZE: "20",
    HOOKLINE_MAX_IN_FLIGHT: "256",
    ...extra,
  };
}

/**
 * Starts one Hookline from dist/ for the phase scripts (latency.ts,
 * ingest.ts, fanout.ts, drain.ts), with a key of its own unless given
 * (processes that share a database's endpoints need the same key).
 */
export function spawnBenchHookline(
  databaseUrl: string,
  extra: Record<string, string> = {},
  secretKey = randomBytes(32).toString("hex"),
): Promise<HooklineProcess> {
  return spawnHookline(benchHooklineEnv(databaseUrl, secretKey, extra), 60_000, "build");
}

/** `name=value` pairs (the value may hold "=") as an object: --env of latency.ts, BENCH_PG_SETTINGS. */
export function settingsFrom(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}

/** Databases for a run, on one server: DATABASE_URL's, or an embedded one with pg_stat_statements loaded. */
export interface BenchDatabase {
  /** The run's database. */
  url: string;
  version: string;
  /** Makes another fresh database on the same server; returns its URL. */
  create(): Promise<string>;
  /** Drops every database made, and stops an embedded server. */
  drop(): Promise<void>;
}

/** A fresh database for the run: on DATABASE_URL's server, or an embedded one. */
export async function benchDatabase(): Promise<BenchDatabase> {
  // BENCH_PG_SETTINGS="name=value ...": more settings of the embedded server, to try one before changing its defaults.
  const trying = settingsFrom((process.env.BENCH_PG_SETTINGS ?? "").split(/\s+/).filter(Boolean));
  const { serverUrl, stop: stopServer } = await startPostgresServer({ shared_preload_libraries: "pg_stat_statements", ...trying });
  const made: string[] = [];
  const admin = async <T>(url: string, fn: (c: pg.Client) => Promise<T>) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const createDatabase = async () => {
    const name = `hookline_bench_${randomBytes(4).toString("hex")}`;
    await admin(serverUrl, (c) => c.query(`CREATE DATABASE ${name}`));
    made.push(name);
    const url = databaseUrl(serverUrl, name);
    // The view of the server's statement counters, in this database. Its
    // absence (no superuser on DATABASE_URL) is told by the observer.
    await admin(url, (c) => c.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")).catch(() => {});
    return url;
  };
  const url = await createDatabase();
  const version = await admin(serverUrl, async (c) => (await c.query("SHOW server_version")).rows[0].server_version as string);
  return {
    url,
    version,
    create: createDatabase,
    async drop() {
      await admin(serverUrl, async (c) => {
        for (const name of made) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
      await stopServer();
    },
  };
}

/** Readings of the database's counters between phases. */
interface Reading {
  counters: Counters;
  statements: Map<string, StatementCalls> | undefined;
}

/**
 * A claim statement of the scheduler, by its text: it locks due rows with
 * `FOR UPDATE ... SKIP LOCKED` and updates them (retention's deletes lock
 * the same way, and are not claims).
 */
function isClaim(query: string): boolean {
  return /FOR UPDATE/i.test(query) && /SKIP LOCKED/i.test(query) && !/DELETE FROM/i.test(query);
}

/** Runs the benchmark at `scaleName` and returns its figures. */
export async function runBench(scaleName = "quick", from: "sources" | "build" = "build", log = console.log): Promise<BenchResult> {
  const scale = SCALES[scaleName];
  if (!scale) throw new Error(`unknown scale ${scaleName}: use ${Object.keys(SCALES).join(", ")}`);
  const rows: Row[] = [];
  const notes: string[] = [];
  onRow = (r) => log(`  ${r.figure}: ${r.hookline}${r.baseline ? ` (baseline ${r.baseline}, ${r.ratio})` : ""}`);
  const db = await benchDatabase();
  const receiver = await ReceiverProcess.start();
  const observer = await Observer.connect(db.url);
  const observers = [observer];
  const postgres = await PostgresCpu.ofBackend(observer.backendPid);
  const pgCpuMs = async () => (postgres ? await postgres.cpuMs() : Number.NaN);
  if (!postgres) notes.push("PostgreSQL runs on another machine: its CPU was not measured.");
  if (!observer.statementsAvailable) {
    notes.push(
      "pg_stat_statements is not loaded on this server (shared_preload_libraries) or not installed in the database: " +
        "statements per event were not measured; transactions per event are from pg_stat_database.",
    );
  }
  const procs: HooklineProcess[] = [];
  // One key for every Hookline process of the run: they share the database.
  const secretKey = randomBytes(32).toString("hex");
  const env = (extra: Record<string, string>) => benchHooklineEnv(db.url, secretKey, extra);
  const spawn = async (extra: Record<string, string> = {}) => {
    const p = await spawnHookline(env(extra), 60_000, from);
    procs.push(p);
    return p;
  };
  /** Stops a Hookline process; once its connections have ended, their statistics are in (see database-cost.ts). */
  const stop = async (p: HooklineProcess, o = observer) => {
    await p.kill("SIGTERM");
    await o.settle(now());
  };
  /** Waits until no delivery is under way; returns when that was seen. */
  const waitIdle = async (o = observer, timeoutMs = 120_000) => {
    const deadline = now() + timeoutMs;
    while ((await liveDeliveries(o)) > 0) {
      if (now() > deadline) throw new Error(`deliveries still under way after ${timeoutMs} ms`);
      await sleep(20);
    }
    return now();
  };
  const statementsSince = async (before: Map<string, StatementCalls> | undefined, o = observer) => {
    const after = await o.statements();
    return before && after ? statementsBetween(before, after) : undefined;
  };
  const event = (i: number, tenantId = "bench") =>
    create(PublishRequestSchema, {
      tenantId,
      eventType: "bench.event",
      payload: { case: "payloadJson", value: benchPayload(i) },
    });
  const publish = (l: GrpcLoad, i: number) => l.call("/hookline.v1.EventIngest/Publish", [toBinary(PublishRequestSchema, event(i))]);
  /** Publishes `total` events in batches of `size`, 4 calls in flight; returns events/s. */
  const publishBatches = async (l: GrpcLoad, total: number, size: number) => {
    const t0 = now();
    let sent = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (sent < total) {
          const n = Math.min(size, total - sent);
          sent += n;
          const batch = create(PublishBatchRequestSchema, { events: Array.from({ length: n }, (_, i) => event(i)) });
          await l.call("/hookline.v1.EventIngest/PublishBatch", [toBinary(PublishBatchRequestSchema, batch)]);
        }
      }),
    );
    return total / ((now() - t0) / 1000);
  };
  /** Publishes at `rate` for `seconds` (open loop); publish-to-arrival percentiles once all arrived. */
  const latencyAt = async (l: GrpcLoad, rate: number, seconds: number) => {
    receiver.send({ cmd: "reset" });
    const total = Math.round(rate * seconds);
    const t0 = now();
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await sleep(wait - 1);
      calls.push(publish(l, i));
    }
    await Promise.all(calls);
    const s = await receiver.waitFor(total, 60_000 + total * 10);
    const sorted = [...s.latencies].sort((a, b) => a - b);
    return { events: total, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  };
  /**
   * A fixed-rate run on `p` measured whole, until Hookline is idle again:
   * latency, the CPU of Hookline and PostgreSQL, and the statements run.
   */
  const serve = async (p: HooklineProcess, l: GrpcLoad, rate: number, seconds: number, o = observer) => {
    const statements0 = await o.statements();
    const xid0 = await o.nextXid();
    const hooklineCpu0 = await cpuMs(p.child.pid!);
    const pgCpu0 = await pgCpuMs();
    const t0 = now();
    const latency = await latencyAt(l, rate, seconds);
    const idleAt = await waitIdle(o);
    const hooklineCores = ((await cpuMs(p.child.pid!)) - hooklineCpu0) / (idleAt - t0);
    const pgCores = ((await pgCpuMs()) - pgCpu0) / (idleAt - t0);
    const statements = await statementsSince(statements0, o);
    return { ...latency, idleAt, hooklineCores, pgCores, statements, writes: (await o.nextXid()) - xid0 };
  };
  /** The cumulative counters once complete for the work that ended at `quietSince`, and the statements so far. */
  const settledReading = async (quietSince: number, o = observer): Promise<Reading> => {
    await o.settle(quietSince);
    return { counters: await o.counters(), statements: await o.statements() };
  };
  /**
   * Transactions of a phase whose statements were `phase`, from two readings
   * around it: the cumulative counters cannot be read at its very start and
   * end (see database-cost.ts), so Hookline's statements before and after it
   * within the readings are taken out, each as one transaction (Hookline's
   * idle work is single statements). Without pg_stat_statements, all of it.
   */
  const transactionsOf = (a: Reading, b: Reading, phase: StatementCalls[] | undefined) => {
    const t = b.counters.transactions - a.counters.transactions;
    if (!a.statements || !b.statements || !phase) return t;
    return t - totalCalls(statementsBetween(a.statements, b.statements)).calls + totalCalls(phase).calls;
  };
  /** Statements and transactions per event as rows, top statements as notes. */
  const statementFigures = (
    label: string,
    events: number,
    statements: StatementCalls[] | undefined,
    transactions: number,
    writes: number,
    a: Reading,
    b: Reading,
  ) => {
    if (statements) {
      const { calls, execMs } = totalCalls(statements);
      rows.push(row(`Statements per event ${label}`, calls / events, undefined, "", undefined, 2));
      notes.push(
        `Statements ${label}: ${fmt(calls / events, 2)} per event, ${fmt((execMs / events) * 1000, 0)} us of execution per event ` +
          `(${events.toLocaleString("en")} events); ${topStatements(statements, events).join("; ")}.`,
      );
    }
    rows.push(row(`Transactions per event ${label}`, transactions / events, undefined, "", undefined, 2));
    // Autovacuum's transactions count too: say when it ran.
    const vacuums = rowsBetween(a.counters, b.counters).byTable.filter(([, r]) => r.autovacuums > 0);
    notes.push(
      `Transactions ${label}: ${fmt(transactions / events, 2)} per event, of which ${fmt(writes / events, 2)} wrote (took a transaction id)` +
        `${vacuums.length > 0 ? `; autovacuum/analyze ran meanwhile on ${vacuums.map(([name, r]) => `${name} (${r.autovacuums}x)`).join(", ")}` : ""}.`,
    );
  };

  try {
    // --- Setup: migrate, make the benchmark's endpoint, then stop, so that
    // the database's counters start complete and quiet.
    const setup = await spawn({ HOOKLINE_SCHEDULER: "false" });
    const setupAdmin = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: setup.url }));
    const { endpoint } = await setupAdmin.createEndpoint({
      tenantId: "bench",
      url: `${receiver.url}/bench`,
      maxInFlight: DELIVERY_CONCURRENCY,
    });
    receiver.send({ cmd: "secret", secret: endpoint!.secret });
    await stop(setup);
    const walStart = await observer.walLsn();
    const xidStart = await observer.nextXid();
    const start: Reading = { counters: await observer.counters(), statements: await observer.statements() };

    // --- Ingest, with the scheduler off so that delivery does not compete.
    // The events are the backlog delivered next.
    const ingestOnly = await spawn({ HOOKLINE_SCHEDULER: "false" });
    const load = new GrpcLoad(ingestOnly.url);
    const enqueueWal: string[] = [];
    let lsn = walStart;
    const walOf = async (method: string, events: number) => {
      const next = await observer.walLsn();
      enqueueWal.push(`${method} ${fmt((next - lsn) / events, 0)}`);
      lsn = next;
    };
    log(`publishing (${scaleName})...`);
    let next = 0;
    let started = now();
    await Promise.all(
      Array.from({ length: PUBLISH_CONCURRENCY }, async () => {
        while (next < scale.unary) await publish(load, next++);
      }),
    );
    const unaryRate = scale.unary / ((now() - started) / 1000);
    rows.push(row(`Publish (unary, ${PUBLISH_CONCURRENCY} concurrent), events/s`, unaryRate, undefined, "", undefined));
    await walOf("unary", scale.unary);
    const b100 = await publishBatches(load, scale.batch100, 100);
    rows.push(row("PublishBatch (100 per batch), events/s", b100, undefined, "", undefined));
    await walOf("batches of 100", scale.batch100);
    const b1000 = await publishBatches(load, scale.batch1000, 1_000);
    rows.push(row("PublishBatch (1,000 per batch), events/s", b1000, undefined, ">= 35,000", b1000 >= 35_000));
    await walOf("batches of 1,000", scale.batch1000);
    started = now();
    await load.call(
      "/hookline.v1.EventIngest/PublishStream",
      Array.from({ length: scale.stream }, (_, i) => toBinary(PublishRequestSchema, event(i))),
    );
    const streamRate = scale.stream / ((now() - started) / 1000);
    rows.push(row("PublishStream, events/s", streamRate, undefined, "", undefined));
    await walOf("stream", scale.stream);
    const backlog = scale.unary + scale.batch100 + scale.batch1000 + scale.stream;
    load.close();
    await stop(ingestOnly);
    const walEnqueued = await observer.walLsn();
    const statementsEnqueued = await observer.statements();

    // --- Deliveries/s from the backlog, against the raw undici baseline,
    // with CPU and memory from the first CPU read until Hookline is idle.
    log(`delivering a backlog of ${backlog}...`);
    receiver.send({ cmd: "reset" });
    const hookline = await spawn();
    const pid = hookline.child.pid!;
    const rss = sampleRss(pid);
    const hooklineCpu0 = await cpuMs(pid);
    const pgCpu0 = await pgCpuMs();
    // Deliveries made before the CPU was first read are not counted against it.
    const early = (await receiver.stats()).count;
    const delivered = await receiver.waitFor(backlog, Math.max(600_000, backlog * 5));
    const drainedAt = await waitIdle();
    const hooklineCpu = (await cpuMs(pid)) - hooklineCpu0;
    const pgCpu = (await pgCpuMs()) - pgCpu0;
    const peakRss = await rss.stop();
    const walDelivered = await observer.walLsn();
    const xidDelivered = await observer.nextXid();
    const statementsDelivered = await observer.statements();
    const deliveryRate = ((delivered.count - 1) * 1000) / (delivered.lastAt - delivered.firstAt);
    if (delivered.duplicates > 0) notes.push(`${delivered.duplicates} duplicate deliveries in the backlog run`);
    if (delivered.badSignatures > 0) notes.push(`${delivered.badSignatures} sampled signatures did not verify`);
    notes.push(`${delivered.verified} sampled deliveries were verified with the standardwebhooks package.`);

    // The baseline needs no database: it runs while the statistics settle.
    log("baseline: raw undici...");
    const baselineOut = execFileSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "bench/baseline.ts"), `${receiver.url}/baseline`, String(backlog), String(DELIVERY_CONCURRENCY), endpoint!.secret],
      { cwd: ROOT, encoding: "utf8" },
    );
    const baseline = JSON.parse(baselineOut.trim().split("\n").at(-1)!) as { count: number; ms: number };
    const baselineRate = (baseline.count * 1000) / baseline.ms;
    rows.push(
      row(
        `Deliveries/s, ${backlog.toLocaleString("en")}-event backlog, ${DELIVERY_CONCURRENCY} in flight`,
        deliveryRate,
        baselineRate,
        ">= 0.5x raw undici",
        deliveryRate >= 0.5 * baselineRate,
      ),
    );
    const counted = backlog - early;
    const perDelivery = (ms: number) => ms / counted;
    rows.push(
      row(
        "CPU per delivery, Hookline + PostgreSQL, ms",
        perDelivery(hooklineCpu + pgCpu),
        undefined,
        "<= 0.150",
        perDelivery(hooklineCpu + pgCpu) <= 0.15,
        3,
      ),
    );
    rows.push(row("CPU per delivery, Hookline process, ms", perDelivery(hooklineCpu), undefined, "", undefined, 3));
    rows.push(row("CPU per delivery, PostgreSQL (all its processes), ms", perDelivery(pgCpu), undefined, "<= 0.060", perDelivery(pgCpu) <= 0.06, 3));
    rows.push(row("RSS of Hookline through the backlog, MB (peak)", peakRss, undefined, "< 300", peakRss < 300));
    rows.push(row("RSS of Hookline at idle, MB", await rssMb(pid), undefined, "", undefined));

    // --- Database cost of the backlog: enqueued, then each event delivered
    // once (all history kept), from the quiet start to Hookline idle.
    const delivered1 = await settledReading(drainedAt);
    const walPerEvent = (walDelivered - walStart) / backlog;
    rows.push(row("WAL bytes per delivered event (enqueue + delivery)", walPerEvent, undefined, "<= 2,000", walPerEvent <= 2_000));
    const changed = rowsBetween(start.counters, delivered1.counters);
    const per = (n: number) => n / backlog;
    rows.push(row("Rows inserted per delivered event", per(changed.total.inserted), undefined, "", undefined, 2));
    rows.push(row("Rows updated, not HOT, per delivered event", per(changed.total.updated), undefined, "", undefined, 2));
    rows.push(row("Rows updated, HOT, per delivered event", per(changed.total.hotUpdated), undefined, "", undefined, 2));
    rows.push(row("Rows deleted per delivered event", per(changed.total.deleted), undefined, "", undefined, 2));
    const backlogStatements = start.statements && statementsDelivered ? statementsBetween(start.statements, statementsDelivered) : undefined;
    const checkpoints =
      delivered1.counters.checkpoints === undefined || start.counters.checkpoints === undefined
        ? "checkpoints unknown"
        : `${delivered1.counters.checkpoints - start.counters.checkpoints} checkpoint(s) during it`;
    notes.push(
      `Database cost of the ${backlog.toLocaleString("en")}-event backlog, enqueued with the scheduler off, then each event delivered once: ` +
        `WAL per event ${fmt(walPerEvent, 0)} bytes, of which enqueue ${fmt((walEnqueued - walStart) / backlog, 0)} ` +
        `(per event published by ${enqueueWal.join(", ")}) and delivery ${fmt((walDelivered - walEnqueued) / backlog, 0)}; ${checkpoints}; ` +
        `${fmt(per(transactionsOf(start, delivered1, backlogStatements)), 2)} transactions per event, ` +
        `of which ${fmt(per(xidDelivered - xidStart), 2)} wrote.`,
    );
    notes.push(
      `Rows per delivered event by table: ${changed.byTable
        .map(([name, r]) => `${name}: ${rowsPerEvent(r, backlog)}${r.autovacuums > 0 ? ` (autovacuum/analyze ran ${r.autovacuums}x)` : ""}`)
        .join("; ")}.`,
    );
    if (start.statements && statementsEnqueued && statementsDelivered) {
      const enqueue = statementsBetween(start.statements, statementsEnqueued);
      const delivery = statementsBetween(statementsEnqueued, statementsDelivered);
      notes.push(
        `Statements of the backlog: enqueue ${fmt(totalCalls(enqueue).calls / backlog, 3)} per event, ` +
          `delivery ${fmt(totalCalls(delivery).calls / backlog, 3)} per event (${fmt((totalCalls(delivery).execMs / backlog) * 1000, 0)} us of execution); ` +
          `delivery's ${topStatements(delivery, backlog).join("; ")}.`,
      );
    }

    // --- Publish-to-receiver latency at fixed rates (open loop), with the
    // CPU and the statements of serving them.
    const load2 = new GrpcLoad(hookline.url);
    log(`warming up unary publishing at ${scale.lowRate}/s for ${scale.warmUpSeconds} s...`);
    await latencyAt(load2, scale.lowRate, scale.warmUpSeconds);
    await waitIdle();
    log(`latency at ${scale.lowRate}/s...`);
    const low = await serve(hookline, load2, scale.lowRate, scale.latencySeconds);
    const lowTargets = scale.lowRate === 500;
    rows.push(row(`Publish-to-receiver p50 at ${scale.lowRate}/s, ms`, low.p50, undefined, lowTargets ? "<= 3" : "", lowTargets ? low.p50 <= 3 : undefined, 2));
    rows.push(row(`Publish-to-receiver p99 at ${scale.lowRate}/s, ms`, low.p99, undefined, lowTargets ? "<= 20" : "", lowTargets ? low.p99 <= 20 : undefined, 2));
    const lowCores = low.hooklineCores + low.pgCores;
    rows.push(
      row(`CPU cores (Hookline + PostgreSQL) serving ${scale.lowRate}/s`, lowCores, undefined, lowTargets ? "<= 0.6" : "", lowTargets ? lowCores <= 0.6 : undefined, 2),
    );
    notes.push(`Serving ${scale.lowRate}/s: Hookline ${fmt(low.hooklineCores, 2)} cores, PostgreSQL ${fmt(low.pgCores, 2)} cores, until all was delivered and recorded.`);
    const afterLow = await settledReading(low.idleAt);
    statementFigures(`at ${scale.lowRate}/s`, low.events, low.statements, transactionsOf(delivered1, afterLow, low.statements), low.writes, delivered1, afterLow);

    // Nearly idle: what each event costs when Hookline mostly waits.
    log(`statements at ${QUIET_RATE}/s...`);
    const quiet = await serve(hookline, load2, QUIET_RATE, scale.quietSeconds);
    const afterQuiet = await settledReading(quiet.idleAt);
    statementFigures(`at ${QUIET_RATE}/s`, quiet.events, quiet.statements, transactionsOf(afterLow, afterQuiet, quiet.statements), quiet.writes, afterLow, afterQuiet);
    notes.push(`Latency at ${QUIET_RATE}/s: p50 ${fmt(quiet.p50, 2)} ms, p99 ${fmt(quiet.p99, 2)} ms.`);

    log(`latency at ${scale.highRate}/s...`);
    const high = await latencyAt(load2, scale.highRate, scale.latencySeconds);
    const highTargets = scale.highRate === 1_000;
    rows.push(row(`Publish-to-receiver p50 at ${scale.highRate}/s, ms`, high.p50, undefined, "", undefined, 2));
    rows.push(row(`Publish-to-receiver p99 at ${scale.highRate}/s, ms`, high.p99, undefined, highTargets ? "<= 50" : "", highTargets ? high.p99 <= 50 : undefined, 2));
    await waitIdle();

    // --- The status stream: the same open-loop rate with and without watchers.
    // Two follow the benchmark tenant (every update: operators' screens);
    // the rest other tenants, endpoints and events (publishers waiting for
    // their own events, dashboards of quiet tenants): each row is still
    // matched against every one of them.
    log(`status stream: ${scale.watchers} watchers at ${scale.lowRate}/s...`);
    const cpuDuring = async (run: () => Promise<unknown>) => {
      const before = await cpuMs(pid);
      const t = now();
      await run();
      return (((await cpuMs(pid)) - before) * 1000) / (now() - t);
    };
    const quietCpu = await cpuDuring(() => latencyAt(load2, scale.lowRate, scale.latencySeconds));
    const watchAdmin = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: hookline.url }));
    const stopWatching = new AbortController();
    const lags: number[] = [];
    let received = 0;
    const streams = Array.from({ length: scale.watchers }, async (_, i) => {
      const filter =
        i < 2 ? { tenantId: "bench" } : i % 3 === 0 ? { tenantId: `other-${i}` } : i % 3 === 1 ? { endpointId: `ep_${i}` } : { eventId: `evt_${i}` };
      try {
        for await (const u of watchAdmin.watchDeliveries(filter, { signal: stopWatching.signal })) {
          received++;
          if (u.status === DeliveryStatus.SUCCEEDED && u.occurredAt) lags.push(Date.now() - Number(timestampMs(u.occurredAt)));
        }
      } catch (err) {
        if (!stopWatching.signal.aborted) throw err;
      }
    });
    await sleep(500);
    const rssBeforeWatching = await rssMb(pid);
    const rssWatching = sampleRss(pid);
    const watchedCpu = await cpuDuring(() => latencyAt(load2, scale.lowRate, scale.latencySeconds));
    await sleep(500);
    const peakWatching = await rssWatching.stop();
    stopWatching.abort();
    await Promise.all(streams);
    const sortedLags = lags.sort((a, b) => a - b);
    rows.push(
      row(
        `Hookline CPU at ${scale.lowRate}/s with ${scale.watchers} watchers (baseline: none), ms per s`,
        watchedCpu,
        quietCpu,
        "",
        undefined,
      ),
    );
    rows.push(
      row(`RSS of Hookline with ${scale.watchers} watchers, MB (peak; baseline: just before)`, peakWatching, rssBeforeWatching, "", undefined),
    );
    rows.push(row("Status stream lag p50, ms (attempt ended to update received)", percentile(sortedLags, 50), undefined, "", undefined, 2));
    rows.push(row("Status stream lag p99, ms", percentile(sortedLags, 99), undefined, "", undefined, 2));
    notes.push(`${received.toLocaleString("en")} status updates were streamed to ${scale.watchers} watchers.`);

    // --- Fan-out of one event to many endpoints.
    log(`fan-out to ${scale.fanout} endpoints...`);
    const admin2 = createClient(WebhookAdmin, createGrpcTransport({ baseUrl: hookline.url }));
    let made = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (made < scale.fanout) {
          made++;
          await admin2.createEndpoint({ tenantId: "fanout", url: `${receiver.url}/fanout` });
        }
      }),
    );
    receiver.send({ cmd: "reset" });
    const t0 = now();
    await load2.call("/hookline.v1.EventIngest/Publish", [toBinary(PublishRequestSchema, event(0, "fanout"))]);
    const fan = await receiver.waitFor(scale.fanout, 60_000);
    const fanMs = fan.lastAt - t0;
    rows.push(
      row(
        `Fan-out of 1 event to ${scale.fanout.toLocaleString("en")} endpoints, ms to the last`,
        fanMs,
        undefined,
        scale.fanout === 1_000 ? "<= 250" : "",
        scale.fanout === 1_000 ? fanMs <= 250 : undefined,
      ),
    );
    load2.close();
    await stop(hookline);

    // --- Huge: a backlog ten times larger, made with PublishBatch.
    if (scale.bigBacklog) {
      const big = scale.bigBacklog;
      log(`publishing a backlog of ${big}...`);
      const bigIngest = await spawn({ HOOKLINE_SCHEDULER: "false" });
      const bigLoad = new GrpcLoad(bigIngest.url);
      await publishBatches(bigLoad, big, 1_000);
      bigLoad.close();
      await stop(bigIngest);
      log(`delivering a backlog of ${big}...`);
      receiver.send({ cmd: "reset" });
      const drainer = await spawn();
      const bigRss = sampleRss(drainer.child.pid!);
      const done = await receiver.waitFor(big, Math.max(600_000, big * 5));
      const bigRate = ((done.count - 1) * 1000) / (done.lastAt - done.firstAt);
      await waitIdle();
      notes.push(`RSS of Hookline through the ${big.toLocaleString("en")}-event backlog: ${fmt(await bigRss.stop(), 0)} MB at the peak.`);
      await stop(drainer);
      rows.push(
        row(
          `Deliveries/s, ${big.toLocaleString("en")}-event backlog (baseline: the ${backlog.toLocaleString("en")} one)`,
          bigRate,
          deliveryRate,
          ">= 0.85x",
          bigRate >= 0.85 * deliveryRate,
        ),
      );
    }

    // --- Huge: publish latency and claim cost with a long retained history
    // against none, in a database of their own.
    if (scale.history) {
      const total = scale.history;
      const url = await db.create();
      const o = await Observer.connect(url);
      observers.push(o);
      const measure = async () => {
        const p = await spawn({ DATABASE_URL: url });
        const l = new GrpcLoad(p.url);
        // A new process, warmed up first (its first calls run cold code).
        await latencyAt(l, scale.lowRate, scale.warmUpSeconds);
        await waitIdle(o);
        const r = await serve(p, l, scale.lowRate, scale.latencySeconds, o);
        l.close();
        await stop(p, o);
        const claims = (r.statements ?? []).filter((s) => isClaim(s.query));
        const { calls, execMs } = totalCalls(claims);
        return { ...r, claimMs: execMs / calls, claimsPerEvent: calls / r.events, claims };
      };
      const setupHistory = await spawn({ DATABASE_URL: url, HOOKLINE_SCHEDULER: "false" });
      const { endpoint: historyEndpoint } = await createClient(WebhookAdmin, createGrpcTransport({ baseUrl: setupHistory.url })).createEndpoint({
        tenantId: "bench",
        url: `${receiver.url}/history`,
        maxInFlight: DELIVERY_CONCURRENCY,
      });
      await stop(setupHistory, o);
      log(`latency at ${scale.lowRate}/s with no history...`);
      const empty = await measure();
      log(`making ${total} delivered events of history...`);
      const clients = Array.from({ length: cpus().length }, () => new pg.Client({ connectionString: url }));
      for (const c of clients) await c.connect();
      const t = now();
      const day = 86_400_000;
      let logged = 0;
      await generateHistory(
        clients,
        { tenantId: "bench", endpointId: historyEndpoint!.id, eventType: "bench.event", total, fromMs: Date.now() - 7 * day, toMs: Date.now() - day / 24 },
        (done) => {
          if (done - logged < total / 10 && done < total) return;
          logged = done;
          log(`  ${done.toLocaleString("en")} of ${total.toLocaleString("en")}`);
        },
      );
      const size = (await clients[0]!.query("SELECT pg_database_size(current_database())::float8 / 2^30 AS gib")).rows[0].gib as number;
      for (const c of clients) await c.end();
      notes.push(
        `${total.toLocaleString("en")} delivered events of history were made in ${fmt((now() - t) / 1000, 0)} s (bench/history.ts); ` +
          `the database then took ${fmt(size, 1)} GiB.`,
      );
      log(`latency at ${scale.lowRate}/s with ${total} of history...`);
      const withHistory = await measure();
      const label = `with ${total.toLocaleString("en")} delivered events of history (baseline: none)`;
      rows.push(row(`Publish-to-receiver p50 at ${scale.lowRate}/s ${label}, ms`, withHistory.p50, empty.p50, "", undefined, 2));
      rows.push(row(`Publish-to-receiver p99 at ${scale.lowRate}/s ${label}, ms`, withHistory.p99, empty.p99, "", undefined, 2));
      rows.push(row(`Claim statement, mean ms, at ${scale.lowRate}/s ${label}`, withHistory.claimMs, empty.claimMs, "", undefined, 3));
      const claimLabels = statementLabels(withHistory.claims);
      notes.push(
        `Claims at ${scale.lowRate}/s: ${fmt(empty.claimsPerEvent, 2)} per event with no history, ${fmt(withHistory.claimsPerEvent, 2)} with it; ` +
          `by statement with history: ${withHistory.claims.map((s) => `${s.calls} calls, ${fmt(s.execMs / s.calls, 3)} ms each ${claimLabels.get(s)}`).join("; ")}.`,
      );
    }
    return { scale: scaleName, rows, machine: machine(db.version), notes };
  } finally {
    for (const p of procs) await p.kill("SIGTERM");
    receiver.stop();
    for (const o of observers) await o.close().catch(() => {});
    await db.drop();
  }
}

function fmt(n: number, digits: number): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

let onRow: (r: Row) => void = () => {};

function row(
  figure: string,
  hookline: number,
  baseline: number | undefined,
  target: string,
  pass: boolean | undefined,
  digits = 0,
): Row {
  const r: Row = {
    figure,
    hookline: fmt(hookline, digits),
    baseline: baseline === undefined ? "" : fmt(baseline, digits),
    ratio: baseline === undefined ? "" : `${(hookline / baseline).toFixed(2)}x`,
    target,
    verdict: pass === undefined ? "" : pass ? "pass" : "miss",
  };
  onRow(r);
  return r;
}

function machine(pgVersion: string): Record<string, string> {
  return {
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? "unknown"}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    postgresql: pgVersion,
    date: new Date().toISOString().slice(0, 10),
  };
}

/** The results as a Markdown table. */
export function toMarkdown(result: BenchResult): string {
  const head = "| figure | Hookline | baseline | ratio | target | |\n| --- | ---: | ---: | ---: | --- | --- |\n";
  const body = result.rows
    .map((r) => `| ${r.figure} | ${r.hookline} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.verdict} |`)
    .join("\n");
  const m = Object.entries(result.machine)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join("\n");
  const notes = result.notes.map((n) => `- ${n}`).join("\n");
  return `${head}${body}\n\nMachine:\n${m}\n\nNotes:\n${notes}\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: "string", default: "quick" },
      out: { type: "string", default: join(ROOT, "bench/RESULTS.md") },
      from: { type: "string", default: "build" },
    },
  });
  if (values.from === "build") execFileSync("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "inherit" });
  const result = await runBench(values.scale, values.from === "sources" ? "sources" : "build");
  const table = toMarkdown(result);
  console.log(`\n${table}`);
  if (values.out && values.out !== "-") {
    await writeFile(values.out, `# Benchmark results (${result.scale} run)\n\nWritten by \`npm run bench\`.\n\n${table}`);
    console.log(`written to ${values.out}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
