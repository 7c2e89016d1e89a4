/**
 * What every CLI command works with: the process's streams and environment,
 * the global flags, a Hookline client made from them, and the output.
 */
import type { Readable } from "node:stream";
import { createHooklineClient, type HooklineClient } from "../client/index.js";
import { Output, type Sink, useColour } from "./output.js";

/** The process around the CLI: given by main.ts, replaced in tests. */
export interface CliIo {
  stdout: Sink;
  stderr: Sink;
  stdin: Readable;
  env: Record<string, string | undefined>;
}

/** The flags every command takes (see program.ts). */
export interface GlobalOptions {
  url: string;
  token?: string;
  protocol: "connect" | "grpc" | "grpc-web";
  json?: boolean;
}

/** A command's view of the world. */
export interface CliContext {
  client: HooklineClient;
  out: Output;
  io: CliIo;
  /** Hookline's address, for messages. */
  url: string;
}

/** Makes the context of a command from the global flags. */
export function createContext(options: GlobalOptions, io: CliIo): CliContext {
  return {
    client: createHooklineClient({ baseUrl: options.url, token: options.token || undefined, protocol: options.protocol }),
    out: new Output(options.json === true, useColour(io.stdout, io.env), io.stdout, io.stderr),
    io,
    url: options.url,
  };
}
