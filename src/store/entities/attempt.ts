import { EntitySchema } from "@mikro-orm/core";

/** An attempt row: one HTTP request made for a delivery. */
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

/** MikroORM mapping of {@link Attempt} to the `attempts` table. */
export const AttemptSchema = new EntitySchema<Attempt>({
  class: Attempt,
  tableName: "attempts",
  properties: {
    // The ORM needs an identifier; the table has no primary key constraint
    // (see the migration history_indexes): ids are random ULIDs, and attempts
    // are read by delivery.
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
