/**
 * Reading deliveries: listing with filters (newest first) and one delivery
 * with its attempts.
 */
import { type EntityManager, type FilterQuery, raw } from "@mikro-orm/postgresql";
import { Attempt, Delivery, Endpoint } from "../store/entities/index.js";
import { ofEvent } from "../store/sql/deliveries-of-event.js";
import { requeueDelivery } from "../store/sql/requeue.js";
import { requeueFailed } from "../store/sql/requeue-failed.js";
import type { Sql } from "../store/sql.js";
import { ALL_STATES } from "./delivery/state.js";
import { FailedPreconditionError, NotFoundError, ValidationError } from "./errors.js";
import { checkPageSize, decodePageToken, encodePageToken } from "./validate.js";

/** Filters of {@link listDeliveries}; unset members do not filter. */
export interface DeliveryFilter {
  tenantId?: string;
  endpointId?: string;
  eventId?: string;
  eventType?: string;
  status?: number;
  createdAfter?: Date;
  createdBefore?: Date;
}

/** One page of deliveries matching every given filter, newest first. */
export async function listDeliveries(
  em: EntityManager,
  filter: DeliveryFilter,
  pageSize: number,
  pageToken: string,
): Promise<{ deliveries: Delivery[]; nextPageToken: string }> {
  const size = checkPageSize(pageSize);
  const before = decodePageToken(pageToken);
  // 0 (unspecified) means any; a number outside the enum (binary requests can carry one) matched nothing before.
  if (filter.status !== undefined && filter.status !== 0 && !(ALL_STATES as readonly number[]).includes(filter.status)) {
    throw new ValidationError("status", `${filter.status} is not a delivery status (PENDING, RETRYING, SUCCEEDED or FAILED)`);
  }
  const where: FilterQuery<Delivery> = {};
  if (filter.tenantId) where.tenantId = filter.tenantId;
  if (filter.endpointId) where.endpointId = filter.endpointId;
  // By id range, not an index on event_id (see deliveries-of-event.ts).
  if (filter.eventId) Object.assign(where, { [raw((alias) => ofEvent(alias, "?"), Array(3).fill(filter.eventId))]: [] });
  if (filter.eventType) where.eventType = filter.eventType;
  if (filter.status) where.status = filter.status as Delivery["status"];
  if (filter.createdAfter || filter.createdBefore) {
    where.createdAt = {
      ...(filter.createdAfter ? { $gte: filter.createdAfter } : {}),
      ...(filter.createdBefore ? { $lt: filter.createdBefore } : {}),
    };
  }
  if (before) where.id = { $lt: before };
  const rows = await em.find(Delivery, where, { orderBy: { id: "desc" }, limit: size + 1 });
  const more = rows.length > size;
  const deliveries = more ? rows.slice(0, size) : rows;
  return { deliveries, nextPageToken: more ? encodePageToken(deliveries.at(-1)!.id) : "" };
}

/** One delivery and its newest `attemptLimit` attempts (0 means 50), newest first. */
export async function getDelivery(
  em: EntityManager,
  id: string,
  attemptLimit: number,
): Promise<{ delivery: Delivery; attempts: Attempt[] }> {
  if (id === "") throw new ValidationError("id", "is required");
  const limit = attemptLimit === 0 ? 50 : attemptLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new ValidationError("attempt_limit", "must be from 1 to 1000 (or 0 for 50)");
  }
  const delivery = await em.findOne(Delivery, { id });
  if (!delivery) throw new NotFoundError("delivery", id);
  const attempts = await em.find(Attempt, { deliveryId: id }, { orderBy: { number: "desc" }, limit });
  return { delivery, attempts };
}

/**
 * Queues a delivery for an attempt now, whatever its status (a FAILED one
 * too). The attempt count goes on, so the retry policy still bounds
 * automatic retries after a manual one.
 */
export async function retryDelivery(sql: Sql, id: string): Promise<void> {
  if (id === "") throw new ValidationError("id", "is required");
  const result = await requeueDelivery(sql, id);
  if (!result.found) throw new NotFoundError("delivery", id);
  if (result.inFlight) throw new FailedPreconditionError(`delivery ${id} has an attempt in flight; retry it once it ends`);
  if (result.endpointUnavailable === "deleted") {
    throw new FailedPreconditionError(`delivery ${id} cannot be retried: its endpoint was deleted`);
  }
  if (result.endpointUnavailable === "disabled") {
    throw new FailedPreconditionError(`delivery ${id} cannot be retried: its endpoint is disabled; enable it first`);
  }
}

/**
 * Queues again the FAILED deliveries of endpoint `endpointId` created in
 * [since, until) (until defaults to now), in bounded batches. The endpoint
 * must be live: a disabled endpoint is resumed first (UpdateEndpoint).
 */
export async function recoverEndpoint(
  em: EntityManager,
  sql: Sql,
  endpointId: string,
  since: Date | undefined,
  until: Date | undefined,
): Promise<number> {
  if (endpointId === "") throw new ValidationError("endpoint_id", "is required");
  if (!since) throw new ValidationError("since", "is required");
  const end = until ?? new Date();
  if (end.getTime() <= since.getTime()) throw new ValidationError("until", "must be after since");
  const endpoint = await em.findOne(Endpoint, { id: endpointId, deletedAt: null });
  if (!endpoint) throw new NotFoundError("endpoint", endpointId);
  if (endpoint.disabled) {
    throw new FailedPreconditionError(`endpoint ${endpointId} is disabled; resume it first (UpdateEndpoint with disabled false)`);
  }
  return requeueFailed(sql, endpointId, since, end);
}
