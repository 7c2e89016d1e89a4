/**
 * Delivery statuses and status-log kinds as SQL text, built from the state
 * machine (domain/delivery/state.ts): the one place statements get them, so
 * no statement holds a bare number and none can disagree with the
 * transition table (test/store/sql-states.test.ts reads the sources and the
 * built statements for both).
 *
 * The values are written into the text as constants, not parameters: the
 * partial indexes on `deliveries` were created with the predicate
 * `status IN (1, 2)` (PENDING, RETRYING), and the planner uses such an index
 * only when it can prove from the query's own condition that the predicate
 * holds, which it does from constants and not from a parameter of a generic
 * plan. {@link sqlStates} writes sets in ascending order, so
 * {@link LIVE_STATES} is the very text the indexes were made with (the test
 * compares them, and checks the planner uses the indexes).
 */
import {
  ALL_STATES,
  ATTEMPT_EVENTS,
  type DeliveryEvent,
  type DeliveryState,
  ENDED_STATES as ENDED,
  LIVE_STATES as LIVE,
  TRANSITIONS,
  UpdateKind,
} from "../../domain/delivery/state.js";

const KINDS: readonly number[] = Object.values(UpdateKind);

/** A delivery status as an SQL constant. */
export function sqlStatus(status: DeliveryState): string {
  if (!ALL_STATES.includes(status)) throw new Error(`${status} is not a delivery status`);
  return String(status);
}

/** A status-log kind as an SQL constant. */
export function sqlKind(kind: UpdateKind): string {
  if (!KINDS.includes(kind)) throw new Error(`${kind} is not a status log kind`);
  return String(kind);
}

/** A set of statuses as a list for `status IN ...`, ascending: `(1, 2)`. */
export function sqlStates(states: readonly DeliveryState[]): string {
  if (states.length === 0) throw new Error("an empty set of delivery statuses has no SQL list");
  return `(${[...new Set(states)].sort((a, b) => a - b).map(sqlStatus).join(", ")})`;
}

/**
 * The live states, in which a delivery waits or is being attempted:
 * `(PENDING, RETRYING)`, the text of the partial indexes' predicate.
 */
export const LIVE_STATES = sqlStates(LIVE);

/** The ended states: `(SUCCEEDED, FAILED)`. */
export const ENDED_STATES = sqlStates(ENDED);

/** One transition of the state machine as SQL constants. */
export interface SqlTransition {
  /**
   * The statuses it may happen in, for `status IN ...`; empty for
   * `created`, which happens to no existing row.
   */
  readonly from: string;
  /** The status it leads to. */
  readonly to: string;
  /** The kind of its status log row. */
  readonly log: string;
}

/** The transition of `event` (see TRANSITIONS) as SQL constants. */
export function sqlTransition(event: DeliveryEvent): SqlTransition {
  const t = TRANSITIONS[event];
  return { from: t.from.length > 0 ? sqlStates(t.from) : "", to: sqlStatus(t.to), log: sqlKind(t.log) };
}

/**
 * `CASE <status> WHEN ... THEN ... END`: the status log kind of an attempt
 * that moved a delivery to the status in the column `status`, from the
 * attempt events' transitions (RETRYING: RETRY_SCHEDULED, SUCCEEDED:
 * SUCCEEDED, FAILED: FAILED). The outcome writer records statuses, not
 * events, so each attempt event must lead to a status of its own. There is
 * no ELSE: a status no attempt leads to gives NULL, which
 * `delivery_updates.kind` refuses, so the write fails instead of logging
 * something made up.
 */
export function sqlLogKindAfterAttempt(status: string): string {
  const statuses = ATTEMPT_EVENTS.map((e) => TRANSITIONS[e].to);
  if (new Set(statuses).size !== statuses.length) throw new Error("two attempt events lead to one status: its log kind is ambiguous");
  const cases = ATTEMPT_EVENTS.map((e) => `WHEN ${sqlStatus(TRANSITIONS[e].to)} THEN ${sqlKind(TRANSITIONS[e].log)}`);
  return `CASE ${status} ${cases.join(" ")} END`;
}
