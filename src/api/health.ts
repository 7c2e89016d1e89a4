/**
 * The gRPC health checking protocol (`grpc.health.v1.Health`): Check, Watch
 * and List over a {@link HealthState} that the rest of the server updates.
 *
 * @see https://github.com/grpc/grpc/blob/master/doc/health-checking.md
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";

/**
 * Called after the status of `service` changed. `status` is
 * `SERVICE_UNKNOWN` when the service was removed with
 * {@link HealthState.delete}.
 */
export type HealthChangeListener = (
  service: string,
  status: ServingStatus,
) => void;

/**
 * The serving status of each service of this server, by fully-qualified
 * service name (e.g. `hookline.v1.EventIngest`). The empty name `""` stands
 * for the server as a whole.
 *
 * Listeners registered with {@link HealthState.onChange} are told about every
 * actual change; setting a status a service already has notifies nobody.
 */
export class HealthState {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #listeners = new Set<HealthChangeListener>();

  /**
   * @param initial - Initial statuses by service name. Defaults to the
   *   whole server (`""`) being `NOT_SERVING`, so that nothing is reported
   *   healthy before startup has finished and called {@link HealthState.set}.
   */
  constructor(
    initial: Readonly<Record<string, ServingStatus>> = {
      "": ServingStatus.NOT_SERVING,
    },
  ) {
    for (const [service, status] of Object.entries(initial)) {
      this.#statuses.set(service, status);
    }
  }

  /**
   * Sets the status of one service (`""` for the whole server), registering
   * the service if it is new, and notifies listeners if the status changed.
   */
  set(service: string, status: ServingStatus): void {
    if (this.#statuses.get(service) === status) {
      return;
    }
    this.#statuses.set(service, status);
    this.#emit(service, status);
  }

  /**
   * Sets every registered service, including the whole server (`""`), to
   * `status`: `NOT_SERVING` on shutdown or while the database is
   * unreachable, `SERVING` once it is back.
   */
  setAll(status: ServingStatus): void {
    if (!this.#statuses.has("")) {
      this.set("", status);
    }
    for (const service of [...this.#statuses.keys()]) {
      this.set(service, status);
    }
  }

  /**
   * The status of `service`, or `undefined` if the service is not
   * registered.
   */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /**
   * Unregisters `service`. Watchers of it are told `SERVICE_UNKNOWN`.
   *
   * @returns Whether the service was registered.
   */
  delete(service: string): boolean {
    if (!this.#statuses.delete(service)) {
      return false;
    }
    this.#emit(service, ServingStatus.SERVICE_UNKNOWN);
    return true;
  }

  /** A snapshot of all registered services and their statuses. */
  entries(): Map<string, ServingStatus> {
    return new Map(this.#statuses);
  }

  /**
   * Subscribes to status changes.
   *
   * @returns A function that unsubscribes `listener`; calling it again does
   *   nothing.
   */
  onChange(listener: HealthChangeListener): () => void {
    // Wrap, so that subscribing the same function twice yields two
    // independent subscriptions.
    const entry: HealthChangeListener = (service, status) =>
      listener(service, status);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** The number of current subscriptions (for diagnostics and tests). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  #emit(service: string, status: ServingStatus): void {
    // Copy, so listeners may unsubscribe while being notified.
    for (const listener of [...this.#listeners]) {
      listener(service, status);
    }
  }
}

/**
 * Streams the status of one service: the current status at once
 * (`SERVICE_UNKNOWN` if it is not registered), then every change, until the
 * call's signal aborts. Changes that arrive faster than the client reads are
 * coalesced to the latest status.
 */
async function* watchStatus(
  state: HealthState,
  service: string,
  signal: AbortSignal,
): AsyncGenerator<{ status: ServingStatus }> {
  let pending: ServingStatus | undefined;
  let wake: (() => void) | undefined;
  const unsubscribe = state.onChange((changed, status) => {
    if (changed === service) {
      pending = status;
      wake?.();
    }
  });
  const onAbort = () => wake?.();
  signal.addEventListener("abort", onAbort);
  try {
    let last = state.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
    yield { status: last };
    while (!signal.aborted) {
      if (pending === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      const next: ServingStatus = pending;
      pending = undefined;
      if (next !== last) {
        last = next;
        yield { status: next };
      }
    }
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Registers `grpc.health.v1.Health` on `router`, answering from `state`.
 *
 * - `Check` returns the service's status, or fails with `NOT_FOUND` for a
 *   service that is not registered.
 * - `Watch` sends the current status at once (`SERVICE_UNKNOWN` for an
 *   unknown service, without ending the call) and then every change, until
 *   the client cancels.
 * - `List` returns the status of every registered service.
 *
 * @param router - The Connect router to add the service to.
 * @param state - The statuses to report; update it to change the answers.
 */
export function registerHealth(
  router: ConnectRouter,
  state: HealthState,
): void {
  router.service(Health, {
    check(req) {
      const status = state.get(req.service);
      if (status === undefined) {
        throw new ConnectError(
          `unknown service "${req.service}"`,
          Code.NotFound,
        );
      }
      return { status };
    },
    async *watch(req, ctx) {
      yield* watchStatus(state, req.service, ctx.signal);
    },
    list() {
      const statuses = Object.fromEntries(
        [...state.entries()].map(([service, status]) => [service, { status }]),
      );
      return { statuses };
    },
  });
}
