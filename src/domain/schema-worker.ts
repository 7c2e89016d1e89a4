/**
 * The entry of a schema worker thread (see schema-pool.ts): compiles event
 * type schemas with {@link compileSchema} and checks payloads against them,
 * off the event loop that serves every tenant. A synchronous Ajv call
 * cannot be interrupted, so the pool watches each one through the shared
 * {@link WorkerProgress} and terminates the thread when one runs past its
 * deadline.
 *
 * Compiled validators are kept by schema text, so a schema is compiled once
 * per thread (at its first check in this thread, or when the pool asks for
 * it to be compiled).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ValidateFunction } from "ajv/dist/2020.js";
import { ValidationError } from "./errors.js";
import { compileSchema, MAX_COMPILE_MS } from "./json-schema.js";

/** What each thread is given when it starts. */
export interface WorkerStart {
  /** The {@link WorkerProgress} buffer shared with the pool. */
  progress: SharedArrayBuffer;
  /** A batch of checks stops after the payload that takes it past this, and returns what is left to the pool (see schema-pool.ts). */
  sliceMs: number;
  /** Compile deadline of {@link compileSchema}. */
  compileMs: number;
}

/**
 * Work for a thread: segments of items, each segment one job of the pool
 * (part of one request). Item `i` is `data[i]` (JSON text) against
 * `schemas[of[i]]` (JSON text); segment `k` ends before item `ends[k]`;
 * when `compile[k]`, its one item is only compiled.
 */
export interface WorkerTask {
  id: number;
  schemas: string[];
  of: number[];
  data: string[];
  ends: number[];
  compile: boolean[];
}

/** Why the first refused item of a segment was refused. */
export type WorkerRefusal =
  /** The payload does not match: the first Ajv error. */
  | { kind: "invalid"; path: string; message: string }
  /** The schema's `$ref`s recurse until the stack ends. */
  | { kind: "recursion" }
  /** The schema does not compile under the rules of json-schema.ts: the ValidationError's field and message (without the field). */
  | { kind: "refused"; field: string; message: string };

/**
 * A thread's answer: for each segment it reached, in order, how many items
 * passed, and the refusal of the next one if any (the rest of that segment
 * is skipped). The last segment may be cut short when the slice ended;
 * segments after it were not reached.
 */
export interface TaskResult {
  id: number;
  segments: { done: number; refusal?: WorkerRefusal }[];
}

/** Sent once when the thread is ready for tasks. */
export interface WorkerReady {
  ready: true;
}

/**
 * Where a thread is, shared with the pool without messages, so the pool can
 * read it when a deadline passes (the thread cannot answer while it is
 * stuck in a check): `Int32Array` slots {@link TASK}, {@link PHASE},
 * {@link ITEM}, and at byte {@link SINCE_OFFSET} a `Float64Array` slot with
 * when the phase began (ms since the epoch, `performance.timeOrigin +
 * performance.now()`, which every thread reads alike).
 */
export const WorkerProgress = {
  BYTES: 24,
  /** Slot of the id of the task in hand. */
  TASK: 0,
  /** Slot of {@link Phase}. */
  PHASE: 1,
  /** Slot of the index of the item in hand within its task. */
  ITEM: 2,
  SINCE_OFFSET: 16,
} as const;

/** What a thread is doing. */
export const Phase = { IDLE: 0, COMPILING: 1, CHECKING: 2 } as const;

/** Now, in ms since the epoch, comparable between threads. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

function refused(err: ValidationError): WorkerRefusal {
  return { kind: "refused", field: err.field, message: err.message.slice(err.field.length + 2) };
}

/** Compiled schemas kept per thread; past this, the least recently used are dropped. */
const MAX_CACHED = 1_000;

function serve(port: NonNullable<typeof parentPort>, start: WorkerStart): void {
  const state = new Int32Array(start.progress, 0, 3);
  const since = new Float64Array(start.progress, WorkerProgress.SINCE_OFFSET, 1);
  const cache = new Map<string, ValidateFunction>();

  const mark = (task: number, phase: number, item: number) => {
    since[0] = epochNow();
    Atomics.store(state, WorkerProgress.TASK, task);
    Atomics.store(state, WorkerProgress.ITEM, item);
    Atomics.store(state, WorkerProgress.PHASE, phase);
  };

  /** The validator of `text`, compiled on first use. */
  const validatorOf = (text: string): ValidateFunction => {
    let fn = cache.get(text);
    if (fn) {
      cache.delete(text);
    } else {
      fn = compileSchema(JSON.parse(text), { maxCompileMs: start.compileMs });
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    }
    cache.set(text, fn);
    return fn;
  };

  /** The validator of schema `s` of the task, compiled on first use; a refusal if it does not compile. */
  const prepare = (task: WorkerTask, fns: (ValidateFunction | WorkerRefusal | undefined)[], s: number, item: number): ValidateFunction | WorkerRefusal => {
    let fn = fns[s];
    if (fn) return fn;
    mark(task.id, Phase.COMPILING, item);
    try {
      fn = validatorOf(task.schemas[s]!);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      fn = refused(err);
    }
    fns[s] = fn;
    return fn;
  };

  /** Checks one payload; undefined when it passes. */
  const checkOne = (fn: ValidateFunction, data: string): WorkerRefusal | undefined => {
    let valid: boolean;
    try {
      valid = fn(JSON.parse(data)) as boolean;
    } catch (err) {
      // A $ref cycle that never moves into the data (`{"$ref": "#"}`) recurses until the stack ends.
      if (!(err instanceof RangeError)) throw err;
      return { kind: "recursion" };
    }
    if (valid) return undefined;
    const e = fn.errors?.[0];
    return { kind: "invalid", path: e?.instancePath ?? "", message: e?.message ?? "does not match" };
  };

  const run = (task: WorkerTask): TaskResult => {
    const began = epochNow();
    // Each schema of the task looked up (or compiled) once, when first needed.
    const fns: (ValidateFunction | WorkerRefusal | undefined)[] = new Array(task.schemas.length);
    const segments: TaskResult["segments"] = [];
    let i = 0;
    for (let k = 0; k < task.ends.length; k++) {
      const first = i;
      const end = task.ends[k]!;
      let refusal: WorkerRefusal | undefined;
      for (; i < end; i++) {
        const fn = prepare(task, fns, task.of[i]!, i);
        if (typeof fn !== "function") refusal = fn;
        else if (!task.compile[k]) {
          mark(task.id, Phase.CHECKING, i);
          refusal = checkOne(fn, task.data[i]!);
        }
        if (refusal) break;
        if (epochNow() - began > start.sliceMs && i + 1 < task.data.length) {
          segments.push({ done: i + 1 - first });
          return { id: task.id, segments };
        }
      }
      segments.push(refusal ? { done: i - first, refusal } : { done: i - first });
      i = end;
    }
    return { id: task.id, segments };
  };

  port.on("message", (task: WorkerTask) => {
    const result = run(task);
    Atomics.store(state, WorkerProgress.PHASE, Phase.IDLE);
    port.postMessage(result);
  });
  // Compiles the meta-schema and warms RE2 up (json-schema.ts), before the first deadline runs.
  compileSchema(true, { maxCompileMs: Math.max(start.compileMs, MAX_COMPILE_MS) });
  port.postMessage({ ready: true } satisfies WorkerReady);
}

if (parentPort && (workerData as { progress?: unknown } | null)?.progress instanceof SharedArrayBuffer) {
  serve(parentPort, workerData as WorkerStart);
}
