/**
 * The live delivery status stream of one process: one reader of the status
 * log (see store/sql/delivery-updates.ts) shared by every watcher here.
 *
 * The hub reads each new page of the log once, unfiltered, and hands each
 * row to the live watchers it matches. A watcher whose client is slow does
 * not hold anything up and does not grow without bound: once its queue
 * holds MAX_QUEUED updates it stops taking rows from the hub and, as its
 * client reads on, catches up from the log itself with its own filter, then
 * joins the hub again. A watcher resuming after a cursor, or from a time,
 * starts the same way.
 *
 * The hub reads when the status log's trigger notifies (updates committed
 * by any process), at most once per MIN_READ_GAP_MS, and every POLL_MS
 * while it has watchers (an update can only be read once every older
 * transaction has ended; the poll catches those that end without
 * notifying).
 */
import type { Logger } from "pino";
import { NotifyListener, UPDATES_CHANNEL } from "../store/notify-listener.js";
import {
  ALL,
  comparePositions,
  lastFinalPosition,
  type Position,
  positionBefore,
  readUpdates,
  type UpdateFilter,
  type UpdateRow,
} from "../store/sql/delivery-updates.js";
import type { Sql } from "../store/sql.js";
import { matches } from "./filter.js";

/** Where a watch starts. */
export type WatchStart =
  | { from: "live" }
  | { from: "after"; position: Position }
  | { from: "since"; at: Date };

/** Updates a watcher holds for its client at most before it falls back to reading the log. */
const MAX_QUEUED = 512;
/** Rows per read, for the hub and for catching up. */
const PAGE = 500;
/** How often the hub reads while it has watchers, besides notifications. */
const POLL_MS = 250;
/**
 * The least time between two reads of the hub. Under load every publish
 * and outcome statement notifies; reading on each cost a query per
 * notification (hundreds per second), while readers only need the news a
 * few milliseconds late.
 */
const MIN_READ_GAP_MS = 10;

/** Options of {@link UpdateHub}. */
export interface UpdateHubOptions {
  sql: Sql;
  /** URL for the LISTEN connection. */
  databaseUrl: string;
  log: Logger;
}

/** The shared reader of the status log; see the module comment. */
export class UpdateHub {
  /** The last position the hub has read (and handed out). */
  private position: Position | undefined;
  private starting: Promise<void> | undefined;
  /** Where the log ends, being looked up for the first watcher after none. */
  private resuming: Promise<void> | undefined;
  private readonly watchers = new Set<Watcher>();
  private reading = false;
  private readAgain = false;
  private lastReadAt = 0;
  private readTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private listener: NotifyListener | undefined;
  private closed = false;

  constructor(private readonly options: UpdateHubOptions) {}

  /** Watchers now connected here. */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Updates queued for clients, the most of any one watcher here (bounded by MAX_QUEUED, or a page while catching up). */
  get maxQueued(): number {
    let most = 0;
    for (const w of this.watchers) most = Math.max(most, w.queue.length);
    return most;
  }

  /**
   * Streams the updates matching `filter` from `start` on, until `signal`
   * aborts or the hub closes.
   */
  async *watch(filter: UpdateFilter, start: WatchStart, signal: AbortSignal): AsyncGenerator<UpdateRow> {
    if (this.closed) return;
    await this.start();
    // With no watchers the hub stops reading: the first one to come back
    // moves it to where the log ends now, without reading what it missed.
    if (this.watchers.size === 0) {
      this.resuming ??= lastFinalPosition(this.options.sql).then(
        (p) => {
          if (this.watchers.size === 0) this.position = p;
          this.resuming = undefined;
        },
        (err: unknown) => {
          this.resuming = undefined;
          throw err;
        },
      );
      await this.resuming;
    }
    const head = this.position!;
    let after: Position;
    let live: boolean;
    if (start.from === "live") {
      after = head;
      live = true;
    } else if (start.from === "after") {
      after = start.position;
      live = false;
    } else {
      after = (await positionBefore(this.options.sql, start.at)) ?? this.position!;
      live = false;
    }
    const watcher = new Watcher(filter, after, live);
    this.watchers.add(watcher);
    const onAbort = () => watcher.wake();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted && !this.closed) {
        const row = watcher.queue.shift();
        if (row) {
          yield row;
          continue;
        }
        if (!watcher.live) {
          await this.catchUp(watcher);
          continue;
        }
        await watcher.wait();
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.watchers.delete(watcher);
    }
  }

  /** Ends every watch and stops reading. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.readTimer);
    for (const w of this.watchers) w.wake();
    await this.listener?.stop();
  }

  /** Wakes the hub to read now (this process just logged updates, say). */
  nudge(): void {
    if (this.watchers.size === 0 || this.resuming !== undefined || this.readTimer) return;
    const wait = this.lastReadAt + MIN_READ_GAP_MS - performance.now();
    if (wait <= 0) {
      void this.read();
      return;
    }
    this.readTimer = setTimeout(() => {
      this.readTimer = undefined;
      void this.read();
    }, wait);
  }

  /** Reads a page of the log for a watcher behind the hub, up to where the hub is. */
  private async catchUp(w: Watcher): Promise<void> {
    const upTo = this.position!;
    const rows = await readUpdates(this.options.sql, w.after, w.filter, PAGE, upTo);
    for (const row of rows) w.take(row);
    if (rows.length === PAGE) return;
    // Everything up to `upTo` is read. If the hub has not moved since, the
    // watcher joins it now (no await in between: no row can slip past).
    if (comparePositions(w.after, upTo) < 0) w.after = upTo;
    if (comparePositions(this.position!, upTo) === 0) w.live = true;
  }

  private start(): Promise<void> {
    this.starting ??= (async () => {
      this.position = await lastFinalPosition(this.options.sql);
      this.listener = new NotifyListener(this.options.databaseUrl, UPDATES_CHANNEL, () => this.nudge(), this.options.log);
      await this.listener.start();
      this.pollTimer = setInterval(() => this.nudge(), POLL_MS);
      this.pollTimer.unref();
    })();
    return this.starting;
  }

  /** Reads what is new (unfiltered) and hands each row to the live watchers it matches. */
  private async read(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    this.lastReadAt = performance.now();
    try {
      for (;;) {
        const from = this.position!;
        const rows = await readUpdates(this.options.sql, from, ALL, PAGE);
        // Moved meanwhile (see watch): this page is stale.
        if (this.position !== from) continue;
        if (rows.length > 0) this.dispatch(rows);
        if (rows.length < PAGE) break;
      }
    } catch (err) {
      this.options.log.warn({ err }, "reading the status log failed; retrying at the next poll");
    } finally {
      this.reading = false;
      if (this.readAgain) {
        this.readAgain = false;
        this.nudge();
      }
    }
  }

  private dispatch(rows: readonly UpdateRow[]): void {
    for (const w of this.watchers) {
      if (!w.live) continue;
      const queued = w.queue.length;
      for (const row of rows) {
        if (comparePositions(row.position, w.after) <= 0) continue;
        if (!matches(w.filter, row)) continue;
        if (w.queue.length >= MAX_QUEUED) {
          // Too far behind: from here on it reads the log itself.
          w.live = false;
          break;
        }
        w.take(row);
      }
      // Every row up to the page's end was considered for it (a watcher
      // resuming after a cursor may already be past it).
      const end = rows.at(-1)!.position;
      if (w.live && comparePositions(end, w.after) > 0) w.after = end;
      // Only those with something new (or now behind) need to run.
      if (w.queue.length > queued || !w.live) w.wake();
    }
    this.position = rows.at(-1)!.position;
  }
}

/** One client's watch. */
class Watcher {
  readonly queue: UpdateRow[] = [];
  private waiting: (() => void) | undefined;

  constructor(
    readonly filter: UpdateFilter,
    /** Every row up to here was handed out or did not match. */
    public after: Position,
    /** Fed by the hub (true) or catching up from the log (false). */
    public live: boolean,
  ) {}

  /** Queues `row` and moves past it. */
  take(row: UpdateRow): void {
    this.queue.push(row);
    this.after = row.position;
  }

  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}
