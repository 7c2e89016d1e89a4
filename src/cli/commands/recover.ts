/**
 * `hookline recover <endpoint> --since <time>`: RecoverEndpoint, which queues
 * an endpoint's failed deliveries again after an outage of its receiver.
 * The RPC answers once it is done, so progress comes from the status stream:
 * each delivery queued again is logged there as REQUEUED.
 */
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import { DeliveryStatus, DeliveryUpdateKind } from "../../../gen/hookline/v1/delivery_pb.js";
import { RecoverEndpointResponseSchema } from "../../../gen/hookline/v1/webhook_admin_pb.js";
import type { CliContext } from "../context.js";
import { count, formatTime } from "../output.js";
import { parseTime } from "../parse.js";

/** Registers `hookline recover`. */
export function registerRecover(program: Command, context: (cmd: Command) => CliContext): void {
  program
    .command("recover")
    .description("queue again the failed deliveries of an endpoint created in a time range (after its receiver's outage)")
    .argument("<endpoint>", "the endpoint's id")
    .requiredOption("--since <time>", "deliveries created at or after: RFC 3339, or a duration ago (10m, 2h, 1d)", (t: string) =>
      parseTime(t),
    )
    .option("--until <time>", "deliveries created before (default now)", (t: string) => parseTime(t))
    .action(async (endpointId: string, flags: { since: Timestamp; until?: Timestamp }, cmd: Command) => {
      const { client, out } = context(cmd);
      const progress = out.progress(500);
      progress.update(`recovering ${endpointId}...`);
      const watching = new AbortController();
      let requeued = 0;
      // Best effort: counts the REQUEUED updates of this endpoint from a moment before the call.
      const counting = (async () => {
        const updates = client.admin.watchDeliveries(
          { endpointId, statuses: [DeliveryStatus.RETRYING], since: timestampFromMs(Date.now() - 1_000) },
          { signal: watching.signal },
        );
        for await (const u of updates) {
          if (u.kind !== DeliveryUpdateKind.REQUEUED) continue;
          requeued++;
          progress.update(`recovering ${endpointId}: ${requeued} deliveries queued again so far`);
        }
      })().catch(() => {});
      let res: Awaited<ReturnType<typeof client.admin.recoverEndpoint>>;
      try {
        res = await client.admin.recoverEndpoint({ endpointId, since: flags.since, until: flags.until });
      } finally {
        watching.abort();
        await counting;
        progress.done();
      }
      out.message(RecoverEndpointResponseSchema, res, () => {
        const range = `created from ${formatTime(flags.since)}${flags.until ? ` to ${formatTime(flags.until)}` : ""}`;
        return `queued again ${count(res.requeuedCount, "failed delivery", "failed deliveries")} of ${endpointId} ${range}`;
      });
    });
}
