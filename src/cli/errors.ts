/**
 * How the CLI fails: its exit codes, the errors commands throw, and the
 * lines printed for each (never a stack trace for a failure we expect).
 */
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { CommanderError } from "commander";

/** The CLI's exit codes (docs/cli.md lists them). */
export const ExitCode = {
  /** Done. */
  ok: 0,
  /** Hookline answered with an error, or could not be reached. */
  failed: 1,
  /** The command line was wrong: an unknown command or flag, a bad value, an unreadable file. */
  usage: 2,
  /** `endpoints test`: the endpoint did not answer the test event with a 2xx. */
  testFailed: 3,
} as const;

/** A command line that cannot be run: printed as `hookline: <message>`, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A command that ran but whose outcome is a failure: printed as `hookline: <message>`, with `exitCode`. */
export class CommandFailed extends Error {
  override name = "CommandFailed";
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** A Connect code as the API documentation writes it: `NOT_FOUND`. */
export function codeName(code: Code): string {
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * What to print on stderr for `err`, and the exit code. Commander has already
 * printed its own errors (usage, --help); `url` is Hookline's address, named
 * when it cannot be reached.
 */
export function describeError(err: unknown, url: string): { lines: string[]; exitCode: number } {
  if (err instanceof CommanderError) {
    return { lines: [], exitCode: err.exitCode === 0 ? ExitCode.ok : ExitCode.usage };
  }
  if (err instanceof UsageError) return { lines: [`hookline: ${err.message}`], exitCode: ExitCode.usage };
  if (err instanceof CommandFailed) return { lines: [`hookline: ${err.message}`], exitCode: err.exitCode };
  if (err instanceof ConnectError) {
    const lines = [`hookline: ${codeName(err.code)}: ${err.rawMessage}`];
    // Hookline names the field in the message; a proxy or another server may send the standard details.
    for (const detail of err.details) {
      if ("desc" in detail || detail.type !== "google.rpc.BadRequest") continue;
      for (const v of fieldViolations(detail.value)) lines.push(`hookline:   ${v.field}: ${v.description}`);
    }
    if (err.code === Code.Unavailable && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(err.rawMessage)) {
      lines.push(`hookline: is Hookline running at ${url}? (set --url or HOOKLINE_URL)`);
    }
    if (err.code === Code.Unauthenticated) lines.push("hookline: pass a token with --token or HOOKLINE_TOKEN");
    return { lines, exitCode: ExitCode.failed };
  }
  // A bug: say what it was, with where.
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { lines: [`hookline: unexpected error: ${text}`], exitCode: ExitCode.failed };
}

/** A field violation of a google.rpc.BadRequest error detail. */
export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * The field violations of a binary google.rpc.BadRequest (field 1, repeated
 * FieldViolation { string field = 1; string description = 2; }), read from
 * the wire without its generated code; [] when it cannot be read.
 */
export function fieldViolations(bytes: Uint8Array): FieldViolation[] {
  try {
    const violations: FieldViolation[] = [];
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      if (fieldNo !== 1) {
        reader.skip(wireType);
        continue;
      }
      const inner = new BinaryReader(reader.bytes());
      const v: FieldViolation = { field: "", description: "" };
      while (inner.pos < inner.len) {
        const [no, type] = inner.tag();
        if (no === 1) v.field = inner.string();
        else if (no === 2) v.description = inner.string();
        else inner.skip(type);
      }
      violations.push(v);
    }
    return violations;
  } catch {
    return [];
  }
}
