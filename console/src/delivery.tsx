/**
 * One delivery: where it stands, its attempts with their response
 * excerpts, kept current by watching its updates, and, with admin actions
 * on, a Retry button.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Attempt, Delivery } from "../../gen/hookline/v1/delivery_pb.js";
import { isProblem, type Problem, problemOf } from "./rpc.js";
import { useConsole } from "./context.js";
import { dateOf, duration, fullTime, statusName } from "./format.js";
import { href } from "./route.js";
import { Empty, ProblemNotice, ResponseCode, StatusChip } from "./ui.js";

/** Attempts shown, newest first (GetDelivery's default). */
const ATTEMPT_LIMIT = 50;
const RECONNECT_MS = 2_000;

type RetryState = { kind: "idle" } | { kind: "sending" } | { kind: "queued" } | { kind: "failed"; problem: Problem };

/** The delivery view of delivery `id`. */
export function DeliveryView({ id }: { id: string }) {
  const { client, settings } = useConsole();
  const [delivery, setDelivery] = useState<Delivery | Problem>();
  const [version, setVersion] = useState(0);
  const [retry, setRetry] = useState<RetryState>({ kind: "idle" });

  useEffect(() => {
    const abort = new AbortController();
    client.getDelivery({ id, attemptLimit: ATTEMPT_LIMIT }, { signal: abort.signal }).then(
      (r) => r.delivery && setDelivery(r.delivery),
      (err: unknown) => abort.signal.aborted || setDelivery(problemOf(err)),
    );
    return () => abort.abort();
  }, [client, id, version]);

  const loaded = delivery && !isProblem(delivery) ? delivery : undefined;
  useDeliveryUpdates(loaded, () => setVersion((v) => v + 1));

  if (delivery === undefined) return <Empty>Loading delivery {id}…</Empty>;
  if (isProblem(delivery)) {
    return (
      <section class="view">
        <BackLink />
        <ProblemNotice problem={delivery} action={`Reading delivery ${id}`} />
      </section>
    );
  }

  const retryNow = async () => {
    setRetry({ kind: "sending" });
    try {
      await client.retryDelivery({ id });
      setRetry({ kind: "queued" });
      setVersion((v) => v + 1);
    } catch (err) {
      setRetry({ kind: "failed", problem: problemOf(err) });
    }
  };
  const d = delivery;
  const next = dateOf(d.nextAttemptAt);
  return (
    <section class="view" data-delivery={d.id} data-status={statusName(d.status)}>
      <BackLink />
      <div class="card">
        <div class="card-head">
          <div class="card-title">
            <h1 class="ellipsis" title={d.eventType}>
              {d.eventType}
            </h1>
            <span class="id">{d.id}</span>
          </div>
          <StatusChip status={d.status} />
          {settings.admin ? (
            <button
              type="button"
              class="button primary"
              data-action="retry"
              disabled={retry.kind === "sending"}
              onClick={retryNow}
            >
              {retry.kind === "sending" ? "Retrying…" : "Retry now"}
            </button>
          ) : (
            <span class="hint">Retrying is an admin action: turn on admin actions in Settings.</span>
          )}
        </div>
        {retry.kind === "queued" && (
          <div class="notice notice-ok" role="status">
            Queued: Hookline attempts it now.
          </div>
        )}
        {retry.kind === "failed" && <ProblemNotice problem={retry.problem} action="Retry" />}
        <dl class="facts two-columns">
          <dt>Event</dt>
          <dd class="id">{d.eventId}</dd>
          <dt>Endpoint</dt>
          <dd>
            <a class="id" href={href("/endpoints", { tenant: d.tenantId, endpoint: d.endpointId })}>
              {d.endpointId}
            </a>
          </dd>
          <dt>Tenant</dt>
          <dd>{d.tenantId}</dd>
          <dt>Attempts</dt>
          <dd>{d.attemptCount}</dd>
          <dt>Created</dt>
          <dd>{fullTime(dateOf(d.createdAt))}</dd>
          <dt>Updated</dt>
          <dd>{fullTime(dateOf(d.updatedAt))}</dd>
          <dt>Next attempt</dt>
          <dd>{next ? fullTime(next) : <span class="muted">none</span>}</dd>
          <dt>Last response</dt>
          <dd>
            {d.attemptCount > 0 ? <ResponseCode status={d.lastResponseStatus} /> : <span class="muted">none yet</span>}
            {d.lastError && <span class="error-text"> {d.lastError}</span>}
          </dd>
        </dl>
      </div>
      <h2 class="section-title">
        Attempts <span class="muted">newest first</span>
      </h2>
      <Attempts attempts={d.attempts} />
    </section>
  );
}

function BackLink() {
  return (
    <div class="view-head">
      <a class="back" href="#/feed">
        ← Live feed
      </a>
    </div>
  );
}

function Attempts({ attempts }: { attempts: readonly Attempt[] }) {
  if (attempts.length === 0) return <Empty>No attempt yet.</Empty>;
  return (
    <table class="grid attempts">
      <colgroup>
        <col class="c-number" />
        <col class="c-started" />
        <col class="c-response" />
        <col class="c-duration" />
        <col class="c-error" />
        <col class="c-body" />
      </colgroup>
      <thead>
        <tr>
          <th class="num">#</th>
          <th>Started</th>
          <th>Response</th>
          <th class="num">Duration</th>
          <th>Error</th>
          <th>Response body (start)</th>
        </tr>
      </thead>
      <tbody>
        {attempts.map((a) => (
          <tr key={a.id || a.number} data-attempt={a.number}>
            <td class="num">{a.number}</td>
            <td>{fullTime(dateOf(a.startedAt))}</td>
            <td>
              <ResponseCode status={a.responseStatus} />
            </td>
            <td class="num">{duration(a.durationMs)}</td>
            <td class="wrap">
              {a.error ? (
                <span class="error-text">
                  {a.error}
                  {a.errorClass && <span class="muted"> ({a.errorClass})</span>}
                </span>
              ) : (
                <span class="muted">—</span>
              )}
            </td>
            <td>
              {a.responseBody ? (
                <pre class="body" data-response-body>
                  {a.responseBody}
                </pre>
              ) : (
                <span class="muted">empty</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * Calls `changed` whenever `delivery` changes on the server, by watching
 * its event at its endpoint (the one delivery they have in common) from its
 * last update on, resuming after the last cursor when the stream drops.
 */
function useDeliveryUpdates(delivery: Delivery | undefined, changed: () => void): void {
  const { client } = useConsole();
  const onChange = useRef(changed);
  onChange.current = changed;
  // From the first load's last change, in Hookline's own clock.
  const since = useRef(delivery?.updatedAt);
  since.current ??= delivery?.updatedAt;
  const id = delivery?.id;
  const eventId = delivery?.eventId;
  const endpointId = delivery?.endpointId;

  useEffect(() => {
    if (!id || !eventId || !endpointId) return;
    const abort = new AbortController();
    const { signal } = abort;
    void (async () => {
      let cursor = "";
      while (!signal.aborted) {
        try {
          const start = cursor ? { afterCursor: cursor } : { since: since.current ?? timestampFromDate(new Date()) };
          for await (const u of client.watchDeliveries({ eventId, endpointId, ...start }, { signal })) {
            cursor = u.cursor;
            if (u.deliveryId === id) onChange.current();
          }
        } catch (err) {
          if (signal.aborted || problemOf(err).kind !== "unavailable") return;
        }
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    })();
    return () => abort.abort();
  }, [client, id, eventId, endpointId]);
}
