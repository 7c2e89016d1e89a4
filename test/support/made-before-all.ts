/**
 * Setup shared by a file's tests: made once before them, disposed of after
 * them, and reachable from a module-level constant.
 */
import { beforeAll } from "vitest";

/**
 * Makes a value before the tests of the file (or describe block) this is
 * called in, and disposes of it after them, in the reverse order of the
 * calls (so a Hookline made after its database stops before the database
 * is dropped). Returns a stand-in for the value: a module-level constant
 * whose properties are the made value's once it is made, so tests use it
 * as they would the value itself. `timeoutMs` bounds the making, when
 * it takes longer than the configured hook timeout.
 */
export function madeBeforeAll<T extends object>(make: () => Promise<T>, dispose: (value: T) => Promise<void>, timeoutMs?: number): T {
  let made: T | undefined;
  beforeAll(async () => {
    made = await make();
    return async () => {
      const value = made!;
      made = undefined;
      await dispose(value);
    };
  }, timeoutMs);
  const value = (): T => {
    if (made === undefined) throw new Error("used outside the tests it was made for (before beforeAll or after the tests)");
    return made;
  };
  return new Proxy({} as T, {
    get(_, key) {
      const v: unknown = Reflect.get(value(), key, value());
      // Methods run on the value itself, not on the stand-in.
      return typeof v === "function" ? v.bind(value()) : v;
    },
    set: (_, key, v) => Reflect.set(value(), key, v),
    has: (_, key) => Reflect.has(value(), key),
  });
}
