/**
 * When and how much one scheduler process claims, and the claim itself
 * (store/sql/claim-due.ts): one claim loop at a time, by id for the
 * deliveries this process just published and over the due window for the
 * rest, each claim as large as the process's room allows, its window sized
 * by the last one's yield. It also keeps the count of deliveries publish
 * statements running now may lease to this process (see beginLease), which
 * that room leaves out.
 *
 * Claimed deliveries are handed to `onClaimed` (which puts them in their
 * lanes); a claim that took a half-open circuit's probe blocks its endpoint
 * until the probe's lease ends and holds its other deliveries.
 *
 * Modes: open (claims when asked) and closed (see close: no new claim; the
 * one running finishes and hands over its rows).
 */
import type { Logger } from "pino";
import type { ClaimedDelivery } from "../domain/delivery/claimed-delivery.js";
import { classifyDatabaseError } from "../store/database-errors.js";
import { holdForCircuit } from "../store/sql/circuit-holds.js";
import { claim } from "../store/sql/claim-due.js";
import type { PublishLease } from "../store/sql/insert-events.js";
import type { LeaseRoom } from "../store/sql/lease-room.js";
import type { Sql } from "../store/sql.js";
import { retryDelayMs } from "./background-retry.js";
import type { Capacity, Lanes } from "./lanes.js";

/** The narrowest window of due rows a claim reads (see adaptLookahead). */
export const LOOKAHEAD_MIN = 32;
/** The widest window of due rows a claim reads (see adaptLookahead). */
export const LOOKAHEAD_MAX = 4_096;
/** Published delivery ids waiting to be taken, at most (the rest wait for ordinary claims). */
export const MAX_TAKEN = 10_000;

/** Options of {@link Claimer}. */
export interface ClaimerOptions {
  sql: Sql;
  log: Logger;
  /** This process's lease owner id. */
  workerId: string;
  /** The lanes whose room and capacity the claims follow, and which block probed endpoints. */
  lanes: Lanes;
  /** Attempts in flight at most in this process (HOOKLINE_MAX_IN_FLIGHT). */
  maxInFlight: number;
  /** Rows one claim takes at most. */
  claimBatchSize: number;
  leaseMarginMs: number;
  /** The request timeout of endpoints that set none. */
  requestTimeoutMs: number;
  /** In-flight limit of endpoints that set none, over all processes. */
  endpointMaxInFlight: number;
  circuitFailureThreshold: number;
  /**
   * Whether the endpoint's ready buffer ran low (see Lanes.bufferLow): a
   * refill claim (see refill) is made only then.
   */
  bufferLow: (endpointId: string) => boolean;
  /** Given every claim's rows, as soon as they are claimed. */
  onClaimed: (claimed: readonly ClaimedDelivery[]) => void;
  /** Told of a moment to claim again (a rate-limit token, a backoff after a failed claim). */
  wakeAt: (at: number) => void;
}

/** What one claim reads: the given published ids, or the due window. */
export type ClaimPlan = { ids: string[] } | { window: true };
const WINDOW: ClaimPlan = { window: true };

/**
 * The next claim's window, sized by the yield of the last one: a window that
 * gave what was wanted, or more than half its rows, grows (work is spread
 * over many endpoints: a fan-out); one that gave under a tenth of its rows
 * shrinks (the due rows belong to a few endpoints near their limits, and
 * reading the rest is wasted). Measured: a fixed 8x window cost 0.34 ms of
 * PostgreSQL CPU per delivery on a one-endpoint backlog, against 0.24 ms
 * at 2x.
 */
export function adaptLookahead(lookahead: number, claimed: number, wanted: number): number {
  if (claimed >= wanted || claimed * 2 > lookahead) return Math.min(LOOKAHEAD_MAX, lookahead * 2);
  if (claimed * 10 < lookahead) return Math.max(LOOKAHEAD_MIN, Math.floor(lookahead / 2));
  return lookahead;
}

/** Claims due deliveries for one scheduler process; see the module comment. */
export class Claimer {
  /** Deliveries published here, to claim by id (see take). */
  private taken: string[] = [];
  /** Some trigger asked for a claim over the due window (see want). */
  private windowWanted = false;
  /** Endpoints whose freed slots or written outcomes asked to refill their buffers (see refill). */
  private readonly refillFor = new Set<string>();
  /** The last claim was by id and took under half of its ids (see plan). */
  private byIdStalling = false;
  /** The claim's window of due rows; see adaptLookahead. */
  private lookaheadRows = LOOKAHEAD_MIN * 4;
  /** Claims that failed in a row (see run). */
  private failures = 0;
  /** Deliveries publish statements running now may lease to this process, at most (see beginLease). */
  private leasing = 0;
  /** The claim loop running now, if any. */
  private loop: Promise<void> | undefined;
  /** Asked to claim while the loop ran: run it once more. */
  private again = false;
  /**
   * A claim was wanted and not made for want of room (see room): what is
   * due waits until room frees, which finished attempts and written
   * outcomes must then claim for.
   */
  private starved = false;
  /**
   * The last claim over the window left due rows for want of room here (an
   * endpoint or tenant at its room, the row limit, a window read whole, or
   * endpoints left out of it as full): a freed slot should claim again.
   * Until a first claim says otherwise, it may have.
   */
  private leftBehind = true;
  private closed = false;

  constructor(private readonly options: ClaimerOptions) {}

  /** The window the next claim over due rows reads. */
  get lookahead(): number {
    return this.lookaheadRows;
  }

  /** A claim was wanted and not made for want of room (see room): freed room must claim. */
  get starvedOfRoom(): boolean {
    return this.starved;
  }

  /** Published delivery ids waiting to be claimed by id. */
  get waitingIds(): number {
    return this.taken.length;
  }

  /**
   * Whether a claim now may find work that earlier ones left for want of
   * room: a finished attempt frees room, and claims only then (see
   * Scheduler.finished). Work made due otherwise asks for a claim itself: a
   * publish (by id here, NOTIFY elsewhere), a retry's time, a circuit's
   * cool-down, deliveries given back or released (see markLeftBehind).
   */
  mayHaveDue(): boolean {
    return this.leftBehind || this.starved || this.windowWanted || this.refillFor.size > 0 || this.taken.length > 0;
  }

  /** Due work appeared that this process's claims have not seen (deliveries released): the next freed slot claims. */
  markLeftBehind(): void {
    this.leftBehind = true;
  }

  /**
   * Deliveries this process may take on now: room for requests plus a ready
   * buffer as large again, while outcomes waiting to be written stay under
   * `maxInFlight`, less what publish statements running now may lease.
   */
  room(): number {
    return this.roomBeforeLeases() - this.leasing;
  }

  private roomBeforeLeases(): number {
    const { lanes, maxInFlight } = this.options;
    return Math.min(2 * maxInFlight - lanes.inFlight - lanes.buffered, maxInFlight - lanes.unwritten);
  }

  /**
   * Deliveries just published here, to claim by primary key (the same
   * rules as any claim, without reading the due window). Past MAX_TAKEN
   * waiting, the rest are left to a window claim.
   */
  take(deliveryIds: readonly string[]): void {
    const room = MAX_TAKEN - this.taken.length;
    this.taken.push(...deliveryIds.slice(0, Math.max(0, room)));
    // Those not kept are found by a claim over the due window.
    if (deliveryIds.length > room) this.windowWanted = true;
    this.claim();
  }

  /** Asks for a claim over the due window (a notification, a timer, the poll, a failed attempt written). */
  want(): void {
    this.windowWanted = true;
    this.claim();
  }

  /**
   * Asks for a claim over the due window to refill `endpointId`'s ready
   * buffer (a slot of it freed, an outcome of it written, while earlier
   * claims left work behind): made only while that buffer is low, now and
   * when its turn comes. Slots free by the hundred while one claim runs,
   * and each asked for one more: the claims ran back to back, each taking
   * what the one before had left room for (62-72 rows on a one-endpoint
   * backlog, with 130 buffered when it began). Waiting for a low buffer
   * makes them fewer and larger.
   */
  refill(endpointId: string): void {
    if (!this.options.bufferLow(endpointId)) return;
    this.refillFor.add(endpointId);
    this.claim();
  }

  /** Runs the claim loop, or once more after the one running now. */
  claim(): void {
    if (this.closed) return;
    if (this.loop) {
      this.again = true;
      return;
    }
    this.loop = this.run()
      .catch((err: unknown) => this.options.log.error({ err }, "claim loop crashed"))
      .finally(() => {
        this.loop = undefined;
        if (this.again) {
          this.again = false;
          this.claim();
        }
      });
  }

  /**
   * No more claims; resolves once the claim running now, if any, has handed
   * its rows over.
   */
  close(): Promise<void> {
    this.closed = true;
    return this.loop ?? Promise.resolve();
  }

  /**
   * The room a publish statement may lease new deliveries in (see
   * insert-events.ts): what a claim would be offered now, less what other
   * statements running now may take, and at most a `parts`th of the room
   * when up to `parts` statements may run at once. (Each holds its room
   * until it ends, not knowing beforehand how many deliveries it makes: one
   * holding it all left the next nothing, and at 500 publishes/s a quarter
   * of the new deliveries, those of the statements that ran beside
   * another, were then claimed by a second statement.) Undefined when there
   * is none. Each lease given is ended with endLease.
   */
  beginLease(parts = 1): PublishLease | undefined {
    const limit = Math.min(this.room(), Math.ceil(this.roomBeforeLeases() / parts), this.options.claimBatchSize);
    if (limit <= 0) return undefined;
    this.leasing += limit;
    return { ...this.leaseRoom(this.options.lanes.capacity()), limit };
  }

  /** The publish statement given `lease` ended: its room is no longer held. */
  endLease(lease: PublishLease): void {
    this.leasing -= lease.limit;
  }

  /**
   * What the next claim reads, or nothing: by id first, for latency; but
   * while claims by id take under half of their ids and a window claim is
   * wanted too, the two alternate: published ids of blocked or busy
   * endpoints can fill the queue by the thousand, and the window finds what
   * is due elsewhere (measured: 6,000 ids of endpoints whose circuits had
   * just opened held a healthy endpoint's first delivery back 1.7 s;
   * alternating, one claim). Takes the ids it plans from those waiting.
   */
  plan(wanted: number): ClaimPlan | undefined {
    let plan: ClaimPlan;
    if (this.taken.length > 0 && !(this.windowWanted && this.byIdStalling)) {
      plan = { ids: this.taken.splice(0, wanted) };
    } else if (this.windowWanted || this.refillStillWanted()) {
      this.windowWanted = false;
      this.refillFor.clear();
      plan = WINDOW;
    } else {
      // Refills no buffer needs any more (a claim filled them meanwhile):
      // the next freed slot asks again.
      this.refillFor.clear();
      return undefined;
    }
    this.byIdStalling = false;
    return plan;
  }

  /**
   * Learns from a claim planned as `plan` that took `claimed` of `wanted`
   * rows: by id, some not taken (their endpoint at its limit, another
   * process was faster) call for one look over the window; over the window,
   * a full claim calls for another at once (more may be due), and the
   * window is resized.
   */
  claimed(plan: ClaimPlan, claimed: number, wanted: number, rowsLeft = true, excludedFull = true): void {
    if ("ids" in plan) {
      if (claimed < plan.ids.length) {
        this.windowWanted = true;
        this.leftBehind = true;
      }
      this.byIdStalling = claimed * 2 < plan.ids.length;
      return;
    }
    this.lookaheadRows = adaptLookahead(this.lookaheadRows, claimed, wanted);
    if (claimed >= wanted) this.windowWanted = true;
    // What the window could not take for want of room, and the endpoints
    // and tenants it left out as full, wait for room.
    this.leftBehind = claimed >= wanted || rowsLeft || excludedFull;
  }

  /** Some endpoint that asked for a refill still has a low buffer. */
  private refillStillWanted(): boolean {
    for (const id of this.refillFor) if (this.options.bufferLow(id)) return true;
    return false;
  }

  /** This process's room as the claim and the publish statement take it (see lease-room.ts). */
  private leaseRoom(capacity: Capacity): LeaseRoom {
    const o = this.options;
    return {
      workerId: o.workerId,
      leaseMarginMs: o.leaseMarginMs,
      defaultTimeoutMs: o.requestTimeoutMs,
      exclude: capacity.exclude,
      laneFree: capacity.free,
      excludeTenants: capacity.excludeTenants,
      tenants: capacity.tenants,
      newTenant: capacity.newTenant,
      defaultMaxInFlight: o.endpointMaxInFlight,
      workers: o.lanes.workerCount,
      circuitFailureThreshold: o.circuitFailureThreshold,
    };
  }

  private async run(): Promise<void> {
    const o = this.options;
    while (!this.closed) {
      const free = this.room();
      if (free <= 0) {
        if (this.taken.length > 0 || this.windowWanted || this.refillFor.size > 0) this.starved = true;
        return;
      }
      this.starved = false;
      const wanted = Math.min(free, o.claimBatchSize);
      const plan = this.plan(wanted);
      if (plan === undefined) return;
      const ids = "ids" in plan ? plan.ids : undefined;
      const capacity = o.lanes.capacity();
      if (capacity.nextTokenInMs !== undefined) o.wakeAt(Date.now() + capacity.nextTokenInMs);
      let claimed: ClaimedDelivery[];
      let rowsLeft: boolean;
      try {
        ({ claimed, rowsLeft } = await claim(o.sql, {
          ...this.leaseRoom(capacity),
          limit: ids ? ids.length : wanted,
          lookahead: ids ? ids.length : this.lookaheadRows,
          ids,
        }));
      } catch (err) {
        // A transient failure (a connection lost, the database restarting)
        // is retried with backoff; a permanent one at the next poll.
        this.failures++;
        if (classifyDatabaseError(err) === "transient") {
          const delayMs = retryDelayMs(this.failures);
          o.log.warn({ err, failures: this.failures, retryInMs: delayMs }, "claiming due deliveries failed; retrying");
          o.wakeAt(Date.now() + delayMs);
        } else {
          o.log.error({ err }, "claiming due deliveries failed; retrying at the next poll");
        }
        return;
      }
      this.failures = 0;
      o.onClaimed(claimed);
      this.holdBehindProbes(claimed);
      this.claimed(plan, claimed.length, wanted, rowsLeft, capacity.full);
    }
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
    for (const d of probes) this.options.lanes.block(d.endpointId, d.leaseUntil.getTime());
    const probed = probes.map((d) => d.endpointId);
    holdForCircuit(this.options.sql, probed).catch((err: unknown) => {
      this.options.log.warn({ err, endpoints: probed }, "could not hold deliveries behind circuit probes; the next sweep does");
    });
  }
}
