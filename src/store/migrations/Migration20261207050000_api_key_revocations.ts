import { Migration } from "@mikro-orm/migrations";

/**
 * A key whose streams must end (revoked, deleted, or its token, tenant or
 * scope changed, through Hookline or by hand in SQL) is notified on the
 * channel `hookline_api_keys` with its id, so every process ends the
 * streams open with it at once (see domain/key-revocations.ts). Only such
 * changes notify: a notification is acted on without looking the key up.
 */
export class Migration20261207050000_api_key_revocations extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE FUNCTION hookline_notify_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('hookline_api_keys', OLD.id);
        RETURN NULL;
      END $$`);
    this.addSql(`
      CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys FOR EACH ROW
      WHEN ((OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL) OR OLD.token_hash IS DISTINCT FROM NEW.token_hash
            OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.scope IS DISTINCT FROM NEW.scope)
      EXECUTE FUNCTION hookline_notify_api_key()`);
    this.addSql(`CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys FOR EACH ROW EXECUTE FUNCTION hookline_notify_api_key()`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP TRIGGER IF EXISTS api_keys_deleted ON api_keys`);
    this.addSql(`DROP TRIGGER IF EXISTS api_keys_changed ON api_keys`);
    this.addSql(`DROP FUNCTION IF EXISTS hookline_notify_api_key()`);
  }
}
