/**
 * Hookline as a real child process (`node --import tsx src/main.ts`), the
 * way `npm start` runs it, for tests of signals, crashes and CLI interop.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A running Hookline child process. */
export interface HooklineProcess {
  child: ChildProcess;
  /** The API's URL, read from its "started" log line ("" when the API is off). */
  url: string;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  /** Sends `signal` and resolves with the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts Hookline with `env` and waits until it serves. `from` picks the
 * sources (through tsx, the default), the build in dist/ (`npm run build`),
 * or the sources through the command line (`hookline serve`); `cwd` the
 * checkout they are taken from (this one by default).
 */
export async function spawnHookline(
  env: Record<string, string>,
  timeoutMs = 20_000,
  from: "sources" | "build" | "cli" = "sources",
  cwd = ROOT,
): Promise<HooklineProcess> {
  const args = {
    sources: ["--import", "tsx", "src/main.ts"],
    build: ["dist/src/main.js"],
    cli: ["--import", "tsx", "src/cli/main.ts", "serve"],
  }[from];
  if (process.env.HOOKLINE_PROFILE_DIR) args.unshift("--cpu-prof", `--cpu-prof-dir=${process.env.HOOKLINE_PROFILE_DIR}`);
  const child = spawn(process.execPath, args, {
    cwd,
    // The "started" log line tells the URL, so log at least at info.
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      ...env,
      HOOKLINE_LOG_LEVEL: env.HOOKLINE_LOG_LEVEL === "debug" ? "debug" : "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = once(child, "exit");
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Hookline did not start in ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === "Hookline started") {
        clearTimeout(timer);
        resolve(typeof entry.url === "string" ? entry.url : "");
      }
    });
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`Hookline exited with ${code} before serving: ${stderr}`));
    });
  });
  return {
    child,
    url,
    logs,
    async kill(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = await exited;
      return code as number | null;
    },
  };
}
