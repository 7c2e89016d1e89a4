/**
 * Group commit for attempt outcomes: while one batch is being written, the
 * outcomes that finish meanwhile gather and go in the next statement, and a
 * batch of successes smaller than FULL_BATCH waits up to LINGER_MS for more
 * first (a failure is written at once: it may open the endpoint's circuit).
 * Nothing waits on these writes but status readers (the request's slot is
 * already free and the lease covers the write), and PostgreSQL's cost per
 * outcome falls with the batch: measured on 20,000 deliveries, 133 us per
 * outcome in batches of 16, 66 us in batches of 256.
 * A failed write is retried (the database may be restarting) until it lands,
 * or until the scheduler's stop gives up on it ({@link OutcomeWriter.abandon}):
 * an outcome never written leaves its delivery leased, and the delivery is
 * attempted again once the lease expires.
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

/** A batch this large is written without waiting. */
const FULL_BATCH = 128;
/** How long a smaller batch waits for more outcomes. */
const LINGER_MS = 5;

interface Pending {
  outcome: AttemptOutcome;
  done: () => void;
}

/** Writes attempt outcomes in batches; `write` resolves once its outcome is stored. */
export class OutcomeWriter {
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  /** Ends the current linger early (see flush). */
  private hurry: (() => void) | undefined;
  /** Flushes waiting: no lingering. */
  private flushing = 0;
  /** Set by abandon(): nothing more is written or retried. */
  private abandoned = false;
  /** Ends the wait before a retry early (see abandon). */
  private wakeRetry: (() => void) | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly rules: HealthRules,
    private readonly log: Logger,
    /**
     * Told of circuits that opened and endpoints that were disabled before
     * their deliveries are held or failed (the scheduler gives back those it
     * buffered).
     */
    private readonly onHealthChanges: (changes: HealthChanges) => Promise<void> = async () => {},
    private readonly maxBatch = 500,
  ) {}

  /**
   * Queues one outcome; resolves once it is stored and its follow-ups
   * (circuit holds and releases) are done, or given up by {@link abandon}.
   */
  write(outcome: AttemptOutcome): Promise<void> {
    if (this.abandoned) return Promise.resolve();
    return new Promise((done) => {
      this.queue.push({ outcome, done });
      this.writing ??= this.drain();
    });
  }

  /**
   * Gives up every outcome not stored yet (for a stop that cannot wait any
   * longer, the database being down): their `write` calls resolve now and
   * no more writes or retries are made; a batch being written may still
   * land. Returns how many were given up. Their deliveries keep their
   * leases and are attempted again once those expire.
   */
  abandon(): number {
    this.abandoned = true;
    const given = [...this.inBatch, ...this.queue];
    this.queue = [];
    this.inBatch = [];
    for (const p of given) p.done();
    this.hurry?.();
    this.wakeRetry?.();
    return given.length;
  }

  /** Resolves once everything queued so far is stored (at once after abandon()). */
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

  /** The batch being written, given up too by abandon(). */
  private inBatch: Pending[] = [];

  private async drain(): Promise<void> {
    let failures = 0;
    while (this.queue.length > 0 && !this.abandoned) {
      await this.linger();
      if (this.abandoned) break;
      const batch = this.queue.splice(0, this.maxBatch);
      this.inBatch = batch;
      let changes: HealthChanges;
      try {
        changes = await recordOutcomes(
          this.sql,
          this.workerId,
          batch.map((p) => p.outcome),
          this.rules,
        );
      } catch (err) {
        this.inBatch = [];
        if (this.abandoned) break;
        failures++;
        this.log.error({ err, outcomes: batch.length }, "writing attempt outcomes failed; retrying");
        this.queue.unshift(...batch);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(5_000, 100 * 2 ** failures));
          this.wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRetry = undefined;
        continue;
      }
      failures = 0;
      // Resolved after the follow-ups: the scheduler claims again when an
      // outcome is in, and a closed circuit's deliveries are due only once
      // released. (Still in inBatch meanwhile, for abandon().)
      if (!this.abandoned) await this.applyHealthChanges(changes);
      this.inBatch = [];
      for (const p of batch) p.done();
    }
    this.writing = undefined;
  }

  /** Holds the deliveries of endpoints whose circuit opened, releases those of closed ones, fails those of disabled ones. */
  private async applyHealthChanges(changes: HealthChanges): Promise<void> {
    try {
      for (const c of changes.opened) this.log.warn({ endpoint: c.endpointId, until: c.until }, "circuit opened");
      for (const c of changes.closed) this.log.info({ endpoint: c.endpointId }, "circuit closed");
      for (const c of changes.disabled) this.log.warn({ endpoint: c.endpointId, reason: c.reason }, "endpoint disabled");
      if (changes.opened.length > 0 || changes.closed.length > 0 || changes.disabled.length > 0) await this.onHealthChanges(changes);
      await holdForCircuit(
        this.sql,
        changes.opened.map((c) => c.endpointId),
      );
      await releaseHeld(this.sql, changes.closed);
      await failPendingOfDisabled(
        this.sql,
        changes.disabled.map((c) => c.endpointId),
      );
    } catch (err) {
      // Not fatal: deliveries not held are skipped by the claim while the
      // circuit is open and held by the next sweep (see circuit-holds.ts),
      // held ones come due when the hold would have ended anyway, and a
      // disabled endpoint's deliveries wait.
      this.log.error({ err }, "applying endpoint health changes failed");
    }
  }
}
