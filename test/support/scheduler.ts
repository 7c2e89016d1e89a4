/**
 * A Scheduler's options for tests that drive one directly against the test
 * database: small limits, no poll (every claim comes from the scheduler's
 * own triggers), retries far off. Each test overrides what it is about.
 */
import { randomBytes } from "node:crypto";
import { AddressGuard } from "../../src/delivery/address-guard.js";
import type { SchedulerOptions } from "../../src/delivery/scheduler.js";
import type { Sql } from "../../src/store/sql.js";
import { SecretBox } from "../../src/signing/secret-box.js";
import { captureLog } from "./log.js";

/** Options for a scheduler on `sql` of the database at `databaseUrl`, with `overrides`. */
export function schedulerOptions(sql: Sql, databaseUrl: string, overrides: Partial<SchedulerOptions> = {}): SchedulerOptions {
  return {
    sql,
    databaseUrl,
    log: captureLog("warn").log,
    secrets: new SecretBox(randomBytes(32)),
    maxInFlight: 8,
    claimBatchSize: 64,
    pollIntervalMs: 3_600_000,
    leaseMarginMs: 30_000,
    requestTimeoutMs: 15_000,
    responseBodyLimit: 4_096,
    addressGuard: new AddressGuard([]),
    defaultRetryPolicy: { kind: "schedule", delaysMs: [1_000] },
    jitter: 0,
    throttleMinDelayMs: 0,
    retryAfterCapMs: 60_000,
    endpointMaxInFlight: 10,
    circuitFailureThreshold: 5,
    circuitCooldownMs: 30_000,
    circuitMaxCooldownMs: 600_000,
    disableAfterMs: 86_400_000,
    ...overrides,
  };
}
