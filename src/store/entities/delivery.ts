import { EntitySchema } from "@mikro-orm/core";
import { DeliveryState } from "../../domain/delivery/state.js";

/**
 * A delivery's history row: one event on its way to one endpoint, its
 * status and last result. While it is live (PENDING or RETRYING) it also
 * has a row in the queue (`delivery_queue`), which holds its due time and
 * its lease: while an attempt is in flight `nextAttemptAt` is when the lease
 * expires, so a delivery whose process died simply becomes due again (see
 * src/store/sql/claim-due.ts).
 */
export class Delivery {
  id!: string;
  eventId!: string;
  endpointId!: string;
  tenantId!: string;
  eventType!: string;
  status: DeliveryState = DeliveryState.Pending;
  attemptCount = 0;
  /** When the next attempt is due (the lease's end while one is in flight); null once ended. From the live queue. */
  nextAttemptAt: Date | null = null;
  lastResponseStatus = 0;
  lastError = "";
  createdAt: Date = new Date();
  updatedAt: Date = new Date();
}

/** MikroORM mapping of {@link Delivery} to the `deliveries` table. */
export const DeliverySchema = new EntitySchema<Delivery>({
  class: Delivery,
  tableName: "deliveries",
  properties: {
    id: { type: "string", columnType: "text", primary: true },
    eventId: { type: "string", columnType: "text" },
    endpointId: { type: "string", columnType: "text" },
    tenantId: { type: "string", columnType: "text" },
    eventType: { type: "string", columnType: "text" },
    status: { type: "smallint" },
    attemptCount: { type: "integer" },
    // Live deliveries' due time is kept in the queue (see the migration delivery_queue).
    nextAttemptAt: {
      type: "Date",
      columnType: "timestamptz",
      nullable: true,
      formula: (alias) => `(SELECT q.due_at FROM delivery_queue q WHERE q.delivery_id = ${alias}.id)`,
    },
    lastResponseStatus: { type: "integer" },
    lastError: { type: "string", columnType: "text" },
    createdAt: { type: "Date", columnType: "timestamptz" },
    updatedAt: { type: "Date", columnType: "timestamptz", onUpdate: () => new Date() },
  },
});
