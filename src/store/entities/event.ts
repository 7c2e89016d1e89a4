import { EntitySchema } from "@mikro-orm/core";

/**
 * An event row. `body` is the exact envelope delivered and signed,
 * `{"type","timestamp","data"}`, kept as text so its bytes never change.
 */
export class Event {
  id!: string;
  tenantId!: string;
  eventType!: string;
  channels: string[] = [];
  idempotencyKey: string | null = null;
  body!: string;
  createdAt: Date = new Date();
}

/** MikroORM mapping of {@link Event} to the `events` table. */
export const EventSchema = new EntitySchema<Event>({
  class: Event,
  tableName: "events",
  properties: {
    id: { type: "string", columnType: "text", primary: true },
    tenantId: { type: "string", columnType: "text" },
    eventType: { type: "string", columnType: "text" },
    channels: { type: "string[]", columnType: "text[]" },
    idempotencyKey: { type: "string", columnType: "text", nullable: true },
    body: { type: "string", columnType: "text" },
    createdAt: { type: "Date", columnType: "timestamptz" },
  },
});
