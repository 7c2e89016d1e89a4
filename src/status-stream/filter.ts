/**
 * What a watch asks for: its filter and where it starts, checked field by
 * field (a ValidationError names the request field), and the filter's
 * match, which must agree with the SQL filter in store/sql/delivery-updates.ts.
 */
import { ALL_STATES } from "../domain/delivery/state.js";
import { ValidationError } from "../domain/errors.js";
import { checkEventTypeFilter, checkTenantId } from "../domain/validate.js";
import { decodeCursor, type UpdateFilter, type UpdateRow } from "../store/sql/delivery-updates.js";
import type { WatchStart } from "./hub.js";

/** A watch request, as plain values. */
export interface WatchInput {
  tenantId: string;
  endpointId: string;
  eventId: string;
  eventTypes: readonly string[];
  /** DeliveryStatus numbers. */
  statuses: readonly number[];
  afterCursor: string;
  since: Date | undefined;
}

/** The delivery statuses a filter may name (PENDING to FAILED). */
const STATUSES = new Set<number>(ALL_STATES);
const MAX_EVENT_TYPES = 64;
const ID_RE = /^[A-Za-z0-9_]{1,64}$/;

/** Checks a watch request; returns its filter and start. */
export function parseWatch(input: WatchInput): { filter: UpdateFilter; start: WatchStart } {
  const tenantId = input.tenantId === "" ? "" : checkTenantId(input.tenantId);
  const endpointId = checkOptionalId(input.endpointId, "endpoint_id");
  const eventId = checkOptionalId(input.eventId, "event_id");
  if (input.eventTypes.length > MAX_EVENT_TYPES) {
    throw new ValidationError("event_types", `at most ${MAX_EVENT_TYPES}, got ${input.eventTypes.length}`);
  }
  const eventTypes: string[] = [];
  const eventTypePrefixes: string[] = [];
  input.eventTypes.forEach((t, i) => {
    const checked = checkEventTypeFilter(t, `event_types[${i}]`);
    if (checked.endsWith(".*")) eventTypePrefixes.push(checked.slice(0, -1));
    else eventTypes.push(checked);
  });
  input.statuses.forEach((s, i) => {
    if (!STATUSES.has(s)) {
      throw new ValidationError(`statuses[${i}]`, `${s} is not a delivery status (PENDING, RETRYING, SUCCEEDED or FAILED)`);
    }
  });
  let start: WatchStart = { from: "live" };
  if (input.afterCursor !== "") {
    if (input.since) throw new ValidationError("since", "give after_cursor or since, not both");
    const position = decodeCursor(input.afterCursor);
    if (!position) throw new ValidationError("after_cursor", "is not a cursor from a DeliveryUpdate");
    start = { from: "after", position };
  } else if (input.since) {
    start = { from: "since", at: input.since };
  }
  return {
    filter: { tenantId, endpointId, eventId, eventTypes, eventTypePrefixes, statuses: [...new Set(input.statuses)] },
    start,
  };
}

function checkOptionalId(value: string, field: string): string {
  if (value !== "" && !ID_RE.test(value)) throw new ValidationError(field, `"${value}" is not an id`);
  return value;
}

/** Whether `row` passes `filter` (the same rules as the SQL filter). */
export function matches(filter: UpdateFilter, row: UpdateRow): boolean {
  if (filter.tenantId !== "" && row.tenantId !== filter.tenantId) return false;
  if (filter.endpointId !== "" && row.endpointId !== filter.endpointId) return false;
  if (filter.eventId !== "" && row.eventId !== filter.eventId) return false;
  if (filter.statuses.length > 0 && !filter.statuses.includes(row.status)) return false;
  if (filter.eventTypes.length > 0 || filter.eventTypePrefixes.length > 0) {
    if (!filter.eventTypes.includes(row.eventType) && !filter.eventTypePrefixes.some((p) => row.eventType.startsWith(p))) {
      return false;
    }
  }
  return true;
}
