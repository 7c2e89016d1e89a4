import { Migration } from "@mikro-orm/migrations";

/**
 * The hot tables lose their foreign keys: `deliveries` to `events` and
 * `endpoints`, `attempts` to `deliveries`.
 *
 * Every delivery and attempt row is written by a statement that reads the
 * rows it refers to in the same statement (the fan-out joins the event and
 * its endpoints; an attempt's outcome updates its delivery), and nothing
 * removes a referenced row while rows refer to it: endpoints are only
 * soft-deleted, events are pruned only once no delivery of theirs is left,
 * and retention removes a delivery's attempts with it (see retention.ts).
 * So the keys guarded nothing the statements do not, and each cost a row
 * lock of the referenced row per row written (a WAL record, and a
 * MultiXact on a busy endpoint) plus a trigger run: measured with
 * bench/db-cost.ts, 3,544 -> 3,375 WAL bytes per delivered event, and
 * heap lock records from 4 to 1 per event.
 */
export class Migration20261207100000_hot_path_foreign_keys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_event_id_fkey, DROP CONSTRAINT IF EXISTS deliveries_endpoint_id_fkey`);
    this.addSql(`ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_delivery_id_fkey`);
  }

  override async down(): Promise<void> {
    this.addSql(`ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE`);
    this.addSql(`ALTER TABLE deliveries ADD CONSTRAINT deliveries_endpoint_id_fkey FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE`);
    this.addSql(`ALTER TABLE attempts ADD CONSTRAINT attempts_delivery_id_fkey FOREIGN KEY (delivery_id) REFERENCES deliveries (id) ON DELETE CASCADE`);
  }
}
