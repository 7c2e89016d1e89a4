import { Migration } from "@mikro-orm/migrations";

/**
 * Status log rows without copies of their delivery's ids (issue 16: WAL per
 * delivered event).
 *
 * Each `delivery_updates` row repeated its delivery's event, endpoint,
 * tenant and event type, so that watchers could filter without a join. A
 * delivery writes two such rows on its way (created, then its outcome):
 * 516 WAL bytes per delivered event, most of it those copies. The history
 * row (`deliveries`) holds them already and never changes them, and the
 * readers now join it by primary key (see store/sql/delivery-updates.ts):
 * the filters of WatchDeliveries (tenant, endpoint, event, event type,
 * status) apply to the joined row.
 *
 * Nothing of the log is lost: every row stays, with its position, kind,
 * status and result; what the dropped columns held is its delivery's.
 */
export class Migration20261208010000_slim_status_log extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      ALTER TABLE delivery_updates
        DROP COLUMN event_id, DROP COLUMN endpoint_id, DROP COLUMN tenant_id, DROP COLUMN event_type`);
  }

  override async down(): Promise<void> {
    this.addSql(`
      ALTER TABLE delivery_updates
        ADD COLUMN event_id text, ADD COLUMN endpoint_id text, ADD COLUMN tenant_id text, ADD COLUMN event_type text`);
    this.addSql(`
      UPDATE delivery_updates u
      SET event_id = d.event_id, endpoint_id = d.endpoint_id, tenant_id = d.tenant_id, event_type = d.event_type
      FROM deliveries d WHERE d.id = u.delivery_id`);
    this.addSql(`
      ALTER TABLE delivery_updates
        ALTER COLUMN event_id SET NOT NULL, ALTER COLUMN endpoint_id SET NOT NULL,
        ALTER COLUMN tenant_id SET NOT NULL, ALTER COLUMN event_type SET NOT NULL`);
  }
}
