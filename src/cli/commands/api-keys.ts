/**
 * `hookline api-keys`: create, list and revoke the tenant-scoped bearer
 * tokens publishers and tenant admins use instead of the operator's
 * HOOKLINE_ADMIN_TOKEN.
 */
import type { Command } from "commander";
import { ApiKeySchema, type ApiKeyScope } from "../../../gen/hookline/v1/api_key_pb.js";
import { CreateApiKeyResponseSchema, RevokeApiKeyResponseSchema } from "../../../gen/hookline/v1/webhook_admin_pb.js";
import type { CliContext } from "../context.js";
import { apiKeyPairs, apiKeyTable, formatBlock } from "../output.js";
import { tenantListCommand } from "../paging.js";
import { parseScope } from "../parse.js";

/** Registers `hookline api-keys ...`. */
export function registerApiKeys(program: Command, context: (cmd: Command) => CliContext): void {
  const keys = program.command("api-keys").description("tenant-scoped tokens for publishers and tenant admins");

  keys
    .command("create")
    .description("create a key and print its token, which is shown this once and never again")
    .requiredOption("--tenant <id>", "the tenant the key is limited to")
    .requiredOption("--scope <scope>", "ingest (EventIngest only) or admin (EventIngest and WebhookAdmin)", parseScope)
    .option("--description <text>", "who or what uses it")
    .action(async (flags: { tenant: string; scope: ApiKeyScope; description?: string }, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.createApiKey({ tenantId: flags.tenant, scope: flags.scope, description: flags.description });
      out.message(CreateApiKeyResponseSchema, res, () => formatBlock(apiKeyPairs(res.apiKey!, res.token)));
      if (!out.json) out.note("(store the token now: Hookline keeps only its hash and cannot show it again)");
    });

  tenantListCommand(keys, context, {
    description: "list a tenant's keys, oldest first, revoked ones included (never their tokens)",
    schema: ApiKeySchema,
    plural: "API keys",
    table: apiKeyTable,
    page: async (client, tenantId, pageSize, pageToken) => {
      const res = await client.admin.listApiKeys({ tenantId, pageSize, pageToken });
      return { items: res.apiKeys, nextPageToken: res.nextPageToken };
    },
  });

  keys
    .command("revoke")
    .description("make a key invalid at once")
    .argument("<id>", "the key's id (key_...)")
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const { client, out } = context(cmd);
      const res = await client.admin.revokeApiKey({ id });
      out.message(RevokeApiKeyResponseSchema, res, () => formatBlock(apiKeyPairs(res.apiKey!)));
    });
}
