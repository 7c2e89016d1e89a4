/**
 * `hookline watch`: tails WatchDeliveries, one line per status update (NDJSON
 * with --json), until Ctrl-C; reconnects after a dropped connection or a
 * server restart and resumes after the last update it printed.
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { toJsonString } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { type DeliveryStatus, DeliveryUpdateSchema } from "../../../gen/hookline/v1/delivery_pb.js";
import type { CliContext } from "../context.js";
import { codeName, UsageError } from "../errors.js";
import { followDeliveries } from "../follow.js";
import { formatUpdateLine } from "../output.js";
import { integerIn, parseList, parseStatuses, parseTime } from "../parse.js";

interface WatchFlags {
  tenant?: string;
  endpoint?: string;
  event?: string;
  type?: string[];
  status?: DeliveryStatus[];
  since?: Timestamp;
  cursor?: string;
  count?: number;
}

/** Registers `hookline watch`. */
export function registerWatch(program: Command, context: (cmd: Command) => CliContext): void {
  program
    .command("watch")
    .description("print delivery status updates live, resuming after reconnects; Ctrl-C stops")
    .option("--tenant <id>", "only this tenant's deliveries")
    .option("--endpoint <id>", "only deliveries to this endpoint")
    .option("--event <id>", "only deliveries of this event")
    .option("--type <types>", 'comma-separated event types, "prefix.*" patterns allowed', parseList)
    .option("--status <statuses>", "only updates leaving the delivery pending, retrying, succeeded or failed (comma-separated)", parseStatuses)
    .option("--since <time>", "first replay the updates from this time: RFC 3339, or a duration ago (10m, 2h)", (t: string) =>
      parseTime(t),
    )
    .option("--cursor <cursor>", "first replay the updates after this cursor (the cursor= of a line printed before)")
    .option("--count <n>", "exit after this many updates", integerIn(1, Number.MAX_SAFE_INTEGER))
    .action(async (flags: WatchFlags, cmd: Command) => {
      const { client, out } = context(cmd);
      if (flags.since && flags.cursor) throw new UsageError("watch: give --since or --cursor, not both");
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      let printed = 0;
      try {
        await followDeliveries(
          client.admin,
          {
            tenantId: flags.tenant,
            endpointId: flags.endpoint,
            eventId: flags.event,
            eventTypes: flags.type,
            statuses: flags.status,
            since: flags.since,
            afterCursor: flags.cursor,
          },
          {
            signal: stop.signal,
            onUpdate(update) {
              out.line(out.json ? toJsonString(DeliveryUpdateSchema, update) : formatUpdateLine(update, out.colour));
              if (++printed === flags.count) stop.abort();
            },
            onReconnect({ error, delayMs, cursor }) {
              const why = error ? `${codeName(error.code)}: ${error.rawMessage}` : "the server ended the stream";
              const from = cursor ? `after cursor ${cursor}` : "from where it started";
              out.note(`hookline: watch: ${why}; reconnecting in ${(delayMs / 1000).toFixed(1)}s, resuming ${from}`);
            },
          },
        );
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
}
