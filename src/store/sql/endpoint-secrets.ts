/**
 * Start-up work on stored endpoint secrets (see signing/secret-box.ts):
 * checking that the configured key opens them, and sealing any stored in
 * plaintext before encryption existed.
 */
import { SecretBox } from "../../signing/secret-box.js";
import type { Sql } from "../sql.js";

/** Throws a clear error when `box` cannot open the stored secrets (another key). */
export async function checkSecretKey(sql: Sql, box: SecretBox): Promise<void> {
  const [row] = await sql.query<{ secret: string }>(
    `SELECT secrets->0->>'secret' AS secret FROM endpoints WHERE starts_with(secrets->0->>'secret', 'enc:v1:') LIMIT 1`,
    [],
  );
  if (!row) return;
  try {
    box.open(row.secret);
  } catch {
    throw new Error(
      "HOOKLINE_SECRET_KEY does not open the endpoint secrets stored in this database: start with the key they were sealed with",
    );
  }
}

/** Seals secrets still stored in plaintext; returns how many endpoints changed. */
export async function sealStoredSecrets(sql: Sql, box: SecretBox): Promise<number> {
  const rows = await sql.query<{ id: string; secrets: { secret: string; expiresAt: string | null }[] }>(
    `SELECT id, secrets FROM endpoints
     WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(secrets) s WHERE NOT starts_with(s->>'secret', 'enc:v1:'))`,
    [],
  );
  for (const r of rows) {
    const sealed = r.secrets.map((s) => (SecretBox.isSealed(s.secret) ? s : { ...s, secret: box.seal(s.secret) }));
    // Only if unchanged meanwhile (another process may be sealing too).
    await sql.query("UPDATE endpoints SET secrets = $2::jsonb WHERE id = $1 AND secrets = $3::jsonb", [
      r.id,
      JSON.stringify(sealed),
      JSON.stringify(r.secrets),
    ]);
  }
  return rows.length;
}
