/**
 * The live feed's model, without the network: its filter (as URL
 * parameters and as a WatchDeliveries request), and its rows, one per
 * delivery, updated in place by each DeliveryUpdate, newest delivery first,
 * at most FEED_LIMIT of them.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type DeliveryStatus,
  type DeliveryUpdate,
  DeliveryUpdateKind,
} from "../../gen/hookline/v1/delivery_pb.js";
import type { WatchDeliveriesRequestSchema } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { dateOf, parseStatus, statusName } from "./format.js";

/** Rows the feed keeps; older deliveries drop off the bottom. */
export const FEED_LIMIT = 500;

/** Where a feed starts when it has no cursor yet. */
export const STARTS = [
  { value: "now", label: "Now", ms: 0 },
  { value: "15m", label: "Last 15 minutes", ms: 15 * 60_000 },
  { value: "1h", label: "Last hour", ms: 3_600_000 },
  { value: "24h", label: "Last 24 hours", ms: 86_400_000 },
] as const;

/** What the feed shows. Empty fields match everything. */
export interface FeedFilter {
  tenantId: string;
  endpointId: string;
  /** Event types; "invoice.*" matches every type starting with "invoice.". */
  eventTypes: string[];
  /** Only updates that leave a delivery in one of these statuses. */
  statuses: DeliveryStatus[];
  /** "now", a value of STARTS, or an ISO time to replay from. */
  start: string;
}

/** One delivery in the feed, as its updates left it. */
export interface FeedRow {
  deliveryId: string;
  eventId: string;
  endpointId: string;
  tenantId: string;
  eventType: string;
  status: DeliveryStatus;
  /** Attempts made so far (the highest attempt number seen). */
  attempts: number;
  /** The HTTP status of the last attempt; 0 when none or no response. */
  responseStatus: number;
  /** The last attempt's error, or why the delivery failed. */
  error: string;
  /** When the last update happened. */
  updatedAt: Date | undefined;
  /** When the next attempt is due, while RETRYING. */
  nextAttemptAt: Date | undefined;
  /** The cursor of the last update; changes with every update (used to flash the row). */
  cursor: string;
}

/** The filter in URL parameters (`#/feed?tenant=acme&types=invoice.*&status=FAILED&start=1h`). */
export function filterFromParams(params: URLSearchParams): FeedFilter {
  const list = (name: string) =>
    (params.get(name) ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  return {
    tenantId: (params.get("tenant") ?? "").trim(),
    endpointId: (params.get("endpoint") ?? "").trim(),
    eventTypes: list("types"),
    statuses: list("status")
      .map(parseStatus)
      .filter((s) => s !== undefined),
    start: (params.get("start") ?? "").trim() || "now",
  };
}

/** The URL parameters of `filter` (the inverse of filterFromParams). */
export function paramsOfFilter(filter: FeedFilter): Record<string, string | undefined> {
  return {
    tenant: filter.tenantId,
    endpoint: filter.endpointId,
    types: filter.eventTypes.join(","),
    status: filter.statuses.map(statusName).join(","),
    start: filter.start === "now" ? undefined : filter.start,
  };
}

/** The time `start` replays from, or undefined for "now" (Hookline's now, whatever the browser's clock says). */
export function sinceOf(start: string, now = Date.now()): Date | undefined {
  const relative = STARTS.find((s) => s.value === start);
  if (relative) return relative.ms === 0 ? undefined : new Date(now - relative.ms);
  const at = new Date(start);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** The WatchDeliveries request of `filter`, resuming after `cursor` when there is one. */
export function watchRequest(
  filter: FeedFilter,
  cursor: string,
  now = Date.now(),
): MessageInitShape<typeof WatchDeliveriesRequestSchema> {
  const since = cursor === "" ? sinceOf(filter.start, now) : undefined;
  return {
    tenantId: filter.tenantId,
    endpointId: filter.endpointId,
    eventTypes: filter.eventTypes,
    statuses: filter.statuses,
    afterCursor: cursor,
    since: since ? timestampFromDate(since) : undefined,
  };
}

/** Whether `row` passes `filter`, by the rules Hookline filters the stream with. */
export function rowMatches(row: FeedRow, filter: FeedFilter): boolean {
  if (filter.tenantId !== "" && row.tenantId !== filter.tenantId) return false;
  if (filter.endpointId !== "" && row.endpointId !== filter.endpointId) return false;
  if (filter.statuses.length > 0 && !filter.statuses.includes(row.status)) return false;
  if (filter.eventTypes.length > 0) {
    const typeMatches = (t: string) => (t.endsWith(".*") ? row.eventType.startsWith(t.slice(0, -1)) : row.eventType === t);
    if (!filter.eventTypes.some(typeMatches)) return false;
  }
  return true;
}

/**
 * The rows after `update`: its delivery's row changed in place, or a new row
 * on top; beyond `limit` rows, the oldest deliveries drop off.
 */
export function applyUpdate(rows: readonly FeedRow[], update: DeliveryUpdate, limit = FEED_LIMIT): FeedRow[] {
  const index = rows.findIndex((r) => r.deliveryId === update.deliveryId);
  const row = nextRow(index === -1 ? undefined : rows[index], update);
  if (index !== -1) return rows.with(index, row);
  return [row, ...rows.slice(0, limit - 1)];
}

function nextRow(row: FeedRow | undefined, u: DeliveryUpdate): FeedRow {
  // Updates about an attempt carry its outcome; CREATED and REQUEUED carry none
  // and leave the last outcome shown; a delivery failed without an attempt
  // (endpoint deleted or disabled) carries its reason.
  const aboutAttempt = u.attemptNumber > 0;
  const carriesError = aboutAttempt || u.error !== "";
  return {
    deliveryId: u.deliveryId,
    eventId: u.eventId,
    endpointId: u.endpointId,
    tenantId: u.tenantId,
    eventType: u.eventType,
    status: u.status,
    attempts: Math.max(row?.attempts ?? 0, u.attemptNumber),
    responseStatus: aboutAttempt ? u.responseStatus : (row?.responseStatus ?? 0),
    error: carriesError ? u.error : u.kind === DeliveryUpdateKind.REQUEUED ? "" : (row?.error ?? ""),
    updatedAt: dateOf(u.occurredAt),
    nextAttemptAt: dateOf(u.nextAttemptAt),
    cursor: u.cursor,
  };
}
