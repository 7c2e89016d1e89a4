/**
 * Group commit for attempt outcomes: while one batch is being written, the
 * outcomes that finish meanwhile gather and go in the next statement. At low
 * load an outcome is written at once; under load a statement carries many.
 * A failed write is retried (the database may be restarting) until it lands.
 */
import type { Logger } from "pino";
import type { Sql } from "../store/sql.js";
import { type AttemptOutcome, recordOutcomes } from "../store/sql/record-outcomes.js";

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
    private readonly log: Logger,
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
      try {
        await recordOutcomes(
          this.sql,
          this.workerId,
          batch.map((p) => p.outcome),
        );
        failures = 0;
        for (const p of batch) p.done();
      } catch (err) {
        failures++;
        this.log.error({ err, outcomes: batch.length }, "writing attempt outcomes failed; retrying");
        this.queue.unshift(...batch);
        await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** failures)));
      }
    }
    this.writing = undefined;
  }
}
