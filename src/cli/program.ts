/**
 * The `hookline` command line: its global flags, its commands, and how a run
 * ends (exit codes in errors.ts; docs/cli.md describes it all).
 */
import { Command, Option } from "commander";
import { VERSION } from "../version.js";
import { registerApiKeys } from "./commands/api-keys.js";
import { registerDeliveries } from "./commands/deliveries.js";
import { registerEndpoints } from "./commands/endpoints.js";
import { registerEventTypes } from "./commands/event-types.js";
import { registerPublish } from "./commands/publish.js";
import { registerRecover } from "./commands/recover.js";
import { registerServe } from "./commands/serve.js";
import { registerWatch } from "./commands/watch.js";
import { type CliIo, createContext, type GlobalOptions } from "./context.js";
import { describeError } from "./errors.js";

/** Where a Hookline started with the defaults serves (HOOKLINE_HOST and HOOKLINE_PORT, docs/configuration.md). */
export const DEFAULT_URL = "http://127.0.0.1:7070";

/** Builds the program; commands write to `io`. */
export function createProgram(io: CliIo): Command {
  const program = new Command("hookline")
    .description("Hookline's command line: run the server, manage endpoints, publish events, follow deliveries, manage event types and API keys")
    .version(VERSION)
    .addOption(new Option("--url <url>", "where Hookline serves").env("HOOKLINE_URL").default(DEFAULT_URL))
    .addOption(new Option("--token <token>", "bearer token: HOOKLINE_ADMIN_TOKEN, an ingest token or an API key").env("HOOKLINE_TOKEN"))
    .addOption(new Option("--protocol <protocol>", "how to call it").choices(["connect", "grpc", "grpc-web"]).env("HOOKLINE_PROTOCOL").default("connect"))
    .option("--json", "print protobuf JSON (one message per line for lists and watch) instead of text")
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showSuggestionAfterError()
    // Commander's errors (exit code 2 for usage) are thrown to runCli instead of exiting.
    .exitOverride();
  const context = (cmd: Command) => createContext(cmd.optsWithGlobals<GlobalOptions>(), io);
  registerServe(program);
  registerEndpoints(program, context);
  registerPublish(program, context);
  registerDeliveries(program, context);
  registerRecover(program, context);
  registerWatch(program, context);
  registerEventTypes(program, context);
  registerApiKeys(program, context);
  return program;
}

/** Runs the command line `args` (without node and the script) and returns the exit code. */
export async function runCli(args: string[], io: CliIo): Promise<number> {
  const program = createProgram(io);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    const { lines, exitCode } = describeError(err, program.opts<GlobalOptions>().url ?? DEFAULT_URL);
    for (const line of lines) io.stderr.write(`${line}\n`);
    return exitCode;
  }
}
