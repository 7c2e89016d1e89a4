/**
 * `hookline event-types`: create (with an optional JSON Schema for the
 * payloads) and list, a tenant's catalogue of what it publishes.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { EventTypeSchema } from "../../../gen/hookline/v1/event_type_pb.js";
import { CreateEventTypeResponseSchema } from "../../../gen/hookline/v1/webhook_admin_pb.js";
import type { CliContext } from "../context.js";
import { UsageError } from "../errors.js";
import { readJsonArg, splitJsonItems } from "../json-input.js";
import { eventTypePairs, eventTypeTable, formatBlock } from "../output.js";
import { readPages } from "../paging.js";
import { integerIn } from "../parse.js";

/** Registers `hookline event-types ...`. */
export function registerEventTypes(program: Command, context: (cmd: Command) => CliContext): void {
  const types = program.command("event-types").description("the event types a tenant publishes, with optional JSON Schemas");

  types
    .command("create")
    .description("declare an event type; with --schema, Publish refuses data that does not match it")
    .argument("<name>", 'the type, such as "invoice.paid"')
    .requiredOption("--tenant <id>", "the owning tenant")
    .option("--description <text>", "what the event means, for the people who subscribe")
    .option("--schema <json>", "a JSON Schema (draft 2020-12) for the data: inline, @file or - for stdin")
    .action(async (name: string, flags: { tenant: string; description?: string; schema?: string }, cmd: Command) => {
      const { client, out, io } = context(cmd);
      let schema: JsonObject | undefined;
      if (flags.schema !== undefined) {
        const { text, source } = await readJsonArg(flags.schema, io.stdin);
        const { single, items } = splitJsonItems(text, source);
        if (!single) throw new UsageError(`${source}: expected one JSON Schema object`);
        schema = items[0]!.value;
      }
      const res = await client.admin.createEventType({ tenantId: flags.tenant, name, description: flags.description, schema });
      out.message(CreateEventTypeResponseSchema, res, () => formatBlock(eventTypePairs(res.eventType!)));
    });

  types
    .command("list")
    .description("list a tenant's event types, by name")
    .requiredOption("--tenant <id>", "the tenant")
    .option("--limit <n>", "at most this many; 0 for all", integerIn(0, 1_000_000), 100)
    .action(async (flags: { tenant: string; limit: number }, cmd: Command) => {
      const { client, out } = context(cmd);
      const { items, more } = await readPages(flags.limit, async (pageSize, pageToken) => {
        const res = await client.admin.listEventTypes({ tenantId: flags.tenant, pageSize, pageToken });
        return { items: res.eventTypes, nextPageToken: res.nextPageToken };
      });
      out.list(EventTypeSchema, items, () => (items.length ? eventTypeTable(items) : `no event types for tenant ${flags.tenant}`));
      if (more && !out.json) out.note("(more event types: raise --limit, or --limit 0 for all)");
    });
}
