/**
 * Per-endpoint lanes of one scheduler process, the one owner of its work:
 * each lane's queue of deliveries claimed and not started (the ready
 * buffer), its attempts in flight and outcomes not yet stored, its response
 * time and, for rate-limited endpoints, a token bucket; the process's and
 * each tenant's totals of those; and the endpoints whose circuit is blocked.
 * Nothing else keeps a count of them.
 *
 * Deliveries go through three calls: {@link Lanes.add} (claimed or leased
 * at publish: into its endpoint's lane), {@link Lanes.next} (the next one to
 * start, fairly across endpoints and tenants, within every limit), and
 * {@link Lanes.settle} (its attempt ended: the slot is free), then
 * {@link Lanes.written} once its outcome is stored. The claim asks the lanes
 * which endpoints can take more work and how much ({@link Lanes.capacity},
 * see claim-due.ts), so one slow or limited endpoint never holds up the
 * others.
 *
 * A lane's queue is a small ready buffer's worth of claims: deliveries
 * leased ahead of a free slot, so a finished request is followed by the next
 * one at once instead of by a claim round trip, and claims carry many rows
 * (see prefetch). Only lanes with no rate limit and room for more than one
 * request get a buffer, sized so a buffered delivery waits well under
 * PREFETCH_HOLD_MS at the lane's measured response time.
 *
 * A lane that sees the endpoint fail as often in a row as opens its circuit
 * holds its buffered deliveries until those outcomes are stored: the
 * database then decides whether the circuit opened (the scheduler gives the
 * buffered deliveries back) or not (they go on).
 *
 * Limits are shared across processes: an endpoint's in-flight limit and rate
 * are divided by the number of live scheduler processes (see
 * store/sql/workers.ts), so all processes together stay within them as long
 * as the work spreads over all of them; a single process never exceeds its
 * share.
 *
 * The process's own capacity (HOOKLINE_MAX_IN_FLIGHT, C) is shared fairly,
 * in two levels (see fairShare): with n tenants with work here (deliveries
 * in flight or buffered), each tenant may have at most C / (n + 1)
 * requests in flight; with m endpoints of one tenant with work here, each of
 * them at most that tenant's share / (m + 1); at least one each. The "+ 1"
 * keeps a share free for whoever has work next: requests cannot be taken
 * back once sent, so an endpoint whose receiver hangs holds its slots until
 * its timeout (up to 300 s), and without that room a tenant or endpoint
 * arriving behind it would wait that long. So, alone, a tenant may use half
 * the capacity and its single endpoint a quarter (64 of the default 256);
 * when others come, one over its new share starts nothing until it is back
 * under it, and the newcomer finds free slots at once. Claims follow the
 * same shares (an endpoint or tenant at its share is not claimed for), so a
 * hanging tenant cannot fill the ready buffer either.
 */
import type { ClaimedDelivery } from "../domain/delivery/claimed-delivery.js";
import { MIN_RATE_PER_SECOND } from "../domain/delivery/limits.js";
import type { TenantRoom } from "../store/sql/claim-due.js";

/** What a lane needs to know about its endpoint, from the claim. */
export interface LaneLimits {
  /** The endpoint's tenant, whose share of the process the lane counts against. */
  tenantId: string;
  maxInFlight: number | null;
  rateLimitPerSecond: number | null;
  /** One at a time: ordered delivery, or a half-open circuit's probe. */
  single: boolean;
}

/** How an attempt {@link Lanes.settle}d ended, when it was not aborted. */
export interface AttemptEnd {
  durationMs: number;
  success: boolean;
}

/** A lane buffers at most this many times its in-flight limit. */
const PREFETCH_FACTOR = 4;
/** How long a buffered delivery should wait at most, at the lane's response time. */
export const PREFETCH_HOLD_MS = 250;
/** How long an idle lane is kept (with its response time) before it is forgotten. */
const KEEP_IDLE_MS = 5_000;
/** Weight of the newest response time in the lane's moving average. */
const LATENCY_WEIGHT = 0.2;
/** What takeExpired returns when nothing expired. */
const NONE: readonly ClaimedDelivery[] = Object.freeze([]);

/**
 * The fair share of `capacity` for each of `active` tenants (or endpoints of
 * one tenant) with work (see the module comment): capacity / (n + 1), at
 * least 1.
 */
export function fairShare(capacity: number, active: number): number {
  return Math.max(1, Math.floor(capacity / (active + 1)));
}

/**
 * A tenant's work in this process, over all its lanes: sums of its lanes'
 * counts, kept in step by {@link Lanes} (see change), never set elsewhere.
 */
interface TenantLoad {
  inFlight: number;
  buffered: number;
  /** Its lanes with work (in flight or buffered). */
  endpoints: number;
}

interface Lane {
  tenantId: string;
  inFlight: number;
  /** Claimed here and not started yet, in claim order (the ready buffer). */
  queue: ClaimedDelivery[];
  /** Moving average of response times; undefined until one finished. */
  latencyMs: number | undefined;
  single: boolean;
  /** Since when nothing is in flight or buffered. */
  idleSince: number | undefined;
  /** Failures in a row seen here; reset by a success. */
  failures: number;
  /** Outcomes handed to the writer and not stored yet. */
  unwritten: number;
  limit: number;
  /** Requests per second allowed here; 0 means no rate limit. */
  rate: number;
  tokens: number;
  refilledAt: number;
}

/** Options of {@link Lanes}. */
export interface LanesOptions {
  /** In-flight limit of endpoints that set none, over all processes. */
  defaultMaxInFlight: number;
  /** Requests this process has in flight at most (HOOKLINE_MAX_IN_FLIGHT), shared fairly. */
  capacity: number;
  /** Failures in a row that open an endpoint's circuit. */
  circuitFailureThreshold?: number;
  /** The request timeout of endpoints that set none (0 by default). */
  defaultTimeoutMs?: number;
  /**
   * A buffered delivery starts only while its lease covers its request
   * timeout plus this much (half the lease margin); otherwise it is set
   * aside for {@link Lanes.takeExpired} (0 by default).
   */
  startMarginMs?: number;
  /** Told when a rate-limited lane with deliveries waiting gets its next token (a moment in ms). */
  onTokenAt?: (at: number) => void;
}

/** The lanes of one process, and the only owner of its work's counts; see the module comment. */
export class Lanes {
  private readonly lanes = new Map<string, Lane>();
  /** Lanes with buffered deliveries, in the order they get their turn (see next). */
  private readonly ready = new Map<string, Lane>();
  /** Tenants with work here (in flight or buffered); the only owner of these counts. */
  private readonly tenants = new Map<string, TenantLoad>();
  /**
   * Endpoints whose circuit takes nothing now (open, or a probe in flight),
   * with until when: left out of claims (see capacity).
   */
  private readonly blocked = new Map<string, number>();
  private inFlightCount = 0;
  private bufferedCount = 0;
  private unwrittenCount = 0;
  /** Buffered deliveries whose lease ran short, set aside by next. */
  private expired: ClaimedDelivery[] = [];
  /** The turn next is in: the ready lanes' ids when it began, and the one being served. */
  private turn: string[] | undefined;
  private turnAt = 0;
  private serving = false;
  private workers = 1;
  private readonly defaultMaxInFlight: number;
  private readonly processCapacity: number;
  private readonly circuitFailureThreshold: number;
  private readonly defaultTimeoutMs: number;
  private readonly startMarginMs: number;
  private readonly onTokenAt: ((at: number) => void) | undefined;

  constructor(options: LanesOptions) {
    this.defaultMaxInFlight = options.defaultMaxInFlight;
    this.processCapacity = options.capacity;
    this.circuitFailureThreshold = options.circuitFailureThreshold ?? Number.POSITIVE_INFINITY;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 0;
    this.startMarginMs = options.startMarginMs ?? 0;
    this.onTokenAt = options.onTokenAt;
  }

  /** Sets the number of live scheduler processes the limits are shared by. */
  setWorkers(n: number): void {
    this.workers = Math.max(1, n);
  }

  /** Live processes, as last set. */
  get workerCount(): number {
    return this.workers;
  }

  /** Attempts in flight in this process. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Deliveries claimed here and not started (the ready buffer). */
  get buffered(): number {
    return this.bufferedCount;
  }

  /** Outcomes of attempts settled here and not stored yet (see settle and written). */
  get unwritten(): number {
    return this.unwrittenCount;
  }

  /** A claimed (or publish-leased) delivery enters its endpoint's lane, to start when {@link next} gives it. */
  add(delivery: ClaimedDelivery, now = Date.now()): void {
    const lane = this.lane(
      delivery.endpointId,
      {
        tenantId: delivery.tenantId,
        maxInFlight: delivery.maxInFlight,
        rateLimitPerSecond: delivery.rateLimitPerSecond,
        single: delivery.ordered || delivery.probe,
      },
      now,
    );
    lane.queue.push(delivery);
    this.change(lane, 0, 1);
    if (lane.queue.length === 1) this.ready.set(delivery.endpointId, lane);
  }

  /**
   * The next buffered delivery to start now, counted in flight, or
   * undefined once nothing more may start. Call it until it returns
   * undefined: those calls are one turn over the lanes with buffered
   * deliveries, each lane starting as many as it may before the next one's
   * turn, and going to the back once served, so slots rotate fairly. A
   * delivery starts within the process's capacity (and while in-flight plus
   * unwritten outcomes stay under twice it: those are what a crash sends
   * twice), its lane's limit and fair share, its tenant's fair share, a
   * rate-limit token, and not while its lane is held (see held). One whose
   * lease no longer covers its timeout plus the start margin is set aside
   * instead (see takeExpired).
   */
  next(now = Date.now()): ClaimedDelivery | undefined {
    if (this.turn === undefined) {
      if (this.bufferedCount === 0) return undefined;
      this.turn = [...this.ready.keys()];
      this.turnAt = 0;
      this.serving = false;
    }
    while (this.turnAt < this.turn.length) {
      if (!this.serving) {
        if (!this.hasRoom()) break;
        this.serving = true;
      }
      const endpointId = this.turn[this.turnAt]!;
      const lane = this.ready.get(endpointId);
      if (lane !== undefined) {
        while (lane.queue.length > 0 && this.hasRoom() && this.canStart(lane, now)) {
          const delivery = lane.queue.shift()!;
          if (delivery.leaseUntil.getTime() - now < (delivery.timeoutMs ?? this.defaultTimeoutMs) + this.startMarginMs) {
            this.change(lane, 0, -1);
            this.dropIfIdle(endpointId, lane, now);
            this.expired.push(delivery);
            continue;
          }
          this.change(lane, 1, -1);
          if (lane.rate > 0) lane.tokens -= 1;
          return delivery;
        }
        // Served: to the back, or out of the turns once empty.
        this.ready.delete(endpointId);
        if (lane.queue.length > 0) {
          this.ready.set(endpointId, lane);
          const wait = this.tokenWait(lane, now);
          if (wait !== undefined) this.onTokenAt?.(now + wait);
        }
      }
      this.turnAt++;
      this.serving = false;
    }
    this.turn = undefined;
    return undefined;
  }

  /** The buffered deliveries {@link next} set aside since the last call, their leases too short to start. */
  takeExpired(): readonly ClaimedDelivery[] {
    if (this.expired.length === 0) return NONE;
    const expired = this.expired;
    this.expired = [];
    return expired;
  }

  /**
   * An attempt of `endpointId` ended: its slot is free, and its lane learns
   * the response time and whether it succeeded. With `ended` (an attempt
   * not aborted), its outcome was handed to the writer: counted unwritten
   * until {@link written}.
   */
  settle(endpointId: string, ended: AttemptEnd | undefined, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) throw new Error(`no lane for ${endpointId}: nothing of it in flight`);
    this.change(lane, -1, 0);
    if (ended !== undefined) {
      lane.unwritten++;
      this.unwrittenCount++;
      if (ended.success) lane.failures = 0;
      else lane.failures++;
      lane.latencyMs = lane.latencyMs === undefined ? ended.durationMs : lane.latencyMs + LATENCY_WEIGHT * (ended.durationMs - lane.latencyMs);
    }
    this.dropIfIdle(endpointId, lane, now);
  }

  /** An outcome of `endpointId` handed over by {@link settle} is stored (or given up). */
  written(endpointId: string, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) throw new Error(`no lane for ${endpointId}: no outcome of it unwritten`);
    if (lane.unwritten <= 0) throw new Error(`no outcome of ${endpointId} unwritten`);
    lane.unwritten--;
    this.unwrittenCount--;
    this.dropIfIdle(endpointId, lane, now);
  }

  /**
   * Takes the buffered deliveries of the endpoints `which` selects out of
   * their lanes (to give their leases back), in claim order per endpoint.
   */
  drop(which: (endpointId: string) => boolean, now = Date.now()): ClaimedDelivery[] {
    const dropped: ClaimedDelivery[] = [];
    for (const [endpointId, lane] of this.ready) {
      if (!which(endpointId)) continue;
      this.ready.delete(endpointId);
      const queue = lane.queue;
      lane.queue = [];
      this.change(lane, 0, -queue.length);
      this.dropIfIdle(endpointId, lane, now);
      dropped.push(...queue);
    }
    return dropped;
  }

  /** Blocks `endpointId` from claims until `until` (ms): its circuit opened, or its probe is in flight. */
  block(endpointId: string, until: number): void {
    this.blocked.set(endpointId, until);
  }

  /** Lifts `endpointId`'s block: its circuit closed, or it was disabled. */
  unblock(endpointId: string): void {
    this.blocked.delete(endpointId);
  }

  /** Replaces every block by `blocks`, as the heartbeat's sweep found them in the database. */
  setBlocked(blocks: Iterable<{ endpointId: string; until: Date }>): void {
    this.blocked.clear();
    for (const b of blocks) this.blocked.set(b.endpointId, b.until.getTime());
  }

  /** Tenants with work here now (in flight or buffered). */
  get activeTenants(): number {
    return this.tenants.size;
  }

  /** The most requests one tenant with work here may have in flight now. */
  tenantShare(): number {
    return fairShare(this.processCapacity, this.tenants.size);
  }

  /** The most requests one endpoint of `tenantId` with work here may have in flight now. */
  endpointShare(tenantId: string): number {
    return fairShare(this.tenantShare(), this.tenantLoad(tenantId).endpoints);
  }

  /**
   * Moves `lane`'s counts by `inFlight` and `buffered` (its queue already
   * changed by that much), keeping the process's and its tenant's counts in
   * step: every change of a lane's work goes through here.
   */
  private change(lane: Lane, inFlight: number, buffered: number): void {
    lane.inFlight += inFlight;
    const wasActive = lane.inFlight - inFlight + lane.queue.length - buffered > 0;
    if (lane.inFlight < 0) throw new Error(`lane counts below zero: ${lane.inFlight} in flight, ${lane.queue.length} buffered`);
    const isActive = lane.inFlight + lane.queue.length > 0;
    this.inFlightCount += inFlight;
    this.bufferedCount += buffered;
    let tenant = this.tenants.get(lane.tenantId);
    if (!tenant) {
      tenant = { inFlight: 0, buffered: 0, endpoints: 0 };
      this.tenants.set(lane.tenantId, tenant);
    }
    tenant.inFlight += inFlight;
    tenant.buffered += buffered;
    if (wasActive !== isActive) tenant.endpoints += isActive ? 1 : -1;
    if (tenant.endpoints === 0) this.tenants.delete(lane.tenantId);
  }

  private tenantLoad(tenantId: string): TenantLoad {
    return this.tenants.get(tenantId) ?? { inFlight: 0, buffered: 0, endpoints: 0 };
  }

  /** Room in the process: under its capacity in flight, and in flight plus unwritten under twice it. */
  private hasRoom(): boolean {
    return this.inFlightCount < this.processCapacity && this.inFlightCount + this.unwrittenCount < 2 * this.processCapacity;
  }

  /**
   * Whether `lane` may start one more now: in-flight room within the
   * endpoint's limit and its fair share, its tenant under the tenant's fair
   * share, a token for rate-limited endpoints, and not held.
   */
  private canStart(lane: Lane, now: number): boolean {
    this.refill(lane, now);
    return (
      lane.inFlight < this.limitOf(lane) &&
      this.tenantLoad(lane.tenantId).inFlight < this.tenantShare() &&
      (lane.rate === 0 || lane.tokens >= 1) &&
      !this.held(lane)
    );
  }

  /** The lane's in-flight limit now: its endpoint's share of its own limit, within the endpoint's fair share here. */
  private limitOf(lane: Lane): number {
    return Math.min(lane.limit, this.endpointShare(lane.tenantId));
  }

  /** Held: failing as often in a row as opens the circuit, and the database has not judged yet. */
  private held(lane: Lane): boolean {
    return lane.failures >= this.circuitFailureThreshold && lane.unwritten > 0;
  }

  /** Deliveries `endpointId` may hold in the ready buffer beyond its in-flight limit. */
  prefetch(endpointId: string): number {
    const lane = this.lanes.get(endpointId);
    return lane ? this.prefetchOf(lane) : 0;
  }

  /**
   * The most `endpointId`'s ready buffer may hold now: its prefetch beyond
   * its free slots, within what its tenant may still lease (see capacity).
   * A lone endpoint's buffer is bounded by its tenant's (192 of a prefetch
   * of 256 with the defaults), so claims follow this, not the prefetch.
   */
  bufferTarget(endpointId: string): number {
    const lane = this.lanes.get(endpointId);
    if (!lane) return 0;
    const own = this.limitOf(lane) + this.prefetchOf(lane) - lane.inFlight;
    return Math.max(0, Math.min(own, lane.queue.length + this.tenantRoom(lane.tenantId)));
  }

  /**
   * Whether `endpointId`'s ready buffer is at most half its target (see
   * bufferTarget), or it has no lane: the claims that refill buffers wait
   * for that.
   */
  bufferLow(endpointId: string): boolean {
    const lane = this.lanes.get(endpointId);
    return lane === undefined || lane.queue.length * 2 <= this.bufferTarget(endpointId);
  }

  /** Deliveries a tenant may still lease here: twice its share (requests in flight and as many buffered) less what it has. */
  private tenantRoom(tenantId: string): number {
    const t = this.tenantLoad(tenantId);
    return 2 * this.tenantShare() - t.inFlight - t.buffered;
  }

  /**
   * The `top` endpoints with the most attempts in flight, busiest first, and
   * the attempts in flight to all the others together.
   */
  busiest(top: number): { endpoints: Array<[string, number]>; others: number } {
    const busy: Array<[string, number]> = [];
    for (const [id, lane] of this.lanes) if (lane.inFlight > 0) busy.push([id, lane.inFlight]);
    busy.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    let others = 0;
    for (let i = top; i < busy.length; i++) others += busy[i]![1];
    return { endpoints: busy.slice(0, top), others };
  }

  /** Buffered deliveries of `endpointId` not started yet. */
  bufferedOf(endpointId: string): number {
    return this.lanes.get(endpointId)?.queue.length ?? 0;
  }

  /** When a rate-limited lane of `endpointId` gets its next token, if it waits for one. */
  nextTokenInMs(endpointId: string, now = Date.now()): number | undefined {
    const lane = this.lanes.get(endpointId);
    return lane ? this.tokenWait(lane, now) : undefined;
  }

  private tokenWait(lane: Lane, now: number): number | undefined {
    if (lane.rate === 0) return undefined;
    this.refill(lane, now);
    return lane.tokens >= 1 ? undefined : tokenWaitMs(lane);
  }

  private prefetchOf(lane: Lane): number {
    if (lane.single || lane.rate > 0 || lane.latencyMs === undefined) return 0;
    const limit = this.limitOf(lane);
    // limit / latency requests per ms leave the lane: HOLD ms hold that many.
    const byLatency = Math.floor((limit * PREFETCH_HOLD_MS) / Math.max(0.1, lane.latencyMs));
    return Math.min(limit * PREFETCH_FACTOR, byLatency);
  }

  /**
   * Forgets a lane once it is idle, its bucket full, and it has been idle
   * for KEEP_IDLE_MS: a lane that empties between two claims (all its
   * requests answered while the claim ran) keeps its response time and so
   * its ready buffer.
   */
  private dropIfIdle(endpointId: string, lane: Lane, now: number): boolean {
    this.refill(lane, now);
    if (lane.inFlight > 0 || lane.queue.length > 0 || lane.unwritten > 0) {
      lane.idleSince = undefined;
      return false;
    }
    lane.idleSince ??= now;
    if (now - lane.idleSince >= KEEP_IDLE_MS && (lane.rate === 0 || lane.tokens >= Math.max(1, lane.rate))) {
      this.lanes.delete(endpointId);
      return true;
    }
    return false;
  }

  /**
   * For the next claim: endpoints that can take nothing now (`exclude`:
   * those at their room here, then the blocked ones, forgetting blocks that
   * ended), and those that can take some but fewer than a fresh endpoint
   * would (`free`); tenants that can take nothing (`excludeTenants`), and
   * for the others with work here how many deliveries each may take and how
   * many a new endpoint of theirs may (`tenants`); and the same for a tenant
   * with no work here (`newTenant`). All within the fair shares (see the
   * module comment); a tenant may lease up to twice its share: its requests
   * in flight and as many in the ready buffer. `nextTokenInMs` is when a
   * rate-limited lane gets its next token, if any waits for one.
   */
  capacity(now = Date.now()): Capacity {
    const exclude: string[] = [];
    const free = new Map<string, number>();
    let nextTokenInMs: number | undefined;
    const tenantShare = this.tenantShare();
    const tenantRoom = (tenantId: string) => this.tenantRoom(tenantId);
    for (const [id, lane] of this.lanes) {
      if (this.dropIfIdle(id, lane, now)) continue;
      const buffered = lane.queue.length;
      let room = this.held(lane) ? 0 : this.limitOf(lane) + this.prefetchOf(lane) - lane.inFlight - buffered;
      room = Math.min(room, tenantRoom(lane.tenantId));
      if (lane.rate > 0) {
        room = Math.min(room, Math.floor(lane.tokens) - buffered);
        if (lane.tokens < 1) {
          const wait = tokenWaitMs(lane);
          nextTokenInMs = Math.min(nextTokenInMs ?? wait, wait);
        }
      }
      if (room <= 0) exclude.push(id);
      else free.set(id, room);
    }
    // Endpoints left out for want of room (not blocked ones: their end is a timer).
    let full = exclude.length > 0;
    for (const [id, until] of this.blocked) {
      if (until <= now) this.blocked.delete(id);
      else exclude.push(id);
    }
    const excludeTenants: string[] = [];
    const tenants = new Map<string, TenantRoom>();
    for (const [tenantId, load] of this.tenants) {
      const room = tenantRoom(tenantId);
      if (room <= 0) excludeTenants.push(tenantId);
      else tenants.set(tenantId, { free: room, newEndpointFree: fairShare(tenantShare, load.endpoints + 1) });
    }
    const newTenantShare = fairShare(this.processCapacity, this.tenants.size + 1);
    full ||= excludeTenants.length > 0;
    return {
      exclude,
      full,
      free,
      excludeTenants,
      tenants,
      newTenant: { free: 2 * newTenantShare, newEndpointFree: fairShare(newTenantShare, 1) },
      nextTokenInMs,
    };
  }

  private lane(endpointId: string, limits: LaneLimits, now: number): Lane {
    const limit = limits.single
      ? 1
      : Math.max(1, Math.ceil((limits.maxInFlight ?? this.defaultMaxInFlight) / this.workers));
    const rate = limits.rateLimitPerSecond ? Math.max(MIN_RATE_PER_SECOND, limits.rateLimitPerSecond) / this.workers : 0;
    let lane = this.lanes.get(endpointId);
    if (!lane) {
      lane = { tenantId: limits.tenantId, inFlight: 0, queue: [], latencyMs: undefined, single: limits.single, idleSince: undefined, failures: 0, unwritten: 0, limit, rate, tokens: Math.max(1, rate), refilledAt: now };
      this.lanes.set(endpointId, lane);
    }
    lane.limit = limit;
    lane.rate = rate;
    lane.single = limits.single;
    this.refill(lane, now);
    return lane;
  }

  private refill(lane: Lane, now: number): void {
    if (lane.rate > 0) {
      // The bucket holds one second's worth (at least one token): short bursts
      // are allowed, sustained rates are not.
      lane.tokens = Math.min(Math.max(1, lane.rate), lane.tokens + ((now - lane.refilledAt) / 1000) * lane.rate);
    }
    lane.refilledAt = now;
  }
}

/** What {@link Lanes.capacity} tells the next claim. */
export interface Capacity {
  exclude: string[];
  /** Some endpoint or tenant is left out for want of room here (not for a blocked circuit). */
  full: boolean;
  free: Map<string, number>;
  excludeTenants: string[];
  tenants: Map<string, TenantRoom>;
  newTenant: TenantRoom;
  nextTokenInMs: number | undefined;
}

/** How long until a rate-limited lane with under one token gets a whole one. */
function tokenWaitMs(lane: { tokens: number; rate: number }): number {
  return Math.ceil(((1 - lane.tokens) / lane.rate) * 1000);
}
