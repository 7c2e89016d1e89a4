/**
 * How much work one process may lease, as SQL: the pieces the claim
 * (claim-due.ts) and the publish statement (insert-events.ts, which leases
 * new deliveries to the publishing process) share, so both follow the same
 * fair shares (see delivery/lanes.ts) and the rules live in one place.
 *
 * Each piece adds its parameters to the statement's {@link Params} as it is
 * written, so no finished statement is ever edited.
 */

/** A statement's parameters, numbered as they are added (`$1`, `$2`, ...). */
export class Params {
  readonly values: unknown[] = [];

  /** Adds `value` and returns its placeholder with the cast `type`. */
  add(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/** How much a tenant may take in one claim. */
export interface TenantRoom {
  /** Deliveries, over all its endpoints. */
  free: number;
  /** Deliveries an endpoint of it with no work in this process may take. */
  newEndpointFree: number;
}

/** What one process has room for now (from Lanes.capacity, see lanes.ts). */
export interface LeaseRoom {
  /** This process's lease owner id. */
  workerId: string;
  /**
   * Endpoints with no free capacity in this process, and those whose circuit
   * takes nothing now (open, or a probe in flight; see circuit-holds.ts).
   */
  exclude: readonly string[];
  /** Endpoints with some work in flight here, and how many more each may take. */
  laneFree: ReadonlyMap<string, number>;
  /** Tenants with no room in this process. */
  excludeTenants: readonly string[];
  /** Tenants with work here: how many more deliveries each may take, and how many a new endpoint of theirs may. */
  tenants: ReadonlyMap<string, TenantRoom>;
  /** The same for a tenant with no work here. */
  newTenant: TenantRoom;
  /** In-flight limit of endpoints that set none. */
  defaultMaxInFlight: number;
  /** Live scheduler processes, over which endpoint limits are shared. */
  workers: number;
  /** Consecutive failures that open a circuit. */
  circuitFailureThreshold: number;
  /** Added to an endpoint's request timeout to make a lease. */
  leaseMarginMs: number;
  /** Request timeout of endpoints that set none. */
  defaultTimeoutMs: number;
}

/** The CTEs `lanes (endpoint_id, free)` and `tenants (tenant_id, free, new_endpoint_free)` of `room`. */
export function roomTables(p: Params, room: LeaseRoom): string {
  return `lanes AS (
  SELECT * FROM unnest(${p.add([...room.laneFree.keys()], "text[]")}, ${p.add([...room.laneFree.values()], "int[]")}) AS l (endpoint_id, free)
),
tenants AS (
  SELECT * FROM unnest(${p.add([...room.tenants.keys()], "text[]")}, ${p.add([...room.tenants.values()].map((t) => t.free), "int[]")},
                       ${p.add([...room.tenants.values()].map((t) => t.newEndpointFree), "int[]")})
    AS t (tenant_id, free, new_endpoint_free)
)`;
}

/** A condition: the row's endpoint (`endpoint`) and tenant (`tenant`) columns are not excluded. */
export function notExcluded(p: Params, room: LeaseRoom, endpoint: string, tenant: string): string {
  return `${endpoint} <> ALL (${p.add(room.exclude, "text[]")}) AND ${tenant} <> ALL (${p.add(room.excludeTenants, "text[]")})`;
}

/**
 * How many deliveries of an endpoint (`ep`, joined to `l` in lanes and `t`
 * in tenants) this process may lease now, ordered endpoints and probes
 * aside: its free room here (for an endpoint with no work here, its share
 * of its limit within its fair share of its tenant's), within its rate limit.
 */
export function endpointFree(p: Params, room: LeaseRoom, ep: string, l: string, t: string): string {
  const workers = p.add(Math.max(1, room.workers), "int");
  return `least(
        coalesce(${l}.free, least(coalesce(${t}.new_endpoint_free, ${p.add(room.newTenant.newEndpointFree, "int")}),
                               ceil(coalesce(${ep}.max_in_flight, ${p.add(room.defaultMaxInFlight, "int")})::float8 / ${workers})::int)),
        CASE WHEN ${ep}.rate_limit_per_second IS NULL THEN 2147483647
             ELSE greatest(1, floor(${ep}.rate_limit_per_second / ${workers}))::int END)`;
}

/** How many deliveries a tenant (`t` in tenants, NULL for one with no work here) may lease now. */
export function tenantFree(p: Params, room: LeaseRoom, t: string): string {
  return `coalesce(${t}.free, ${p.add(room.newTenant.free, "int")})`;
}

/**
 * The lease's end for a delivery of endpoint `ep`: its request timeout plus
 * the margin, from now, on a whole millisecond. It is also the lease's
 * token (see ClaimedDelivery.leaseUntil): a JavaScript Date holds it
 * exactly, and the outcome and release statements compare it.
 */
export function leaseEnd(p: Params, room: LeaseRoom, ep: string): string {
  return `date_trunc('milliseconds', now() + make_interval(secs => (coalesce(${ep}.timeout_ms, ${p.add(room.defaultTimeoutMs, "int")}) + ${p.add(room.leaseMarginMs, "int")})::float8 / 1000))`;
}
