import { Migration } from "@mikro-orm/migrations";

/**
 * Tenant-scoped API keys. Only a SHA-256 hash of each token is stored (the
 * token is 256 random bits, so a fast hash is enough: there is nothing to
 * guess), with its first characters to recognise it.
 */
export class Migration20261124020000_api_keys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        tenant_id text NOT NULL,
        scope smallint NOT NULL,
        description text NOT NULL DEFAULT '',
        token_prefix text NOT NULL,
        token_hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
    this.addSql(`CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, id)`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP TABLE IF EXISTS api_keys`);
  }
}
