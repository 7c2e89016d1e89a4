/**
 * CPU time and resident memory of the processes under test, from /proc
 * (Linux): one process (Hookline: its threads are in its own figures), and a
 * PostgreSQL server's whole process tree.
 *
 * The server's CPU is the postmaster's own, what it has collected from
 * children that exited (`cutime`/`cstime`: backends of closed connections,
 * autovacuum workers), and that of every live descendant (backends,
 * checkpointer, background writer, WAL writer, autovacuum launcher and
 * workers, parallel workers). Without the collected part, a backend that
 * exits between two reads would take its CPU time with it; counting every
 * process named `postgres` on the machine, as the benchmark once did, also
 * counted other servers running on this shared machine.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat this module reads. */
interface ProcStat {
  comm: string;
  ppid: number;
  /** utime + stime, ms. */
  cpuMs: number;
  /** cutime + cstime (children waited for), ms. */
  childrenCpuMs: number;
}

async function procStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(")");
  // After "pid (comm) ": state, ppid, ..., utime (14th field) at index 11.
  const f = text.slice(close + 2).split(" ");
  const ms = (ticks: number) => (ticks * 1000) / CLOCK_TICKS;
  return {
    comm: text.slice(text.indexOf("(") + 1, close),
    ppid: Number(f[1]),
    cpuMs: ms(Number(f[11]) + Number(f[12])),
    childrenCpuMs: ms(Number(f[13]) + Number(f[14])),
  };
}

/** CPU time (ms, user + system) of process `pid`, all its threads. */
export async function cpuMs(pid: number): Promise<number> {
  const s = await procStat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return s.cpuMs;
}

/** Resident memory (MB) of process `pid`. */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples a process's RSS every 200 ms until stopped; returns the peak. */
export function sampleRss(pid: number): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await rssMb(pid).catch(() => 0));
      await sleep(200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** The CPU time of one PostgreSQL server, all its processes (see the module comment). */
export class PostgresCpu {
  private constructor(readonly postmasterPid: number) {}

  /**
   * Finds the server of the backend `backendPid` (from `pg_backend_pid()`)
   * on this machine; undefined when it runs elsewhere (its backend is not
   * a local `postgres` process whose parent is one too).
   */
  static async ofBackend(backendPid: number): Promise<PostgresCpu | undefined> {
    const backend = await procStat(backendPid);
    if (backend?.comm !== "postgres") return undefined;
    const postmaster = await procStat(backend.ppid);
    if (postmaster?.comm !== "postgres") return undefined;
    return new PostgresCpu(backend.ppid);
  }

  /** CPU time (ms) the server has used so far, in all its processes. */
  async cpuMs(): Promise<number> {
    const stats = new Map<number, ProcStat>();
    for (const name of await readdir("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const s = await procStat(Number(name));
      if (s) stats.set(Number(name), s);
    }
    const root = stats.get(this.postmasterPid);
    if (!root) throw new Error(`the postmaster (pid ${this.postmasterPid}) is gone`);
    const children = new Map<number, number[]>();
    for (const [pid, s] of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
    let total = root.cpuMs + root.childrenCpuMs;
    const stack = [...(children.get(this.postmasterPid) ?? [])];
    for (let pid = stack.pop(); pid !== undefined; pid = stack.pop()) {
      const s = stats.get(pid)!;
      // A descendant's own exited children are in its cutime (none expected: backends fork nothing).
      total += s.cpuMs + s.childrenCpuMs;
      stack.push(...(children.get(pid) ?? []));
    }
    return total;
  }
}
