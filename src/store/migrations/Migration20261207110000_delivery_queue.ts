import { Migration } from "@mikro-orm/migrations";

/**
 * Engine v2's layout: the live queue apart from the history.
 *
 * `delivery_queue` holds one narrow row per live delivery (PENDING or
 * RETRYING): inserted by the publish (leased to the publishing process when
 * its scheduler has room, see insert-events.ts), leased by claims, and
 * deleted when the delivery ends. Its due time is the lease's end while
 * leased, NULL while parked behind an ordered endpoint's head. Its indexes
 * are few and small: the due index the claims read, and publish order per
 * endpoint (ordered endpoints' heads, and every per-endpoint change: holds,
 * disabling, recovery).
 *
 * `deliveries` keeps the history: one row per delivery, its status and last
 * result. With the due time and lease gone from it, none of its indexed
 * columns ever changes, so an outcome's update of it can be a HOT update (no
 * index entries) instead of one that wrote six. HOT needs room on the same
 * page, and deliveries published together end together: a batch of
 * outcomes updates every row of a page in one statement, before pruning can
 * reclaim anything. With fillfactor 85, 7 of 40 such updates were HOT; with
 * 50 (room for one new version of every row), 40 of 40
 * (test/store/history-hot-updates.test.ts). The heap of the history is
 * about twice as large for it; its indexes are not.
 *
 * Live deliveries move with their state: due time, lease and attempt count.
 * The wake-up trigger moves to the queue, whose inserts are what schedulers
 * wait for.
 *
 * (Numbers, not the domain enums: a migration states the layout as it was
 * written. 1 PENDING, 2 RETRYING.)
 */
export class Migration20261207110000_delivery_queue extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE TABLE delivery_queue (
        delivery_id text PRIMARY KEY,
        endpoint_id text NOT NULL,
        tenant_id text NOT NULL,
        event_id text NOT NULL,
        seq bigint NOT NULL,
        attempt_count integer NOT NULL DEFAULT 0,
        due_at timestamptz,
        locked_by text
      )`);
    this.addSql(`CREATE INDEX delivery_queue_due_idx ON delivery_queue (due_at) WHERE due_at IS NOT NULL`);
    this.addSql(`CREATE INDEX delivery_queue_endpoint_idx ON delivery_queue (endpoint_id, seq)`);
    this.addSql(`
      INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, event_id, seq, attempt_count, due_at, locked_by)
      SELECT id, endpoint_id, tenant_id, event_id, seq, attempt_count, next_attempt_at, locked_by
      FROM deliveries WHERE status IN (1, 2)`);
    this.addSql(`DROP TRIGGER IF EXISTS deliveries_notify_due ON deliveries`);
    this.addSql(`
      CREATE TRIGGER delivery_queue_notify_due AFTER INSERT ON delivery_queue
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_due()`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_due_idx`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_endpoint_live_idx`);
    this.addSql(`ALTER TABLE deliveries DROP COLUMN next_attempt_at, DROP COLUMN locked_by`);
    this.addSql(`ALTER TABLE deliveries SET (fillfactor = 50)`);
  }

  override async down(): Promise<void> {
    this.addSql(`ALTER TABLE deliveries RESET (fillfactor)`);
    this.addSql(`ALTER TABLE deliveries ADD COLUMN next_attempt_at timestamptz, ADD COLUMN locked_by text`);
    this.addSql(`
      UPDATE deliveries d SET next_attempt_at = q.due_at, locked_by = q.locked_by, attempt_count = q.attempt_count
      FROM delivery_queue q WHERE q.delivery_id = d.id`);
    this.addSql(`CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status IN (1, 2)`);
    this.addSql(`CREATE INDEX deliveries_endpoint_live_idx ON deliveries (endpoint_id, seq) WHERE status IN (1, 2)`);
    this.addSql(`DROP TRIGGER IF EXISTS delivery_queue_notify_due ON delivery_queue`);
    this.addSql(`
      CREATE TRIGGER deliveries_notify_due AFTER INSERT ON deliveries
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hookline_notify_due()`);
    this.addSql(`DROP TABLE IF EXISTS delivery_queue`);
  }
}
