/**
 * Tenant-controlled schema work off the event loop that serves every
 * tenant. Event type schemas are compiled, and payloads checked against
 * them, in a small pool of worker threads (schema-worker.ts), each check
 * with a deadline, the tenants served in turn.
 *
 * Why. The API and the delivery scheduler share one event loop, and a
 * schema can be cheap to compile yet costly to run, whatever the bounds of
 * json-schema.ts: measured on the 2-core test machine, `anyOf` over chains
 * of `$ref`s (1.4 KB of schema) took 33.6 s on any payload, `uniqueItems`
 * over 5,000 objects (a 54 KB payload) 0.6-2.2 s, and RE2, linear but
 * about 12 ns per instruction per character, ~3 s for a 1,000-instruction
 * pattern against 256 KiB. On the loop, each froze every tenant's
 * publishes, the scheduler and the health checks.
 *
 * Deadline. A synchronous Ajv call cannot be interrupted: a check that runs
 * past `timeoutMs` (a compile past `compileTimeoutMs`) gets its thread
 * terminated and a new one started; from then on the pool keeps a spare
 * thread, so the next time one takes over at once. The thread tells where it is through
 * shared memory (WorkerProgress), so each payload of a batch has its own
 * deadline and the one that passed it is known without a message. The
 * schema is then suspended for its tenant for `suspendMs`: its checks are
 * refused at once, so one costly schema cannot keep the pool busy. A
 * tenant with {@link MAX_STOPPED_SCHEMAS} schemas suspended at once is
 * suspended whole for as long, so new costly schemas cannot either (each
 * stopped check costs a thread the deadline and a new thread, about 0.25 s
 * of CPU from dist/ on the test machine).
 *
 * Fairness. Each tenant has its own queue; free threads take the next job
 * of each tenant in turn (a tenant that had nothing waiting or running goes
 * first), and a thread stops a batch after `sliceMs` and hands the rest
 * back to the end of its tenant's turn. One tenant holds at most all
 * threads but one, so with two threads or more another tenant always finds
 * one free, and with several busy tenants waits at most about one check
 * per thread. A tenant may have at most `maxQueuedPerTenant` checks waiting
 * or running; more are refused with LimitExceededError (one request alone
 * is always taken, so a full PublishBatch fits whatever the bound).
 *
 * Cost. Payloads go to the threads as the JSON text they arrived as (the
 * thread parses them). A batch goes as one message per thread its tenant
 * may use, and a tenant's concurrent publishes waiting together as one
 * message, each schema text once per message. Measured on the test
 * machine: a lone publish costs the event loop 29-50 µs (the message round
 * trip alone 26-28 µs), 64 concurrent ones 5-14 µs each, a PublishBatch
 * 0.6-1.4 µs per event, where checking on the loop cost 5-10 µs
 * (docs/api.md).
 */
import { Worker } from "node:worker_threads";
import { LimitExceededError } from "./errors.js";
import { MAX_COMPILE_MS } from "./json-schema.js";
import {
  epochNow,
  Phase,
  type TaskResult,
  type WorkerReady,
  type WorkerRefusal,
  WorkerProgress,
  type WorkerStart,
  type WorkerTask,
} from "./schema-worker.js";

/** Options of {@link SchemaPool}. */
export interface SchemaPoolOptions {
  /** Most threads (HOOKLINE_SCHEMA_WORKERS); started as work needs them. */
  workers: number;
  /** Deadline of one payload's check (HOOKLINE_SCHEMA_TIMEOUT). */
  timeoutMs: number;
  /** Most checks one tenant may have waiting or running (HOOKLINE_SCHEMA_QUEUE). */
  maxQueuedPerTenant: number;
  /** Deadline of compiling one schema; json-schema.ts's MAX_COMPILE_MS by default. */
  compileTimeoutMs?: number;
  /** How long a schema that ran past a deadline stays refused for its tenant; {@link SUSPEND_MS} by default. */
  suspendMs?: number;
  /** How long a thread works on one batch before giving the rest back; {@link SLICE_MS} by default. */
  sliceMs?: number;
  /** Told when a schema is suspended (once per suspension), with the label of the item that ran past its deadline; `*` when the tenant is suspended whole. */
  onSuspended?: (tenantId: string, label: string, reason: string) => void;
  /** Told when a thread stops unexpectedly or cannot start. */
  onWorkerError?: (err: unknown) => void;
}

/**
 * How long a schema that ran past its deadline stays refused for its
 * tenant. One costly check costs a thread up to the deadline plus a new
 * thread (about 0.25 s of CPU from dist/ on the test machine); once a minute
 * per schema is noise, while a tenant who fixes the payloads is not kept
 * waiting long.
 */
export const SUSPEND_MS = 60_000;

/** Schemas of one tenant suspended at once that suspend all its schema work. */
export const MAX_STOPPED_SCHEMAS = 3;

/**
 * A thread gives a batch back after this long, so another tenant's job
 * waits at most about this plus one check per thread. Typical checks take
 * 5-10 µs (a 250-byte order against a 15-keyword schema, parsing included,
 * measured on the test machine), so a slice holds about a thousand: one
 * message per thread for a whole PublishBatch.
 */
export const SLICE_MS = 10;

/**
 * Added to the compile deadline before a compiling thread is terminated:
 * compileSchema stops itself at its deadline (at Ajv's hooks, which come
 * often), which keeps the thread; terminating is the backstop.
 */
const COMPILE_GRACE_MS = 100;

/**
 * Most payloads sent to a thread at once: a request is split into jobs so
 * that it uses the threads its tenant may hold, and a tenant's queued jobs
 * (concurrent unary publishes) go together, up to this many.
 */
const MAX_TASK_ITEMS = 1_000;

/** One payload to check: its JSON text against a schema's JSON text. */
export interface SchemaCheck {
  /** The schema's JSON text (as stored); compiled validators are kept by it. */
  schema: string;
  /** The payload's JSON text. */
  data: string;
  /** Names the item in {@link SchemaPoolOptions.onSuspended} (the event type). */
  label: string;
}

/** The first refused item of a request, by index. */
export type CheckFailure = { index: number } & (
  | WorkerRefusal
  /** Its check ran past the deadline, or its thread died on it, and was stopped; its schema is now suspended. */
  | { kind: "stopped"; reason: string }
  /** Its schema is suspended for this tenant for another `remainingMs`. */
  | { kind: "suspended"; remainingMs: number; reason: string }
);

/** The outcome of {@link SchemaPool.compile}: undefined when it compiled. */
export type CompileFailure = Exclude<CheckFailure, { kind: "invalid" } | { kind: "recursion" }>;

interface Request {
  tenant: Tenant;
  items: readonly SchemaCheck[];
  compile: boolean;
  /** Jobs of it queued or running. */
  open: number;
  /** Items counted against its tenant's bound. */
  admitted: number;
  failure: CheckFailure | undefined;
  settled: boolean;
  resolve: (failure: CheckFailure | undefined) => void;
  reject: (err: unknown) => void;
}

/** Items [start, end) of a request. */
interface Job {
  request: Request;
  start: number;
  end: number;
}

interface Tenant {
  id: string;
  queue: Job[];
  /** Items of its requests not answered yet. */
  admitted: number;
  /** Threads working on its jobs. */
  running: number;
}

interface Thread {
  worker: Worker;
  state: Int32Array;
  since: Float64Array;
  ready: boolean;
  /** Set when the pool terminates it, so its exit is expected. */
  stopping: boolean;
  /** The jobs it works on, all of one tenant, as segments of one task. */
  task: { id: number; jobs: Job[]; ends: number[] } | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** Until when (Date.now()) and why checks are refused. */
interface Suspension {
  until: number;
  reason: string;
}

/** Figures of a {@link SchemaPool}. */
export interface SchemaPoolStats {
  /** Threads alive (starting or ready). */
  threads: number;
  /** Threads ready for work (idle or busy). */
  ready: number;
  /** Threads started in all, replacements included. */
  started: number;
  /** Threads terminated for running past a deadline. */
  timedOut: number;
  /** Threads that stopped unexpectedly. */
  crashed: number;
  /** Checks waiting for a thread. */
  queued: number;
}

/** The pool; see the module comment. */
export class SchemaPool {
  private readonly threads = new Set<Thread>();
  private readonly idle: Thread[] = [];
  private readonly tenants = new Map<string, Tenant>();
  /** Tenants with jobs queued, in turn order. */
  private ring: Tenant[] = [];
  /** Suspensions by tenant: of the tenant whole, and of its schemas (by JSON text). */
  private readonly suspended = new Map<string, { whole?: Suspension; schemas: Map<string, Suspension> }>();
  /** Deadline of one payload's check. */
  readonly timeoutMs: number;
  /** Deadline of compiling one schema. */
  readonly compileTimeoutMs: number;
  /** How long a schema that ran past a deadline stays refused for its tenant. */
  readonly suspendMs: number;
  private readonly sliceMs: number;
  /** Threads one tenant may hold at once: all but one, so another tenant always finds one free. */
  private readonly threadsPerTenant: number;
  /** Threads working on a task; at most `workers`. */
  private busy = 0;
  private nextTaskId = 1;
  private closed = false;
  private startFailures = 0;
  private restartAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly figures = { started: 0, timedOut: 0, crashed: 0 };

  constructor(private readonly options: SchemaPoolOptions) {
    this.timeoutMs = options.timeoutMs;
    this.compileTimeoutMs = options.compileTimeoutMs ?? MAX_COMPILE_MS;
    this.suspendMs = options.suspendMs ?? SUSPEND_MS;
    this.sliceMs = options.sliceMs ?? SLICE_MS;
    this.threadsPerTenant = Math.max(1, options.workers - 1);
  }

  /**
   * Checks `items` (all of one tenant) and answers with the first refused
   * one, by index, or undefined when all pass. Rejects with
   * LimitExceededError when the tenant has too many checks waiting.
   */
  check(tenantId: string, items: readonly SchemaCheck[]): Promise<CheckFailure | undefined> {
    return this.submit(tenantId, items, false);
  }

  /**
   * Compiles `schema` (JSON text) for `tenantId` under the rules of
   * json-schema.ts, within the compile deadline; undefined when it
   * compiled (a thread now keeps it).
   */
  async compile(tenantId: string, schema: string, label: string): Promise<CompileFailure | undefined> {
    return (await this.submit(tenantId, [{ schema, data: "", label }], true)) as CompileFailure | undefined;
  }

  /** Figures for tests and metrics. */
  stats(): SchemaPoolStats {
    let queued = 0;
    for (const t of this.ring) for (const j of t.queue) queued += j.end - j.start;
    let ready = 0;
    for (const t of this.threads) if (t.ready) ready++;
    return { threads: this.threads.size, ready, queued, ...this.figures };
  }

  /** The live threads, for tests that stop one as a crash would. */
  workersForTests(): Worker[] {
    return [...this.threads].map((t) => t.worker);
  }

  /** Stops every thread; requests not answered fail. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const threads = [...this.threads];
    const stopping = threads.map((t) => this.stop(t));
    const err = new Error("Hookline is stopping");
    this.failQueued(err);
    for (const t of threads) for (const job of t.task?.jobs ?? []) this.fail(job.request, err);
    await Promise.all(stopping);
  }

  private submit(tenantId: string, items: readonly SchemaCheck[], compile: boolean): Promise<CheckFailure | undefined> {
    if (this.closed) return Promise.reject(new Error("Hookline is stopping"));
    // A suspended schema is refused at once, without waiting for a thread.
    const suspended = this.firstSuspended(tenantId, items, 0, items.length);
    const n = suspended?.index ?? items.length;
    if (n === 0) return Promise.resolve(suspended);
    let tenant = this.tenants.get(tenantId);
    if (!tenant) {
      tenant = { id: tenantId, queue: [], admitted: 0, running: 0 };
      this.tenants.set(tenantId, tenant);
    }
    // One request alone is always taken, whatever its size.
    if (tenant.admitted > 0 && tenant.admitted + n > this.options.maxQueuedPerTenant) {
      return Promise.reject(
        new LimitExceededError(
          `tenant ${tenantId} has ${tenant.admitted} schema checks waiting or running, the limit is ${this.options.maxQueuedPerTenant} ` +
            `(HOOKLINE_SCHEMA_QUEUE), so ${compile ? "a schema compile" : `${n} more`} cannot wait; retry with backoff`,
        ),
      );
    }
    const t = tenant;
    return new Promise((resolve, reject) => {
      const request: Request = { tenant: t, items, compile, open: 0, admitted: 0, failure: suspended, settled: false, resolve, reject };
      // A tenant with nothing waiting or running takes the next free thread; the others wait their turn.
      const fresh = t.admitted === 0;
      t.admitted += n;
      request.admitted = n;
      // Spread over the threads it may use, in order, so the first refusal is known by index.
      const size = Math.min(MAX_TASK_ITEMS, Math.ceil(n / this.threadsPerTenant));
      for (let start = 0; start < n; start += size) {
        t.queue.push({ request, start, end: Math.min(n, start + size) });
        request.open++;
      }
      if (!this.ring.includes(t)) {
        if (fresh) this.ring.unshift(t);
        else this.ring.push(t);
      }
      this.pump();
    });
  }

  /** The first item in [start, end) whose schema is suspended for the tenant, as its failure. */
  private firstSuspended(tenantId: string, items: readonly SchemaCheck[], start: number, end: number): CheckFailure | undefined {
    const tenant = this.suspended.size > 0 ? this.suspended.get(tenantId) : undefined;
    if (!tenant || start >= end) return undefined;
    const now = Date.now();
    const refusal = (index: number, s: Suspension): CheckFailure => ({ index, kind: "suspended", remainingMs: s.until - now, reason: s.reason });
    if (tenant.whole && tenant.whole.until > now) return refusal(start, tenant.whole);
    let seen: string | undefined;
    for (let i = start; i < end; i++) {
      const schema = items[i]!.schema;
      if (schema === seen) continue;
      seen = schema;
      const s = tenant.schemas.get(schema);
      if (s && s.until > now) return refusal(i, s);
    }
    return undefined;
  }

  /**
   * Gives free threads their next jobs, tenant by tenant, each tenant up to
   * its share of threads, and starts the missing threads while work waits.
   */
  private pump(): void {
    while (this.idle.length > 0 && this.busy < this.options.workers) {
      const i = this.ring.findIndex((t) => t.running < this.threadsPerTenant);
      if (i < 0) break;
      const tenant = this.ring.splice(i, 1)[0]!;
      // The tenant's next jobs, together up to MAX_TASK_ITEMS payloads; the
      // jobs of one request stay apart, to go to different threads.
      const jobs: Job[] = [];
      let items = 0;
      while (tenant.queue.length > 0) {
        const next = tenant.queue[0]!;
        if (jobs.length > 0 && (items + (next.end - next.start) > MAX_TASK_ITEMS || jobs.some((j) => j.request === next.request))) break;
        tenant.queue.shift();
        const sent = this.admit(next);
        if (!sent) continue;
        jobs.push(sent);
        items += sent.end - sent.start;
      }
      if (tenant.queue.length > 0) this.ring.push(tenant);
      if (jobs.length > 0) this.run(this.idle.pop()!, tenant, jobs);
    }
    if (this.ring.length > 0) this.fill();
  }

  /**
   * The part of `job` to send: none when its request is settled or refused
   * before it; cut before the first item whose schema was suspended while
   * it waited (which refuses the request there).
   */
  private admit(job: Job): Job | undefined {
    const request = job.request;
    if (request.settled) return undefined;
    let end = Math.min(job.end, request.failure?.index ?? job.end);
    const suspended = this.firstSuspended(request.tenant.id, request.items, job.start, end);
    if (suspended) {
      this.refuse(request, suspended);
      end = suspended.index;
    }
    if (end <= job.start) {
      this.finish(request);
      return undefined;
    }
    return end === job.end ? job : { request, start: job.start, end };
  }

  private run(thread: Thread, tenant: Tenant, jobs: Job[]): void {
    // Ids fit the Int32 slot of WorkerProgress; consecutive tasks of a thread always differ.
    const id = this.nextTaskId;
    this.nextTaskId = (this.nextTaskId % 0x7fff_ffff) + 1;
    const task: WorkerTask = { id, schemas: [], of: [], data: [], ends: [], compile: [] };
    const index = new Map<string, number>();
    for (const job of jobs) {
      const items = job.request.items;
      for (let i = job.start; i < job.end; i++) {
        const item = items[i]!;
        let s = index.get(item.schema);
        if (s === undefined) {
          s = task.schemas.push(item.schema) - 1;
          index.set(item.schema, s);
        }
        task.of.push(s);
        task.data.push(item.data);
      }
      task.ends.push(task.data.length);
      task.compile.push(job.request.compile);
    }
    thread.task = { id, jobs, ends: task.ends };
    tenant.running++;
    this.busy++;
    thread.worker.postMessage(task);
    thread.worker.ref();
    thread.timer = setTimeout(() => this.watch(thread), this.timeoutMs);
  }

  /** The thread's task, which it no longer works on. */
  private takeTask(thread: Thread): Thread["task"] {
    const task = thread.task;
    thread.task = undefined;
    if (task) {
      task.jobs[0]!.request.tenant.running--;
      this.busy--;
    }
    return task;
  }

  /** A thread's deadline timer: stops the thread if the item in hand has run past its deadline, or waits for what is left of it. */
  private watch(thread: Thread): void {
    thread.timer = undefined;
    const task = thread.task;
    if (!task) return;
    const phase = Atomics.load(thread.state, WorkerProgress.PHASE);
    if (Atomics.load(thread.state, WorkerProgress.TASK) !== task.id || phase === Phase.IDLE) {
      // Not begun yet, or its answer is on its way.
      thread.timer = setTimeout(() => this.watch(thread), this.timeoutMs);
      return;
    }
    const limit = phase === Phase.COMPILING ? this.compileTimeoutMs + COMPILE_GRACE_MS : this.timeoutMs;
    const ran = epochNow() - thread.since[0]!;
    if (ran < limit) {
      thread.timer = setTimeout(() => this.watch(thread), Math.max(1, Math.ceil(limit - ran)));
      return;
    }
    this.figures.timedOut++;
    const reason =
      phase === Phase.COMPILING
        ? `compiling its schema took over ${this.compileTimeoutMs} ms`
        : `a payload took over ${this.timeoutMs} ms to check against its schema`;
    this.takeTask(thread);
    this.lose(task, Atomics.load(thread.state, WorkerProgress.ITEM), reason);
    void this.stop(thread);
    this.fill();
    this.pump();
  }

  /**
   * Item `item` of the task ran past its deadline, or its thread died on
   * it: it fails, and its schema is suspended for its tenant. The task's
   * other jobs go back to the front of their tenant's queue (what was done
   * of them was not reported, and is done again).
   */
  private lose(task: NonNullable<Thread["task"]>, item: number, reason: string): void {
    let k = task.ends.findIndex((end) => item < end);
    if (k < 0) k = task.ends.length - 1;
    const job = task.jobs[k]!;
    const request = job.request;
    const index = Math.min(job.end - 1, job.start + item - (k > 0 ? task.ends[k - 1]! : 0));
    const check = request.items[index]!;
    this.suspend(request.tenant.id, check, reason);
    this.requeue(task.jobs.filter((_, i) => i !== k));
    this.refuse(request, { index, kind: "stopped", reason });
    this.finish(request);
  }

  /** Suspends a schema for a tenant, and the tenant whole at its MAX_STOPPED_SCHEMAS-th schema suspended at once. */
  private suspend(tenantId: string, check: SchemaCheck, reason: string): void {
    const now = Date.now();
    const until = now + this.suspendMs;
    let tenant = this.suspended.get(tenantId);
    if (!tenant) {
      tenant = { schemas: new Map() };
      this.suspended.set(tenantId, tenant);
    }
    for (const [schema, s] of tenant.schemas) if (s.until <= now) tenant.schemas.delete(schema);
    if (!tenant.schemas.has(check.schema)) this.options.onSuspended?.(tenantId, check.label, reason);
    tenant.schemas.set(check.schema, { until, reason });
    if (tenant.schemas.size >= MAX_STOPPED_SCHEMAS && !(tenant.whole && tenant.whole.until > now)) {
      const whole = `${MAX_STOPPED_SCHEMAS} schemas of tenant ${tenantId} were stopped at their deadline within ${Math.round(this.suspendMs / 1000)} s`;
      this.options.onSuspended?.(tenantId, "*", whole);
      tenant.whole = { until, reason: whole };
    }
    if (this.suspended.size > 10_000) {
      for (const [id, t] of this.suspended) {
        if (!(t.whole && t.whole.until > now) && [...t.schemas.values()].every((x) => x.until <= now)) this.suspended.delete(id);
      }
    }
  }

  /** Puts jobs given back (in order) at the front of their tenant's queue, and the tenant at the end of the turn. */
  private requeue(jobs: Job[]): void {
    if (jobs.length === 0) return;
    const tenant = jobs[0]!.request.tenant;
    tenant.queue.unshift(...jobs);
    if (!this.ring.includes(tenant)) this.ring.push(tenant);
  }

  private answered(thread: Thread, result: TaskResult): void {
    const task = thread.task;
    if (!task || task.id !== result.id) return;
    clearTimeout(thread.timer);
    thread.timer = undefined;
    this.takeTask(thread);
    const back: Job[] = [];
    for (const [k, job] of task.jobs.entries()) {
      const segment = result.segments[k];
      const at = job.start + (segment?.done ?? 0);
      if (segment?.refusal) {
        this.refuse(job.request, { index: at, ...segment.refusal });
        this.finish(job.request);
      } else if (at < job.end) {
        // Its slice ended before this job did: the rest waits for the tenant's next turn.
        back.push({ request: job.request, start: at, end: job.end });
      } else {
        this.finish(job.request);
      }
    }
    this.requeue(back);
    this.release(thread);
  }

  /** Records a refusal at an index, keeping the lowest, and drops the request's queued jobs past it. */
  private refuse(request: Request, failure: CheckFailure): void {
    if (request.failure && request.failure.index <= failure.index) return;
    request.failure = failure;
    const tenant = request.tenant;
    const before = tenant.queue.length;
    tenant.queue = tenant.queue.filter((j) => j.request !== request || j.start < failure.index);
    request.open -= before - tenant.queue.length;
    if (tenant.queue.length === 0) this.ring = this.ring.filter((t) => t !== tenant);
  }

  /** One job of the request is over; the last one answers it. */
  private finish(request: Request): void {
    request.open--;
    if (request.open > 0 || request.settled) return;
    this.settle(request);
    request.resolve(request.failure);
  }

  private fail(request: Request, err: unknown): void {
    if (request.settled) return;
    this.settle(request);
    request.reject(err);
  }

  private settle(request: Request): void {
    request.settled = true;
    const tenant = request.tenant;
    tenant.admitted -= request.admitted;
    if (tenant.admitted === 0 && tenant.queue.length === 0) this.tenants.delete(tenant.id);
  }

  /** Fails every request with a job queued. */
  private failQueued(err: Error): void {
    for (const tenant of this.ring) {
      for (const job of tenant.queue) this.fail(job.request, err);
      tenant.queue = [];
    }
    this.ring = [];
  }

  private release(thread: Thread): void {
    thread.worker.unref();
    if (!this.threads.has(thread) || thread.stopping) return;
    this.idle.push(thread);
    this.pump();
  }

  /**
   * Threads to keep: `workers`, and once a thread has been stopped, one
   * more, ready and idle while `workers` are busy, which takes over at once
   * when the next is stopped (starting a thread takes about 0.25 s from
   * dist/, 1 s from sources through tsx, on the test machine).
   */
  private get target(): number {
    return this.options.workers + (this.figures.timedOut + this.figures.crashed > 0 ? 1 : 0);
  }

  /** Starts the threads missing. */
  private fill(): void {
    while (this.threads.size < this.target && this.spawn());
  }

  /** Starts a thread; false when none may start now. */
  private spawn(): boolean {
    if (this.closed || this.threads.size >= this.target) return false;
    const wait = this.restartAt - Date.now();
    if (wait > 0) {
      this.restartTimer ??= setTimeout(() => {
        this.restartTimer = undefined;
        this.pump();
      }, wait).unref();
      return false;
    }
    const progress = new SharedArrayBuffer(WorkerProgress.BYTES);
    // Held (keeps the process alive) while it starts and while it works; let go of when idle (release).
    const worker = startWorker({ progress, sliceMs: this.sliceMs, compileMs: this.compileTimeoutMs });
    this.figures.started++;
    const thread: Thread = {
      worker,
      state: new Int32Array(progress, 0, 3),
      since: new Float64Array(progress, WorkerProgress.SINCE_OFFSET, 1),
      ready: false,
      stopping: false,
      task: undefined,
      timer: undefined,
    };
    this.threads.add(thread);
    let failure: unknown;
    worker.on("message", (m: TaskResult | WorkerReady) => {
      if ("ready" in m) {
        thread.ready = true;
        this.startFailures = 0;
        this.release(thread);
      } else {
        this.answered(thread, m);
      }
    });
    worker.on("error", (err) => {
      failure = err;
    });
    worker.on("exit", (code) => this.exited(thread, code, failure));
    return true;
  }

  private exited(thread: Thread, code: number, failure: unknown): void {
    clearTimeout(thread.timer);
    if (thread.stopping || this.closed) return;
    this.threads.delete(thread);
    const i = this.idle.indexOf(thread);
    if (i >= 0) this.idle.splice(i, 1);
    const err = failure instanceof Error ? failure : new Error(`schema worker exited with code ${code}`);
    this.options.onWorkerError?.(err);
    if (!thread.ready) {
      // It could not start: what waits would wait for ever. Try again later, more slowly each time.
      this.startFailures++;
      this.restartAt = Date.now() + Math.min(30_000, 500 * 2 ** (this.startFailures - 1));
      this.failQueued(new Error(`schema workers cannot start: ${err.message}`));
      return;
    }
    this.figures.crashed++;
    const task = this.takeTask(thread);
    if (task) {
      const begun = Atomics.load(thread.state, WorkerProgress.TASK) === task.id;
      this.lose(task, begun ? Atomics.load(thread.state, WorkerProgress.ITEM) : 0, `its check stopped the schema worker (${err.message})`);
    }
    this.fill();
    this.pump();
  }

  private async stop(thread: Thread): Promise<void> {
    thread.stopping = true;
    clearTimeout(thread.timer);
    const i = this.idle.indexOf(thread);
    if (i >= 0) this.idle.splice(i, 1);
    this.threads.delete(thread);
    await thread.worker.terminate();
  }
}

/**
 * Starts a thread on schema-worker: the compiled .js next to this module
 * (dist/), or from sources (vitest, `node --import tsx`) the .ts through
 * tsx, since Node 20 cannot start a worker on a .ts entry even with
 * `--import tsx` in its execArgv (ERR_UNKNOWN_FILE_EXTENSION).
 */
function startWorker(workerData: WorkerStart): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./schema-worker.js", here), { workerData });
  const tsx = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./schema-worker.ts", here).href;
  const code = `import(${JSON.stringify(tsx)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}));`;
  return new Worker(code, { eval: true, workerData });
}
