/**
 * `hookline serve`: runs the Hookline server, exactly as `npm start` does.
 */
import type { Command } from "commander";

/** Registers `hookline serve`. */
export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "run the Hookline server, configured by the environment (docs/configuration.md); " +
        "with DATABASE_URL unset it starts an embedded PostgreSQL in ./.hookline",
    )
    .action(async () => {
      // Loaded only here: the other commands need none of the server.
      const { failedToStart, runServer } = await import("../serve.js");
      await runServer().catch(failedToStart);
    });
}
