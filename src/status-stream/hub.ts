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
 * Memory over all watchers is bounded too (HOOKLINE_WATCH_BUFFER_BYTES):
 * the hub counts the updates its watchers hold, each row once however many
 * queues share it (ROW_BYTES, plus REF_BYTES per queue entry). When the
 * total reaches the bound, the watchers holding the most give up their
 * queues: each goes back to the last update its client was handed and will
 * read the rest from the log when its client reads again (no error, no gap,
 * no repeat). Catching up reads pages that grow as the client takes them
 * (FIRST_PAGE), no larger than what is left of the bound (but at least
 * MIN_PAGE rows, so a client that reads always moves on), and at most
 * CATCH_UP_READS of them at once, so thousands of replaying watchers queue
 * here instead of taking every pooled connection. Before the bound, 500
 * watchers replaying from a time, whose clients never read, held a page of
 * 500 rows each: about 670 KB a watcher with its messages, so 2,000 of
 * them grew a process by over a gigabyte.
 *
 * A watcher leaves the hub as soon as its call's signal aborts (the client
 * cancelled, its connection was reset). Its generator may never resume:
 * connect-node waits for the stream to drain before it asks for the next
 * update, and a stream whose connection is gone never drains, so the
 * generator stays suspended at its `yield` and its `finally` never runs.
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
/**
 * A watcher's first catch-up read asks for this many rows; each next one,
 * made once its client has taken the page before, for twice as many, up to
 * PAGE. A client that never reads costs one small page, not 500 rows (150
 * replaying watchers that never read made 110 MB of garbage with full
 * pages at once).
 */
const FIRST_PAGE = 32;
/** The fewest rows a catch-up read asks for, however little is left of the bound. */
const MIN_PAGE = 16;
/** Catch-up reads running at once, over all watchers; the others wait their turn. */
const CATCH_UP_READS = 2;
/**
 * What one update held for watchers costs, besides its error text: the row
 * and the DeliveryUpdate message made from it. Measured with 50,000 rows
 * as read from the log: 434 bytes of heap a row, 851 with its message.
 */
const ROW_BYTES = 1_024;
/** What one more queue holding an update costs (an array slot, with room to spare). */
const REF_BYTES = 16;
/** Shedding stops once the total is back under this share of the bound. */
const SHED_TO = 0.75;
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
  /** HOOKLINE_WATCH_BUFFER_BYTES: the memory all watchers' queued updates may take, as the hub counts it. */
  bufferBytes: number;
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
  /** What the watchers' queues hold, as counted by {@link Held}. */
  private held = 0;
  /** Catch-up reads running, and those waiting for their turn. */
  private catchUpReads = 0;
  private readonly catchUpWaiting: Array<() => void> = [];

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

  /** Bytes the watchers' queued updates take, as counted against HOOKLINE_WATCH_BUFFER_BYTES. */
  get bufferedBytes(): number {
    return this.held;
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
    if (signal.aborted) return;
    const watcher = new Watcher(filter, after, live);
    this.watchers.add(watcher);
    // Not only in `finally`: see the module comment.
    const onAbort = () => {
      this.leave(watcher);
      watcher.wake();
    };
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted && !this.closed && this.watchers.has(watcher)) {
        const held = watcher.queue.shift();
        if (held) {
          this.release(held);
          watcher.sent = held.row.position;
          yield held.row;
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
      this.leave(watcher);
    }
  }

  /** Ends every watch and stops reading. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.readTimer);
    for (const w of this.watchers) w.wake();
    // Each woken read finds the hub closed and hands its turn back.
    for (const wake of this.catchUpWaiting.splice(0)) {
      this.catchUpReads++;
      wake();
    }
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
    await this.catchUpTurn();
    try {
      if (this.closed || !this.watchers.has(w)) return;
      const upTo = this.position!;
      const room = Math.floor((this.options.bufferBytes - this.held) / ROW_BYTES);
      const limit = Math.max(MIN_PAGE, Math.min(w.pageSize, room));
      w.pageSize = Math.min(PAGE, w.pageSize * 2);
      const rows = await readUpdates(this.options.sql, w.after, w.filter, limit, upTo);
      // It left meanwhile: nothing to hold for it.
      if (!this.watchers.has(w)) return;
      for (const row of rows) this.take(w, { row, holders: 0, bytes: rowBytes(row) });
      if (this.held > this.options.bufferBytes) this.shed(w);
      if (rows.length === limit) return;
      // Everything up to `upTo` is read. If the hub has not moved since, the
      // watcher joins it now (no await in between: no row can slip past).
      if (comparePositions(w.after, upTo) < 0) w.after = upTo;
      if (comparePositions(this.position!, upTo) === 0) w.live = true;
    } finally {
      this.catchUpDone();
    }
  }

  private catchUpTurn(): Promise<void> {
    if (this.catchUpReads < CATCH_UP_READS) {
      this.catchUpReads++;
      return Promise.resolve();
    }
    // The read that ends hands its turn over (catchUpDone).
    return new Promise((resolve) => this.catchUpWaiting.push(resolve));
  }

  private catchUpDone(): void {
    const next = this.catchUpWaiting.shift();
    if (next) next();
    else this.catchUpReads--;
  }

  /** Queues `held` for `w`, counting it. */
  private take(w: Watcher, held: Held): void {
    if (held.holders++ === 0) this.held += held.bytes;
    this.held += REF_BYTES;
    w.queue.push(held);
    w.after = held.row.position;
  }

  /** Uncounts `held`, taken off a queue. */
  private release(held: Held): void {
    this.held -= REF_BYTES;
    if (--held.holders === 0) this.held -= held.bytes;
  }

  /** Empties `w`'s queue: it reads those updates from the log again when its client reads. */
  private drop(w: Watcher): void {
    for (const held of w.queue) this.release(held);
    w.queue.length = 0;
    w.after = w.sent;
    w.live = false;
    w.pageSize = FIRST_PAGE;
    w.wake();
  }

  /** `w` is gone (its call ended or was cancelled): it holds nothing more. */
  private leave(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    for (const held of w.queue) this.release(held);
    w.queue.length = 0;
  }

  /**
   * Over the bound: the watchers holding the most give up their queues
   * until the total is under SHED_TO of it. `keep`'s queue is spared (its
   * client is reading it now; dropping it would read the same page again).
   */
  private shed(keep?: Watcher): void {
    const target = this.options.bufferBytes * SHED_TO;
    const holding = [...this.watchers].filter((w) => w !== keep && w.queue.length > 0);
    holding.sort((a, b) => b.queue.length - a.queue.length);
    let dropped = 0;
    for (const w of holding) {
      if (this.held <= target) break;
      this.drop(w);
      dropped++;
    }
    this.options.log.debug({ held: this.held, dropped }, "over HOOKLINE_WATCH_BUFFER_BYTES: the watchers holding the most gave up their queues");
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
    // Made as needed, and shared by every queue that takes the row.
    const helds: Array<Held | undefined> = new Array(rows.length);
    for (const w of this.watchers) {
      if (!w.live) continue;
      const queued = w.queue.length;
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        if (comparePositions(row.position, w.after) <= 0) continue;
        if (!matches(w.filter, row)) continue;
        if (w.queue.length >= MAX_QUEUED) {
          // Too far behind: from here on it reads the log itself.
          w.live = false;
          break;
        }
        if (this.held >= this.options.bufferBytes) {
          this.shed();
          // It was among those holding the most: it reads the log from now on.
          if (!w.live) break;
        }
        let held = helds[i];
        if (held === undefined) {
          held = { row, holders: 0, bytes: rowBytes(row) };
          helds[i] = held;
        }
        this.take(w, held);
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

/**
 * An update in watchers' queues. It is counted once (`bytes`) while any
 * queue holds it, plus REF_BYTES per queue.
 */
interface Held {
  row: UpdateRow;
  /** Queues holding it now. */
  holders: number;
  bytes: number;
}

/** What `row` costs held in memory (see ROW_BYTES); text counted at 2 bytes a character, the most V8 uses. */
function rowBytes(row: UpdateRow): number {
  return ROW_BYTES + 2 * row.error.length;
}

/** One client's watch. */
class Watcher {
  readonly queue: Held[] = [];
  private waiting: (() => void) | undefined;
  /** The last update handed to the client (or where the watch started). */
  sent: Position;
  /** Rows its next catch-up read asks for (see FIRST_PAGE). */
  pageSize = FIRST_PAGE;

  constructor(
    readonly filter: UpdateFilter,
    /** Every row up to here was queued, handed out or did not match. */
    public after: Position,
    /** Fed by the hub (true) or catching up from the log (false). */
    public live: boolean,
  ) {
    this.sent = after;
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
