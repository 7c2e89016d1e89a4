import { EntitySchema } from "@mikro-orm/core";

/**
 * An attempt: one HTTP request made for a delivery. Read only, from the view
 * `delivery_attempts`: attempts are recorded in the status log row of their
 * outcome, or in `attempts` (see the migration attempts_in_status_log).
 */
export class Attempt {
  id!: string;
  deliveryId!: string;
  number!: number;
  startedAt!: Date;
  durationMs!: number;
  responseStatus = 0;
  errorClass = "";
  error = "";
  responseBody = "";
  /** Response headers of interest (retry-after, location, content-type). */
  responseHeaders: Record<string, string> | null = null;
}

/** MikroORM mapping of {@link Attempt} to the `delivery_attempts` view. */
export const AttemptSchema = new EntitySchema<Attempt>({
  class: Attempt,
  tableName: "delivery_attempts",
  properties: {
    // The ORM needs an identifier; the view has no key: ids are random ULIDs
    // made by the scheduler, and attempts are read by delivery.
    id: { type: "string", columnType: "text", primary: true },
    deliveryId: { type: "string", columnType: "text" },
    number: { type: "integer" },
    startedAt: { type: "Date", columnType: "timestamptz" },
    durationMs: { type: "integer" },
    responseStatus: { type: "integer" },
    errorClass: { type: "string", columnType: "text" },
    error: { type: "string", columnType: "text" },
    responseBody: { type: "string", columnType: "text" },
    responseHeaders: { type: "json", columnType: "jsonb", nullable: true },
  },
});
