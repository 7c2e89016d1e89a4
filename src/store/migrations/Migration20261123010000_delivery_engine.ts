import { Migration } from "@mikro-orm/migrations";

/**
 * The delivery engine: endpoint health (consecutive failures, circuit
 * breaker), strict per-endpoint order (a sequence on deliveries), response
 * headers on attempts, and the registry of live scheduler processes that
 * per-endpoint limits are shared across.
 */
export class Migration20261123010000_delivery_engine extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      ALTER TABLE endpoints
        ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
        ADD COLUMN failing_since timestamptz,
        ADD COLUMN circuit_open_until timestamptz,
        ADD COLUMN circuit_cooldown_ms integer,
        ADD COLUMN last_error text NOT NULL DEFAULT '',
        ADD COLUMN last_error_at timestamptz`);

    // Publish order, for endpoints with ordered delivery: ids made in SQL are
    // only time-sortable to the millisecond, a sequence is exact.
    this.addSql(`ALTER TABLE deliveries ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY`);
    // The head of an ordered endpoint's queue: its live delivery with the
    // lowest seq. Partial, so it holds only the live queue. (Deliveries queued
    // behind a head are parked with next_attempt_at NULL, see insert-events.ts.)
    this.addSql(`CREATE INDEX deliveries_endpoint_live_idx ON deliveries (endpoint_id, seq) WHERE status IN (1, 2)`);

    this.addSql(`ALTER TABLE attempts ADD COLUMN response_headers jsonb`);

    this.addSql(`
      CREATE TABLE workers (
        id text PRIMARY KEY,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP TABLE IF EXISTS workers`);
    this.addSql(`ALTER TABLE attempts DROP COLUMN IF EXISTS response_headers`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_endpoint_live_idx`);
    this.addSql(`ALTER TABLE deliveries DROP COLUMN IF EXISTS seq`);
    this.addSql(`
      ALTER TABLE endpoints
        DROP COLUMN IF EXISTS consecutive_failures, DROP COLUMN IF EXISTS failing_since,
        DROP COLUMN IF EXISTS circuit_open_until, DROP COLUMN IF EXISTS circuit_cooldown_ms,
        DROP COLUMN IF EXISTS last_error,
        DROP COLUMN IF EXISTS last_error_at`);
  }
}
