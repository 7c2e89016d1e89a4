/**
 * The delivery state machine: the statuses a delivery can be in, the kinds
 * of row the status log (`delivery_updates`) records, and the one table of
 * transitions between them. Everything that changes a delivery's status
 * looks its transition up here: the attempt stages (delivery/dispatch.ts)
 * and the SQL that writes statuses and log rows (store/sql/states.ts builds
 * its fragments from this table, so no statement holds a bare number).
 *
 * ```
 *   (none)            --created-->                                PENDING
 *   PENDING, RETRYING --attempt-succeeded-->                      SUCCEEDED
 *   PENDING, RETRYING --attempt-failed-->                         RETRYING
 *   PENDING, RETRYING --given-up, endpoint-disabled/-deleted-->   FAILED
 *   any status        --requeued-->                               RETRYING
 * ```
 *
 * Pure: no imports. Statuses and kinds are the numbers of the API's
 * `DeliveryStatus` and `DeliveryUpdateKind` enums (proto/hookline/v1/delivery.proto),
 * so rows map to messages without a table; test/domain/delivery/state.test.ts
 * holds them to it.
 */

/**
 * Delivery statuses as stored (`deliveries.status`, `delivery_updates.status`):
 * the numbers of the `DeliveryStatus` proto enum.
 */
export const DeliveryState = {
  /** Waiting for its first attempt. */
  Pending: 1,
  /** An attempt failed (or it was queued again); another is scheduled. */
  Retrying: 2,
  /** The endpoint answered 2xx. Final. */
  Succeeded: 3,
  /** Given up. Final until queued again. */
  Failed: 4,
} as const;

/** A stored delivery status. */
export type DeliveryState = (typeof DeliveryState)[keyof typeof DeliveryState];

/**
 * Kinds of status log rows (`delivery_updates.kind`): the numbers of the
 * `DeliveryUpdateKind` proto enum.
 */
export const UpdateKind = {
  /** The delivery was created, pending its first attempt. */
  Created: 1,
  /** Reserved by the API for attempts that start; Hookline records none. */
  AttemptStarted: 2,
  /** An attempt failed and a retry is scheduled. */
  RetryScheduled: 3,
  /** An attempt succeeded. */
  Succeeded: 4,
  /** The delivery failed for good (attempts exhausted, or 410 Gone). */
  Failed: 5,
  /** The endpoint was disabled or deleted, so the delivery failed. */
  EndpointDisabled: 6,
  /** The delivery was queued again by RetryDelivery or RecoverEndpoint. */
  Requeued: 7,
} as const;

/** A status log row's kind. */
export type UpdateKind = (typeof UpdateKind)[keyof typeof UpdateKind];

/** Every status, in the enum's order. */
export const ALL_STATES: readonly DeliveryState[] = Object.values(DeliveryState);

/**
 * The live statuses, in which a delivery waits for an attempt or is being
 * attempted. The partial indexes on `deliveries` cover exactly these.
 */
export const LIVE_STATES: readonly DeliveryState[] = [DeliveryState.Pending, DeliveryState.Retrying];

/** The statuses in which a delivery has ended (until it is queued again). */
export const ENDED_STATES: readonly DeliveryState[] = [DeliveryState.Succeeded, DeliveryState.Failed];

/** What happens to a delivery; each is one row of {@link TRANSITIONS}. */
export const DeliveryEvent = {
  /** A publish fanned its event out to the endpoint. */
  Created: "created",
  /** An attempt got a 2xx. */
  AttemptSucceeded: "attempt-succeeded",
  /** An attempt failed and the retry policy schedules another. */
  AttemptFailed: "attempt-failed",
  /** An attempt failed and there will be no other: the retry policy is exhausted, or the endpoint answered 410 Gone. */
  GivenUp: "given-up",
  /** Hookline disabled the endpoint (410 Gone, or failing for too long): its live deliveries fail. */
  EndpointDisabled: "endpoint-disabled",
  /** The endpoint was deleted: its live deliveries fail. */
  EndpointDeleted: "endpoint-deleted",
  /** An operator queued the delivery again (RetryDelivery, or RecoverEndpoint for failed ones). */
  Requeued: "requeued",
} as const;

/** One of {@link DeliveryEvent}. */
export type DeliveryEvent = (typeof DeliveryEvent)[keyof typeof DeliveryEvent];

/** The events that end an attempt: what the attempt stages decide between. */
export type AttemptEvent = typeof DeliveryEvent.AttemptSucceeded | typeof DeliveryEvent.AttemptFailed | typeof DeliveryEvent.GivenUp;

/** The events that end an attempt, in the order their log kinds are matched in SQL. */
export const ATTEMPT_EVENTS: readonly AttemptEvent[] = [DeliveryEvent.AttemptSucceeded, DeliveryEvent.AttemptFailed, DeliveryEvent.GivenUp];

/** One row of the transition table. */
export interface Transition {
  /**
   * The statuses the event may happen in. Empty for {@link DeliveryEvent.Created}:
   * the delivery does not exist before it.
   */
  readonly from: readonly DeliveryState[];
  /** The status it leads to. */
  readonly to: DeliveryState;
  /** The kind of the status log row written with it. */
  readonly log: UpdateKind;
}

/**
 * The delivery state machine, one row per event: from which statuses it may
 * happen, the status it leads to, and the status log row it writes. The
 * statement that makes the change writes the log row in the same statement
 * (see store/sql/*.ts).
 *
 * Changes that keep the status write no log row and are not listed: a
 * claim's lease, giving a lease back, holding deliveries while a circuit is
 * open, letting a parked ordered delivery out. They only touch live
 * deliveries ({@link LIVE_STATES}).
 */
export const TRANSITIONS: { readonly [E in DeliveryEvent]: Transition } = {
  [DeliveryEvent.Created]: { from: [], to: DeliveryState.Pending, log: UpdateKind.Created },
  [DeliveryEvent.AttemptSucceeded]: { from: LIVE_STATES, to: DeliveryState.Succeeded, log: UpdateKind.Succeeded },
  [DeliveryEvent.AttemptFailed]: { from: LIVE_STATES, to: DeliveryState.Retrying, log: UpdateKind.RetryScheduled },
  [DeliveryEvent.GivenUp]: { from: LIVE_STATES, to: DeliveryState.Failed, log: UpdateKind.Failed },
  [DeliveryEvent.EndpointDisabled]: { from: LIVE_STATES, to: DeliveryState.Failed, log: UpdateKind.EndpointDisabled },
  [DeliveryEvent.EndpointDeleted]: { from: LIVE_STATES, to: DeliveryState.Failed, log: UpdateKind.EndpointDisabled },
  [DeliveryEvent.Requeued]: { from: ALL_STATES, to: DeliveryState.Retrying, log: UpdateKind.Requeued },
};

/**
 * The transition `event` makes from status `from` (null: the delivery does
 * not exist yet), or undefined when the event cannot happen in that status.
 */
export function transition(from: DeliveryState | null, event: DeliveryEvent): Transition | undefined {
  const t = TRANSITIONS[event];
  const allowed = from === null ? t.from.length === 0 : t.from.includes(from);
  return allowed ? t : undefined;
}

/**
 * The status a delivery moves to when one of its attempts ends with
 * `event`. Attempts are only made on claimed deliveries, which are live
 * (the claim takes nothing else), and every attempt event leads to the same
 * status from each live status.
 */
export function statusAfterAttempt(event: AttemptEvent): DeliveryState {
  const t = transition(DeliveryState.Pending, event);
  if (!t) throw new Error(`an attempt cannot end with ${event}`);
  return t.to;
}
