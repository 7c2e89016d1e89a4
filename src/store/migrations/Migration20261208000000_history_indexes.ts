import { Migration } from "@mikro-orm/migrations";

/**
 * Fewer index bytes per delivery in the history (issue 16: WAL per
 * delivered event).
 *
 * - `deliveries_tenant_idx` and `deliveries_endpoint_idx` were
 *   `(tenant_id, id DESC)` and `(endpoint_id, id DESC)`. Ids grow with time,
 *   so in descending order every new entry went to the left end of its key
 *   range, and a full page split to the left (`SPLIT_L`), leaving both halves
 *   half empty. Ascending, new entries land at the right end and right splits
 *   keep pages full; a B-tree is read backwards as fast, so "newest first"
 *   lists read them the same way. Measured with `npm run bench:db-cost`
 *   (5,000 unary events): endpoint index 174 -> 108 WAL bytes per event,
 *   tenant index 124 -> 80.
 * - `attempts` loses its primary key (71 bytes of WAL per attempt). Nothing
 *   looks an attempt up by id: they are read by delivery (attempts_delivery_idx),
 *   and ids are random ULIDs made by the scheduler. The one check by id, the
 *   outcome writer skipping an attempt it already wrote (a batch retried after
 *   a commit it could not confirm), now goes through the delivery's index.
 *
 * The rebuilt indexes lock writes to `deliveries` while they are built: on a
 * large history, run this migration in a quiet moment.
 */
export class Migration20261208000000_history_indexes extends Migration {
  override async up(): Promise<void> {
    this.addSql(`DROP INDEX IF EXISTS deliveries_tenant_idx`);
    this.addSql(`CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id)`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_endpoint_idx`);
    this.addSql(`CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, id)`);
    this.addSql(`ALTER TABLE attempts DROP CONSTRAINT IF EXISTS attempts_pkey`);
  }

  override async down(): Promise<void> {
    this.addSql(`ALTER TABLE attempts ADD PRIMARY KEY (id)`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_endpoint_idx`);
    this.addSql(`CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, id DESC)`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_tenant_idx`);
    this.addSql(`CREATE INDEX deliveries_tenant_idx ON deliveries (tenant_id, id DESC)`);
  }
}
