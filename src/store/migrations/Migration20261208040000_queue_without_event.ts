import { Migration } from "@mikro-orm/migrations";

/**
 * The queue row no longer copies its delivery's event id (issue 16: WAL per
 * delivered event). The claim reads the event through the history row (one
 * more primary key probe per claimed row, see claim-due.ts); nothing else
 * read it. Every delivery keeps its event in `deliveries`.
 */
export class Migration20261208040000_queue_without_event extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE delivery_queue DROP COLUMN event_id`);
  }

  override async down(): Promise<void> {
    this.addSql(`ALTER TABLE delivery_queue ADD COLUMN event_id text`);
    this.addSql(`UPDATE delivery_queue q SET event_id = d.event_id FROM deliveries d WHERE d.id = q.delivery_id`);
    this.addSql(`ALTER TABLE delivery_queue ALTER COLUMN event_id SET NOT NULL`);
  }
}
