import { Migration } from "@mikro-orm/migrations";

/**
 * Circuit probes are recorded on the endpoint: `circuit_probe_until` is the
 * lease end of the half-open circuit's probe in flight, set by the claim
 * that takes it (see claim-due.ts). While it is in the future the endpoint
 * takes nothing else, in every process, and its waiting deliveries are held
 * until then like those of an open circuit (see circuit-holds.ts).
 *
 * The partial index holds the endpoints whose circuit is not closed (open or
 * half-open; `circuit_open_until` is cleared when it closes): the claim
 * reads it on every window claim to leave those endpoints' rows out of the
 * scan, and it stays as small as the number of failing endpoints.
 */
export class Migration20261207000000_circuit_probe extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE endpoints ADD COLUMN circuit_probe_until timestamptz`);
    this.addSql(`CREATE INDEX endpoints_circuit_idx ON endpoints (circuit_open_until) WHERE circuit_open_until IS NOT NULL`);
  }

  override async down(): Promise<void> {
    this.addSql(`DROP INDEX IF EXISTS endpoints_circuit_idx`);
    this.addSql(`ALTER TABLE endpoints DROP COLUMN IF EXISTS circuit_probe_until`);
  }
}
