#!/usr/bin/env node
/**
 * Entry point of the `hookline` command (package.json "bin"): runs the
 * command line on this process's streams and environment; see docs/cli.md.
 */
import { runCli } from "./program.js";

// A reader that has had enough (`hookline watch | head`) ends the command quietly.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  process.exit(0);
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
