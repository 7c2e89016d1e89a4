import { EntitySchema } from "@mikro-orm/core";
import type { StoredSecret } from "../../domain/delivery/claimed-delivery.js";
import type { StoredRetryPolicy } from "../../domain/delivery/retry-policy.js";

/** An endpoint row: where and how a tenant's events are delivered. */
export class Endpoint {
  id!: string;
  tenantId!: string;
  url!: string;
  description = "";
  eventTypes: string[] = [];
  channels: string[] = [];
  headers: Record<string, string> = {};
  disabled = false;
  disabledReason = "";
  /** Active secrets, current first. */
  secrets: StoredSecret[] = [];
  signatureScheme: "standard-webhooks" | "github" = "standard-webhooks";
  retryPolicy: StoredRetryPolicy | null = null;
  timeoutMs: number | null = null;
  maxInFlight: number | null = null;
  rateLimitPerSecond: number | null = null;
  ordered = false;
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
  /** Set when deleted; deleted endpoints stay for their delivery history. */
  deletedAt: Date | null = null;
  /** Failed attempts since the last success. */
  consecutiveFailures = 0;
  /** When the current run of failures began; null while healthy. */
  failingSince: Date | null = null;
  /** While set and in the future the circuit is open; past, it is half-open. */
  circuitOpenUntil: Date | null = null;
  /** The cool-down the circuit last opened for; doubles when a probe fails. */
  circuitCooldownMs: number | null = null;
  /** While in the future, a half-open circuit's probe is in flight (its lease end). */
  circuitProbeUntil: Date | null = null;
  lastError = "";
  lastErrorAt: Date | null = null;
}

/** MikroORM mapping of {@link Endpoint} to the `endpoints` table. */
export const EndpointSchema = new EntitySchema<Endpoint>({
  class: Endpoint,
  tableName: "endpoints",
  properties: {
    id: { type: "string", columnType: "text", primary: true },
    tenantId: { type: "string", columnType: "text" },
    url: { type: "string", columnType: "text" },
    description: { type: "string", columnType: "text" },
    eventTypes: { type: "string[]", columnType: "text[]" },
    channels: { type: "string[]", columnType: "text[]" },
    headers: { type: "json", columnType: "jsonb" },
    disabled: { type: "boolean" },
    disabledReason: { type: "string", columnType: "text" },
    secrets: { type: "json", columnType: "jsonb" },
    signatureScheme: { type: "string", columnType: "text" },
    retryPolicy: { type: "json", columnType: "jsonb", nullable: true },
    timeoutMs: { type: "integer", nullable: true },
    maxInFlight: { type: "integer", nullable: true },
    rateLimitPerSecond: { type: "double", nullable: true },
    ordered: { type: "boolean" },
    createdAt: { type: "Date", columnType: "timestamptz" },
    updatedAt: { type: "Date", columnType: "timestamptz", onUpdate: () => new Date() },
    deletedAt: { type: "Date", columnType: "timestamptz", nullable: true },
    consecutiveFailures: { type: "integer" },
    failingSince: { type: "Date", columnType: "timestamptz", nullable: true },
    circuitOpenUntil: { type: "Date", columnType: "timestamptz", nullable: true },
    circuitCooldownMs: { type: "integer", nullable: true },
    circuitProbeUntil: { type: "Date", columnType: "timestamptz", nullable: true },
    lastError: { type: "string", columnType: "text" },
    lastErrorAt: { type: "Date", columnType: "timestamptz", nullable: true },
  },
});
