/**
 * Event types: a tenant's named kinds of event, each with an optional JSON
 * Schema (draft 2020-12, checked with Ajv) that published payloads must
 * match. Publishing a type that was never created is allowed unless
 * HOOKLINE_STRICT_EVENT_TYPES is on.
 *
 * Publishing consults a per-process cache of compiled schemas, so a publish
 * costs no extra query once its types are known; entries (also "no such
 * type") live CACHE_MS, so a type created through another process is
 * enforced here within that time, and at once through this one.
 */
import type { ValidateFunction } from "ajv/dist/2020.js";
import type { EntityManager } from "@mikro-orm/postgresql";
import { EventType } from "../store/entities/index.js";
import { AlreadyExistsError, FailedPreconditionError, ValidationError } from "./errors.js";
import { compileSchema } from "./json-schema.js";
import { checkEventType, checkPageSize, checkTenantId, checkText, decodePageToken, encodePageToken } from "./validate.js";

const CACHE_MS = 5_000;

/** Input of {@link createEventType}. */
export interface NewEventType {
  tenantId: string;
  name: string;
  description: string;
  schema: Record<string, unknown> | undefined;
}

/** Stores an event type; its schema must compile. */
export async function createEventType(em: EntityManager, input: NewEventType, registry?: EventTypeRegistry): Promise<EventType> {
  const type = new EventType();
  type.tenantId = checkTenantId(input.tenantId);
  type.name = checkEventType(input.name, "name");
  if (type.name.endsWith(".*")) throw new ValidationError("name", "an event type name cannot end in a wildcard");
  type.description = checkText(input.description, "description", 1024);
  if (input.schema !== undefined) {
    // Stored as jsonb, which cannot hold U+0000 (not even escaped).
    if (containsNul(input.schema)) throw new ValidationError("schema", "must not contain NUL (U+0000) characters");
    // Size, depth, regexes (on RE2) and compile time are bounded there.
    compileSchema(input.schema);
    type.schema = input.schema;
  }
  type.createdAt = new Date();
  if (await em.findOne(EventType, { tenantId: type.tenantId, name: type.name })) {
    throw new AlreadyExistsError(`event type ${type.name} already exists for tenant ${type.tenantId}`);
  }
  try {
    await em.persistAndFlush(type);
  } catch (err) {
    if ((err as { code?: string }).code === "23505") {
      throw new AlreadyExistsError(`event type ${type.name} already exists for tenant ${type.tenantId}`);
    }
    throw err;
  }
  registry?.forget(type.tenantId, type.name);
  return type;
}

/** Whether a JSON value holds a NUL in any member name or string. */
function containsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNul);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([name, member]) => name.includes("\u0000") || containsNul(member));
  }
  return false;
}

/** A page of a tenant's event types, by name. */
export async function listEventTypes(
  em: EntityManager,
  tenantId: string,
  pageSize: number,
  pageToken: string,
): Promise<{ types: EventType[]; nextPageToken: string }> {
  const tenant = checkTenantId(tenantId);
  const size = checkPageSize(pageSize);
  const after = decodePageToken(pageToken);
  const rows = await em.find(
    EventType,
    after === undefined ? { tenantId: tenant } : { tenantId: tenant, name: { $gt: after } },
    { orderBy: { name: "asc" }, limit: size + 1 },
  );
  const more = rows.length > size;
  const types = more ? rows.slice(0, size) : rows;
  return { types, nextPageToken: more ? encodePageToken(types.at(-1)!.name) : "" };
}

interface Entry {
  /**
   * Undefined: the type exists without a schema. Null: no such type. A
   * string: its stored schema cannot be used (why; see {@link EventTypeRegistry}).
   */
  validate: ValidateFunction | undefined | null | string;
  until: number;
}

/** One payload to check. */
export interface PayloadToCheck {
  tenantId: string;
  eventType: string;
  /** The payload's JSON text. */
  data: string;
  /** Names the request field of the payload in errors ("events[3].payload"). */
  field: string;
  /** Names the event type field in errors. */
  typeField: string;
}

/** Told of a stored schema that cannot be used: the tenant, the type and why. */
export type UnusableSchemaListener = (tenantId: string, name: string, reason: string) => void;

/**
 * Checks published payloads against their types' schemas; see the module
 * comment.
 *
 * A stored schema is compiled under the rules of {@link compileSchema},
 * like a new one. One that they refuse (stored before them: a pattern
 * RE2 cannot run, such as a backreference, or a schema over today's size
 * bounds) is never run on a backtracking engine: publishes of its type
 * fail with FailedPrecondition, naming the reason, until an operator
 * replaces it. Failing open would let payloads through unchecked that
 * the type promised its receivers to check.
 */
export class EventTypeRegistry {
  private readonly cache = new Map<string, Entry>();
  /** Compiled schemas (or why one cannot be used) by their JSON text, so reloading a type does not compile again. */
  private readonly compiled = new Map<string, ValidateFunction | string>();

  constructor(
    private readonly em: () => EntityManager,
    private readonly strict: boolean,
    private readonly onUnusable: UnusableSchemaListener = () => {},
  ) {}

  /** Drops what is cached for a type (it was just created here). */
  forget(tenantId: string, name: string): void {
    this.cache.delete(`${tenantId}\u0000${name}`);
  }

  /** Throws a ValidationError for the first payload that its type refuses. */
  async check(payloads: readonly PayloadToCheck[]): Promise<void> {
    const now = Date.now();
    const missing = new Map<string, { tenantId: string; name: string }>();
    for (const p of payloads) {
      const key = `${p.tenantId}\u0000${p.eventType}`;
      const entry = this.cache.get(key);
      if (!entry || entry.until <= now) missing.set(key, { tenantId: p.tenantId, name: p.eventType });
    }
    if (missing.size > 0) await this.load([...missing.values()], now);
    for (const p of payloads) {
      const entry = this.cache.get(`${p.tenantId}\u0000${p.eventType}`)!;
      if (entry.validate === null) {
        if (this.strict) {
          throw new ValidationError(p.typeField, `"${p.eventType}" is not an event type of tenant ${p.tenantId} (HOOKLINE_STRICT_EVENT_TYPES is on)`);
        }
        continue;
      }
      if (entry.validate === undefined) continue;
      if (typeof entry.validate === "string") {
        throw new FailedPreconditionError(
          `${p.typeField}: the stored schema of event type ${p.eventType} cannot be used (${entry.validate}); an operator must replace it`,
        );
      }
      const data: unknown = JSON.parse(p.data);
      let valid: boolean;
      try {
        valid = entry.validate(data) as boolean;
      } catch (err) {
        // A $ref cycle that never moves into the data (`{"$ref": "#"}`) recurses until the stack ends.
        if (!(err instanceof RangeError)) throw err;
        throw new ValidationError(p.field, `cannot be checked: the schema of ${p.eventType} recurses without end`);
      }
      if (!valid) {
        const e = entry.validate.errors?.[0];
        const path = (e?.instancePath ?? "")
          .split("/")
          .slice(1)
          .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s.replaceAll("~1", "/").replaceAll("~0", "~")}`))
          .join("");
        throw new ValidationError(`${p.field}${path}`, `${e?.message ?? "does not match"} (schema of ${p.eventType})`);
      }
    }
  }

  private compile(tenantId: string, name: string, schema: Record<string, unknown>): ValidateFunction | string {
    const text = JSON.stringify(schema);
    let fn = this.compiled.get(text);
    if (fn === undefined) {
      try {
        fn = compileSchema(schema);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        fn = err.message;
        this.onUnusable(tenantId, name, fn);
      }
      if (this.compiled.size >= 10_000) this.compiled.clear();
      this.compiled.set(text, fn);
    }
    return fn;
  }

  private async load(types: readonly { tenantId: string; name: string }[], now: number): Promise<void> {
    const rows = await this.em().find(EventType, { $or: types.map((t) => ({ tenantId: t.tenantId, name: t.name })) });
    const found = new Map(rows.map((r) => [`${r.tenantId}\u0000${r.name}`, r]));
    for (const t of types) {
      const key = `${t.tenantId}\u0000${t.name}`;
      const row = found.get(key);
      let validate: Entry["validate"] = null;
      if (row) validate = row.schema ? this.compile(t.tenantId, t.name, row.schema) : undefined;
      this.cache.set(key, { validate, until: now + CACHE_MS });
    }
    if (this.cache.size > 10_000) {
      for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
    }
  }
}
