/**
 * Who is calling, and what they may touch.
 *
 * Callers present a bearer token: HOOKLINE_ADMIN_TOKEN (every RPC, every
 * tenant), HOOKLINE_INGEST_TOKEN (EventIngest, every tenant), or an API key
 * made with CreateApiKey (one tenant; scope ingest or admin). Tokens are
 * compared as SHA-256 digests with timingSafeEqual, so the comparison takes
 * the same time whatever the input. With neither environment token set,
 * authentication is off (Hookline then serves on loopback only; see app.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { findApiKey, insertApiKey, listApiKeys as listStored, revokeApiKey as revokeStored, type StoredApiKey } from "../store/sql/api-keys.js";
import type { Sql } from "../store/sql.js";
import { NotFoundError, PermissionDeniedError, ValidationError } from "./errors.js";
import { ID_PREFIX, newId } from "./ids.js";
import { checkPageSize, checkTenantId, checkText, decodePageToken, encodePageToken } from "./validate.js";

/** What a caller may do: `admin` (both services) or `ingest` (EventIngest), for one tenant or all (null). */
export interface Principal {
  scope: "admin" | "ingest";
  tenantId: string | null;
  /** The API key the caller authenticated with; undefined for the environment tokens. */
  keyId?: string;
}

/** Everything, for every tenant: the environment admin token, or no authentication at all. */
export const UNRESTRICTED: Principal = { scope: "admin", tenantId: null };

/** API key scopes as stored and in the API (ApiKeyScope). */
export const SCOPE = { ingest: 1, admin: 2 } as const;

const TOKEN_PREFIX = "hlk_";

function digest(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Tells callers apart by their bearer token. */
export class Authenticator {
  private readonly admin: Buffer | undefined;
  private readonly ingest: Buffer | undefined;

  constructor(
    private readonly sql: Sql,
    tokens: { adminToken: string; ingestToken: string },
  ) {
    this.admin = tokens.adminToken ? digest(tokens.adminToken) : undefined;
    this.ingest = tokens.ingestToken ? digest(tokens.ingestToken) : undefined;
  }

  /** Whether callers must present a token. */
  get enforced(): boolean {
    return this.admin !== undefined || this.ingest !== undefined;
  }

  /** The caller a token belongs to, or undefined for none (unknown, malformed or revoked). */
  async authenticate(token: string): Promise<Principal | undefined> {
    const d = digest(token);
    if (this.admin && sameDigest(d, this.admin)) return UNRESTRICTED;
    if (this.ingest && sameDigest(d, this.ingest)) return { scope: "ingest", tenantId: null };
    const id = keyIdOf(token);
    if (id === undefined) return undefined;
    const key = await findApiKey(this.sql, id);
    if (!key || key.revokedAt !== null || !sameDigest(d, key.tokenHash)) return undefined;
    return { scope: key.scope === SCOPE.admin ? "admin" : "ingest", tenantId: key.tenantId, keyId: key.id };
  }
}

/** "hlk_<ulid>_<secret>" -> "key_<ulid>". */
function keyIdOf(token: string): string | undefined {
  const m = /^hlk_([0-9A-HJKMNP-TV-Z]{26})_[A-Za-z0-9_-]{43}$/.exec(token);
  return m ? ID_PREFIX.apiKey + m[1] : undefined;
}

/**
 * The tenant a request acts for: the one it names, checked against the
 * caller's; for a tenant-scoped caller an empty name means its own tenant,
 * and another tenant's name is PermissionDenied.
 */
export function actingTenant(caller: Principal, requested: string, field = "tenant_id"): string {
  if (caller.tenantId === null || requested === caller.tenantId) return requested;
  if (requested === "") return caller.tenantId;
  throw new PermissionDeniedError(`${field}: this key is limited to tenant "${caller.tenantId}"`);
}

/**
 * Throws NotFound for a row of another tenant than the caller's: a
 * tenant-scoped caller cannot tell another tenant's rows from missing ones.
 */
export function mustSee(caller: Principal, rowTenantId: string, what: string, id: string): void {
  if (caller.tenantId !== null && rowTenantId !== caller.tenantId) throw new NotFoundError(what, id);
}

/** Input of {@link createApiKey}. */
export interface NewApiKey {
  tenantId: string;
  scope: number;
  description: string;
}

/** Makes an API key for a tenant; returns it and its token (shown this once). */
export async function createApiKey(sql: Sql, caller: Principal, input: NewApiKey): Promise<{ key: StoredApiKey; token: string }> {
  const tenantId = checkTenantId(actingTenant(caller, input.tenantId));
  if (input.scope !== SCOPE.ingest && input.scope !== SCOPE.admin) {
    throw new ValidationError("scope", "must be API_KEY_SCOPE_INGEST or API_KEY_SCOPE_ADMIN");
  }
  checkText(input.description, "description", 1_000);
  const id = newId("apiKey");
  const token = `${TOKEN_PREFIX}${id.slice(ID_PREFIX.apiKey.length)}_${randomBytes(32).toString("base64url")}`;
  const key = await insertApiKey(sql, {
    id,
    tenantId,
    scope: input.scope,
    description: input.description,
    tokenPrefix: token.slice(0, 12),
    tokenHash: digest(token),
  });
  return { key, token };
}

/** A page of a tenant's API keys, oldest first. */
export async function listApiKeys(
  sql: Sql,
  caller: Principal,
  tenantIdRequested: string,
  pageSize: number,
  pageToken: string,
): Promise<{ keys: StoredApiKey[]; nextPageToken: string }> {
  const tenantId = checkTenantId(actingTenant(caller, tenantIdRequested));
  const size = checkPageSize(pageSize);
  const after = decodePageToken(pageToken) ?? "";
  const rows = await listStored(sql, tenantId, after, size + 1);
  const more = rows.length > size;
  const keys = more ? rows.slice(0, size) : rows;
  return { keys, nextPageToken: more ? encodePageToken(keys.at(-1)!.id) : "" };
}

/**
 * Revokes an API key at once: calls with it are refused from now on, and
 * the streams open with it end within a second on every process (see
 * key-revocations.ts; the api_keys trigger notifies them).
 */
export async function revokeApiKey(sql: Sql, caller: Principal, id: string): Promise<StoredApiKey> {
  if (id === "") throw new ValidationError("id", "is required");
  const existing = await findApiKey(sql, id);
  if (!existing) throw new NotFoundError("api key", id);
  mustSee(caller, existing.tenantId, "api key", id);
  return (await revokeStored(sql, id))!;
}
