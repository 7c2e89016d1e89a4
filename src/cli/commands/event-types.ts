/**
 * `hookline event-types`: create (with an optional JSON Schema for the
 * payloads) and list, a tenant's catalogue of what it publishes.
 */
import type { Command } from "commander";
import { EventTypeSchema } from "../../../gen/hookline/v1/event_type_pb.js";
import { CreateEventTypeResponseSchema } from "../../../gen/hookline/v1/webhook_admin_pb.js";
import type { CliContext } from "../context.js";
import { readJsonObject } from "../json-input.js";
import { eventTypePairs, eventTypeTable, formatBlock } from "../output.js";
import { tenantListCommand } from "../paging.js";

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
      const schema = flags.schema === undefined ? undefined : await readJsonObject(flags.schema, io.stdin, "one JSON Schema object");
      const res = await client.admin.createEventType({ tenantId: flags.tenant, name, description: flags.description, schema });
      out.message(CreateEventTypeResponseSchema, res, () => formatBlock(eventTypePairs(res.eventType!)));
    });

  tenantListCommand(types, context, {
    description: "list a tenant's event types, by name",
    schema: EventTypeSchema,
    plural: "event types",
    table: eventTypeTable,
    page: async (client, tenantId, pageSize, pageToken) => {
      const res = await client.admin.listEventTypes({ tenantId, pageSize, pageToken });
      return { items: res.eventTypes, nextPageToken: res.nextPageToken };
    },
  });
}
