/**
 * `hookline endpoints`: create, list, get, update, delete, rotate-secret,
 * test and stats, one WebhookAdmin RPC each.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { type Command, Option } from "commander";
import { type Endpoint, EndpointSchema, type RetryPolicy, type SignatureScheme } from "../../../gen/hookline/v1/endpoint_pb.js";
import {
  type CreateEndpointRequestSchema,
  CreateEndpointResponseSchema,
  DeleteEndpointResponseSchema,
  GetEndpointResponseSchema,
  GetEndpointStatsResponseSchema,
  RotateEndpointSecretResponseSchema,
  SendTestEventResponseSchema,
  UpdateEndpointResponseSchema,
  type UpdateEndpointRequestSchema,
} from "../../../gen/hookline/v1/webhook_admin_pb.js";
import type { CliContext } from "../context.js";
import { CommandFailed, ExitCode, UsageError } from "../errors.js";
import { readJsonObject } from "../json-input.js";
import {
  attemptSucceeded,
  count,
  endpointPairs,
  endpointTable,
  formatBlock,
  formatTime,
  statsPairs,
  testAttemptPairs,
} from "../output.js";
import { tenantListCommand } from "../paging.js";
import {
  collect,
  integerIn,
  parseDurationArg,
  parseHeader,
  parseList,
  parseRate,
  parseRetryExponentialArg,
  parseRetryScheduleArg,
  parseScheme,
  parseWholeSeconds,
} from "../parse.js";

/** The endpoint settings both `create` and `update` take, as commander parsed them. */
export interface EndpointFlags {
  description?: string;
  eventTypes?: string[];
  channels?: string[];
  header?: [string, string][];
  scheme?: SignatureScheme;
  retrySchedule?: RetryPolicy;
  retryExponential?: RetryPolicy;
  timeout?: number;
  maxInFlight?: number;
  rateLimit?: number;
  ordered?: boolean;
}

/** The flags of `endpoints create`. */
export interface CreateFlags extends EndpointFlags {
  tenant: string;
  secret?: string;
  disabled?: boolean;
}

/** The flags of `endpoints update`. */
export interface UpdateFlags extends EndpointFlags {
  endpointUrl?: string;
  clearHeaders?: boolean;
  retryDefault?: boolean;
  disable?: boolean;
  enable?: boolean;
}

/** The CreateEndpoint request of `endpoints create <url>`. */
export function createRequest(url: string, f: CreateFlags): MessageInitShape<typeof CreateEndpointRequestSchema> {
  return {
    tenantId: f.tenant,
    url,
    description: f.description,
    eventTypes: f.eventTypes,
    channels: f.channels,
    headers: f.header ? Object.fromEntries(f.header) : undefined,
    secret: f.secret,
    signatureScheme: f.scheme,
    retryPolicy: f.retrySchedule ?? f.retryExponential,
    timeoutSeconds: f.timeout,
    maxInFlight: f.maxInFlight,
    rateLimitPerSecond: f.rateLimit,
    ordered: f.ordered,
    disabled: f.disabled,
  };
}

/**
 * The UpdateEndpoint request of `endpoints update <id>`: the flags given
 * become the endpoint's new values and the mask's paths, nothing else.
 */
export function updateRequest(id: string, f: UpdateFlags): MessageInitShape<typeof UpdateEndpointRequestSchema> {
  const endpoint = create(EndpointSchema, { id });
  const paths: string[] = [];
  const set = <K extends keyof Endpoint>(path: string, key: K, value: Endpoint[K] | undefined) => {
    if (value === undefined) return;
    endpoint[key] = value;
    paths.push(path);
  };
  set("url", "url", f.endpointUrl);
  set("description", "description", f.description);
  set("event_types", "eventTypes", f.eventTypes);
  set("channels", "channels", f.channels);
  set("headers", "headers", f.clearHeaders ? {} : f.header && Object.fromEntries(f.header));
  set("signature_scheme", "signatureScheme", f.scheme);
  if (f.retryDefault) paths.push("retry_policy");
  else set("retry_policy", "retryPolicy", f.retrySchedule ?? f.retryExponential);
  set("timeout_seconds", "timeoutSeconds", f.timeout);
  set("max_in_flight", "maxInFlight", f.maxInFlight);
  set("rate_limit_per_second", "rateLimitPerSecond", f.rateLimit);
  set("ordered", "ordered", f.ordered);
  set("disabled", "disabled", f.disable ? true : f.enable ? false : undefined);
  if (paths.length === 0) throw new UsageError("endpoints update: give at least one setting to change (see --help)");
  return { endpoint, updateMask: { paths } };
}

/** Adds the settings both `create` and `update` take. */
function endpointOptions(cmd: Command, update: boolean): Command {
  const clear = update ? "; \"\" for all" : "";
  return cmd
    .option("--description <text>", "free text for operators")
    .option("--event-types <list>", `comma-separated event types to receive, "prefix.*" patterns allowed${update ? clear : "; default all"}`, parseList)
    .option("--channels <list>", `comma-separated channels to listen on${update ? clear : "; default all"}`, parseList)
    .option(
      "-H, --header <header>",
      `"Name: value" sent with every delivery; repeatable${update ? " (replaces all the endpoint's headers)" : ""}`,
      collect(parseHeader),
    )
    .option("--scheme <scheme>", "signature scheme: standard-webhooks or github", parseScheme)
    .addOption(
      new Option("--retry-schedule <delays>", 'retry delays, e.g. "5s,5m,30m", or "none" for a single attempt')
        .argParser(parseRetryScheduleArg)
        .conflicts("retryExponential"),
    )
    .addOption(
      new Option("--retry-exponential <base,cap,attempts>", 'exponential retries, e.g. "2s,1h,5"').argParser(parseRetryExponentialArg),
    )
    .option("--timeout <duration>", `per-request timeout, 1s-300s${update ? "; 0 for the server default" : ""}`, parseWholeSeconds)
    .option("--max-in-flight <n>", `requests in flight at once${update ? "; 0 for the server default" : ""}`, integerIn(0, 1000))
    .option("--rate-limit <per-second>", `requests started per second${update ? "; 0 for no limit" : ""}`, parseRate);
}

/** Registers `hookline endpoints ...`. */
export function registerEndpoints(program: Command, context: (cmd: Command) => CliContext): void {
  const endpoints = program.command("endpoints").description("manage the endpoints events are delivered to");

  endpointOptions(
    endpoints
      .command("create")
      .description("register an endpoint and print it with its signing secret")
      .argument("<url>", "the URL to POST events to (http or https)")
      .requiredOption("--tenant <id>", "the owning tenant"),
    false,
  )
    .option("--secret <secret>", "the signing secret, whsec_ + base64; generated when left out")
    .option("--ordered", "deliver strictly in publish order, one at a time")
    .option("--disabled", "create it paused")
    .action(async (url: string, flags: CreateFlags, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.createEndpoint(createRequest(url, flags));
      out.message(CreateEndpointResponseSchema, res, () => formatBlock(endpointPairs(res.endpoint!)));
    });

  tenantListCommand(endpoints, context, {
    description: "list a tenant's endpoints, oldest first",
    schema: EndpointSchema,
    plural: "endpoints",
    table: endpointTable,
    page: async (client, tenantId, pageSize, pageToken) => {
      const res = await client.admin.listEndpoints({ tenantId, pageSize, pageToken });
      return { items: res.endpoints, nextPageToken: res.nextPageToken };
    },
  });

  endpoints
    .command("get")
    .description("show one endpoint (without its secret)")
    .argument("<id>", "the endpoint's id")
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.getEndpoint({ id });
      out.message(GetEndpointResponseSchema, res, () => formatBlock(endpointPairs(res.endpoint!)));
    });

  endpointOptions(
    endpoints
      .command("update")
      .description("change the settings given, and only those")
      .argument("<id>", "the endpoint's id")
      .option("--endpoint-url <url>", "the new URL to POST events to"),
    true,
  )
    .addOption(new Option("--clear-headers", "remove every custom header").conflicts("header"))
    .addOption(new Option("--retry-default", "use the server's default retry policy").conflicts(["retrySchedule", "retryExponential"]))
    .option("--ordered", "deliver strictly in publish order")
    .option("--no-ordered", "deliver concurrently again")
    .option("--disable", "pause: deliveries wait until --enable")
    .addOption(new Option("--enable", "resume (and reset the health of an endpoint Hookline disabled)").conflicts("disable"))
    .action(async (id: string, flags: UpdateFlags, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.updateEndpoint(updateRequest(id, flags));
      out.message(UpdateEndpointResponseSchema, res, () => formatBlock(endpointPairs(res.endpoint!)));
    });

  endpoints
    .command("delete")
    .description("delete an endpoint; its pending deliveries fail")
    .argument("<id>", "the endpoint's id")
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.deleteEndpoint({ id });
      out.message(DeleteEndpointResponseSchema, res, () => `deleted ${id}; ${count(res.cancelledDeliveries, "pending delivery", "pending deliveries")} failed`);
    });

  endpoints
    .command("rotate-secret")
    .description("replace the signing secret; the old one keeps signing for a grace period")
    .argument("<id>", "the endpoint's id")
    .option("--secret <secret>", "the new secret, whsec_ + base64; generated when left out")
    .option("--grace-period <duration>", "how long the old secret keeps signing (default 24h; 0 retires it now)", parseDurationArg)
    .action(async (id: string, flags: { secret?: string; gracePeriod?: Duration }, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.rotateEndpointSecret({ id, secret: flags.secret, gracePeriod: flags.gracePeriod });
      out.message(RotateEndpointSecretResponseSchema, res, () =>
        formatBlock([
          ["secret", res.secret],
          res.previousSecretExpiresAt
            ? ["previous secret signs until", formatTime(res.previousSecretExpiresAt)]
            : ["previous secret", "retired"],
        ]),
      );
    });

  endpoints
    .command("test")
    .description(`send a signed "hookline.test" event now and show the attempt (exit code ${ExitCode.testFailed} unless it got a 2xx)`)
    .argument("<id>", "the endpoint's id")
    .option("--data <json>", "the event's data: a JSON object, @file or - for stdin; default {}")
    .action(async (id: string, flags: { data?: string }, cmd: Command) => {
      const { client, out, io } = context(cmd);
      const data = flags.data === undefined ? undefined : await readJsonObject(flags.data, io.stdin);
      const res = await client.admin.sendTestEvent({ id, data });
      const attempt = res.attempt!;
      out.message(SendTestEventResponseSchema, res, () => formatBlock(testAttemptPairs(attempt)));
      if (!attemptSucceeded(attempt)) {
        throw new CommandFailed(`the test event to ${id} failed: ${attempt.error || `HTTP ${attempt.responseStatus}`}`, ExitCode.testFailed);
      }
    });

  endpoints
    .command("stats")
    .description("an endpoint's recent successes, failures, latencies and health")
    .argument("<id>", "the endpoint's id")
    .option("--window <duration>", "how far back to count (default 24h)", parseDurationArg)
    .action(async (id: string, flags: { window?: Duration }, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.getEndpointStats({ id, window: flags.window });
      out.message(GetEndpointStatsResponseSchema, res, () => formatBlock(statsPairs(res.stats!)));
    });
}
