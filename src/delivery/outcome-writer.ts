/**
 * Group commit for attempt outcomes: while one batch is being written, the
 * outcomes that finish meanwhile gather and go in the next statement. At low
 * load an outcome is written at once; under load a statement carries many.
 * A failed write is retried (the database may be restarting) until it lands.
 * After each batch, endpoints whose circuit opened have their waiting
 * deliveries held until the cool-down ends, and endpoints that were disabled
 * (410 Gone, or failing too long) have theirs failed.
 */
import type { Logger } from "pino";
import type { Sql } from "../store/sql.js";
import {
  type AttemptOutcome,
  failPendingOfDisabled,
  type HealthChanges,
  type HealthRules,
  holdForCircuit,
  recordOutcomes,
} from "../store/sql/record-outcomes.js";

interface Pending {
  outcome: AttemptOutcome;
  done: () => void;
}

/** Writes attempt outcomes in batches; `write` resolves once its outcome is stored. */
export class OutcomeWriter {
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly rules: HealthRules,
    private readonly log: Logger,
    /** Told when an endpoint's circuit opened, with when its cool-down ends. */
    private readonly onCircuitOpened: (until: Date) => void = () => {},
    private readonly maxBatch = 500,
  ) {}

  /** Queues one outcome; resolves once it is stored. */
  write(outcome: AttemptOutcome): Promise<void> {
    return new Promise((done) => {
      this.queue.push({ outcome, done });
      this.writing ??= this.drain();
    });
  }

  /** Resolves once everything queued so far is stored. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    let failures = 0;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      let changes: HealthChanges;
      try {
        changes = await recordOutcomes(
          this.sql,
          this.workerId,
          batch.map((p) => p.outcome),
          this.rules,
        );
      } catch (err) {
        failures++;
        this.log.error({ err, outcomes: batch.length }, "writing attempt outcomes failed; retrying");
        this.queue.unshift(...batch);
        await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** failures)));
        continue;
      }
      failures = 0;
      for (const p of batch) p.done();
      await this.applyHealthChanges(changes);
    }
    this.writing = undefined;
  }

  /** Holds the deliveries of endpoints whose circuit opened; fails those of disabled ones. */
  private async applyHealthChanges(changes: HealthChanges): Promise<void> {
    try {
      for (const c of changes.opened) {
        this.log.warn({ endpoint: c.endpointId, until: c.until }, "circuit opened");
        this.onCircuitOpened(c.until);
      }
      for (const c of changes.disabled) this.log.warn({ endpoint: c.endpointId, reason: c.reason }, "endpoint disabled");
      await holdForCircuit(
        this.sql,
        changes.opened.map((c) => c.endpointId),
      );
      await failPendingOfDisabled(
        this.sql,
        changes.disabled.map((c) => c.endpointId),
      );
    } catch (err) {
      // Not fatal: held deliveries are skipped by the claim while the circuit
      // is open, and a disabled endpoint's deliveries wait.
      this.log.error({ err }, "applying endpoint health changes failed");
    }
  }
}
