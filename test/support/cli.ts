/**
 * The `hookline` command line as a real child process
 * (`node --import tsx src/cli/main.ts ...`), for tests of what a user runs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** How a finished run of the CLI went. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    cwd: ROOT,
    // Only what is given: nothing of the test runner's HOOKLINE_* leaks in.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Runs `hookline <args>` to its end, with `stdin` as its standard input. */
export async function runCli(args: string[], env: Record<string, string>, stdin = ""): Promise<CliResult> {
  const child = start(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  child.stdin!.end(stdin);
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

/** A long-running `hookline` (watch), read line by line. */
export interface CliProcess {
  /** Every stdout line so far. */
  lines: string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once stdout has `n` lines; rejects after `timeoutMs` with what it has. */
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Sends SIGINT and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `hookline <args>` and leaves it running. */
export function startCli(args: string[], env: Record<string, string>): CliProcess {
  const child = start(args, env);
  child.stdin!.end();
  const lines: string[] = [];
  let stderr = "";
  const waiters: { n: number; resolve: () => void }[] = [];
  child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    for (const w of waiters.filter((w) => lines.length >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = once(child, "exit");
  return {
    lines,
    stderr: () => stderr,
    waitForLines(n, timeoutMs = 15_000) {
      if (lines.length >= n) return Promise.resolve(lines);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`got ${lines.length} lines, expected ${n}:\n${lines.join("\n")}\nstderr:\n${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(lines);
          },
        });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGINT");
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
