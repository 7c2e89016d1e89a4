/**
 * Delivery states as SQL text, from {@link DeliveryState}, so statements name
 * the states they mean instead of bare numbers. The text is the same
 * constants a partial index's predicate was written with
 * (`status IN (1, 2)`), so the planner still matches those indexes.
 */
import { DeliveryState } from "../../domain/delivery/state.js";

/** The live states, in which a delivery waits or is being attempted: `(PENDING, RETRYING)`. */
export const LIVE_STATES = `(${DeliveryState.Pending}, ${DeliveryState.Retrying})`;
