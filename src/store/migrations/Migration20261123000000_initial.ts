import { Migration } from "@mikro-orm/migrations";

/**
 * The initial schema. Written by hand rather than generated so that the
 * partial indexes the delivery hot path depends on and the wake-up trigger
 * are explicit and reviewed.
 */
export class Migration20261123000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE TABLE endpoints (
        id text PRIMARY KEY,
        tenant_id text NOT NULL,
        url text NOT NULL,
        description text NOT NULL DEFAULT '',
        event_types text[] NOT NULL DEFAULT '{}',
        channels text[] NOT NULL DEFAULT '{}',
        headers jsonb NOT NULL DEFAULT '{}',
        disabled boolean NOT NULL DEFAULT false,
        disabled_reason text NOT NULL DEFAULT '',
        secrets jsonb NOT NULL,
        signature_scheme text NOT NULL DEFAULT 'standard-webhooks',
        retry_policy jsonb,
        timeout_ms integer,
        max_in_flight integer,
        rate_limit_per_second double precision,
        ordered boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`);
    // Fan-out looks up a tenant's live endpoints; listing pages them by id.
    this.addSql(`CREATE INDEX endpoints_tenant_idx ON endpoints (tenant_id, id) WHERE deleted_at IS NULL`);

    this.addSql(`
      CREATE TABLE events (
        id text PRIMARY KEY,
        tenant_id text NOT NULL,
        event_type text NOT NULL,
        channels text[] NOT NULL DEFAULT '{}',
        idempotency_key text,
        body text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    this.addSql(
      `CREATE UNIQUE INDEX events_idempotency_idx ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
    );

    this.addSql(`
      CREATE TABLE deliveries (
        id text PRIMARY KEY,
        event_id text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        endpoint_id text NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
        tenant_id text NOT NULL,
        event_type text NOT NULL,
        status smallint NOT NULL,
        attempt_count integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        locked_by text,
        last_response_status integer NOT NULL DEFAULT 0,
        last_error text NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // The claim's only index: due rows (PENDING=1, RETRYING=2) by due time.
    // Finished rows leave it, so it stays as small as the live queue.
    this.addSql(`CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status IN (1, 2)`);
    // ListDeliveries pages newest first within a tenant, an endpoint or an event.
    this.addSql(`CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id DESC)`);
    this.addSql(`CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, id DESC)`);
    this.addSql(`CREATE INDEX deliveries_event_idx ON deliveries (event_id)`);

    this.addSql(`
      CREATE TABLE attempts (
        id text PRIMARY KEY,
        delivery_id text NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        number integer NOT NULL,
        started_at timestamptz NOT NULL,
        duration_ms integer NOT NULL,
        response_status integer NOT NULL DEFAULT 0,
        error_class text NOT NULL DEFAULT '',
        error text NOT NULL DEFAULT '',
        response_body text NOT NULL DEFAULT ''
      )`);
    this.addSql(`CREATE INDEX attempts_delivery_idx ON attempts (delivery_id, number DESC)`);

    this.addSql(`
      CREATE TABLE event_types (
        tenant_id text NOT NULL,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        schema jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, name)
      )`);

    // Wake every scheduler when deliveries are created: one notification per
    // statement (PostgreSQL folds repeats within a transaction), sent on commit.
    this.addSql(`
      CREATE FUNCTION hookline_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM new_rows) THEN
          PERFORM pg_notify('hookline_due', '');
        END IF;
        RETURN NULL;
      END $$`);
    this.addSql(`
      CREATE TRIGGER deliveries_notify_due AFTER INSERT ON deliveries
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_due()`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP TABLE IF EXISTS attempts, deliveries, events, endpoints, event_types`);
    this.addSql(`DROP FUNCTION IF EXISTS hookline_notify_due()`);
  }
}
