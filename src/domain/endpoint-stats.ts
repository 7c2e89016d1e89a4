/** GetEndpointStats: an endpoint's recent figures and its health, as plain values. */
import type { EntityManager } from "@mikro-orm/postgresql";
import { Endpoint } from "../store/entities/index.js";
import { endpointFigures, type EndpointFigures } from "../store/sql/endpoint-stats.js";
import type { Sql } from "../store/sql.js";
import { NotFoundError, ValidationError } from "./errors.js";

/** The window when none is asked for. */
export const DEFAULT_STATS_WINDOW_MS = 24 * 3_600_000;
const MAX_STATS_WINDOW_MS = 90 * 24 * 3_600_000;

/** An endpoint's statistics. */
export interface EndpointStats extends EndpointFigures {
  endpointId: string;
  windowMs: number;
  /** Successful attempts over all attempts in the window (0 when none). */
  successRate: number;
  lastError: string;
  lastErrorAt: Date | null;
  consecutiveFailures: number;
  circuit: "closed" | "open" | "half-open";
  circuitOpenUntil: Date | null;
}

/** The statistics of endpoint `id` over the last `windowMs`. */
export async function getEndpointStats(
  em: EntityManager,
  sql: Sql,
  id: string,
  windowMs: number = DEFAULT_STATS_WINDOW_MS,
): Promise<EndpointStats> {
  if (id === "") throw new ValidationError("id", "is required");
  if (!Number.isFinite(windowMs) || windowMs <= 0 || windowMs > MAX_STATS_WINDOW_MS) {
    throw new ValidationError("window", "must be more than 0 and at most 90 days");
  }
  const endpoint = await em.findOne(Endpoint, { id, deletedAt: null });
  if (!endpoint) throw new NotFoundError("endpoint", id);
  const now = Date.now();
  const figures = await endpointFigures(sql, id, new Date(now - windowMs));
  const openUntil = endpoint.circuitOpenUntil;
  return {
    ...figures,
    endpointId: id,
    windowMs,
    successRate: figures.attempts === 0 ? 0 : figures.successfulAttempts / figures.attempts,
    lastError: endpoint.lastError,
    lastErrorAt: endpoint.lastErrorAt,
    consecutiveFailures: endpoint.consecutiveFailures,
    circuit: openUntil === null ? "closed" : openUntil.getTime() > now ? "open" : "half-open",
    circuitOpenUntil: openUntil,
  };
}
