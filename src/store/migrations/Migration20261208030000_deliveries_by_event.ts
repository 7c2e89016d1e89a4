import { Migration } from "@mikro-orm/migrations";

/**
 * The deliveries of an event are found by their ids, not by an index on
 * `event_id` (issue 16: WAL per delivered event; the index cost 71 bytes of
 * WAL per delivery, and about 25 more of record header).
 *
 * A delivery's id begins with its event's ULID time ("dlv_" + the event
 * id's 10 time digits, then md5(event, endpoint): see insert-events.ts), so
 * an event's deliveries lie in one range of the primary key: the deliveries
 * of events published in the same millisecond. Deliveries made before ids
 * were derived so (a PL/pgSQL ULID taken at publish, whose time can differ
 * from the event's) keep an index of their own, partial: only such rows are
 * in it, so new deliveries write nothing to it. Its predicate reads `id` and
 * `event_id`, which never change, so outcomes still update the history row
 * HOT. Readers: store/sql/deliveries-of-event.ts (listing, retention).
 */
export class Migration20261208030000_deliveries_by_event extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `CREATE INDEX deliveries_event_legacy_idx ON deliveries (event_id) WHERE substr(id, 5, 10) <> substr(event_id, 5, 10)`,
    );
    this.addSql(`DROP INDEX IF EXISTS deliveries_event_idx`);
  }

  override async down(): Promise<void> {
    this.addSql(`CREATE INDEX deliveries_event_idx ON deliveries (event_id)`);
    this.addSql(`DROP INDEX IF EXISTS deliveries_event_legacy_idx`);
  }
}
