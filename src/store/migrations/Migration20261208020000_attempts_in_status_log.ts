import { Migration } from "@mikro-orm/migrations";

/**
 * An attempt is written once: in the status log row of its outcome (issue
 * 16: WAL per delivered event).
 *
 * The row that logs an attempt's outcome (RETRY_SCHEDULED, SUCCEEDED or
 * FAILED) held its number, response status, duration, error and end time;
 * the attempt's own row in `attempts` held them again, with its id, error
 * class, response body and headers, and an index entry: 248 WAL bytes per
 * attempt for a second copy. The log row now carries those four columns too,
 * and a partial index on its delivery (only rows of attempts have one) finds
 * a delivery's attempts.
 *
 * `attempts` keeps the attempts written before (nothing is moved: the
 * history is intact as it was) and those whose outcome changed nothing,
 * written after this process lost their lease (see record-outcomes.ts): no
 * status change, so no log row. The view `delivery_attempts` is every
 * attempt from both, with the columns of `attempts` (`started_at` is the
 * log row's end time less the duration, which is how the end time was
 * made): the ORM's Attempt, endpoint figures and the tests read it.
 */
export class Migration20261208020000_attempts_in_status_log extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      ALTER TABLE delivery_updates
        ADD COLUMN attempt_id text,
        ADD COLUMN error_class text NOT NULL DEFAULT '',
        ADD COLUMN response_body text NOT NULL DEFAULT '',
        ADD COLUMN response_headers jsonb`);
    this.addSql(`CREATE INDEX delivery_updates_attempts_idx ON delivery_updates (delivery_id) WHERE attempt_id IS NOT NULL`);
    this.addSql(`
      CREATE VIEW delivery_attempts AS
      SELECT id, delivery_id, number, started_at, duration_ms, response_status, error_class, error, response_body, response_headers
      FROM attempts
      UNION ALL
      SELECT attempt_id, delivery_id, attempt_number, occurred_at - make_interval(secs => duration_ms::float8 / 1000), duration_ms,
             response_status, error_class, error, response_body, response_headers
      FROM delivery_updates
      WHERE attempt_id IS NOT NULL`);
  }

  override async down(): Promise<void> {
    this.addSql(`
      INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, response_status, error_class, error, response_body, response_headers)
      SELECT attempt_id, delivery_id, attempt_number, occurred_at - make_interval(secs => duration_ms::float8 / 1000), duration_ms,
             response_status, error_class, error, response_body, response_headers
      FROM delivery_updates WHERE attempt_id IS NOT NULL`);
    this.addSql(`DROP VIEW IF EXISTS delivery_attempts`);
    this.addSql(`DROP INDEX IF EXISTS delivery_updates_attempts_idx`);
    this.addSql(`
      ALTER TABLE delivery_updates
        DROP COLUMN attempt_id, DROP COLUMN error_class, DROP COLUMN response_body, DROP COLUMN response_headers`);
  }
}
