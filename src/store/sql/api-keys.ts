/** API keys: stored with a hash of the token only (see the api_keys migration). */
import type { Sql } from "../sql.js";

/** An API key as stored. */
export interface StoredApiKey {
  id: string;
  tenantId: string;
  /** 1 ingest, 2 admin (ApiKeyScope). */
  scope: number;
  description: string;
  tokenPrefix: string;
  tokenHash: Buffer;
  createdAt: Date;
  revokedAt: Date | null;
}

interface Row {
  id: string;
  tenant_id: string;
  scope: number;
  description: string;
  token_prefix: string;
  token_hash: Buffer;
  created_at: string;
  revoked_at: string | null;
}

const COLUMNS = "id, tenant_id, scope, description, token_prefix, token_hash, created_at, revoked_at";

function fromRow(r: Row): StoredApiKey {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    scope: r.scope,
    description: r.description,
    tokenPrefix: r.token_prefix,
    tokenHash: r.token_hash,
    createdAt: new Date(r.created_at),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
  };
}

/** Stores a new key. */
export async function insertApiKey(sql: Sql, key: Omit<StoredApiKey, "createdAt" | "revokedAt">): Promise<StoredApiKey> {
  const [row] = await sql.query<Row>(
    `INSERT INTO api_keys (id, tenant_id, scope, description, token_prefix, token_hash)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
    [key.id, key.tenantId, key.scope, key.description, key.tokenPrefix, key.tokenHash],
  );
  return fromRow(row!);
}

/** The key with `id`, revoked or not. */
export async function findApiKey(sql: Sql, id: string): Promise<StoredApiKey | undefined> {
  const [row] = await sql.query<Row>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id], true);
  return row ? fromRow(row) : undefined;
}

/** A page of a tenant's keys, oldest first, after `afterId`. */
export async function listApiKeys(sql: Sql, tenantId: string, afterId: string, limit: number): Promise<StoredApiKey[]> {
  const rows = await sql.query<Row>(
    `SELECT ${COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
    [tenantId, afterId, limit],
  );
  return rows.map(fromRow);
}

/** Revokes key `id` (once; revoking again keeps the first time). */
export async function revokeApiKey(sql: Sql, id: string): Promise<StoredApiKey | undefined> {
  const [row] = await sql.query<Row>(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`,
    [id],
  );
  return row ? fromRow(row) : undefined;
}

/** Of the keys `ids`, those still valid (not revoked), with their tenant and scope. */
export async function validApiKeys(sql: Sql, ids: readonly string[]): Promise<Array<{ id: string; tenantId: string; scope: number }>> {
  const rows = await sql.query<{ id: string; tenant_id: string; scope: number }>(
    "SELECT id, tenant_id, scope FROM api_keys WHERE id = ANY($1::text[]) AND revoked_at IS NULL",
    [ids],
  );
  return rows.map((r) => ({ id: r.id, tenantId: r.tenant_id, scope: r.scope }));
}
