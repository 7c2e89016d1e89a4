/**
 * Follows WatchDeliveries across dropped connections and server restarts:
 * each reconnect resumes right after the cursor of the last update handed
 * on, so nothing is missed or repeated (see docs/status-stream.md).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, type Client, ConnectError } from "@connectrpc/connect";
import type { DeliveryUpdate } from "../../gen/hookline/v1/delivery_pb.js";
import type { WatchDeliveriesRequestSchema, WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { retryDelay } from "../delivery/backoff.js";

/** The filters and starting point of a watch. */
export type WatchRequest = MessageInitShape<typeof WatchDeliveriesRequestSchema>;

/** Why a watch is reconnecting, and when. */
export interface Reconnect {
  /** The error the stream ended with; undefined when it ended cleanly (the server shut down). */
  error: ConnectError | undefined;
  /** How long until the next try. */
  delayMs: number;
  /** The cursor it will resume after; "" when nothing was received yet. */
  cursor: string;
}

/** Callbacks and controls of {@link followDeliveries}. */
export interface FollowOptions {
  /** Ends the watch; followDeliveries then resolves. */
  signal: AbortSignal;
  /** Called with each update, in order; the update counts as handed on once it returns. */
  onUpdate(update: DeliveryUpdate): void | Promise<void>;
  /** Called before each wait to reconnect. */
  onReconnect?(reconnect: Reconnect): void;
  /** The clock, for the starting point of a live watch. */
  now?: () => number;
}

/** Reconnects wait 250 ms, doubling to at most 5 s, +-20 %; reset by every update received. */
const RECONNECT_BACKOFF = { kind: "exponential", baseMs: 250, capMs: 5_000, maxAttempts: Number.POSITIVE_INFINITY } as const;

/**
 * Whether a stream that failed with `code` is worth reconnecting: the server
 * went away or had a passing fault, as opposed to a request it refuses.
 */
export function isTransient(code: Code): boolean {
  return [Code.Unavailable, Code.Unknown, Code.Internal, Code.Aborted, Code.DeadlineExceeded, Code.Canceled, Code.ResourceExhausted].includes(code);
}

/**
 * The request of the next connection: after `cursor` once an update was
 * handed on; else from the requested start; a watch that started live
 * resumes from when it first connected (`liveFrom`).
 */
export function resumeRequest(request: WatchRequest, cursor: string, liveFrom: Timestamp | undefined): WatchRequest {
  if (cursor !== "") return { ...request, afterCursor: cursor, since: undefined };
  if (request.afterCursor || request.since || !liveFrom) return request;
  return { ...request, since: liveFrom };
}

/**
 * Hands every update matching `request` to `onUpdate`, reconnecting with
 * backoff whenever the stream ends or fails for a transient reason, until
 * `signal` aborts. Rejects with the ConnectError of a request the server
 * refuses (bad filter, bad token).
 */
export async function followDeliveries(
  admin: Client<typeof WebhookAdmin>,
  request: WatchRequest,
  options: FollowOptions,
): Promise<void> {
  const { signal } = options;
  const now = options.now ?? Date.now;
  let cursor = "";
  let liveFrom: Timestamp | undefined;
  let failures = 0;
  while (!signal.aborted) {
    const next = resumeRequest(request, cursor, liveFrom);
    // A live start is remembered at the first connection: a reconnect before any update replays from there.
    liveFrom ??= timestampFromMs(now());
    let error: ConnectError | undefined;
    let inHandler = false;
    // Leaving the loop does not end the call; aborting its signal does.
    const call = new AbortController();
    try {
      for await (const update of admin.watchDeliveries(next, { signal: AbortSignal.any([signal, call.signal]) })) {
        failures = 0;
        inHandler = true;
        await options.onUpdate(update);
        inHandler = false;
        cursor = update.cursor;
        // Updates already received still come after an abort.
        if (signal.aborted) return;
      }
    } catch (err) {
      if (inHandler) throw err;
      if (signal.aborted) return;
      error = ConnectError.from(err);
      if (!isTransient(error.code)) throw error;
    } finally {
      call.abort();
    }
    if (signal.aborted) return;
    failures++;
    const delayMs = retryDelay(RECONNECT_BACKOFF, failures, 0.2) ?? RECONNECT_BACKOFF.capMs;
    options.onReconnect?.({ error, delayMs, cursor });
    await sleep(delayMs, undefined, { signal }).catch(() => {});
  }
}
