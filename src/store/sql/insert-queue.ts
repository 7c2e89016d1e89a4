/**
 * Group commit for publishes. Up to `writers` statements run at once (so
 * large batches use more than one PostgreSQL backend, and CPU core); the
 * publishes that arrive while all of them are busy wait and go together in
 * the next one (up to a size limit), so 64 concurrent unary publishes cost
 * a few statements and commits instead of 64. Each caller still gets only its own results, and keeps its own
 * all-or-nothing: if a shared statement fails, every caller's events are
 * written again on their own, so one caller's bad events never fail another.
 *
 * What waits is bounded: past `maxPendingBytes` of event bodies not yet
 * stored, further publishes are refused at once with
 * {@link InsertQueueFullError} (which publishing answers as a limit,
 * ResourceExhausted) rather than queued, so a flood of publishes faster than
 * the database can take them cannot grow memory without end.
 */
import type { Sql } from "../sql.js";
import type { ClaimedDelivery } from "../../domain/delivery/claimed-delivery.js";
import { type InsertedEvent, insertEvents, type NewEvent, type PublishLease } from "./insert-events.js";

/**
 * The local scheduler's side of leasing at publish (see insertEvents): its
 * room when a statement starts, a `parts`th of it with up to `parts`
 * statements running at once, and the deliveries the statement leased to it
 * once it ends (none if it failed). Every `begin` is followed by one `end`.
 */
export interface Leaser {
  begin(parts: number): PublishLease | undefined;
  end(lease: PublishLease, leased: ClaimedDelivery[]): void;
}

/** A publish refused because too many bytes of publishes wait to be stored already; retry with backoff. */
export class InsertQueueFullError extends Error {
  override name = "InsertQueueFullError";
}

interface Waiting {
  events: readonly NewEvent[];
  resolve: (results: InsertedEvent[]) => void;
  reject: (err: unknown) => void;
}

/** Coalesces concurrent `insert` calls into shared statements. */
export class InsertQueue {
  private queue: Waiting[] = [];
  private writing = 0;

  constructor(
    private readonly sql: Sql,
    /** How long an idempotency key holds (see insertEvents). */
    private readonly idempotencyWindowMs: number,
    /** Most events in one shared statement. */
    private readonly maxEvents = 1_000,
    /** Statements written at once. */
    private readonly writers = 2,
    /** Most bytes of event bodies waiting or being written; see the class comment. */
    private readonly maxPendingBytes = 64 << 20,
    /** The local scheduler, which new deliveries are leased to; none without one. */
    private readonly leaser?: Leaser,
  ) {}

  private pendingBytes = 0;

  /** Bytes of event bodies accepted by `insert` and not stored yet. */
  get pending(): number {
    return this.pendingBytes;
  }

  /** Stores `events` (all or nothing) with their deliveries; see insertEvents. */
  insert(events: readonly NewEvent[]): Promise<InsertedEvent[]> {
    let bytes = 0;
    for (const e of events) bytes += e.body.length;
    // One publish alone is always taken, whatever its size.
    if (this.pendingBytes > 0 && this.pendingBytes + bytes > this.maxPendingBytes) {
      return Promise.reject(
        new InsertQueueFullError(
          `too many publishes are waiting to be stored (${this.pendingBytes} bytes, limit ${this.maxPendingBytes}); retry with backoff`,
        ),
      );
    }
    this.pendingBytes += bytes;
    const done = () => {
      this.pendingBytes -= bytes;
    };
    return new Promise<InsertedEvent[]>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (this.writing < this.writers) void this.drain();
    }).finally(done);
  }

  private async drain(): Promise<void> {
    this.writing++;
    while (this.queue.length > 0) {
      const group: Waiting[] = [];
      let size = 0;
      while (this.queue.length > 0 && (group.length === 0 || size + this.queue[0]!.events.length <= this.maxEvents)) {
        const next = this.queue.shift()!;
        group.push(next);
        size += next.events.length;
      }
      await this.write(group);
    }
    this.writing--;
  }

  /** One statement, with a lease to the local scheduler when it has room. */
  private async insertLeasing(events: readonly NewEvent[]): Promise<InsertedEvent[]> {
    const lease = this.leaser?.begin(this.writers);
    let leased: ClaimedDelivery[] = [];
    try {
      const result = await insertEvents(this.sql, events, this.idempotencyWindowMs, lease);
      leased = result.leased;
      return result.events;
    } finally {
      if (lease) this.leaser!.end(lease, leased);
    }
  }

  private async write(group: Waiting[]): Promise<void> {
    try {
      const results = await this.insertLeasing(group.flatMap((w) => w.events));
      let offset = 0;
      for (const w of group) {
        w.resolve(results.slice(offset, offset + w.events.length));
        offset += w.events.length;
      }
    } catch (err) {
      if (group.length === 1) {
        group[0]!.reject(err);
        return;
      }
      // Isolate the failure: each caller's events on their own.
      await Promise.all(
        group.map(async (w) => {
          try {
            w.resolve(await this.insertLeasing(w.events));
          } catch (e) {
            w.reject(e);
          }
        }),
      );
    }
  }
}
