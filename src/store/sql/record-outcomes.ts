/**
 * Writes attempt outcomes back in batches, with the endpoints' health.
 *
 * One statement writes every outcome of the batch: each delivery's queue
 * row (a retry is due again at its time, an ended delivery leaves the
 * queue), its history row, and its status log row, which records the
 * attempt too; and each endpoint's health: consecutive failures, when its
 * current run of failures began, its circuit breaker, and whether it must be
 * disabled (410 Gone, or failing for too long). A delivery changes only while this process still
 * holds the lease the attempt was made under (`locked_by` on its queue row,
 * and the lease's end as its due time: see ClaimedDelivery.leaseUntil); if
 * the lease was lost (the endpoint was deleted, another process took the
 * delivery over, or this one did again after the lease lapsed), the lease's
 * holder decides its state now and only the attempt is kept, in `attempts`.
 */
import type { AttemptOutcome, HealthChanges, HealthRules } from "../../domain/delivery/outcome.js";
import type { Sql } from "../sql.js";
import { sqlLogKindAfterAttempt } from "./states.js";

const RECORD = `
WITH r AS (
  SELECT * FROM unnest(
    $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::int[], $7::int[],
    $8::text[], $9::text[], $10::text[], $11::smallint[], $12::timestamptz[], $13::jsonb[])
    AS r (attempt_id, delivery_id, number, started_at, duration_ms, response_status,
          error_class, error, response_body, status, next_attempt_at, response_headers)
),
-- The queue rows this process still holds (its lease): a retry stays queued,
-- due at its time; an ended delivery leaves the queue. If the lease was lost
-- (the endpoint was deleted, or another process took the delivery over),
-- that owner decides its state now, and only the attempt row is kept.
retried AS (
  UPDATE delivery_queue q
  SET attempt_count = r.number, locked_by = NULL,
      -- A retry is never due while its endpoint is blocked (an attempt that
      -- started before the circuit opened, written after): it waits for the
      -- block's end like the rest (see circuit-holds.ts).
      -- (A scalar subquery, not a join: the plan must stay on the primary key, see below.)
      due_at = greatest(r.next_attempt_at, (SELECT greatest(ep.circuit_open_until, ep.circuit_probe_until)
                                            FROM endpoints ep WHERE ep.id = q.endpoint_id))
  -- The retries' own arrays, not r filtered: the planner estimates a
  -- filtered CTE at one row, and chose for it a nested loop whose inner
  -- side scanned every id of the batch again for each row (see ended).
  FROM unnest($24::text[], $25::int[], $26::timestamptz[], $28::timestamptz[]) AS r (delivery_id, number, next_attempt_at, lease_until)
  -- The plan must look rows up by id. Column statistics say locked_by is
  -- almost always NULL, so "locked_by = $1" alone was estimated at one row,
  -- and the planner chose a sequential scan with a nested loop over r (42 ms
  -- for 256 outcomes on 10,000 rows). A lease check it cannot estimate (a
  -- CASE) keeps it on the primary key.
  WHERE q.delivery_id = r.delivery_id
    AND CASE WHEN q.locked_by = $1 AND q.due_at = r.lease_until THEN true ELSE false END
  RETURNING q.delivery_id, q.endpoint_id, q.due_at
),
-- No join: the ended ids are a list to look up, and each row's lease is
-- checked against the list of "id lease-end-in-ms" keys. (Joined to r
-- filtered on next_attempt_at, the batch was estimated at one row and the
-- plan scanned the whole id list once per row: 128 x 128 index probes, 8 of
-- the statement's 13 ms for 128 outcomes. Joined to arrays of its own, a
-- batch of 128 was planned as a hash join over a sequential scan of the
-- whole queue: 3 ms on 20,000 rows, and growing with the queue.)
ended AS (
  DELETE FROM delivery_queue q
  WHERE q.delivery_id = ANY ($27::text[])
    AND CASE WHEN q.locked_by = $1
              AND q.delivery_id || ' ' || (extract(epoch FROM q.due_at) * 1000)::bigint = ANY ($29::text[])
             THEN true ELSE false END
  RETURNING q.delivery_id, q.endpoint_id, NULL::timestamptz AS due_at
),
held AS (
  SELECT * FROM retried UNION ALL SELECT * FROM ended
),
-- The history row: status and last result. None of its indexed columns
-- changes, so this is a HOT update (see the migration delivery_queue).
updated AS (
  UPDATE deliveries d
  SET status = r.status, attempt_count = r.number,
      last_response_status = r.response_status, last_error = r.error, updated_at = now()
  -- (held's estimate is the lists' lengths, so the plan probes the
  -- primary key once per row; "d.id = ANY" as well made each probe sort the
  -- whole list again: 3 ms for 128 rows.)
  FROM held JOIN r ON r.delivery_id = held.delivery_id
  WHERE d.id = held.delivery_id
  RETURNING d.id, d.status, d.attempt_count,
    d.last_response_status, d.last_error, held.due_at AS next_attempt_at, r.started_at, r.duration_ms,
    r.attempt_id, r.error_class, r.response_body, r.response_headers
),
-- The status log (see delivery-updates.ts), for the deliveries this process
-- still held: SUCCEEDED, FAILED or RETRY_SCHEDULED by the new status, at the
-- moment the attempt ended. The row is also the attempt's record (see the
-- migration attempts_in_status_log): one row per attempt, not two, 248 WAL
-- bytes fewer per attempt.
logged AS (
  INSERT INTO delivery_updates (delivery_id, kind, status,
                                attempt_number, response_status, duration_ms, error, next_attempt_at, occurred_at,
                                attempt_id, error_class, response_body, response_headers)
  SELECT id, ${sqlLogKindAfterAttempt("status")}, status,
         attempt_count, last_response_status, duration_ms, last_error, next_attempt_at,
         started_at + make_interval(secs => duration_ms::float8 / 1000),
         attempt_id, error_class, response_body, response_headers
  FROM updated
  RETURNING delivery_id
),
-- An attempt whose delivery this process no longer held changed nothing, so
-- it has no log row: it is kept in attempts.
inserted AS (
  INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, response_status,
                        error_class, error, response_body, response_headers)
  SELECT attempt_id, delivery_id, number, started_at, duration_ms, response_status,
         error_class, error, response_body, response_headers
  FROM r
  WHERE r.delivery_id NOT IN (SELECT id FROM updated)
  -- A batch retried after a write whose commit was not confirmed: keep one
  -- record of each attempt. (Not ON CONFLICT DO NOTHING: its speculative
  -- insertion writes an extra WAL record per row, 48 bytes, for a case that
  -- almost never comes; and attempts have no primary key, 71 bytes more per
  -- row, see the migration history_indexes: the delivery's indexes find its
  -- attempts.)
    AND NOT EXISTS (SELECT 1 FROM delivery_updates u
                    WHERE u.delivery_id = r.delivery_id AND u.attempt_id = r.attempt_id AND u.attempt_id IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_id = r.delivery_id AND a.id = r.attempt_id)
  RETURNING delivery_id
),
h AS (
  SELECT * FROM unnest($14::text[], $15::bool[], $16::int[], $17::timestamptz[], $18::text[], $19::bool[])
    AS h (endpoint_id, reset, failures, first_failure_at, last_error, gone)
),
calc AS (
  SELECT ep.id, h.failures, h.last_error, h.gone,
    ep.disabled AS was_disabled,
    ep.circuit_open_until AS was_open_until,
    ep.circuit_probe_until AS was_probe_until,
    ep.circuit_cooldown_ms AS was_cooldown_ms,
    CASE WHEN h.reset THEN h.failures ELSE ep.consecutive_failures + h.failures END AS failures_now,
    CASE WHEN h.failures = 0 THEN NULL
         WHEN h.reset OR ep.failing_since IS NULL THEN h.first_failure_at
         ELSE ep.failing_since END AS failing_since_now
  FROM endpoints ep JOIN h ON h.endpoint_id = ep.id
  -- Only the first time a batch is written: written again after a commit
  -- that was not confirmed, it records no attempt (each is found recorded
  -- already) and must not count its failures twice. (A statement lands
  -- whole or not at all, so the batch's attempts are all new or all known.)
  WHERE (EXISTS (SELECT 1 FROM logged) OR EXISTS (SELECT 1 FROM inserted))
    -- Successes only, on an endpoint with nothing to reset: its row would
    -- be written (and locked) unchanged, one row per delivery when each
    -- endpoint has one, as in a fan-out. Left alone.
    AND NOT (h.reset AND h.failures = 0 AND ep.consecutive_failures = 0 AND ep.failing_since IS NULL
             AND ep.circuit_open_until IS NULL AND ep.circuit_probe_until IS NULL AND ep.circuit_cooldown_ms IS NULL)
  FOR UPDATE OF ep
),
cooldown AS (
  SELECT calc.*,
    CASE
      WHEN failures_now < $20 THEN NULL
      -- Already open (failures of attempts that started before it opened): keep it.
      WHEN was_open_until > now() THEN was_cooldown_ms
      -- Half-open and the probe failed: twice the last cool-down.
      WHEN was_open_until IS NOT NULL THEN least($22::float8, 2 * coalesce(was_cooldown_ms, $21::float8))::int
      -- Closed until now: the first cool-down.
      ELSE $21::int
    END AS cooldown_ms
  FROM calc
),
next AS (
  SELECT cooldown.*,
    CASE
      WHEN cooldown_ms IS NULL THEN NULL
      WHEN was_open_until > now() THEN was_open_until
      ELSE now() + make_interval(secs => cooldown_ms::float8 / 1000)
    END AS open_until,
    CASE
      WHEN was_disabled THEN NULL
      WHEN gone THEN '410 Gone'
      WHEN failing_since_now < now() - make_interval(secs => $23::float8 / 1000)
        THEN 'failing without a success since ' || to_char(failing_since_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    END AS disable_reason
  FROM cooldown
),
-- Ordered endpoints: a delivery that ended lets the next one of its endpoint
-- out of the parking (next_attempt_at NULL) it waited in.
-- (Ordered endpoints of the batch first, then one index probe each: an
-- unordered endpoint's backlog is never read here.)
promoted AS (
  UPDATE delivery_queue n SET due_at = now()
  FROM (
    SELECT head.delivery_id
    FROM endpoints ep
    CROSS JOIN LATERAL (
      SELECT p.delivery_id FROM delivery_queue p
      WHERE p.endpoint_id = ep.id AND p.due_at IS NULL
      ORDER BY p.seq LIMIT 1
    ) head
    WHERE ep.ordered AND ep.id IN (SELECT endpoint_id FROM ended)
  ) head
  WHERE n.delivery_id = head.delivery_id
)
UPDATE endpoints ep
SET consecutive_failures = next.failures_now,
    failing_since = next.failing_since_now,
    circuit_open_until = next.open_until,
    circuit_cooldown_ms = next.cooldown_ms,
    -- The probe's outcome is in once the circuit closes or opens again.
    circuit_probe_until = CASE WHEN next.open_until IS NULL OR next.open_until <> next.was_open_until
                               THEN NULL ELSE ep.circuit_probe_until END,
    last_error = CASE WHEN next.failures > 0 THEN next.last_error ELSE ep.last_error END,
    last_error_at = CASE WHEN next.failures > 0 THEN now() ELSE ep.last_error_at END,
    disabled = ep.disabled OR next.disable_reason IS NOT NULL,
    disabled_reason = coalesce(next.disable_reason, ep.disabled_reason)
FROM next
WHERE ep.id = next.id
RETURNING ep.id,
  CASE WHEN next.open_until > now() AND (next.was_open_until IS NULL OR next.was_open_until <= now())
       THEN next.open_until END AS opened_until,
  CASE WHEN next.open_until IS NULL AND next.was_open_until IS NOT NULL
       THEN greatest(next.was_open_until, next.was_probe_until) END AS closed_held_until,
  next.disable_reason`;

interface EndpointHealth {
  reset: boolean;
  failures: number;
  firstFailureAt: Date | null;
  lastError: string;
  gone: boolean;
}

/** Folds a batch's outcomes, in the order they finished, into one change per endpoint. */
export function foldHealth(outcomes: readonly AttemptOutcome[]): Map<string, EndpointHealth> {
  const byEndpoint = new Map<string, EndpointHealth>();
  for (const o of outcomes) {
    let h = byEndpoint.get(o.endpointId);
    if (!h) {
      h = { reset: false, failures: 0, firstFailureAt: null, lastError: "", gone: false };
      byEndpoint.set(o.endpointId, h);
    }
    if (o.success) {
      h.reset = true;
      h.failures = 0;
      h.firstFailureAt = null;
    } else {
      h.failures++;
      h.firstFailureAt ??= o.startedAt;
      h.lastError = o.error;
      h.gone ||= o.gone;
    }
  }
  return byEndpoint;
}

/** Records a batch of outcomes of attempts made by `workerId`; returns what changed for endpoints. */
export async function recordOutcomes(
  sql: Sql,
  workerId: string,
  outcomes: readonly AttemptOutcome[],
  rules: HealthRules,
): Promise<HealthChanges> {
  if (outcomes.length === 0) return { opened: [], closed: [], disabled: [] };
  const health = foldHealth(outcomes);
  const retried = outcomes.filter((o) => o.nextAttemptAt !== null);
  const ended = outcomes.filter((o) => o.nextAttemptAt === null);
  // Prepared at every batch size: its plan, generic too, probes the primary
  // keys once per outcome whatever the estimates (see bench/explain.ts
  // --generic), and planning it afresh cost 1.2 ms of PostgreSQL's CPU per batch.
  const rows = await sql.query<{ id: string; opened_until: string | null; closed_held_until: string | null; disable_reason: string | null }>(RECORD, [
    workerId,
    outcomes.map((o) => o.attemptId),
    outcomes.map((o) => o.deliveryId),
    outcomes.map((o) => o.attemptNumber),
    outcomes.map((o) => o.startedAt),
    outcomes.map((o) => o.durationMs),
    outcomes.map((o) => o.responseStatus),
    outcomes.map((o) => o.errorClass),
    outcomes.map((o) => o.error),
    outcomes.map((o) => o.responseBody),
    outcomes.map((o) => o.status),
    outcomes.map((o) => o.nextAttemptAt),
    outcomes.map((o) => (o.responseHeaders ? JSON.stringify(o.responseHeaders) : null)),
    [...health.keys()],
    [...health.values()].map((h) => h.reset),
    [...health.values()].map((h) => h.failures),
    [...health.values()].map((h) => h.firstFailureAt),
    [...health.values()].map((h) => h.lastError),
    [...health.values()].map((h) => h.gone),
    rules.circuitFailureThreshold,
    rules.circuitCooldownMs,
    rules.circuitMaxCooldownMs,
    rules.disableAfterMs,
    retried.map((o) => o.deliveryId),
    retried.map((o) => o.attemptNumber),
    retried.map((o) => o.nextAttemptAt),
    ended.map((o) => o.deliveryId),
    retried.map((o) => o.leaseUntil),
    ended.map((o) => `${o.deliveryId} ${o.leaseUntil.getTime()}`),
  ], true);
  return {
    // Timestamps come back as text on the ORM's pool (MikroORM parses dates itself).
    opened: rows.filter((r) => r.opened_until).map((r) => ({ endpointId: r.id, until: new Date(r.opened_until!) })),
    closed: rows.filter((r) => r.closed_held_until).map((r) => ({ endpointId: r.id, heldUntil: new Date(r.closed_held_until!) })),
    disabled: rows.filter((r) => r.disable_reason).map((r) => ({ endpointId: r.id, reason: r.disable_reason! })),
  };
}
