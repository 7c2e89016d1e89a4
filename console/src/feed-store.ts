/**
 * The live feed's state across views: its rows, the cursor of the last
 * update, and the WatchDeliveries stream that feeds them.
 *
 * The stream runs while the feed is shown. When it fails or Hookline ends
 * it (a restart), the store reconnects with backoff and resumes right after
 * the last cursor, so no update is lost or shown twice; leaving the feed and
 * coming back resumes the same way. Errors that another try cannot fix (no
 * token, a refused filter) stop it until the user changes something.
 *
 * Hookline sends a stream's response headers with its first update, so an
 * open stream cannot be told from one still connecting until an update
 * arrives; a stream that has not failed within LIVE_AFTER_MS counts as live
 * (refusals come back at once).
 */
import type { DeliveryUpdate } from "../../gen/hookline/v1/delivery_pb.js";
import { type AdminClient, type Problem, problemOf } from "./rpc.js";
import { applyUpdate, type FeedFilter, type FeedRow, rowMatches, watchRequest } from "./feed-rows.js";

/** Where the stream stands. */
export type FeedState =
  | { kind: "idle" }
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting"; at: number; problem: Problem }
  | { kind: "stopped"; problem: Problem };

const LIVE_AFTER_MS = 800;
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 15_000;

/** See the module comment. */
export class FeedStore {
  /** One row per delivery, newest delivery first. */
  rows: readonly FeedRow[] = [];
  /** Where the stream stands. */
  state: FeedState = { kind: "idle" };
  /** How many updates arrived since the feed (re)started. */
  updates = 0;
  private cursor = "";
  /** The start and token the rows belong to; another one starts the feed afresh. */
  private origin = "";
  private abort: AbortController | undefined;
  private readonly listeners = new Set<() => void>();

  /** Calls `listener` after every change; returns the function that stops it. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Follows the deliveries that pass `filter` with `client` (whose token is
   * `token`), until stop(). With the same start and token as before, the
   * rows that still pass stay and the stream resumes after the last cursor;
   * otherwise the feed starts afresh from `filter.start`.
   */
  follow(client: AdminClient, token: string, filter: FeedFilter): void {
    this.stop();
    const origin = JSON.stringify([filter.start, token]);
    if (origin !== this.origin) {
      this.origin = origin;
      this.rows = [];
      this.cursor = "";
      this.updates = 0;
    } else {
      this.rows = this.rows.filter((r) => rowMatches(r, filter));
    }
    const abort = new AbortController();
    this.abort = abort;
    void this.run(client, filter, abort.signal);
  }

  /** Stops the stream; the rows and cursor stay for the next follow(). */
  stop(): void {
    this.abort?.abort();
    this.abort = undefined;
  }

  private async run(client: AdminClient, filter: FeedFilter, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      this.setState({ kind: "connecting" });
      const live = setTimeout(() => {
        if (signal.aborted) return;
        failures = 0;
        this.setState({ kind: "live" });
      }, LIVE_AFTER_MS);
      let problem: Problem;
      try {
        const request = watchRequest(filter, this.cursor);
        for await (const update of client.watchDeliveries(request, { signal })) {
          if (signal.aborted) return; // a later follow() owns the feed now
          this.receive(update);
        }
        problem = { kind: "unavailable", code: "", message: "Hookline ended the stream (restarting?)" };
      } catch (err) {
        if (signal.aborted) return;
        problem = problemOf(err);
      } finally {
        clearTimeout(live);
      }
      if (signal.aborted) return;
      if (problem.kind !== "unavailable") {
        this.setState({ kind: "stopped", problem });
        return;
      }
      const delay = Math.min(FIRST_RETRY_MS * 2 ** failures, MAX_RETRY_MS);
      failures++;
      this.setState({ kind: "reconnecting", at: Date.now() + delay, problem });
      await sleep(delay, signal);
    }
  }

  private receive(update: DeliveryUpdate): void {
    this.cursor = update.cursor;
    this.updates++;
    this.rows = applyUpdate(this.rows, update);
    if (this.state.kind !== "live") this.state = { kind: "live" };
    this.changed();
  }

  private setState(state: FeedState): void {
    this.state = state;
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
