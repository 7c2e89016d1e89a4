/** Every entity schema, in the order MikroORM should discover them. */
import { AttemptSchema } from "./attempt.js";
import { DeliverySchema } from "./delivery.js";
import { EndpointSchema } from "./endpoint.js";
import { EventSchema } from "./event.js";
import { EventTypeSchema } from "./event-type.js";

export { Attempt } from "./attempt.js";
export { Delivery } from "./delivery.js";
export { Endpoint } from "./endpoint.js";
export { Event } from "./event.js";
export { EventType } from "./event-type.js";

/** All entity schemas. */
export const entities = [EndpointSchema, EventSchema, DeliverySchema, AttemptSchema, EventTypeSchema];
