import { EntitySchema } from "@mikro-orm/core";

/** An event type row: a tenant's named kind of event, with an optional JSON Schema. */
export class EventType {
  tenantId!: string;
  name!: string;
  description = "";
  schema: Record<string, unknown> | null = null;
  createdAt: Date = new Date();
}

/** MikroORM mapping of {@link EventType} to the `event_types` table. */
export const EventTypeSchema = new EntitySchema<EventType>({
  class: EventType,
  tableName: "event_types",
  properties: {
    tenantId: { type: "string", columnType: "text", primary: true },
    name: { type: "string", columnType: "text", primary: true },
    description: { type: "string", columnType: "text" },
    schema: { type: "json", columnType: "jsonb", nullable: true },
    createdAt: { type: "Date", columnType: "timestamptz" },
  },
});
