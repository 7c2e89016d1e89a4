/**
 * The delivery scheduler: claims due deliveries from PostgreSQL, sends them,
 * and writes their outcomes back.
 *
 * States: `idle` (constructed) -> `running` (claiming and sending) ->
 * `draining` (no new claims; in-flight attempts finish) -> `stopped`.
 *
 * Wake-ups, fastest first: `nudge()` right after a local publish commits; a
 * LISTEN notification from any process's publish; a timer for the earliest
 * retry this process scheduled, a circuit's cool-down or the next rate-limit
 * token; attempts finishing (their capacity is free again; see nudgeSoon); and the poll, only as the
 * fallback that catches retries scheduled by other processes and leases of
 * dead ones.
 *
 * Claimed deliveries go through a ready buffer: each endpoint's lane may
 * lease a few more than it has room for (see lanes.ts), and those start the
 * moment a request of theirs finishes, without a claim round trip. That also
 * lets each claim carry many rows, which is what PostgreSQL's cost per
 * delivery depends on. A buffered delivery whose lease no longer covers a
 * whole attempt is given back instead of sent, as are the buffered
 * deliveries of an endpoint whose circuit opened, and all of them on
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
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ClaimedDelivery } from "../domain/delivery/claimed-delivery.js";
import type { AttemptOutcome, HealthChanges, HealthRules } from "../domain/delivery/outcome.js";
import type { StoredRetryPolicy } from "../domain/delivery/retry-policy.js";
import { DeliveryState } from "../domain/delivery/state.js";
import type { Sql } from "../store/sql.js";
import { claimDue } from "../store/sql/claim-due.js";
import type { PublishLease } from "../store/sql/insert-events.js";
import type { LeaseRoom } from "../store/sql/lease-room.js";
import { releaseLeases, releaseUnstarted } from "../store/sql/release-leases.js";
import { DUE_CHANNEL, NotifyListener } from "../store/notify-listener.js";
import { holdForCircuit, sweepBlocked } from "../store/sql/circuit-holds.js";
import { unparkOrphans } from "../store/sql/unpark.js";
import { heartbeat, unregister } from "../store/sql/workers.js";
import type { AddressGuard } from "./address-guard.js";
import type { RetryRules } from "./backoff.js";
import { decideOutcome, prepareHeaders } from "./dispatch.js";
import { HttpClient } from "./http-client.js";
import type { SecretBox } from "../signing/secret-box.js";
import { classifyDatabaseError } from "../store/database-errors.js";
import { retryDelayMs, retryTransient } from "./background-retry.js";
import { type Capacity, Lanes } from "./lanes.js";
import { OutcomeWriter } from "./outcome-writer.js";

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

type State = "idle" | "running" | "draining" | "stopped";

/** How often a scheduler says it is alive, and how long until it counts as gone. */
const HEARTBEAT_MS = 5_000;
const LIVE_WITHIN_MS = 15_000;
/** Heartbeats between two sweeps for orphaned parked deliveries (see unpark.ts). */
const UNPARK_EVERY_BEATS = 12;
/** Bounds of the claim's window of due rows (see adaptLookahead). */
const LOOKAHEAD_MIN = 32;
const LOOKAHEAD_MAX = 4_096;
/** How long finished attempts wait to share a claim (see nudgeSoon). */
const FINISH_DEBOUNCE_MS = 0;
/** Published delivery ids waiting to be taken, at most (the rest wait for ordinary claims). */
const MAX_TAKEN = 10_000;
/** How late a wake-up timer fires after its moment (see armWakeTimer). */
const WAKE_LATE_MS = 2;
/** Wake-up moments remembered at most (see wakeUpAt). */
const MAX_WAKE_TIMES = 10_000;
/**
 * The longest delay a Node timer holds (2^31 - 1 ms, about 24.8 days): a
 * longer one fires at once, with a TimeoutOverflowWarning. Wake-ups are
 * clamped to it; the poll catches what lies beyond.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Claims and delivers due deliveries; see the module comment for its states. */
export class Scheduler {
  /** This process's lease owner id. */
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private state: State = "idle";
  private inFlight = 0;
  /** Claimed and not started, per endpoint in claim order (the ready buffer). */
  private ready = new Map<string, ClaimedDelivery[]>();
  private readyCount = 0;
  /** Unstarted deliveries whose leases are being given back. */
  private releasing: Promise<void> = Promise.resolve();
  /** Outcomes handed to the writer and not yet stored. */
  private unwritten = 0;
  /** The claim loop running now, if any. */
  private claiming: Promise<void> | undefined;
  /** Deliveries published here, to claim by id (see take). */
  private taken: string[] = [];
  /** Deliveries publish statements running now may lease to this process, at most (see beginLease). */
  private leasing = 0;
  /** Some trigger asked for a claim over the due window (see nudge). */
  private windowWanted = false;
  /** The last claim was by id and took under half of its ids (see claimLoop). */
  private byIdStalling = false;
  /**
   * Endpoints whose circuit takes nothing now (open, or a probe in flight),
   * with until when: left out of claims. From this process's outcomes and
   * probes, and every heartbeat from the database (see circuit-holds.ts).
   */
  private readonly blocked = new Map<string, number>();
  private pumpAgain = false;
  private aborting = false;
  /** Claims that failed in a row (see claimLoop). */
  private claimFailures = 0;
  /** Aborted once a stop's timeout has passed: what still waits on the database then is given up. */
  private readonly stopDeadline = new AbortController();
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  /** Moments this process knows work becomes due, ascending (see wakeUpAt). */
  private wakeTimes: number[] = [];
  private drained: (() => void) | undefined;
  private readonly http: HttpClient;
  private readonly writer: OutcomeWriter;
  private readonly listener: NotifyListener;
  private readonly lanes: Lanes;

  constructor(private readonly options: SchedulerOptions) {
    this.http = new HttpClient({ bodyLimit: options.responseBodyLimit, guard: options.addressGuard });
    // The probe after a cool-down must not wait for the poll.
    this.writer = new OutcomeWriter({
      sql: options.sql,
      workerId: this.workerId,
      rules: options,
      log: options.log,
      onHealthChanges: (changes) => this.onHealthChanges(changes),
      onUnwritable: () => options.metrics?.outcomeUnwritable(),
    });
    this.listener = new NotifyListener(
      options.databaseUrl,
      DUE_CHANNEL,
      () => this.nudge(),
      options.log,
      options.applicationName,
    );
    this.lanes = new Lanes({
      defaultMaxInFlight: options.endpointMaxInFlight,
      capacity: options.maxInFlight,
      circuitFailureThreshold: options.circuitFailureThreshold,
    });
  }

  /** Attempts in flight and deliveries in the ready buffer, now. */
  load(): { inFlight: number; buffered: number } {
    return { inFlight: this.inFlight, buffered: this.readyCount };
  }

  /** In-flight attempts of the `top` busiest endpoints here, and of all others together. */
  busiestEndpoints(top: number): { endpoints: Array<[string, number]>; others: number } {
    return this.lanes.busiest(top);
  }

  /** Starts claiming and listening. */
  async start(): Promise<void> {
    if (this.state !== "idle") throw new Error(`scheduler cannot start from ${this.state}`);
    this.state = "running";
    await this.beat();
    this.heartbeatTimer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
    this.pollTimer = setInterval(() => this.nudge(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    await this.listener.start();
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
    if (this.state !== "running") return;
    const room = MAX_TAKEN - this.taken.length;
    this.taken.push(...deliveryIds.slice(0, Math.max(0, room)));
    // Those not kept are found by a claim over the due window.
    if (deliveryIds.length > room) this.windowWanted = true;
    this.startClaiming();
  }

  /**
   * The room a publish statement may lease new deliveries in (see
   * insert-events.ts): what a claim would be offered now, less what other
   * statements running now may take. Undefined when there is none, or this
   * scheduler is not running. Each lease given is ended with endLease.
   */
  beginLease(): PublishLease | undefined {
    if (this.state !== "running") return undefined;
    const o = this.options;
    const limit = Math.min(this.room(), o.claimBatchSize);
    if (limit <= 0) return undefined;
    this.leasing += limit;
    return { ...this.leaseRoom(this.lanes.capacity()), limit };
  }

  /** This process's room as the claim and the publish statement take it (see lease-room.ts). */
  private leaseRoom(capacity: Capacity): LeaseRoom {
    const o = this.options;
    return {
      workerId: this.workerId,
      leaseMarginMs: o.leaseMarginMs,
      defaultTimeoutMs: o.requestTimeoutMs,
      exclude: this.excluded(capacity.exclude),
      laneFree: capacity.free,
      excludeTenants: capacity.excludeTenants,
      tenants: capacity.tenants,
      newTenant: capacity.newTenant,
      defaultMaxInFlight: o.endpointMaxInFlight,
      workers: this.lanes.workerCount,
      circuitFailureThreshold: o.circuitFailureThreshold,
    };
  }

  /**
   * A publish statement given `lease` ended, leasing `leased` to this
   * process (none if it failed): they go in the ready buffer like claimed
   * ones, or back if the scheduler stopped meanwhile.
   */
  endLease(lease: PublishLease, leased: readonly ClaimedDelivery[]): void {
    this.leasing -= lease.limit;
    if (leased.length === 0) return;
    if (this.state !== "running") {
      void this.release(leased);
      return;
    }
    for (const delivery of leased) this.enqueue(delivery);
    this.pump();
  }

  /** Deliveries this process may take on now: room for requests plus a ready buffer as large again. */
  private room(): number {
    const o = this.options;
    return Math.min(2 * o.maxInFlight - this.inFlight - this.readyCount, o.maxInFlight - this.unwritten) - this.leasing;
  }

  /** Asks for a claim now (a notification, a timer, the poll, a finished attempt). */
  nudge(): void {
    if (this.state !== "running") return;
    this.pump();
    this.windowWanted = true;
    this.startClaiming();
  }

  private startClaiming(): void {
    if (this.claiming) {
      this.pumpAgain = true;
      return;
    }
    this.claiming = this.claimLoop()
      .catch((err: unknown) => this.options.log.error({ err }, "claim loop crashed"))
      .finally(() => {
        this.claiming = undefined;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.startClaiming();
        }
      });
  }

  /**
   * A claim shortly after an attempt finished: its capacity (of this process
   * or of the endpoint's lane) may let due work through. Finishes within
   * FINISH_DEBOUNCE_MS (0: the same turn of the event loop) share one claim,
   * and while a claim runs further finishes ask for just one more, so under
   * load a claim takes several rows. Measured on the benchmark's backlog: a
   * 2 ms debounce gave 2,950 deliveries/s, none 3,780, with less PostgreSQL
   * CPU per delivery (0.20 ms against 0.25 ms): the claim loop is serial, so
   * any wait before a claim is lost throughput.
   */
  private nudgeSoon(): void {
    if (this.finishTimer || this.state !== "running") return;
    this.finishTimer = setTimeout(() => {
      this.finishTimer = undefined;
      this.nudge();
    }, FINISH_DEBOUNCE_MS);
  }

  /**
   * Stops claiming, lets in-flight attempts finish and their outcomes be
   * written for up to `timeoutMs`, then aborts the rest, gives up unwritten
   * outcomes, and gives the leases back (due at once) so another process
   * takes them over without waiting. The timeout runs from the start of the
   * stop: giving back the ready buffer's leases counts against it too.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.state === "stopped" || this.state === "draining") return;
    this.state = "draining";
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.wakeTimer);
    clearTimeout(this.finishTimer);
    const deadline = setTimeout(() => this.stopDeadline.abort(), timeoutMs);
    // What waits on the database waits until the deadline at most: a
    // database that does not answer at all (a hung connection, rather than
    // a refused one) would hold the stop for ever.
    const untilDeadline = (p: Promise<unknown> | undefined) => Promise.race([p, aborted(this.stopDeadline.signal)]);
    await this.listener.stop();
    // A claim running now lands its rows in the ready buffer first.
    await untilDeadline(this.claiming);
    await untilDeadline(this.release(this.dropReady(() => true)));
    if (this.inFlight > 0 || this.unwritten > 0) {
      const drained = new Promise<void>((resolve) => {
        this.drained = resolve;
      });
      await Promise.race([drained, aborted(this.stopDeadline.signal)]);
      if (this.inFlight > 0 || this.unwritten > 0) {
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
    this.state = "stopped";
  }

  private beats = 0;
  /** The claim's window of due rows; see adaptLookahead. */
  private lookahead = LOOKAHEAD_MIN * 4;

  /**
   * Sizes the next claim's window by the yield of this one. A window that
   * gave what was wanted, or more than half its rows, grows (work is spread
   * over many endpoints: a fan-out); one that gave under a tenth of its rows
   * shrinks (the due rows belong to a few endpoints near their limits, and
   * reading the rest is wasted). Measured: a fixed 8x window cost 0.34 ms of
   * PostgreSQL CPU per delivery on a one-endpoint backlog, against 0.24 ms
   * at 2x.
   */
  private adaptLookahead(claimed: number, wanted: number): void {
    if (claimed >= wanted || claimed * 2 > this.lookahead) {
      this.lookahead = Math.min(LOOKAHEAD_MAX, this.lookahead * 2);
    } else if (claimed * 10 < this.lookahead) {
      this.lookahead = Math.max(LOOKAHEAD_MIN, Math.floor(this.lookahead / 2));
    }
  }

  private async beat(): Promise<void> {
    try {
      this.lanes.setWorkers(await heartbeat(this.options.sql, this.workerId, LIVE_WITHIN_MS));
      // Which endpoints are blocked, whoever blocked them, and their
      // deliveries that are due anyway put out of the claim's way (see
      // circuit-holds.ts).
      const sweep = await sweepBlocked(this.options.sql);
      this.blocked.clear();
      for (const b of sweep.blocked) this.blocked.set(b.endpointId, b.until.getTime());
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

  private async claimLoop(): Promise<void> {
    const o = this.options;
    while (this.state === "running") {
      const free = this.room();
      if (free <= 0) return;
      const wanted = Math.min(free, o.claimBatchSize);
      let ids: string[] | undefined;
      // By id first, for latency; but while claims by id take under half of
      // their ids and a window claim is wanted too, the two alternate:
      // published ids of blocked or busy endpoints can fill the queue by the
      // thousand, and the window finds what is due elsewhere (measured: 6,000
      // ids of endpoints whose circuits had just opened held a healthy
      // endpoint's first delivery back 1.7 s; alternating, one claim).
      if (this.taken.length > 0 && !(this.windowWanted && this.byIdStalling)) {
        ids = this.taken.splice(0, wanted);
      } else if (this.windowWanted) {
        this.windowWanted = false;
      } else {
        return;
      }
      this.byIdStalling = false;
      const capacity = this.lanes.capacity();
      if (capacity.nextTokenInMs !== undefined) this.wakeUpAt(Date.now() + capacity.nextTokenInMs);
      let claimed: ClaimedDelivery[];
      try {
        claimed = await claimDue(o.sql, {
          ...this.leaseRoom(capacity),
          limit: ids ? ids.length : wanted,
          lookahead: ids ? ids.length : this.lookahead,
          ids,
        });
      } catch (err) {
        // A transient failure (a connection lost, the database restarting)
        // is retried with backoff; a permanent one at the next poll.
        this.claimFailures++;
        if (classifyDatabaseError(err) === "transient") {
          const delayMs = retryDelayMs(this.claimFailures);
          o.log.warn({ err, failures: this.claimFailures, retryInMs: delayMs }, "claiming due deliveries failed; retrying");
          this.wakeUpAt(Date.now() + delayMs);
        } else {
          o.log.error({ err }, "claiming due deliveries failed; retrying at the next poll");
        }
        return;
      }
      this.claimFailures = 0;
      for (const delivery of claimed) this.enqueue(delivery);
      this.pump();
      this.holdBehindProbes(claimed);
      if (ids) {
        // Some could not be taken (their endpoint at its limit, another
        // process was faster): look over the window once for what is due.
        if (claimed.length < ids.length) this.windowWanted = true;
        this.byIdStalling = claimed.length * 2 < ids.length;
        continue;
      }
      this.adaptLookahead(claimed.length, wanted);
      // A full claim: more may be due at once.
      if (claimed.length >= wanted) this.windowWanted = true;
    }
  }

  /** The endpoints a claim leaves out: `atCapacity` here, and the blocked ones (forgetting those no longer blocked). */
  private excluded(atCapacity: readonly string[]): string[] {
    if (this.blocked.size === 0) return [...atCapacity];
    const now = Date.now();
    const out = [...atCapacity];
    for (const [id, until] of this.blocked) {
      if (until <= now) this.blocked.delete(id);
      else out.push(id);
    }
    return out;
  }

  /** Puts a claimed delivery in its endpoint's ready buffer. */
  private enqueue(delivery: ClaimedDelivery): void {
    this.lanes.reserve(delivery.endpointId, {
      tenantId: delivery.tenantId,
      maxInFlight: delivery.maxInFlight,
      rateLimitPerSecond: delivery.rateLimitPerSecond,
      single: delivery.ordered || delivery.probe,
    });
    const queue = this.ready.get(delivery.endpointId);
    if (queue) queue.push(delivery);
    else this.ready.set(delivery.endpointId, [delivery]);
    this.readyCount++;
  }

  /**
   * Starts buffered deliveries while there are free slots, endpoint by
   * endpoint (each visited endpoint moves to the back, so slots rotate). One
   * whose lease no longer covers its timeout plus half the margin is given
   * back instead. Returns how many started.
   *
   * Attempts sent and not yet stored (in flight, or finished and waiting for
   * the outcome writer) stay under 2 x maxInFlight: those are what a crash
   * of this process sends twice, so the bound on duplicates holds however
   * far the writer falls behind (a slow or starved database, a busy CPU).
   */
  private pump(): number {
    if (this.readyCount === 0 || this.state !== "running") return 0;
    const o = this.options;
    const now = Date.now();
    const expired: ClaimedDelivery[] = [];
    const room = () => this.inFlight < o.maxInFlight && this.inFlight + this.unwritten < 2 * o.maxInFlight;
    let started = 0;
    for (const endpointId of [...this.ready.keys()]) {
      if (!room()) break;
      const queue = this.ready.get(endpointId)!;
      while (queue.length > 0 && room() && this.lanes.canStart(endpointId, now)) {
        const delivery = queue.shift()!;
        this.readyCount--;
        if (delivery.leaseUntil.getTime() - now < (delivery.timeoutMs ?? o.requestTimeoutMs) + o.leaseMarginMs / 2) {
          this.lanes.unreserve(endpointId, now);
          expired.push(delivery);
          continue;
        }
        this.run(delivery);
        started++;
      }
      this.ready.delete(endpointId);
      if (queue.length > 0) {
        this.ready.set(endpointId, queue);
        const wait = this.lanes.nextTokenInMs(endpointId, now);
        if (wait !== undefined) this.wakeUpAt(now + wait);
      }
    }
    if (expired.length > 0) {
      o.log.warn({ deliveries: expired.length }, "buffered deliveries outlived their lease margin; giving them back");
      void this.release(expired);
    }
    return started;
  }

  /**
   * The claim took half-open circuits' probes: their endpoints' other due
   * deliveries are held until the probes' leases end (their outcome decides
   * what happens to them), in the background; until then the claim's scan
   * leaves those endpoints out anyway.
   */
  private holdBehindProbes(claimed: readonly ClaimedDelivery[]): void {
    const probes = claimed.filter((d) => d.probe);
    if (probes.length === 0) return;
    for (const d of probes) this.blocked.set(d.endpointId, d.leaseUntil.getTime());
    const probed = probes.map((d) => d.endpointId);
    holdForCircuit(this.options.sql, probed).catch((err: unknown) => {
      this.options.log.warn({ err, endpoints: probed }, "could not hold deliveries behind circuit probes; the next sweep does");
    });
  }

  /** Takes the buffered deliveries of endpoints `which` selects out of the ready buffer. */
  private dropReady(which: (endpointId: string) => boolean): ClaimedDelivery[] {
    const dropped: ClaimedDelivery[] = [];
    for (const [endpointId, queue] of this.ready) {
      if (!which(endpointId)) continue;
      this.ready.delete(endpointId);
      this.readyCount -= queue.length;
      for (let i = 0; i < queue.length; i++) this.lanes.unreserve(endpointId);
      dropped.push(...queue);
    }
    return dropped;
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
    const ids = deliveries.map((d) => d.id);
    let earliest = Number.POSITIVE_INFINITY;
    for (const d of deliveries) earliest = Math.min(earliest, d.leaseUntil.getTime());
    const leasesLeft = AbortSignal.timeout(Math.max(0, earliest - Date.now() - this.options.leaseMarginMs / 2));
    const signal = AbortSignal.any([this.stopDeadline.signal, leasesLeft]);
    this.releasing = this.releasing.then(() =>
      retryTransient(() => releaseUnstarted(this.options.sql, this.workerId, ids), {
        signal,
        onRetry: (err, failures, delayMs) =>
          this.options.log.warn({ err, deliveries: ids.length, failures, retryInMs: delayMs }, "giving back unstarted deliveries failed; retrying"),
      }).catch((err: unknown) => {
        this.options.log.warn({ err, deliveries: ids.length }, "could not give back unstarted deliveries; their leases expire by themselves");
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
      this.blocked.set(c.endpointId, c.until.getTime());
      this.wakeUpAt(c.until.getTime());
    }
    for (const c of [...changes.closed, ...changes.disabled]) this.blocked.delete(c.endpointId);
    const affected = new Set([...changes.opened, ...changes.disabled].map((c) => c.endpointId));
    if (affected.size > 0) await this.release(this.dropReady((id) => affected.has(id)));
  }

  private run(delivery: ClaimedDelivery): void {
    this.inFlight++;
    this.lanes.start(delivery.endpointId);
    let result: { durationMs: number; success: boolean } | undefined;
    void this.attempt(delivery)
      .then((r) => {
        result = r;
      })
      .catch((err: unknown) => this.options.log.error({ err, delivery: delivery.id }, "delivery attempt crashed"))
      .finally(() => {
        this.inFlight--;
        this.lanes.finish(delivery.endpointId, result?.durationMs, result?.success);
        if (this.inFlight === 0 && this.unwritten === 0) this.drained?.();
        const started = this.pump();
        // Claim again when nothing buffered could take the slot, or when the
        // endpoint's buffer ran half empty.
        if (started === 0 || this.lanes.buffered(delivery.endpointId) * 2 <= this.lanes.prefetch(delivery.endpointId)) {
          this.nudgeSoon();
        }
      });
  }

  /**
   * Writes an outcome in the background: the request's slot is already free
   * (the endpoint's capacity is about requests), and the lease covers the
   * write. Claiming pauses while `maxInFlight` outcomes wait to be written,
   * and starting attempts while in-flight plus unwritten reach twice that
   * (see pump).
   */
  private record(outcome: AttemptOutcome): void {
    this.unwritten++;
    this.lanes.recorded(outcome.endpointId);
    void this.writer.write(outcome).finally(() => {
      this.unwritten--;
      this.lanes.written(outcome.endpointId);
      // A lane held for its failures may go on now (see lanes.ts).
      this.pump();
      if (this.inFlight === 0 && this.unwritten === 0) this.drained?.();
      this.nudgeSoon();
    });
    if (outcome.nextAttemptAt) this.wakeUpAt(outcome.nextAttemptAt.getTime());
  }

  /** One attempt; resolves with the request's duration and whether it succeeded (nothing if aborted). */
  private async attempt(delivery: ClaimedDelivery): Promise<{ durationMs: number; success: boolean } | undefined> {
    const o = this.options;
    const startedAt = new Date();
    const headers = prepareHeaders({ ...delivery, secrets: o.secrets.openAll(delivery.secrets) }, startedAt);
    const started = performance.now();
    const result = await this.http.post(new URL(delivery.url), headers, delivery.body, delivery.timeoutMs ?? o.requestTimeoutMs);
    const durationMs = Math.round(performance.now() - started);
    // Aborted by shutdown: not the endpoint's fault, so no attempt is used up;
    // the lease is given back in stop().
    if (this.aborting) return undefined;
    const outcome = decideOutcome(delivery, result, startedAt, durationMs, {
      defaultPolicy: o.defaultRetryPolicy,
      jitter: o.jitter,
      throttleMinDelayMs: o.throttleMinDelayMs,
      retryAfterCapMs: o.retryAfterCapMs,
    });
    o.metrics?.attempt(
      result.status,
      result.error?.class ?? "",
      durationMs,
      outcome.status === DeliveryState.Succeeded ? "succeeded" : outcome.status === DeliveryState.Failed ? "failed" : null,
    );
    logAttempt(o.log, delivery, outcome);
    this.record(outcome);
    return { durationMs, success: outcome.success };
  }

  /**
   * Remembers a moment this process knows work becomes due (a retry it
   * scheduled, a circuit's cool-down, a rate-limit token) and keeps one timer
   * armed for the earliest. At most MAX_WAKE_TIMES are kept; past that the
   * latest are dropped and the poll catches them.
   */
  private wakeUpAt(at: number): void {
    const times = this.wakeTimes;
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (times[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    if (times[lo] === at) return;
    times.splice(lo, 0, at);
    if (times.length > MAX_WAKE_TIMES) times.pop();
    if (lo === 0) this.armWakeTimer();
  }

  private armWakeTimer(): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const next = this.wakeTimes[0];
    if (next === undefined || this.state !== "running") return;
    this.wakeTimer = setTimeout(() => {
      const now = Date.now();
      while (this.wakeTimes.length > 0 && this.wakeTimes[0]! <= now) this.wakeTimes.shift();
      this.nudge();
      this.armWakeTimer();
      // A little late on purpose: due times from PostgreSQL carry
      // microseconds that a JS Date drops, and a timer that fires a fraction
      // of a millisecond early finds nothing due and no later wake-up.
    }, Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now()) + WAKE_LATE_MS));
    this.wakeTimer.unref();
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
