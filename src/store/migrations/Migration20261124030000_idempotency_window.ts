import { Migration } from "@mikro-orm/migrations";

/**
 * Idempotency keys hold for a window (HOOKLINE_IDEMPOTENCY_WINDOW, 24 h by
 * default), not for as long as the event is kept: a table of keys with
 * their expiry replaces the unique index on events, so a key can be used
 * again once its window has passed. Existing keys get 24 h from their
 * event's creation.
 */
export class Migration20261124030000_idempotency_window extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE TABLE idempotency_keys (
        tenant_id text NOT NULL,
        key text NOT NULL,
        event_id text NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (tenant_id, key)
      )`);
    this.addSql(`
      INSERT INTO idempotency_keys (tenant_id, key, event_id, expires_at)
      SELECT DISTINCT ON (tenant_id, idempotency_key) tenant_id, idempotency_key, id, created_at + interval '24 hours'
      FROM events WHERE idempotency_key IS NOT NULL
      ORDER BY tenant_id, idempotency_key, id`);
    this.addSql(`DROP INDEX IF EXISTS events_idempotency_idx`);
  }

  override async down(): Promise<void> {
    this.addSql(
      `CREATE UNIQUE INDEX events_idempotency_idx ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
    );
    this.addSql(`DROP TABLE IF EXISTS idempotency_keys`);
  }
}
