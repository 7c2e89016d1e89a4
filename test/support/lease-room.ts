/**
 * A process's room as the claim and the publish statement take it
 * (src/store/sql/lease-room.ts), for the tests of those statements: one
 * worker, nothing in flight, nothing excluded, limits out of the way.
 */
import type { LeaseRoom } from "../../src/store/sql/lease-room.js";

/** The room of an idle process `w1`; tests spread their own fields over it. */
export const IDLE_ROOM: LeaseRoom = {
  workerId: "w1",
  leaseMarginMs: 30_000,
  defaultTimeoutMs: 15_000,
  exclude: [],
  laneFree: new Map(),
  excludeTenants: [],
  tenants: new Map(),
  newTenant: { free: 1_000, newEndpointFree: 1_000 },
  defaultMaxInFlight: 100,
  workers: 1,
  circuitFailureThreshold: 5,
};
