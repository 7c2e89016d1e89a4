/**
 * The list commands: their --limit flag, reading a paged list RPC page after
 * page until `limit` items (0: all), and printing what was read.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Command } from "commander";
import type { HooklineClient } from "../client/index.js";
import type { CliContext } from "./context.js";
import type { Output } from "./output.js";
import { integerIn } from "./parse.js";

/** One page of a list RPC. */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/**
 * Up to `limit` items (all when 0) from `fetch`, called with each page's size
 * and token in turn; `more` tells whether the list goes on beyond them.
 */
export async function readPages<T>(
  limit: number,
  fetch: (pageSize: number, pageToken: string) => Promise<Page<T>>,
): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let token = "";
  for (;;) {
    const want = limit === 0 ? MAX_PAGE_SIZE : Math.min(MAX_PAGE_SIZE, limit - items.length);
    const page = await fetch(want, token);
    items.push(...page.items.slice(0, want));
    token = page.nextPageToken;
    if (token === "") return { items, more: false };
    if (limit !== 0 && items.length >= limit) return { items, more: true };
  }
}

/** The largest page the API serves. */
const MAX_PAGE_SIZE = 1000;

/** Adds `--limit <n>` (default 100, 0 for all) to a list command. */
export function limitOption(cmd: Command): Command {
  return cmd.option("--limit <n>", "at most this many; 0 for all", integerIn(0, 1_000_000), 100);
}

/** How a list is printed for people. */
export interface ListText<T> {
  /** The items' name in the plural, for the note that more follow: "endpoints". */
  plural: string;
  /** What to print when there are none. */
  empty: string;
  table: (items: T[]) => string;
}

/** Prints what readPages read: one message per line with --json, else a table; a note when the list goes on. */
export function printPages<Desc extends DescMessage>(
  out: Output,
  schema: Desc,
  read: { items: MessageShape<Desc>[]; more: boolean },
  text: ListText<MessageShape<Desc>>,
): void {
  out.list(schema, read.items, () => (read.items.length ? text.table(read.items) : text.empty));
  if (read.more && !out.json) out.note(`(more ${text.plural}: raise --limit, or --limit 0 for all)`);
}

/** Registers `<parent> list --tenant <id> [--limit <n>]`, a tenant's items read with `page`. */
export function tenantListCommand<Desc extends DescMessage>(
  parent: Command,
  context: (cmd: Command) => CliContext,
  spec: {
    description: string;
    schema: Desc;
    plural: string;
    table: (items: MessageShape<Desc>[]) => string;
    page: (client: HooklineClient, tenantId: string, pageSize: number, pageToken: string) => Promise<Page<MessageShape<Desc>>>;
  },
): Command {
  return limitOption(parent.command("list").description(spec.description).requiredOption("--tenant <id>", "the tenant")).action(
    async (flags: { tenant: string; limit: number }, cmd: Command) => {
      const { client, out } = context(cmd);
      const read = await readPages(flags.limit, (pageSize, pageToken) => spec.page(client, flags.tenant, pageSize, pageToken));
      printPages(out, spec.schema, read, { plural: spec.plural, empty: `no ${spec.plural} for tenant ${flags.tenant}`, table: spec.table });
    },
  );
}
