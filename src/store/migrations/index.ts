/**
 * The migrations, listed explicitly so that they run the same from sources
 * (vitest, tsx) and from the compiled build. Append new ones at the end.
 */
import { Migration20261123000000_initial } from "./Migration20261123000000_initial.js";
import { Migration20261123010000_delivery_engine } from "./Migration20261123010000_delivery_engine.js";
import { Migration20261124000000_notify_origin } from "./Migration20261124000000_notify_origin.js";
import { Migration20261124010000_delivery_updates } from "./Migration20261124010000_delivery_updates.js";
import { Migration20261124020000_api_keys } from "./Migration20261124020000_api_keys.js";
import { Migration20261124030000_idempotency_window } from "./Migration20261124030000_idempotency_window.js";
import { Migration20261207000000_circuit_probe } from "./Migration20261207000000_circuit_probe.js";
import { Migration20261207050000_api_key_revocations } from "./Migration20261207050000_api_key_revocations.js";
import { Migration20261207100000_hot_path_foreign_keys } from "./Migration20261207100000_hot_path_foreign_keys.js";
import { Migration20261207110000_delivery_queue } from "./Migration20261207110000_delivery_queue.js";
import { Migration20261208000000_history_indexes } from "./Migration20261208000000_history_indexes.js";
import { Migration20261208010000_slim_status_log } from "./Migration20261208010000_slim_status_log.js";
import { Migration20261208020000_attempts_in_status_log } from "./Migration20261208020000_attempts_in_status_log.js";
import { Migration20261208030000_deliveries_by_event } from "./Migration20261208030000_deliveries_by_event.js";
import { Migration20261208040000_queue_without_event } from "./Migration20261208040000_queue_without_event.js";
import { Migration20261208050000_parked_index } from "./Migration20261208050000_parked_index.js";

/** Every migration in order, for MikroORM's `migrationsList`. */
export const migrationsList = [
  { name: "Migration20261123000000_initial", class: Migration20261123000000_initial },
  { name: "Migration20261123010000_delivery_engine", class: Migration20261123010000_delivery_engine },
  { name: "Migration20261124000000_notify_origin", class: Migration20261124000000_notify_origin },
  { name: "Migration20261124010000_delivery_updates", class: Migration20261124010000_delivery_updates },
  { name: "Migration20261124020000_api_keys", class: Migration20261124020000_api_keys },
  { name: "Migration20261124030000_idempotency_window", class: Migration20261124030000_idempotency_window },
  { name: "Migration20261207000000_circuit_probe", class: Migration20261207000000_circuit_probe },
  { name: "Migration20261207050000_api_key_revocations", class: Migration20261207050000_api_key_revocations },
  { name: "Migration20261207100000_hot_path_foreign_keys", class: Migration20261207100000_hot_path_foreign_keys },
  { name: "Migration20261207110000_delivery_queue", class: Migration20261207110000_delivery_queue },
  { name: "Migration20261208000000_history_indexes", class: Migration20261208000000_history_indexes },
  { name: "Migration20261208010000_slim_status_log", class: Migration20261208010000_slim_status_log },
  { name: "Migration20261208020000_attempts_in_status_log", class: Migration20261208020000_attempts_in_status_log },
  { name: "Migration20261208030000_deliveries_by_event", class: Migration20261208030000_deliveries_by_event },
  { name: "Migration20261208040000_queue_without_event", class: Migration20261208040000_queue_without_event },
  { name: "Migration20261208050000_parked_index", class: Migration20261208050000_parked_index },
];
