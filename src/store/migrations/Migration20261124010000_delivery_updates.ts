import { Migration } from "@mikro-orm/migrations";

/**
 * The delivery status log behind WatchDeliveries: one row per status change
 * (created, attempt finished, failed because the endpoint was disabled,
 * queued again), written by the same statement as the change itself.
 *
 * Its order is (xid, seq): the writing transaction's id, then a sequence.
 * Readers only read rows whose transaction is older than the oldest one
 * still running (`pg_snapshot_xmin`), so no row can ever appear behind a
 * position a reader has passed: a sequence alone cannot promise that, as
 * transactions commit in a different order than they draw numbers. The
 * position of a row is the cursor clients resume from.
 *
 * Rows carry the delivery's event, endpoint, tenant and type so watchers
 * filter without a join. Only the primary key is a B-tree (append-mostly:
 * xids grow); `occurred_at` has a BRIN index for `since`, which costs almost
 * nothing to maintain on an append-only table.
 */
export class Migration20261124010000_delivery_updates extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE TABLE delivery_updates (
        xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
        seq bigint GENERATED ALWAYS AS IDENTITY,
        delivery_id text NOT NULL,
        event_id text NOT NULL,
        endpoint_id text NOT NULL,
        tenant_id text NOT NULL,
        event_type text NOT NULL,
        kind smallint NOT NULL,
        status smallint NOT NULL,
        attempt_number integer NOT NULL DEFAULT 0,
        response_status integer NOT NULL DEFAULT 0,
        duration_ms integer NOT NULL DEFAULT 0,
        error text NOT NULL DEFAULT '',
        next_attempt_at timestamptz,
        occurred_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (xid, seq)
      )`);
    this.addSql(`CREATE INDEX delivery_updates_occurred_idx ON delivery_updates USING brin (occurred_at)`);
    // Watchers on every process wake when updates commit: one notification
    // per statement, sent on commit.
    this.addSql(`
      CREATE FUNCTION hookline_notify_updates() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM new_rows) THEN
          PERFORM pg_notify('hookline_updates', '');
        END IF;
        RETURN NULL;
      END $$`);
    this.addSql(`
      CREATE TRIGGER delivery_updates_notify AFTER INSERT ON delivery_updates
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_updates()`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP TABLE IF EXISTS delivery_updates`);
    this.addSql(`DROP FUNCTION IF EXISTS hookline_notify_updates()`);
  }
}
