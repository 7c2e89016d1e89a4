/**
 * `hookline publish`: one event with Publish, or many (a JSON array or NDJSON
 * file) with PublishBatch in chunks, showing progress on stderr.
 */
import type { Command } from "commander";
import { ConnectError } from "@connectrpc/connect";
import {
  type PublishRequest,
  type PublishResponse,
  PublishResponseSchema,
} from "../../../gen/hookline/v1/event_ingest_pb.js";
import type { CliContext } from "../context.js";
import { UsageError } from "../errors.js";
import { chunks, type EventDefaults, eventFromData, eventFromJson, readJsonArg, splitJsonItems } from "../json-input.js";
import { count, formatBlock } from "../output.js";
import { integerIn, parseList } from "../parse.js";

interface PublishFlags {
  tenant?: string;
  file?: string;
  idempotencyKey?: string;
  channels?: string[];
  batchSize: number;
}

/**
 * `message` with each `events[i]` counted from the start of the whole input
 * rather than from the batch that began at `offset`.
 */
export function renumberEvents(message: string, offset: number): string {
  return message.replace(/\bevents\[(\d+)\]/g, (_, i: string) => `events[${Number(i) + offset}]`);
}

/** A summary of a bulk publish: "published 3 events (2 new, 1 duplicate), 4 deliveries". */
export function publishSummary(results: PublishResponse[]): string {
  const duplicates = results.filter((r) => r.duplicate).length;
  const deliveries = results.reduce((n, r) => n + r.deliveryCount, 0);
  const published = count(results.length, "event");
  return `published ${published} (${results.length - duplicates} new, ${count(duplicates, "duplicate")}), ${count(deliveries, "delivery", "deliveries")}`;
}

/** Registers `hookline publish`. */
export function registerPublish(program: Command, context: (cmd: Command) => CliContext): void {
  program
    .command("publish")
    .description(
      "publish an event, or many: <data> (or --file) may hold a JSON array or one JSON object per line, sent in batches",
    )
    .argument("[type]", "the event type, e.g. invoice.paid (with --file: for events that name none)")
    .argument("[data]", "the event's data: a JSON object, @file or - for stdin; an array or NDJSON publishes one event per item")
    .option("--tenant <id>", "the tenant (with a tenant's API key: its own when left out)")
    .option("--file <path>", "publish the events in this file (NDJSON or a JSON array of PublishRequests in JSON; - for stdin)")
    .option("--idempotency-key <key>", "a repeated publish with the same key stores nothing (single events)")
    .option("--channels <list>", "comma-separated channels", parseList)
    .option("--batch-size <n>", "events per PublishBatch call", integerIn(1, 1000), 500)
    .action(async (type: string | undefined, data: string | undefined, flags: PublishFlags, cmd: Command) => {
      const ctx = context(cmd);
      const defaults: EventDefaults = { tenantId: flags.tenant, eventType: type, channels: flags.channels };
      if (flags.file !== undefined) {
        if (data !== undefined) throw new UsageError("publish: give <data> or --file, not both");
        const { text, source } = await readJsonArg(flags.file === "-" ? "-" : `@${flags.file}`, ctx.io.stdin);
        const events = splitJsonItems(text, source).items.map((item) => eventFromJson(item, defaults, source));
        return publishMany(ctx, events, flags.batchSize);
      }
      if (type === undefined || data === undefined) throw new UsageError("publish: give <type> and <data>, or --file (see --help)");
      const { text, source } = await readJsonArg(data, ctx.io.stdin);
      const { single, items } = splitJsonItems(text, source);
      if (single) {
        const res = await ctx.client.ingest.publish(eventFromData(items[0]!, defaults, flags.idempotencyKey));
        ctx.out.message(PublishResponseSchema, res, () =>
          formatBlock([
            ["event", res.eventId],
            ["deliveries", String(res.deliveryCount)],
            ["duplicate", res.duplicate ? "yes: an earlier publish had this idempotency key; nothing was stored" : "no"],
          ]),
        );
        return;
      }
      if (flags.idempotencyKey !== undefined) throw new UsageError("publish: --idempotency-key is for one event; put keys in the events of --file");
      return publishMany(
        ctx,
        items.map((item) => eventFromData(item, defaults)),
        flags.batchSize,
      );
    });
}

/** Publishes `events` in batches of `batchSize`, each all or nothing, with progress on stderr. */
async function publishMany(ctx: CliContext, events: PublishRequest[], batchSize: number): Promise<void> {
  const { client, out } = ctx;
  const progress = out.progress();
  const results: PublishResponse[] = [];
  for (const batch of chunks(events, batchSize)) {
    const offset = results.length;
    try {
      const res = await client.ingest.publishBatch({ events: batch });
      results.push(...res.results);
    } catch (err) {
      progress.done();
      if (offset > 0) {
        out.note(`hookline: the first ${offset} of ${events.length} events were published; the batch from events[${offset}] on was not`);
      }
      const e = ConnectError.from(err);
      throw new ConnectError(renumberEvents(e.rawMessage, offset), e.code, e.metadata);
    }
    progress.update(`published ${results.length}/${events.length} events`);
  }
  progress.done();
  out.list(PublishResponseSchema, results, () => publishSummary(results));
}
