/**
 * The delivery scheduler: the coordinator of one process's delivery
 * engine. It owns no count of deliveries itself; it wires the units that
 * do and moves them through its modes:
 * - {@link Lanes} (lanes.ts): every delivery claimed here, buffered or in
 *   flight, and every outcome not yet stored, per endpoint, tenant and in
 *   all; which may start next, and what the next claim may take;
 * - {@link Claimer} (claimer.ts): when and how much to claim, the claim
 *   itself, and the room publish statements may lease in;
 * - {@link WakeSchedule} (wake-schedule.ts): when to look for work
 *   (NOTIFY, known due moments, finished attempts, the poll);
 * - the attempt's stages (dispatch.ts: prepare, send, decide) and the
 *   {@link OutcomeWriter} (outcome-writer.ts), which stores outcomes in
 *   batches.
 *
 * Modes, each entered by one method that asserts the mode it leaves and the
 * invariants of the one it enters (see setMode*):
 * - `idle`: constructed; nothing claimed, nothing armed;
 * - `running`: claiming, starting attempts, waking up;
 * - `draining`: stop() was called: no new claims or starts; buffered
 *   deliveries are given back, attempts in flight finish (or are aborted at
 *   the stop's timeout) and their outcomes are written;
 * - `stopped`: nothing in flight or unwritten, leases given back.
 * idle -> running -> draining -> stopped, or idle -> draining (a stop before
 * the start). Any other change throws.
 *
 * Claimed deliveries go through a ready buffer (the lanes' queues): each
 * endpoint's lane may lease a few more than it has room for (see lanes.ts),
 * and those start the moment a request of theirs finishes, without a claim
 * round trip. That also lets each claim carry many rows, which is what
 * PostgreSQL's cost per delivery depends on. A buffered delivery whose lease
 * no longer covers a whole attempt is given back instead of sent, as are the
 * buffered deliveries of an endpoint whose circuit opened, and all of them on
 * shutdown.
 *
 * Invariants:
 * - at most `maxInFlight` attempts are in flight in this process, and at most
 *   each endpoint's share of its own limit (see lanes.ts); at most
 *   `maxInFlight` more wait in the ready buffer;
 * - a delivery is sent only while this process holds its lease; its outcome
 *   is written only while it still does (see record-outcomes.ts);
 * - a request's slot is freed when its response is in; its outcome is
 *   written in the background, still under its lease, and claiming pauses
 *   while `maxInFlight` outcomes wait, so a slow database slows claiming
 *   instead of piling outcomes up in memory.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ClaimedDelivery } from "../domain/delivery/claimed-delivery.js";
import type { AttemptOutcome, HealthChanges, HealthRules } from "../domain/delivery/outcome.js";
import type { StoredRetryPolicy } from "../domain/delivery/retry-policy.js";
import { DeliveryState } from "../domain/delivery/state.js";
import type { SecretBox } from "../signing/secret-box.js";
import { classifyDatabaseError } from "../store/database-errors.js";
import { sweepBlocked } from "../store/sql/circuit-holds.js";
import type { PublishLease } from "../store/sql/insert-events.js";
import { releaseLeases, releaseUnstarted } from "../store/sql/release-leases.js";
import { unparkOrphans } from "../store/sql/unpark.js";
import { heartbeat, unregister } from "../store/sql/workers.js";
import type { Sql } from "../store/sql.js";
import type { AddressGuard } from "./address-guard.js";
import { retryTransient } from "./background-retry.js";
import type { RetryRules } from "./backoff.js";
import { Claimer } from "./claimer.js";
import { decideOutcome, type OutcomeContext, prepareRequest, type SentRequest, sendRequest } from "./dispatch.js";
import { HttpClient } from "./http-client.js";
import { Lanes } from "./lanes.js";
import { OutcomeWriter } from "./outcome-writer.js";
import { WakeSchedule } from "./wake-schedule.js";

/** Options of {@link Scheduler}. */
export interface SchedulerOptions extends RetryRules, HealthRules {
  sql: Sql;
  /** URL for the LISTEN connection. */
  databaseUrl: string;
  /**
   * The application_name of this process's pool connections: their
   * publishes' wake-ups are skipped, since take() gets those deliveries.
   */
  applicationName?: string;
  log: Logger;
  maxInFlight: number;
  claimBatchSize: number;
  pollIntervalMs: number;
  leaseMarginMs: number;
  requestTimeoutMs: number;
  responseBodyLimit: number;
  defaultRetryPolicy: StoredRetryPolicy;
  /** In-flight limit of endpoints that set none, over all processes. */
  endpointMaxInFlight: number;
  /** Refuses private and other internal destinations. */
  addressGuard: AddressGuard;
  /** Opens the endpoint secrets claims return sealed. */
  secrets: SecretBox;
  /** Told of every attempt, and of outcomes the database refused for good (see metrics/metrics.ts). */
  metrics?: {
    attempt(responseStatus: number, errorClass: string, durationMs: number, ended: "succeeded" | "failed" | null): void;
    outcomeUnwritable(): void;
  };
}

/** The scheduler's modes; see the module comment. */
export type SchedulerMode = "idle" | "running" | "draining" | "stopped";

/** How often a scheduler says it is alive, and how long until it counts as gone. */
const HEARTBEAT_MS = 5_000;
const LIVE_WITHIN_MS = 15_000;
/** Heartbeats between two sweeps for orphaned parked deliveries (see unpark.ts). */
const UNPARK_EVERY_BEATS = 12;

/** Claims and delivers due deliveries; see the module comment for its modes. */
export class Scheduler {
  /** This process's lease owner id. */
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private currentMode: SchedulerMode = "idle";
  /** Unstarted deliveries whose leases are being given back. */
  private releasing: Promise<void> = Promise.resolve();
  /** Attempts were aborted by a stop's timeout (see stop). */
  private aborting = false;
  /** Aborted once a stop's timeout has passed: what still waits on the database then is given up. */
  private readonly stopDeadline = new AbortController();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beats = 0;
  /** Resolves the stop's wait for attempts and outcomes (see stop). */
  private drained: (() => void) | undefined;
  private readonly http: HttpClient;
  private readonly writer: OutcomeWriter;
  private readonly lanes: Lanes;
  private readonly claimer: Claimer;
  private readonly wakes: WakeSchedule;
  private readonly outcomeContext: OutcomeContext;
  private readonly openSecrets: (sealed: ClaimedDelivery["secrets"]) => ClaimedDelivery["secrets"];

  constructor(private readonly options: SchedulerOptions) {
    this.http = new HttpClient({ bodyLimit: options.responseBodyLimit, guard: options.addressGuard });
    this.writer = new OutcomeWriter({
      sql: options.sql,
      workerId: this.workerId,
      rules: options,
      log: options.log,
      onHealthChanges: (changes) => this.onHealthChanges(changes),
      onUnwritable: () => options.metrics?.outcomeUnwritable(),
    });
    this.wakes = new WakeSchedule({
      wake: () => this.nudge(),
      pollIntervalMs: options.pollIntervalMs,
      listen: { databaseUrl: options.databaseUrl, log: options.log, applicationName: options.applicationName },
    });
    this.lanes = new Lanes({
      defaultMaxInFlight: options.endpointMaxInFlight,
      capacity: options.maxInFlight,
      circuitFailureThreshold: options.circuitFailureThreshold,
      defaultTimeoutMs: options.requestTimeoutMs,
      startMarginMs: options.leaseMarginMs / 2,
      onTokenAt: (at) => this.wakes.at(at),
    });
    this.claimer = new Claimer({
      sql: options.sql,
      log: options.log,
      workerId: this.workerId,
      lanes: this.lanes,
      maxInFlight: options.maxInFlight,
      claimBatchSize: options.claimBatchSize,
      leaseMarginMs: options.leaseMarginMs,
      requestTimeoutMs: options.requestTimeoutMs,
      endpointMaxInFlight: options.endpointMaxInFlight,
      circuitFailureThreshold: options.circuitFailureThreshold,
      bufferLow: (endpointId) => this.lanes.bufferLow(endpointId),
      onClaimed: (claimed) => this.admit(claimed),
      wakeAt: (at) => this.wakes.at(at),
    });
    this.outcomeContext = {
      defaultPolicy: options.defaultRetryPolicy,
      jitter: options.jitter,
      throttleMinDelayMs: options.throttleMinDelayMs,
      retryAfterCapMs: options.retryAfterCapMs,
    };
    this.openSecrets = (sealed) => options.secrets.openAll(sealed);
  }

  /** The mode the scheduler is in. */
  get mode(): SchedulerMode {
    return this.currentMode;
  }

  /** Attempts in flight and deliveries in the ready buffer, now. */
  load(): { inFlight: number; buffered: number } {
    return { inFlight: this.lanes.inFlight, buffered: this.lanes.buffered };
  }

  /** In-flight attempts of the `top` busiest endpoints here, and of all others together. */
  busiestEndpoints(top: number): { endpoints: Array<[string, number]>; others: number } {
    return this.lanes.busiest(top);
  }

  /** idle -> running: nothing may have been claimed before. */
  private setModeRunning(): void {
    if (this.currentMode !== "idle") throw new Error(`scheduler cannot start from ${this.currentMode}`);
    assert.ok(this.lanes.inFlight === 0 && this.lanes.buffered === 0, "Cannot enter running mode with deliveries already claimed");
    this.currentMode = "running";
  }

  /** idle or running -> draining: no new claims, no new starts. */
  private setModeDraining(): void {
    assert.ok(this.currentMode === "idle" || this.currentMode === "running", `Cannot enter draining mode from ${this.currentMode}`);
    this.currentMode = "draining";
  }

  /** draining -> stopped: nothing in flight, buffered or unwritten is left. */
  private setModeStopped(): void {
    assert.equal(this.currentMode, "draining", `Cannot enter stopped mode from ${this.currentMode}`);
    assert.equal(this.lanes.inFlight, 0, "Cannot enter stopped mode with attempts in flight");
    assert.equal(this.lanes.unwritten, 0, "Cannot enter stopped mode with outcomes unwritten");
    this.currentMode = "stopped";
  }

  /** Starts claiming and listening. */
  async start(): Promise<void> {
    this.setModeRunning();
    await this.beat();
    this.heartbeatTimer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
    await this.wakes.start();
    this.nudge();
  }

  /**
   * Takes deliveries this process just published: claimed by primary key
   * (the same rules as any claim, without reading the due window), which
   * is what makes an idle publish reach its receiver in milliseconds. Those
   * it cannot take now (their endpoint at its limit, another process was
   * faster) are left to the ordinary claims.
   */
  take(deliveryIds: readonly string[]): void {
    if (this.currentMode !== "running") return;
    this.claimer.take(deliveryIds);
  }

  /**
   * The room a publish statement may lease new deliveries in (see
   * insert-events.ts and Claimer.beginLease); undefined when there is none,
   * or this scheduler is not running; a `parts`th of the room when up to
   * `parts` statements may run at once. Each lease given is ended with
   * endLease.
   */
  beginLease(parts = 1): PublishLease | undefined {
    if (this.currentMode !== "running") return undefined;
    return this.claimer.beginLease(parts);
  }

  /**
   * A publish statement given `lease` ended, leasing `leased` to this
   * process (none if it failed): they go in their lanes like claimed
   * ones, or back if the scheduler stopped meanwhile.
   */
  endLease(lease: PublishLease, leased: readonly ClaimedDelivery[]): void {
    this.claimer.endLease(lease);
    if (leased.length === 0) return;
    if (this.currentMode !== "running") {
      void this.release(leased);
      return;
    }
    this.admit(leased);
  }

  /** Claimed or leased deliveries enter their lanes, and those that may start do. */
  private admit(deliveries: readonly ClaimedDelivery[]): void {
    const now = Date.now();
    for (const delivery of deliveries) this.lanes.add(delivery, now);
    this.pump();
  }

  /** Asks for a claim now (a notification, a timer, the poll, a finished attempt). */
  nudge(): void {
    if (this.currentMode !== "running") return;
    this.pump();
    this.claimer.want();
  }

  /**
   * Stops claiming, lets in-flight attempts finish and their outcomes be
   * written for up to `timeoutMs`, then aborts the rest, gives up unwritten
   * outcomes, and gives the leases back (due at once) so another process
   * takes them over without waiting. The timeout runs from the start of the
   * stop: giving back the ready buffer's leases counts against it too.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.currentMode === "stopped" || this.currentMode === "draining") return;
    this.setModeDraining();
    clearInterval(this.heartbeatTimer);
    const quiet = this.wakes.stop();
    const deadline = setTimeout(() => this.stopDeadline.abort(), timeoutMs);
    // What waits on the database waits until the deadline at most: a
    // database that does not answer at all (a hung connection, rather than
    // a refused one) would hold the stop for ever.
    const untilDeadline = (p: Promise<unknown> | undefined) => Promise.race([p, aborted(this.stopDeadline.signal)]);
    await quiet;
    // A claim running now lands its rows in the ready buffer first.
    await untilDeadline(this.claimer.close());
    await untilDeadline(this.release(this.lanes.drop(() => true)));
    if (this.lanes.inFlight > 0 || this.lanes.unwritten > 0) {
      const drained = new Promise<void>((resolve) => {
        this.drained = resolve;
      });
      await Promise.race([drained, aborted(this.stopDeadline.signal)]);
      if (this.lanes.inFlight > 0 || this.lanes.unwritten > 0) {
        this.aborting = true;
        await this.http.destroy();
        // Outcomes the database did not take in time (it is down, say) are
        // given up: the stop stays within the timeout, and their deliveries
        // are attempted again when their leases expire.
        const abandoned = this.writer.abandon();
        if (abandoned.length > 0) {
          this.options.log.warn(
            { outcomes: abandoned.length, deliveries: abandoned.map((o) => o.deliveryId) },
            "attempt outcomes not written by the shutdown timeout; their deliveries are retried once their leases expire",
          );
        }
        await drained;
      }
    }
    await untilDeadline(this.writer.flush());
    await untilDeadline(this.releasing);
    if (this.aborting) {
      const released = await releaseLeases(this.options.sql, this.workerId).catch((err: unknown) => {
        this.options.log.error({ err }, "could not release leases; they expire by themselves");
        return 0;
      });
      this.options.log.info({ released }, "released unfinished deliveries");
    }
    await unregister(this.options.sql, this.workerId).catch(() => {});
    clearTimeout(deadline);
    await this.http.close();
    this.setModeStopped();
  }

  private async beat(): Promise<void> {
    try {
      this.lanes.setWorkers(await heartbeat(this.options.sql, this.workerId, LIVE_WITHIN_MS));
      // Which endpoints are blocked, whoever blocked them, and their
      // deliveries that are due anyway put out of the claim's way (see
      // circuit-holds.ts).
      const sweep = await sweepBlocked(this.options.sql);
      this.lanes.setBlocked(sweep.blocked);
      // Their held deliveries come due when the block ends: claim then.
      for (const b of sweep.blocked) this.wakes.at(b.until.getTime());
      if (sweep.held > 0) this.options.log.debug({ deliveries: sweep.held }, "held deliveries of blocked endpoints");
      if (this.beats++ % UNPARK_EVERY_BEATS === 0) {
        const unparked = await unparkOrphans(this.options.sql);
        if (unparked > 0) {
          this.options.log.warn({ unparked }, "made parked ordered deliveries due");
          this.nudge();
        }
      }
    } catch (err) {
      // Tried again at the next heartbeat.
      if (classifyDatabaseError(err) === "transient") this.options.log.warn({ err }, "scheduler heartbeat failed; trying again at the next one");
      else this.options.log.error({ err }, "scheduler heartbeat failed; trying again at the next one");
    }
  }

  /**
   * Starts what the lanes let start now (see Lanes.next), and gives back
   * the buffered deliveries whose leases ran too short meanwhile.
   *
   * Attempts sent and not yet stored (in flight, or finished and waiting for
   * the outcome writer) stay under 2 x maxInFlight: those are what a crash
   * of this process sends twice, so the bound on duplicates holds however
   * far the writer falls behind (a slow or starved database, a busy CPU).
   */
  private pump(): void {
    if (this.currentMode !== "running" || this.lanes.buffered === 0) return;
    const now = Date.now();
    for (let delivery = this.lanes.next(now); delivery !== undefined; delivery = this.lanes.next(now)) this.run(delivery);
    const expired = this.lanes.takeExpired();
    if (expired.length > 0) {
      this.options.log.warn({ deliveries: expired.length }, "buffered deliveries outlived their lease margin; giving them back");
      // Due again once given back: claimed anew with a fresh lease.
      void this.release(expired).then(() => {
        this.claimer.markLeftBehind();
        this.wakes.soon();
      });
    }
  }

  /**
   * Gives back the leases of unstarted deliveries (see releaseUnstarted),
   * retrying transient errors until the stop's deadline, and only while
   * their leases have more than half the lease margin left: once a lease
   * has run out this process may claim the delivery again, and a late
   * release would give that new lease away. What is not given back expires
   * by itself.
   */
  private release(deliveries: readonly ClaimedDelivery[]): Promise<void> {
    if (deliveries.length === 0) return this.releasing;
    let earliest = Number.POSITIVE_INFINITY;
    for (const d of deliveries) earliest = Math.min(earliest, d.leaseUntil.getTime());
    const leasesLeft = AbortSignal.timeout(Math.max(0, earliest - Date.now() - this.options.leaseMarginMs / 2));
    const signal = AbortSignal.any([this.stopDeadline.signal, leasesLeft]);
    this.releasing = this.releasing.then(() =>
      retryTransient(() => releaseUnstarted(this.options.sql, this.workerId, deliveries), {
        signal,
        onRetry: (err, failures, delayMs) =>
          this.options.log.warn({ err, deliveries: deliveries.length, failures, retryInMs: delayMs }, "giving back unstarted deliveries failed; retrying"),
      }).catch((err: unknown) => {
        this.options.log.warn({ err, deliveries: deliveries.length }, "could not give back unstarted deliveries; their leases expire by themselves");
      }),
    );
    return this.releasing;
  }

  /**
   * An endpoint's circuit opened or it was disabled: its buffered deliveries
   * are given back (held until the cool-down ends) instead of being sent.
   */
  private async onHealthChanges(changes: HealthChanges): Promise<void> {
    for (const c of changes.opened) {
      this.lanes.block(c.endpointId, c.until.getTime());
      this.wakes.at(c.until.getTime());
    }
    for (const c of [...changes.closed, ...changes.disabled]) this.lanes.unblock(c.endpointId);
    // Their held deliveries are released once the batch's follow-ups are
    // done, before its writes resolve: those ask for a claim (see record).
    if (changes.closed.length > 0) this.claimer.markLeftBehind();
    const affected = new Set([...changes.opened, ...changes.disabled].map((c) => c.endpointId));
    if (affected.size > 0) await this.release(this.lanes.drop((id) => affected.has(id)));
  }

  /**
   * One attempt, started by pump (already counted in flight by its lane):
   * prepare and send it, then settle it.
   */
  private run(delivery: ClaimedDelivery): void {
    let sending: Promise<SentRequest>;
    try {
      sending = sendRequest(this.http, prepareRequest(delivery, this.openSecrets, this.options.requestTimeoutMs));
    } catch (err) {
      sending = Promise.reject(err);
    }
    sending.then(
      (sent) => this.settle(delivery, sent),
      (err: unknown) => this.crashed(delivery, err),
    );
  }

  /**
   * The last stage: the outcome of a sent attempt (see decideOutcome),
   * handed to the outcome writer; then its lane is settled. Aborted by
   * shutdown, an attempt is not the endpoint's fault: no attempt is used
   * up, and its lease is given back in stop().
   */
  private settle(delivery: ClaimedDelivery, sent: SentRequest): void {
    if (this.aborting) {
      this.finished(delivery, undefined);
      return;
    }
    let outcome: AttemptOutcome;
    try {
      outcome = decideOutcome(delivery, sent.result, sent.startedAt, sent.durationMs, this.outcomeContext);
      this.options.metrics?.attempt(
        sent.result.status,
        sent.result.error?.class ?? "",
        sent.durationMs,
        outcome.status === DeliveryState.Succeeded ? "succeeded" : outcome.status === DeliveryState.Failed ? "failed" : null,
      );
      logAttempt(this.options.log, delivery, outcome);
    } catch (err) {
      this.crashed(delivery, err);
      return;
    }
    this.record(outcome, delivery.ordered);
    this.finished(delivery, { durationMs: sent.durationMs, success: outcome.success });
  }

  private crashed(delivery: ClaimedDelivery, err: unknown): void {
    this.options.log.error({ err, delivery: delivery.id }, "delivery attempt crashed");
    this.finished(delivery, undefined);
  }

  /**
   * The attempt's slot is free (with `ended`, its outcome was recorded):
   * start what may start, and ask for a refill claim, made once the
   * endpoint's ready buffer runs low (see Claimer.refill).
   */
  private finished(delivery: ClaimedDelivery, ended: { durationMs: number; success: boolean } | undefined): void {
    this.lanes.settle(delivery.endpointId, ended);
    if (this.lanes.inFlight === 0 && this.lanes.unwritten === 0) this.drained?.();
    this.pump();
    // Only if claims left work for want of room (see Claimer.mayHaveDue):
    // otherwise the claim finds nothing, and a quiet process made one per
    // delivery.
    if (this.claimer.mayHaveDue()) this.claimer.refill(delivery.endpointId);
  }

  /**
   * Writes an outcome in the background: the request's slot is freed next
   * (the endpoint's capacity is about requests), and the lease covers the
   * write. Claiming pauses while `maxInFlight` outcomes wait to be written,
   * and starting attempts while in-flight plus unwritten reach twice that
   * (see Lanes.next).
   *
   * Once it is written, a claim is asked for only when the write may have
   * made work claimable (a refill, see Claimer.refill, in the last case): the attempt failed (its lane was held for its
   * failures while unwritten, and the claims left the endpoint out), its
   * endpoint is ordered (the next delivery was let out of the parking), a
   * claim was held back for want of room (Claimer.starvedOfRoom: room
   * counts unwritten outcomes), or the claimer may have work waiting
   * (Claimer.mayHaveDue: work left behind, a closed circuit's held
   * deliveries released; see onHealthChanges) and the endpoint's buffer ran
   * half empty (see bufferLow). A success of an ordinary endpoint in a
   * quiet process changes nothing a claim could find: asking anyway was one
   * claim per delivery that found nothing, half the statements of a quiet
   * process (2.1 of 4.2 per event at 10 events/s).
   */
  private record(outcome: AttemptOutcome, ordered: boolean): void {
    void this.writer.write(outcome).finally(() => {
      this.lanes.written(outcome.endpointId);
      // A lane held for its failures may go on now (see lanes.ts).
      this.pump();
      if (this.lanes.inFlight === 0 && this.lanes.unwritten === 0) this.drained?.();
      if (!outcome.success || ordered || this.claimer.starvedOfRoom) this.wakes.soon();
      else if (this.claimer.mayHaveDue()) this.claimer.refill(outcome.endpointId);
    });
    if (outcome.nextAttemptAt) this.wakes.at(outcome.nextAttemptAt.getTime());
  }
}

/**
 * One line per attempt: debug when it succeeded, warn when it failed (with
 * what comes next). Ids, status and error only; never the payload, the
 * headers or the response body.
 */
function logAttempt(log: Logger, delivery: ClaimedDelivery, outcome: AttemptOutcome): void {
  const line = {
    delivery: delivery.id,
    event: delivery.eventId,
    endpoint: delivery.endpointId,
    attempt: outcome.attemptNumber,
    status: outcome.responseStatus || undefined,
    durationMs: outcome.durationMs,
  };
  if (outcome.success) {
    log.debug(line, "attempt succeeded");
  } else if (outcome.nextAttemptAt) {
    log.warn({ ...line, error: outcome.error, errorClass: outcome.errorClass || undefined, nextAttemptAt: outcome.nextAttemptAt }, "attempt failed; will retry");
  } else {
    log.warn({ ...line, error: outcome.error, errorClass: outcome.errorClass || undefined }, "attempt failed; delivery failed");
  }
}

/** Resolves once `signal` has aborted (at once if it has). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
