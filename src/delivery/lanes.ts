/**
 * Per-endpoint lanes of one scheduler process: how many attempts each
 * endpoint has in flight here and, for rate-limited endpoints, a token
 * bucket. The claim asks the lanes which endpoints can take more work and how
 * much (see claim-due.ts), so one slow or limited endpoint never holds up the
 * others.
 *
 * Limits are shared across processes: an endpoint's in-flight limit and rate
 * are divided by the number of live scheduler processes (see
 * store/sql/workers.ts), so all processes together stay within them as long
 * as the work spreads over all of them; a single process never exceeds its
 * share.
 */

/** What a lane needs to know about its endpoint, from the claim. */
export interface LaneLimits {
  maxInFlight: number | null;
  rateLimitPerSecond: number | null;
  /** One at a time: ordered delivery, or a half-open circuit's probe. */
  single: boolean;
}

interface Lane {
  inFlight: number;
  limit: number;
  /** Requests per second allowed here; 0 means no rate limit. */
  rate: number;
  tokens: number;
  refilledAt: number;
}

/** The lanes of one process. */
export class Lanes {
  private readonly lanes = new Map<string, Lane>();
  private workers = 1;

  constructor(private readonly defaultMaxInFlight: number) {}

  /** Sets the number of live scheduler processes the limits are shared by. */
  setWorkers(n: number): void {
    this.workers = Math.max(1, n);
  }

  /** Live processes, as last set. */
  get workerCount(): number {
    return this.workers;
  }

  /** Counts one attempt starting for `endpointId`, under `limits`. */
  start(endpointId: string, limits: LaneLimits, now = Date.now()): void {
    const lane = this.lane(endpointId, limits, now);
    lane.inFlight++;
    if (lane.rate > 0) lane.tokens -= 1;
  }

  /** Counts one attempt of `endpointId` as finished. */
  finish(endpointId: string, now = Date.now()): void {
    const lane = this.lanes.get(endpointId);
    if (!lane) return;
    lane.inFlight--;
    this.refill(lane, now);
    if (lane.inFlight <= 0 && (lane.rate === 0 || lane.tokens >= Math.max(1, lane.rate))) {
      this.lanes.delete(endpointId);
    }
  }

  /**
   * For the next claim: endpoints that can take nothing now (`exclude`), and
   * those that can take some but fewer than a fresh endpoint would (`free`).
   * `nextTokenInMs` is when a rate-limited lane gets its next token, if any
   * waits for one.
   */
  capacity(now = Date.now()): { exclude: string[]; free: Map<string, number>; nextTokenInMs: number | undefined } {
    const exclude: string[] = [];
    const free = new Map<string, number>();
    let nextTokenInMs: number | undefined;
    for (const [id, lane] of this.lanes) {
      this.refill(lane, now);
      let room = lane.limit - lane.inFlight;
      if (lane.rate > 0) {
        room = Math.min(room, Math.floor(lane.tokens));
        if (lane.tokens < 1) {
          const wait = Math.ceil(((1 - lane.tokens) / lane.rate) * 1000);
          nextTokenInMs = Math.min(nextTokenInMs ?? wait, wait);
        }
      }
      if (room <= 0) exclude.push(id);
      else free.set(id, room);
    }
    return { exclude, free, nextTokenInMs };
  }

  private lane(endpointId: string, limits: LaneLimits, now: number): Lane {
    const limit = limits.single
      ? 1
      : Math.max(1, Math.ceil((limits.maxInFlight ?? this.defaultMaxInFlight) / this.workers));
    const rate = limits.rateLimitPerSecond ? limits.rateLimitPerSecond / this.workers : 0;
    let lane = this.lanes.get(endpointId);
    if (!lane) {
      lane = { inFlight: 0, limit, rate, tokens: Math.max(1, rate), refilledAt: now };
      this.lanes.set(endpointId, lane);
    }
    lane.limit = limit;
    lane.rate = rate;
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
