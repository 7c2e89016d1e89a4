/**
 * Every service Hookline serves, registered on one router. Used by the
 * server (connectNodeAdapter) and by in-memory tests (createRouterTransport).
 */
import type { ConnectRouter } from "@connectrpc/connect";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { EventIngest, file_hookline_v1_event_ingest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { file_hookline_v1_webhook_admin, WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import type { AddressGuard } from "../delivery/address-guard.js";
import type { PublishContext } from "../domain/publish.js";
import type { Store } from "../store/store.js";
import { eventIngestService } from "./event-ingest.js";
import { type HealthState, registerHealth } from "./health.js";
import { registerReflection } from "./reflection.js";
import type { TestEventOptions } from "../delivery/test-event.js";
import type { EventTypeRegistry } from "../domain/event-types.js";
import type { SecretBox } from "../signing/secret-box.js";
import type { UpdateHub } from "../status-stream/hub.js";
import { refusingDeepMessages, scanningDeepMessages } from "./deep-messages.js";
import { refusingNul } from "./text-fields.js";
import { webhookAdminService } from "./webhook-admin.js";

/** What the routes need from the process. */
export interface RouteDeps {
  store: Store;
  publish: PublishContext;
  health: HealthState;
  /** Refuses endpoint URLs that can never be delivered to. */
  addressGuard: AddressGuard;
  /** The status stream's reader of the log. */
  updates: UpdateHub;
  /** How SendTestEvent sends. */
  testEvents: TestEventOptions;
  /** Compiles the schemas of event types created here, and is told of them. */
  eventTypes: EventTypeRegistry;
  /** Seals and opens endpoint secrets. */
  secrets: SecretBox;
  /** The request size limit; with it, binary requests are checked for nesting before decoding (see deep-messages.ts). */
  readMaxBytes?: number;
}

/** The service names reported by health checks (besides "" for the server). */
export const SERVICE_NAMES = [EventIngest.typeName, WebhookAdmin.typeName];

/** Returns the routes function for connectNodeAdapter / createRouterTransport. */
export function routes(deps: RouteDeps): (router: ConnectRouter) => void {
  return (router) => {
    // Requests with a NUL in any text field are refused before a handler runs (see text-fields.ts),
    // as are binary requests nested too deeply to decode (see deep-messages.ts).
    router.service(EventIngest, refusingDeepMessages(EventIngest, refusingNul(EventIngest, eventIngestService(deps.publish))));
    router.service(
      WebhookAdmin,
      refusingDeepMessages(
        WebhookAdmin,
        refusingNul(
          WebhookAdmin,
          webhookAdminService(deps.store, { addressGuard: deps.addressGuard, updates: deps.updates, testEvents: deps.testEvents, eventTypes: deps.eventTypes, secrets: deps.secrets }),
        ),
      ),
    );
    if (deps.readMaxBytes !== undefined) scanningDeepMessages(router, deps.readMaxBytes);
    registerHealth(router, deps.health);
    registerReflection(
      router,
      [
        file_hookline_v1_event_ingest,
        file_hookline_v1_webhook_admin,
        file_grpc_health_v1_health,
        file_grpc_reflection_v1_reflection,
        file_grpc_reflection_v1alpha_reflection,
      ],
    );
  };
}
