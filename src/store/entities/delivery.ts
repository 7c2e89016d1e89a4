import { EntitySchema } from "@mikro-orm/core";
import { DeliveryState } from "../../domain/delivery/state.js";

/**
 * A delivery row: one event on its way to one endpoint.
 *
 * While an attempt is in flight the row is leased: `lockedBy` names the
 * process and `nextAttemptAt` is when the lease expires, so a delivery whose
 * process died simply becomes due again (see src/store/sql/claim-due.ts).
 */
export class Delivery {
  id!: string;
  eventId!: string;
  endpointId!: string;
  tenantId!: string;
  eventType!: string;
  status: DeliveryState = DeliveryState.Pending;
  attemptCount = 0;
  nextAttemptAt: Date | null = null;
  lockedBy: string | null = null;
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
    nextAttemptAt: { type: "Date", columnType: "timestamptz", nullable: true },
    lockedBy: { type: "string", columnType: "text", nullable: true },
    lastResponseStatus: { type: "integer" },
    lastError: { type: "string", columnType: "text" },
    createdAt: { type: "Date", columnType: "timestamptz" },
    updatedAt: { type: "Date", columnType: "timestamptz", onUpdate: () => new Date() },
  },
});
