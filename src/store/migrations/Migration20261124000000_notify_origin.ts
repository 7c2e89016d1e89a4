import { Migration } from "@mikro-orm/migrations";

/**
 * The wake-up notification names the process that published: its payload is
 * the publishing connection's application_name. A scheduler takes its own
 * process's new deliveries directly (by id), so it skips its own
 * notifications instead of claiming a second time for each publish.
 */
export class Migration20261124000000_notify_origin extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE OR REPLACE FUNCTION hookline_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM new_rows) THEN
          PERFORM pg_notify('hookline_due', current_setting('application_name'));
        END IF;
        RETURN NULL;
      END $$`);
  }

  override async down(): Promise<void> {
    this.addSql(`
      CREATE OR REPLACE FUNCTION hookline_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM new_rows) THEN
          PERFORM pg_notify('hookline_due', '');
        END IF;
        RETURN NULL;
      END $$`);
  }
}
