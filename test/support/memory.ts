/**
 * The test process's heap after a full garbage collection, for tests that
 * check a server running in-process keeps its memory flat. Node exposes
 * `gc()` only with --expose-gc; without it, the flag is set at run time and
 * the function taken from a fresh V8 context, which sees it.
 */
import v8 from "node:v8";
import vm from "node:vm";

let collect: (() => void) | undefined;

function gc(): () => void {
  if (collect) return collect;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) collect = exposed;
  else {
    v8.setFlagsFromString("--expose-gc");
    collect = vm.runInNewContext("gc") as () => void;
  }
  return collect;
}

/** Bytes of heap in use after a full collection. */
export function heapUsedAfterGc(): number {
  const run = gc();
  // Twice: the first collection can leave garbage that finalizers made.
  run();
  run();
  return process.memoryUsage().heapUsed;
}
