/**
 * WebhookAdmin: thin handlers over domain/endpoints.ts and
 * domain/deliveries.ts and their neighbours; tenant scoping of each call
 * through callerOf (see auth.ts).
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import type { AddressGuard } from "../delivery/address-guard.js";
import { actingTenant, createApiKey, listApiKeys, mustSee, revokeApiKey } from "../domain/auth.js";
import { getDelivery, listDeliveries, recoverEndpoint, retryDelivery } from "../domain/deliveries.js";
import { getEndpointStats } from "../domain/endpoint-stats.js";
import { createEventType, type EventTypeRegistry, listEventTypes } from "../domain/event-types.js";
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  updateEndpoint,
} from "../domain/endpoints.js";
import { ValidationError } from "../domain/errors.js";
import type { Store } from "../store/store.js";
import type { SecretBox } from "../signing/secret-box.js";
import type { UpdateHub } from "../status-stream/hub.js";
import { sendTestEvent, type TestEventOptions } from "../delivery/test-event.js";
import { parseWatch } from "../status-stream/filter.js";
import { callerOf } from "./auth.js";
import {
  apiKeyToProto,
  attemptToProto,
  deliveryToProto,
  durationToMs,
  eventTypeToProto,
  statsToProto,
  endpointToProto,
  retryPolicyFromProto,
  schemeFromProto,
  timestampToDate,
  updateToProto,
} from "./convert.js";

/** What WebhookAdmin needs besides the store. */
export interface WebhookAdminOptions {
  /** Refuses endpoint URLs that can never be delivered to. */
  addressGuard: AddressGuard;
  /** Serves WatchDeliveries. */
  updates: UpdateHub;
  /** Sends SendTestEvent's requests. */
  testEvents: TestEventOptions;
  /** Compiles the schemas of event types created here, and is told of them. */
  eventTypes: EventTypeRegistry;
  /** Seals and opens endpoint secrets. */
  secrets: SecretBox;
}

/** The WebhookAdmin implementation. */
export function webhookAdminService(store: Store, options: WebhookAdminOptions): ServiceImpl<typeof WebhookAdmin> {
  /** Endpoint `id`, if the caller may see it (another tenant's is NotFound). */
  async function visibleEndpoint(ctx: HandlerContext, id: string) {
    const endpoint = await getEndpoint(store.em(), id);
    mustSee(callerOf(ctx), endpoint.tenantId, "endpoint", id);
    return endpoint;
  }

  return {
    async createEndpoint(req, ctx) {
      const endpoint = await createEndpoint(store.em(), options.addressGuard, options.secrets, {
        tenantId: actingTenant(callerOf(ctx), req.tenantId),
        url: req.url,
        description: req.description,
        eventTypes: req.eventTypes,
        channels: req.channels,
        headers: req.headers,
        secret: req.secret,
        signatureScheme: schemeFromProto(req.signatureScheme),
        retryPolicy: retryPolicyFromProto(req.retryPolicy),
        timeoutSeconds: req.timeoutSeconds,
        maxInFlight: req.maxInFlight,
        rateLimitPerSecond: req.rateLimitPerSecond,
        ordered: req.ordered,
        disabled: req.disabled,
      });
      return { endpoint: endpointToProto(endpoint, options.secrets.open(endpoint.secrets[0]!.secret)) };
    },

    async getEndpoint(req, ctx) {
      return { endpoint: endpointToProto(await visibleEndpoint(ctx, req.id)) };
    },

    async updateEndpoint(req, ctx) {
      const e = req.endpoint;
      if (!e) throw new ValidationError("endpoint", "is required, with its id and the new values");
      if (e.id === "") throw new ValidationError("endpoint.id", "is required");
      await visibleEndpoint(ctx, e.id);
      // Fields outside the mask are ignored, as AIP-134 says: a value there,
      // even one this server cannot read, neither changes nor refuses anything.
      const paths = req.updateMask?.paths ?? [];
      const masked = (name: string) => paths.includes(name);
      const endpoint = await updateEndpoint(
        store.em(),
        options.addressGuard,
        e.id,
        {
          url: e.url,
          description: e.description,
          eventTypes: e.eventTypes,
          channels: e.channels,
          headers: e.headers,
          signatureScheme: masked("signature_scheme")
            ? schemeFromProto(e.signatureScheme, "endpoint.signature_scheme")
            : "standard-webhooks",
          retryPolicy: masked("retry_policy") ? retryPolicyFromProto(e.retryPolicy, "endpoint.retry_policy") : null,
          timeoutSeconds: e.timeoutSeconds,
          maxInFlight: e.maxInFlight,
          rateLimitPerSecond: e.rateLimitPerSecond,
          ordered: e.ordered,
          disabled: e.disabled,
        },
        paths,
      );
      return { endpoint: endpointToProto(endpoint) };
    },

    async rotateEndpointSecret(req, ctx) {
      await visibleEndpoint(ctx, req.id);
      const rotated = await rotateEndpointSecret(
        store.em(),
        options.secrets,
        req.id,
        req.secret,
        req.gracePeriod ? durationToMs(req.gracePeriod, "grace_period") : undefined,
      );
      return {
        secret: rotated.secret,
        previousSecretExpiresAt: rotated.previousExpiresAt ? timestampFromDate(rotated.previousExpiresAt) : undefined,
      };
    },

    async getEndpointStats(req, ctx) {
      await visibleEndpoint(ctx, req.id);
      const stats = await getEndpointStats(store.em(), store.sql, req.id, req.window ? durationToMs(req.window, "window") : undefined);
      return { stats: statsToProto(stats) };
    },

    async sendTestEvent(req, ctx) {
      const endpoint = await visibleEndpoint(ctx, req.id);
      // ctx.signal aborts when the client cancels or disconnects, or the call's deadline passes.
      return { attempt: attemptToProto(await sendTestEvent(endpoint, req.data, options.testEvents, ctx.signal)) };
    },

    async createEventType(req, ctx) {
      const type = await createEventType(
        store.em(),
        { tenantId: actingTenant(callerOf(ctx), req.tenantId), name: req.name, description: req.description, schema: req.schema },
        options.eventTypes,
      );
      return { eventType: eventTypeToProto(type) };
    },

    async listEventTypes(req, ctx) {
      const page = await listEventTypes(store.em(), actingTenant(callerOf(ctx), req.tenantId), req.pageSize, req.pageToken);
      return { eventTypes: page.types.map(eventTypeToProto), nextPageToken: page.nextPageToken };
    },

    async deleteEndpoint(req, ctx) {
      await visibleEndpoint(ctx, req.id);
      return { cancelledDeliveries: await deleteEndpoint(store.em(), req.id) };
    },

    async listEndpoints(req, ctx) {
      const page = await listEndpoints(store.em(), actingTenant(callerOf(ctx), req.tenantId), req.pageSize, req.pageToken);
      return { endpoints: page.endpoints.map((e) => endpointToProto(e)), nextPageToken: page.nextPageToken };
    },

    async *watchDeliveries(req, ctx) {
      const { filter, start } = parseWatch({
        tenantId: actingTenant(callerOf(ctx), req.tenantId),
        endpointId: req.endpointId,
        eventId: req.eventId,
        eventTypes: req.eventTypes,
        statuses: req.statuses,
        afterCursor: req.afterCursor,
        since: req.since ? timestampToDate(req.since, "since") : undefined,
      });
      for await (const row of options.updates.watch(filter, start, ctx.signal)) yield updateToProto(row);
    },

    async listDeliveries(req, ctx) {
      const page = await listDeliveries(
        store.em(),
        {
          tenantId: actingTenant(callerOf(ctx), req.tenantId),
          endpointId: req.endpointId,
          eventId: req.eventId,
          eventType: req.eventType,
          status: req.status,
          createdAfter: req.createdAfter ? timestampToDate(req.createdAfter, "created_after") : undefined,
          createdBefore: req.createdBefore ? timestampToDate(req.createdBefore, "created_before") : undefined,
        },
        req.pageSize,
        req.pageToken,
      );
      return { deliveries: page.deliveries.map((d) => deliveryToProto(d)), nextPageToken: page.nextPageToken };
    },

    async getDelivery(req, ctx) {
      const { delivery, attempts } = await getDelivery(store.em(), req.id, req.attemptLimit);
      mustSee(callerOf(ctx), delivery.tenantId, "delivery", req.id);
      return { delivery: deliveryToProto(delivery, attempts) };
    },

    async retryDelivery(req, ctx) {
      if (req.id !== "") mustSee(callerOf(ctx), (await getDelivery(store.em(), req.id, 0)).delivery.tenantId, "delivery", req.id);
      await retryDelivery(store.sql, req.id);
      const { delivery } = await getDelivery(store.em(), req.id, 1);
      return { delivery: deliveryToProto(delivery) };
    },

    async recoverEndpoint(req, ctx) {
      if (req.endpointId !== "") {
        await visibleEndpoint(ctx, req.endpointId);
      }
      const requeuedCount = await recoverEndpoint(
        store.em(),
        store.sql,
        req.endpointId,
        req.since ? timestampToDate(req.since, "since") : undefined,
        req.until ? timestampToDate(req.until, "until") : undefined,
      );
      return { requeuedCount };
    },

    async createApiKey(req, ctx) {
      const { key, token } = await createApiKey(store.sql, callerOf(ctx), {
        tenantId: req.tenantId,
        scope: req.scope,
        description: req.description,
      });
      return { apiKey: apiKeyToProto(key), token };
    },

    async listApiKeys(req, ctx) {
      const page = await listApiKeys(store.sql, callerOf(ctx), req.tenantId, req.pageSize, req.pageToken);
      return { apiKeys: page.keys.map(apiKeyToProto), nextPageToken: page.nextPageToken };
    },

    async revokeApiKey(req, ctx) {
      return { apiKey: apiKeyToProto(await revokeApiKey(store.sql, callerOf(ctx), req.id)) };
    },
  };
}

