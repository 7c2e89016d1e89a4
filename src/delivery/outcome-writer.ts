/**
 * Group commit for attempt outcomes: while one batch is being written, the
 * outcomes that finish meanwhile gather and go in the next statement, and a
 * batch of successes smaller than FULL_BATCH waits up to LINGER_MS for more
 * first (a failure is written at once: it may open the endpoint's circuit).
 * Nothing waits on these writes but status readers (the request's slot is
 * already free and the lease covers the write), and PostgreSQL's cost per
 * outcome falls with the batch: measured on 20,000 deliveries, 133 us per
 * outcome in batches of 16, 66 us in batches of 256.
 *
 * Errors are sorted (see store/database-errors.ts):
 * - a transient one (the database restarting, a connection lost, a lock
 *   timeout) is retried with backoff (see background-retry.ts) until the
 *   batch lands, or until the scheduler's stop gives up on it
 *   ({@link OutcomeWriter.abandon});
 * - a permanent one means some outcome of the batch can never be written
 *   (a value PostgreSQL refuses): the batch is halved, and each half
 *   written (and halved again if it fails too), so the outcomes around the
 *   bad one are written and nothing waits behind it. An outcome that fails
 *   alone is given up: logged at error with its delivery, and counted
 *   (`onUnwritable`). A batch of n outcomes with one bad one costs about
 *   2 log2(n) more statements.
 * An outcome not written leaves its delivery leased; the delivery is
 * attempted again once the lease expires.
 *
 * After each batch, endpoints whose circuit opened have their waiting
 * deliveries held until the cool-down ends, those whose circuit closed have
 * theirs released, and endpoints that were disabled (410 Gone, or failing
 * too long) have theirs failed.
 */
import type { Logger } from "pino";
import type { AttemptOutcome, HealthChanges, HealthRules } from "../domain/delivery/outcome.js";
import type { Sql } from "../store/sql.js";
import { holdForCircuit, releaseHeld } from "../store/sql/circuit-holds.js";
import { failPendingOfDisabled } from "../store/sql/fail-disabled.js";
import { recordOutcomes } from "../store/sql/record-outcomes.js";
import { retryTransient } from "./background-retry.js";

/** A batch this large is written without waiting. */
const FULL_BATCH = 128;
/** How long a smaller batch waits for more outcomes. */
const LINGER_MS = 5;

/** What became of one outcome given to {@link OutcomeWriter.write}. */
export type WriteResult =
  /** Stored, with its follow-ups done. */
  | "stored"
  /** Refused by the database for good (a permanent error): logged and counted, not stored. */
  | "unwritable"
  /** Given up by {@link OutcomeWriter.abandon} before it was stored (it may still have landed). */
  | "abandoned";

/** Options of {@link OutcomeWriter}. */
export interface OutcomeWriterOptions {
  sql: Sql;
  /** The process whose leases the outcomes are written under. */
  workerId: string;
  rules: HealthRules;
  log: Logger;
  /**
   * Told of circuits that opened and endpoints that were disabled before
   * their deliveries are held or failed (the scheduler gives back those it
   * buffered).
   */
  onHealthChanges?: (changes: HealthChanges) => Promise<void>;
  /** Told of each outcome the database refused for good (a metric counts them). */
  onUnwritable?: (outcome: AttemptOutcome, err: unknown) => void;
  /** Outcomes in one statement at most. */
  maxBatch?: number;
}

interface Pending {
  outcome: AttemptOutcome;
  done: (result: WriteResult) => void;
}

/** Writes attempt outcomes in batches; `write` resolves once its outcome is stored or given up. */
export class OutcomeWriter {
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  /** Ends the current linger early (see flush). */
  private hurry: (() => void) | undefined;
  /** Flushes waiting: no lingering. */
  private flushing = 0;
  /** Aborted by abandon(): nothing more is written or retried. */
  private readonly abandoning = new AbortController();
  /** Taken from the queue and not settled yet, given up too by abandon(). */
  private readonly inBatch = new Set<Pending>();
  private readonly sql: Sql;
  private readonly workerId: string;
  private readonly rules: HealthRules;
  private readonly log: Logger;
  private readonly onHealthChanges: (changes: HealthChanges) => Promise<void>;
  private readonly onUnwritable: (outcome: AttemptOutcome, err: unknown) => void;
  private readonly maxBatch: number;

  constructor(options: OutcomeWriterOptions) {
    this.sql = options.sql;
    this.workerId = options.workerId;
    this.rules = options.rules;
    this.log = options.log;
    this.onHealthChanges = options.onHealthChanges ?? (async () => {});
    this.onUnwritable = options.onUnwritable ?? (() => {});
    this.maxBatch = options.maxBatch ?? 500;
  }

  private get abandoned(): boolean {
    return this.abandoning.signal.aborted;
  }

  /**
   * Queues one outcome; resolves once it is stored and its follow-ups
   * (circuit holds and releases) are done, or it is found unwritable, or
   * given up by {@link abandon}.
   */
  write(outcome: AttemptOutcome): Promise<WriteResult> {
    if (this.abandoned) return Promise.resolve("abandoned");
    return new Promise((done) => {
      this.queue.push({ outcome, done });
      this.writing ??= this.drain();
    });
  }

  /**
   * Gives up every outcome not stored yet (for a stop that cannot wait any
   * longer, the database being down): their `write` calls resolve now and
   * no more writes or retries are made; a batch being written may still
   * land. Returns the outcomes given up. Their deliveries keep their
   * leases and are attempted again once those expire.
   */
  abandon(): AttemptOutcome[] {
    const given = [...this.inBatch, ...this.queue];
    this.queue = [];
    this.inBatch.clear();
    this.abandoning.abort();
    for (const p of given) p.done("abandoned");
    this.hurry?.();
    return given.map((p) => p.outcome);
  }

  /** Resolves once everything queued so far is stored or given up (at once after abandon()). */
  async flush(): Promise<void> {
    this.flushing++;
    try {
      while (this.writing && !this.abandoned) {
        this.hurry?.();
        await this.writing;
      }
    } finally {
      this.flushing--;
    }
  }

  /** Waits up to LINGER_MS for a full batch, unless flush() hurries it. */
  private async linger(): Promise<void> {
    if (this.queue.length >= FULL_BATCH || this.flushing > 0) return;
    // Failures decide circuits and disabling: they are written at once.
    if (this.queue.some((p) => !p.outcome.success)) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, LINGER_MS);
      this.hurry = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.hurry = undefined;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.abandoned) {
      await this.linger();
      if (this.abandoned) break;
      const batch = this.queue.splice(0, this.maxBatch);
      for (const p of batch) this.inBatch.add(p);
      await this.writeBatch(batch);
    }
    this.writing = undefined;
  }

  /**
   * Writes `batch`, retrying transient errors; on a permanent one, writes
   * each half of it on its own, down to the outcomes that fail alone,
   * which are given up (see the module comment).
   */
  private async writeBatch(batch: Pending[]): Promise<void> {
    let changes: HealthChanges;
    try {
      changes = await retryTransient(
        () => recordOutcomes(this.sql, this.workerId, batch.map((p) => p.outcome), this.rules),
        {
          signal: this.abandoning.signal,
          onRetry: (err, failures, delayMs) =>
            this.log.warn({ err, outcomes: batch.length, failures, retryInMs: delayMs }, "writing attempt outcomes failed; retrying"),
        },
      );
    } catch (err) {
      if (this.abandoned) return;
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        this.log.warn({ err, outcomes: batch.length }, "attempt outcomes refused; writing each half on its own to find the one that cannot be written");
        await this.writeBatch(batch.slice(0, half));
        await this.writeBatch(batch.slice(half));
        return;
      }
      const [p] = batch;
      this.log.error(
        { err, delivery: p!.outcome.deliveryId, endpoint: p!.outcome.endpointId, attempt: p!.outcome.attemptId },
        "attempt outcome cannot be written; its delivery is attempted again once its lease expires",
      );
      this.onUnwritable(p!.outcome, err);
      this.settle(batch, "unwritable");
      return;
    }
    // Settled after the follow-ups: the scheduler claims again when an
    // outcome is in, and a closed circuit's deliveries are due only once
    // released. (Still in inBatch meanwhile, for abandon().)
    if (!this.abandoned) await this.applyHealthChanges(changes);
    this.settle(batch, "stored");
  }

  /** Resolves the writes of `batch` not settled yet (by abandon()) with `result`. */
  private settle(batch: readonly Pending[], result: WriteResult): void {
    for (const p of batch) if (this.inBatch.delete(p)) p.done(result);
  }

  /**
   * Holds the deliveries of endpoints whose circuit opened, releases those
   * of closed ones, fails those of disabled ones. Each is retried on a
   * transient error like the outcomes themselves (until it lands or
   * abandon()), and one that fails for good does not keep the others from
   * being done.
   */
  private async applyHealthChanges(changes: HealthChanges): Promise<void> {
    for (const c of changes.opened) this.log.warn({ endpoint: c.endpointId, until: c.until }, "circuit opened");
    for (const c of changes.closed) this.log.info({ endpoint: c.endpointId }, "circuit closed");
    for (const c of changes.disabled) this.log.warn({ endpoint: c.endpointId, reason: c.reason }, "endpoint disabled");
    if (changes.opened.length === 0 && changes.closed.length === 0 && changes.disabled.length === 0) return;
    try {
      await this.onHealthChanges(changes);
    } catch (err) {
      this.log.error({ err }, "telling the scheduler of endpoint health changes failed");
    }
    // If given up (abandon(), or a permanent error), none of these is lost
    // for good: deliveries not held are skipped by the claim while the
    // circuit is open and held by the next sweep (see circuit-holds.ts), and
    // held ones come due when the hold would have ended anyway. A disabled
    // endpoint's live deliveries would wait until it is enabled again: that
    // is why each step is retried until it lands.
    const opened = changes.opened.map((c) => c.endpointId);
    const disabled = changes.disabled.map((c) => c.endpointId);
    await this.followUp("holding the deliveries of endpoints whose circuit opened", opened.length, () => holdForCircuit(this.sql, opened));
    await this.followUp("releasing the deliveries of endpoints whose circuit closed", changes.closed.length, () => releaseHeld(this.sql, changes.closed));
    await this.followUp("failing the live deliveries of disabled endpoints", disabled.length, () => failPendingOfDisabled(this.sql, disabled));
  }

  /** Runs one follow-up of `endpoints` endpoints (none: nothing to do), retrying transient errors; logs a permanent one. */
  private async followUp(what: string, endpoints: number, write: () => Promise<unknown>): Promise<void> {
    if (endpoints === 0 || this.abandoned) return;
    try {
      await retryTransient(write, {
        signal: this.abandoning.signal,
        onRetry: (err, failures, delayMs) => this.log.warn({ err, endpoints, failures, retryInMs: delayMs }, `${what} failed; retrying`),
      });
    } catch (err) {
      if (!this.abandoned) this.log.error({ err, endpoints }, `${what} failed`);
    }
  }
}
