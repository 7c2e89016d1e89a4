/**
 * The delivery scheduler: claims due deliveries from PostgreSQL, sends them,
 * and writes their outcomes back.
 *
 * States: `idle` (constructed) -> `running` (claiming and sending) ->
 * `draining` (no new claims; in-flight attempts finish) -> `stopped`.
 *
 * Wake-ups, fastest first: `nudge()` right after a local publish commits; a
 * LISTEN notification from any process's publish; a timer for the earliest
 * retry this process scheduled; and the poll, only as the fallback that
 * catches retries scheduled by other processes and leases of dead ones.
 *
 * Invariants:
 * - at most `maxInFlight` attempts are in flight in this process;
 * - a delivery is sent only while this process holds its lease; its outcome
 *   is written only while it still does (see record-outcomes.ts);
 * - an in-flight slot is freed only after its outcome is written, so a slow
 *   database slows claiming instead of piling outcomes up in memory.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { Sql } from "../store/sql.js";
import type { StoredRetryPolicy } from "../store/entities/index.js";
import { type ClaimedDelivery, claimDue } from "../store/sql/claim-due.js";
import { releaseLeases } from "../store/sql/record-outcomes.js";
import { decideOutcome, prepareHeaders } from "./dispatch.js";
import { DueListener } from "./due-listener.js";
import { HttpClient } from "./http-client.js";
import { OutcomeWriter } from "./outcome-writer.js";

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  sql: Sql;
  /** URL for the LISTEN connection. */
  databaseUrl: string;
  log: Logger;
  maxInFlight: number;
  claimBatchSize: number;
  pollIntervalMs: number;
  leaseMarginMs: number;
  requestTimeoutMs: number;
  responseBodyLimit: number;
  defaultRetryPolicy: StoredRetryPolicy;
  retryJitter: number;
}

type State = "idle" | "running" | "draining" | "stopped";

/** Claims and delivers due deliveries; see the module comment for its states. */
export class Scheduler {
  /** This process's lease owner id. */
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private state: State = "idle";
  private inFlight = 0;
  private claiming = false;
  private pumpAgain = false;
  private saturated = false;
  private aborting = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = Number.POSITIVE_INFINITY;
  private drained: (() => void) | undefined;
  private readonly http: HttpClient;
  private readonly writer: OutcomeWriter;
  private readonly listener: DueListener;

  constructor(private readonly options: SchedulerOptions) {
    this.http = new HttpClient({ bodyLimit: options.responseBodyLimit });
    this.writer = new OutcomeWriter(options.sql, this.workerId, options.log);
    this.listener = new DueListener(options.databaseUrl, () => this.nudge(), options.log);
  }

  /** Starts claiming and listening. */
  async start(): Promise<void> {
    if (this.state !== "idle") throw new Error(`scheduler cannot start from ${this.state}`);
    this.state = "running";
    this.pollTimer = setInterval(() => this.nudge(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    await this.listener.start();
    this.nudge();
  }

  /** Asks for a claim now, e.g. right after a local publish committed. */
  nudge(): void {
    if (this.state !== "running") return;
    if (this.claiming) {
      this.pumpAgain = true;
      return;
    }
    this.claiming = true;
    void this.claimLoop().finally(() => {
      this.claiming = false;
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.nudge();
      }
    });
  }

  /**
   * Stops claiming, lets in-flight attempts finish for up to `timeoutMs`,
   * then aborts the rest and gives their leases back (due at once) so another
   * process takes them over without waiting.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.state === "stopped" || this.state === "draining") return;
    this.state = "draining";
    clearInterval(this.pollTimer);
    clearTimeout(this.wakeTimer);
    await this.listener.stop();
    if (this.inFlight > 0) {
      const drained = new Promise<void>((resolve) => {
        this.drained = resolve;
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const result = await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      if (result === "timeout") {
        this.aborting = true;
        await this.http.destroy();
        await drained;
      }
    }
    await this.writer.flush();
    if (this.aborting) {
      const released = await releaseLeases(this.options.sql, this.workerId).catch((err: unknown) => {
        this.options.log.error({ err }, "could not release leases; they expire by themselves");
        return 0;
      });
      this.options.log.info({ released }, "released unfinished deliveries");
    }
    await this.http.close();
    this.state = "stopped";
  }

  private async claimLoop(): Promise<void> {
    const { sql, maxInFlight, claimBatchSize, leaseMarginMs, requestTimeoutMs, log } = this.options;
    while (this.state === "running") {
      const free = maxInFlight - this.inFlight;
      if (free <= 0) {
        this.saturated = true;
        return;
      }
      const wanted = Math.min(free, claimBatchSize);
      let claimed: ClaimedDelivery[];
      try {
        claimed = await claimDue(sql, this.workerId, wanted, leaseMarginMs, requestTimeoutMs);
      } catch (err) {
        log.error({ err }, "claiming due deliveries failed; retrying at the next poll");
        return;
      }
      for (const delivery of claimed) this.run(delivery);
      if (claimed.length < wanted) {
        this.saturated = false;
        return;
      }
    }
  }

  private run(delivery: ClaimedDelivery): void {
    this.inFlight++;
    void this.attempt(delivery)
      .catch((err: unknown) => this.options.log.error({ err, delivery: delivery.id }, "delivery attempt crashed"))
      .finally(() => {
        this.inFlight--;
        if (this.inFlight === 0) this.drained?.();
        if (this.saturated) this.nudge();
      });
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const { requestTimeoutMs, defaultRetryPolicy, retryJitter, log } = this.options;
    const startedAt = new Date();
    const headers = prepareHeaders(delivery, startedAt);
    const started = performance.now();
    const result = await this.http.post(
      new URL(delivery.url),
      headers,
      delivery.body,
      delivery.timeoutMs ?? requestTimeoutMs,
    );
    const durationMs = Math.round(performance.now() - started);
    // Aborted by shutdown: not the endpoint's fault, so no attempt is used up;
    // the lease is given back in stop().
    if (this.aborting) return;
    const outcome = decideOutcome(delivery, result, startedAt, durationMs, {
      defaultPolicy: defaultRetryPolicy,
      jitter: retryJitter,
    });
    log.debug(
      { delivery: delivery.id, endpoint: delivery.endpointId, attempt: outcome.attemptNumber, status: result.status, error: outcome.error },
      "attempt finished",
    );
    await this.writer.write(outcome);
    if (outcome.nextAttemptAt) this.wakeUpAt(outcome.nextAttemptAt.getTime());
  }

  /** Arms a timer for a retry this process scheduled, if it is the earliest. */
  private wakeUpAt(at: number): void {
    if (at >= this.wakeAt && this.wakeTimer) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeAt = Number.POSITIVE_INFINITY;
      this.wakeTimer = undefined;
      this.nudge();
    }, Math.max(0, at - Date.now()));
    this.wakeTimer.unref();
  }
}
