/**
 * Per-endpoint lanes of one scheduler process: how many attempts each
 * endpoint has in flight here and, for rate-limited endpoints, a token
 * bucket. The claim asks the lanes which endpoints can take more work and how
 * much (see claim-due.ts), so one slow or limited endpoint never holds up the
 * others.
 *
 * Each lane also holds a small ready buffer's worth of claims: deliveries
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
import type { TenantRoom } from "../store/sql/claim-due.js";
import { MIN_RATE_PER_SECOND } from "../domain/delivery/limits.js";

/** What a lane needs to know about its endpoint, from the claim. */
export interface LaneLimits {
  /** The endpoint's tenant, whose share of the process the lane counts against. */
  tenantId: string;
  maxInFlight: number | null;
  rateLimitPerSecond: number | null;
  /** One at a time: ordered delivery, or a half-open circuit's probe. */
  single: boolean;
}

/** A lane buffers at most this many times its in-flight limit. */
const PREFETCH_FACTOR = 4;
/** How long a buffered delivery should wait at most, at the lane's response time. */
export const PREFETCH_HOLD_MS = 250;
/** How long an idle lane is kept (with its response time) before it is forgotten. */
const KEEP_IDLE_MS = 5_000;
/** Weight of the newest response time in the lane's moving average. */
const LATENCY_WEIGHT = 0.2;
/**
 * The fair share of `capacity` for each of `active` tenants (or endpoints of
 * one tenant) with work (see the module comment): capacity / (n + 1), at
 * least 1.
 */
export function fairShare(capacity: number, active: number): number {
  return Math.max(1, Math.floor(capacity / (active + 1)));
}

/** A tenant's work in this process, over all its lanes. */
interface TenantLoad {
  inFlight: number;
  buffered: number;
  /** Its lanes with work (in flight or buffered). */
  endpoints: number;
}

interface Lane {
  tenantId: string;
  inFlight: number;
  /** Claimed here and not started yet (the ready buffer). */
  buffered: number;
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
}

/** The lanes of one process. */
export class Lanes {
  private readonly lanes = new Map<string, Lane>();
  /** Tenants with work here (in flight or buffered); the only owner of these counts. */
  private readonly tenants = new Map<string, TenantLoad>();
  private workers = 1;
  private readonly defaultMaxInFlight: number;
  private readonly processCapacity: number;
  private readonly circuitFailureThreshold: number;

  constructor(options: LanesOptions) {
    this.defaultMaxInFlight = options.defaultMaxInFlight;
    this.processCapacity = options.capacity;
    this.circuitFailureThreshold = options.circuitFailureThreshold ?? Number.POSITIVE_INFINITY;
  }

  /** Sets the number of live scheduler processes the limits are shared by. */
  setWorkers(n: number): void {
    this.workers = Math.max(1, n);
  }

  /** Live processes, as last set. */
  get workerCount(): number {
    return this.workers;
  }

  /** Counts one delivery of `endpointId` as claimed and waiting to start, under `limits`. */
  reserve(endpointId: string, limits: LaneLimits, now = Date.now()): void {
    const lane = this.lane(endpointId, limits, now);
    this.change(lane, 0, 1);
  }

  /**
   * Whether a reserved delivery of `endpointId` may start now: in-flight room
   * within the endpoint's limit and its fair share, its tenant under the
   * tenant's fair share, and a token for rate-limited endpoints.
   */
  canStart(endpointId: string, now = Date.now()): boolean {
    const lane = this.lanes.get(endpointId);
    if (!lane) return false;
    this.refill(lane, now);
    return (
      lane.inFlight < this.limitOf(lane) &&
      this.tenantLoad(lane.tenantId).inFlight < this.tenantShare() &&
      (lane.rate === 0 || lane.tokens >= 1) &&
      !this.held(lane)
    );
  }

  /** Counts a reserved delivery of `endpointId` as started. */
  start(endpointId: string, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) throw new Error(`no lane for ${endpointId}: reserve first`);
    if (lane.buffered <= 0) throw new Error(`no reserved delivery of ${endpointId} to start`);
    this.refill(lane, now);
    this.change(lane, 1, -1);
    if (lane.rate > 0) lane.tokens -= 1;
  }

  /** Counts a reserved delivery of `endpointId` as given back unstarted. */
  unreserve(endpointId: string, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) return;
    this.change(lane, 0, -1);
    this.dropIfIdle(endpointId, lane, now);
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
   * Moves `lane`'s counts by `inFlight` and `buffered`, keeping its tenant's
   * load in step: every change of a lane's work goes through here.
   */
  private change(lane: Lane, inFlight: number, buffered: number): void {
    const wasActive = lane.inFlight + lane.buffered > 0;
    lane.inFlight += inFlight;
    lane.buffered += buffered;
    if (lane.inFlight < 0 || lane.buffered < 0) throw new Error(`lane counts below zero: ${lane.inFlight} in flight, ${lane.buffered} buffered`);
    const isActive = lane.inFlight + lane.buffered > 0;
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

  /** The lane's in-flight limit now: its endpoint's share of its own limit, within the endpoint's fair share here. */
  private limitOf(lane: Lane): number {
    return Math.min(lane.limit, this.endpointShare(lane.tenantId));
  }

  /**
   * Counts one attempt of `endpointId` as finished after `durationMs`, and
   * whether it succeeded (both unknown when it was aborted).
   */
  finish(endpointId: string, durationMs?: number, success?: boolean, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) return;
    this.change(lane, -1, 0);
    if (success === true) lane.failures = 0;
    else if (success === false) lane.failures++;
    if (durationMs !== undefined) {
      lane.latencyMs = lane.latencyMs === undefined ? durationMs : lane.latencyMs + LATENCY_WEIGHT * (durationMs - lane.latencyMs);
    }
    this.dropIfIdle(endpointId, lane, now);
  }

  /** Counts an outcome of `endpointId` as handed to the writer. */
  recorded(endpointId: string): void {
    const lane = this.lanes.get(endpointId);
    if (lane) lane.unwritten++;
  }

  /** Counts an outcome of `endpointId` as stored. */
  written(endpointId: string, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) return;
    lane.unwritten--;
    this.dropIfIdle(endpointId, lane, now);
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

  /** Reserved deliveries of `endpointId` not started yet. */
  buffered(endpointId: string): number {
    return this.lanes.get(endpointId)?.buffered ?? 0;
  }

  /** When a rate-limited lane of `endpointId` gets its next token, if it waits for one. */
  nextTokenInMs(endpointId: string, now = Date.now()): number | undefined {
    const lane = this.lanes.get(endpointId);
    if (!lane || lane.rate === 0) return undefined;
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
    if (lane.inFlight > 0 || lane.buffered > 0 || lane.unwritten > 0) {
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
   * For the next claim: endpoints that can take nothing now (`exclude`), and
   * those that can take some but fewer than a fresh endpoint would (`free`);
   * tenants that can take nothing (`excludeTenants`), and for the others
   * with work here how many deliveries each may take and how many a new
   * endpoint of theirs may (`tenants`); and the same for a tenant with no
   * work here (`newTenant`). All within the fair shares (see the module
   * comment); a tenant may lease up to twice its share: its requests in
   * flight and as many in the ready buffer. `nextTokenInMs` is when a
   * rate-limited lane gets its next token, if any waits for one.
   */
  capacity(now = Date.now()): Capacity {
    const exclude: string[] = [];
    const free = new Map<string, number>();
    let nextTokenInMs: number | undefined;
    const tenantShare = this.tenantShare();
    const tenantRoom = (tenantId: string) => {
      const t = this.tenantLoad(tenantId);
      return 2 * tenantShare - t.inFlight - t.buffered;
    };
    for (const [id, lane] of this.lanes) {
      if (this.dropIfIdle(id, lane, now)) continue;
      let room = this.held(lane) ? 0 : this.limitOf(lane) + this.prefetchOf(lane) - lane.inFlight - lane.buffered;
      room = Math.min(room, tenantRoom(lane.tenantId));
      if (lane.rate > 0) {
        room = Math.min(room, Math.floor(lane.tokens) - lane.buffered);
        if (lane.tokens < 1) {
          const wait = tokenWaitMs(lane);
          nextTokenInMs = Math.min(nextTokenInMs ?? wait, wait);
        }
      }
      if (room <= 0) exclude.push(id);
      else free.set(id, room);
    }
    const excludeTenants: string[] = [];
    const tenants = new Map<string, TenantRoom>();
    for (const [tenantId, load] of this.tenants) {
      const room = tenantRoom(tenantId);
      if (room <= 0) excludeTenants.push(tenantId);
      else tenants.set(tenantId, { free: room, newEndpointFree: fairShare(tenantShare, load.endpoints + 1) });
    }
    const newTenantShare = fairShare(this.processCapacity, this.tenants.size + 1);
    return {
      exclude,
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
      lane = { tenantId: limits.tenantId, inFlight: 0, buffered: 0, latencyMs: undefined, single: limits.single, idleSince: undefined, failures: 0, unwritten: 0, limit, rate, tokens: Math.max(1, rate), refilledAt: now };
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
