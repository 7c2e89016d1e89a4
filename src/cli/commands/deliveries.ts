/**
 * `hookline deliveries`: list (filtered, newest first), get (with attempts)
 * and retry.
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { type DeliveryStatus, DeliverySchema } from "../../../gen/hookline/v1/delivery_pb.js";
import { GetDeliveryResponseSchema, RetryDeliveryResponseSchema } from "../../../gen/hookline/v1/webhook_admin_pb.js";
import type { CliContext } from "../context.js";
import { attemptTable, deliveryPairs, deliveryTable, formatBlock } from "../output.js";
import { limitOption, printPages, readPages } from "../paging.js";
import { integerIn, parseStatus, parseTime } from "../parse.js";

interface ListFlags {
  tenant?: string;
  endpoint?: string;
  event?: string;
  type?: string;
  status?: DeliveryStatus;
  since?: Timestamp;
  until?: Timestamp;
  limit: number;
}

/** Registers `hookline deliveries ...`. */
export function registerDeliveries(program: Command, context: (cmd: Command) => CliContext): void {
  const deliveries = program.command("deliveries").description("inspect deliveries and queue them again");

  const list = deliveries
    .command("list")
    .description("list deliveries, newest first; filters combine")
    .option("--tenant <id>", "only this tenant's")
    .option("--endpoint <id>", "only those to this endpoint")
    .option("--event <id>", "only those of this event")
    .option("--type <type>", "only those of events of this type")
    .option("--status <status>", "only those pending, retrying, succeeded or failed", parseStatus)
    .option("--since <time>", "created at or after: RFC 3339, or a duration ago (10m, 2h)", (t: string) => parseTime(t))
    .option("--until <time>", "created before: RFC 3339, or a duration ago", (t: string) => parseTime(t));
  limitOption(list).action(async (flags: ListFlags, cmd: Command) => {
      const { client, out } = context(cmd);
      const read = await readPages(flags.limit, async (pageSize, pageToken) => {
        const res = await client.admin.listDeliveries({
          tenantId: flags.tenant,
          endpointId: flags.endpoint,
          eventId: flags.event,
          eventType: flags.type,
          status: flags.status,
          createdAfter: flags.since,
          createdBefore: flags.until,
          pageSize,
          pageToken,
        });
        return { items: res.deliveries, nextPageToken: res.nextPageToken };
      });
      printPages(out, DeliverySchema, read, { plural: "deliveries", empty: "no deliveries match", table: deliveryTable });
    });

  deliveries
    .command("get")
    .description("show a delivery with its attempts, newest first")
    .argument("<id>", "the delivery's id")
    .option("--attempts <n>", "how many attempts to show", integerIn(1, 1000), 50)
    .action(async (id: string, flags: { attempts: number }, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.getDelivery({ id, attemptLimit: flags.attempts });
      const d = res.delivery!;
      out.message(GetDeliveryResponseSchema, res, () =>
        d.attempts.length ? `${formatBlock(deliveryPairs(d))}\n\n${attemptTable(d.attempts)}` : formatBlock(deliveryPairs(d)),
      );
    });

  deliveries
    .command("retry")
    .description("queue a delivery for an attempt now, whatever its status")
    .argument("<id>", "the delivery's id")
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.retryDelivery({ id });
      out.message(RetryDeliveryResponseSchema, res, () => formatBlock(deliveryPairs(res.delivery!)));
    });
}
