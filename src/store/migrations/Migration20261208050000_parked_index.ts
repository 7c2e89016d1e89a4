import { Migration } from "@mikro-orm/migrations";

/**
 * The parked deliveries of ordered endpoints (due time NULL), indexed by
 * endpoint. The safety net that lets out parked deliveries with nothing live
 * before them (unpark.ts, once a minute per process) found them with a scan
 * of the whole queue, which the due index (due times that are set) cannot
 * serve: 260 ms a call on a 1,000,000-row queue. This index holds parked
 * rows only, so deliveries of other endpoints never write to it.
 */
export class Migration20261208050000_parked_index extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE INDEX delivery_queue_parked_idx ON delivery_queue (endpoint_id) WHERE due_at IS NULL`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP INDEX delivery_queue_parked_idx`);
  }
}
