/**
 * Applies the retention period (HOOKLINE_RETENTION_DAYS): every so often (a tenth
 * of the period, at most every 10 minutes) removes deliveries, attempts,
 * events and status log rows older than it (see store/sql/retention.ts).
 * Runs in processes with the scheduler on; several may sweep at once
 * (they skip each other's rows).
 */
import type { Logger } from "pino";
import { pruneOlderThan } from "../store/sql/retention.js";
import type { Sql } from "../store/sql.js";

const MAX_INTERVAL_MS = 10 * 60_000;

/** Sweeps periodically until stopped. */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly sql: Sql,
    private readonly retentionMs: number,
    private readonly log: Logger,
  ) {}

  /** How often it sweeps. */
  get intervalMs(): number {
    return Math.min(MAX_INTERVAL_MS, Math.max(100, Math.floor(this.retentionMs / 10)));
  }

  /** Starts sweeping (the first sweep after one interval). */
  start(): void {
    this.schedule();
  }

  /** Stops, waiting for a sweep in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One sweep now. */
  async sweep(): Promise<void> {
    const cutoff = new Date(Date.now() - this.retentionMs);
    try {
      const pruned = await pruneOlderThan(this.sql, cutoff);
      if (pruned.deliveries + pruned.events + pruned.updates + pruned.keys > 0) this.log.info({ ...pruned, cutoff }, "retention: removed old data");
    } catch (err) {
      this.log.warn({ err }, "retention sweep failed; trying again at the next one");
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweep().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }
}
