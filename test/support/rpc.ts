/**
 * How RPCs ended, for tests that look at failures: the ConnectError a call
 * failed with, and a call's outcome with how long it took.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** The ConnectError `call` fails with; fails the test if it succeeds or throws anything else. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should fail").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

/** How `call` ended (its Code's name, "OK" on success, and the message) and how long it took, in ms. */
export async function timed(call: () => Promise<unknown>): Promise<{ ms: number; code: string; message: string }> {
  const t = performance.now();
  try {
    await call();
    return { ms: performance.now() - t, code: "OK", message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { ms: performance.now() - t, code: Code[e.code]!, message: e.rawMessage };
  }
}
