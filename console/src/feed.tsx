/** The live feed: delivery updates as they happen, one row per delivery, with filters. */
import { useEffect, useReducer, useState } from "preact/hooks";
import { useConsole } from "./context.js";
import { FEED_LIMIT, type FeedFilter, type FeedRow, filterFromParams, paramsOfFilter, STARTS } from "./feed-rows.js";
import type { FeedState, FeedStore } from "./feed-store.js";
import { DELIVERY_STATUSES, fullTime, shortTime, statusName, untilTime } from "./format.js";
import { href, navigate } from "./route.js";
import { Empty, ProblemNotice, ResponseCode, StatusChip } from "./ui.js";

/** The feed view; `params` are the route's (the filter). */
export function FeedView({ store, params }: { store: FeedStore; params: URLSearchParams }) {
  const { client, settings } = useConsole();
  const filter = filterFromParams(params);
  const filterKey = JSON.stringify(filter);
  const render = useFrameRender();

  useEffect(() => store.subscribe(render), [store, render]);
  useEffect(() => {
    store.follow(client, settings.token, filter);
    return () => store.stop();
    // filterKey stands for filter, which is a new object on every render.
  }, [store, client, settings.token, filterKey]);

  const apply = (next: FeedFilter) => navigate(href("/feed", paramsOfFilter(next)), true);
  const state = store.state;
  return (
    <section class="view">
      <div class="view-head">
        <h1>Live feed</h1>
        <ConnectionState state={state} />
      </div>
      <FeedFilters key={filterKey} filter={filter} onApply={apply} />
      {state.kind === "stopped" ? (
        <ProblemNotice problem={state.problem} action="The live feed stopped" />
      ) : (
        <FeedTable rows={store.rows} filter={filter} updates={store.updates} />
      )}
    </section>
  );
}

/** Re-renders at most once per animation frame, however many updates arrive. */
function useFrameRender(): () => void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  const [render] = useState(() => {
    let pending = 0;
    return () => {
      if (pending !== 0) return;
      pending = requestAnimationFrame(() => {
        pending = 0;
        bump(undefined);
      });
    };
  });
  return render;
}

function ConnectionState({ state }: { state: FeedState }) {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  // Counts the reconnect delay down.
  useEffect(() => {
    if (state.kind !== "reconnecting") return;
    const timer = setInterval(tick, 1_000);
    return () => clearInterval(timer);
  }, [state]);
  switch (state.kind) {
    case "live":
      return <Connection tone="live" text="Live" />;
    case "connecting":
    case "idle":
      return <Connection tone="wait" text="Connecting…" />;
    case "reconnecting":
      return (
        <Connection
          tone="wait"
          text={`Reconnecting ${untilTime(new Date(state.at))}`}
          title={`${state.problem.code} ${state.problem.message}`.trim()}
        />
      );
    case "stopped":
      return <Connection tone="off" text="Stopped" title={`${state.problem.code}: ${state.problem.message}`} />;
  }
}

function Connection({ tone, text, title }: { tone: "live" | "wait" | "off"; text: string; title?: string }) {
  return (
    <span class={`connection connection-${tone}`} data-connection={tone} title={title} aria-live="polite">
      <span class="dot" />
      {text}
    </span>
  );
}

function FeedFilters({ filter, onApply }: { filter: FeedFilter; onApply: (f: FeedFilter) => void }) {
  const [tenant, setTenant] = useState(filter.tenantId);
  const [endpoint, setEndpoint] = useState(filter.endpointId);
  const [types, setTypes] = useState(filter.eventTypes.join(", "));
  const [status, setStatus] = useState(filter.statuses.map(statusName).join(","));
  const [start, setStart] = useState(filter.start);
  const custom = !STARTS.some((s) => s.value === filter.start);

  const submit = (e: Event) => {
    e.preventDefault();
    onApply(
      filterFromParams(new URLSearchParams({ tenant, endpoint, types: types.replace(/\s+/g, ""), status, start })),
    );
  };
  const clear = () => onApply(filterFromParams(new URLSearchParams()));
  const active = filter.tenantId || filter.endpointId || filter.eventTypes.length > 0 || filter.statuses.length > 0;

  return (
    <form class="filters" onSubmit={submit}>
      <label>
        Tenant
        <input
          name="tenant"
          value={tenant}
          placeholder="all tenants"
          onInput={(e) => setTenant(e.currentTarget.value)}
        />
      </label>
      <label>
        Endpoint
        <input
          name="endpoint"
          value={endpoint}
          placeholder="ep_…"
          onInput={(e) => setEndpoint(e.currentTarget.value)}
        />
      </label>
      <label class="wide">
        Event types
        <input
          name="types"
          value={types}
          placeholder="invoice.paid, order.*"
          onInput={(e) => setTypes(e.currentTarget.value)}
        />
      </label>
      <label>
        Status
        <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">Any status</option>
          {DELIVERY_STATUSES.map((s) => (
            <option key={s} value={statusName(s)}>
              {statusName(s)}
            </option>
          ))}
        </select>
      </label>
      <label>
        From
        <select name="start" value={start} onChange={(e) => setStart(e.currentTarget.value)}>
          {STARTS.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
          {custom && <option value={filter.start}>Since {shortTime(new Date(filter.start))}</option>}
        </select>
      </label>
      <div class="filter-actions">
        <button type="submit" class="button primary">
          Apply
        </button>
        {active && (
          <button type="button" class="button" onClick={clear}>
            Clear
          </button>
        )}
      </div>
    </form>
  );
}

function FeedTable({ rows, filter, updates }: { rows: readonly FeedRow[]; filter: FeedFilter; updates: number }) {
  if (rows.length === 0) {
    return (
      <Empty>
        <p>
          <strong>No deliveries yet.</strong>
        </p>
        <p>
          {filter.start === "now"
            ? "Delivery updates appear here as they happen: publish an event, or choose an earlier time under From."
            : "Nothing matched since then; new updates appear here as they happen."}
        </p>
      </Empty>
    );
  }
  // One tenant's feed needs no tenant column.
  const showTenant = filter.tenantId === "";
  return (
    <>
      <table class="grid feed">
        <colgroup>
          <col class="c-status" />
          <col class="c-type" />
          <col class="c-id" />
          <col class="c-id" />
          {showTenant && <col class="c-tenant" />}
          <col class="c-attempts" />
          <col class="c-response" />
          <col class="c-time" />
        </colgroup>
        <thead>
          <tr>
            <th>Status</th>
            <th>Event type</th>
            <th>Delivery</th>
            <th>Endpoint</th>
            {showTenant && <th>Tenant</th>}
            <th class="num">Attempts</th>
            <th>Last response</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <FeedRowView key={row.deliveryId} row={row} showTenant={showTenant} />
          ))}
        </tbody>
      </table>
      <p class="table-note">
        {rows.length} {rows.length === 1 ? "delivery" : "deliveries"} from {updates} {updates === 1 ? "update" : "updates"}
        {rows.length >= FEED_LIMIT ? ` · the latest ${FEED_LIMIT} are kept` : ""}
      </p>
    </>
  );
}

function FeedRowView({ row, showTenant }: { row: FeedRow; showTenant: boolean }) {
  const detail = href(`/deliveries/${row.deliveryId}`);
  return (
    <tr
      data-delivery-id={row.deliveryId}
      data-event-id={row.eventId}
      data-endpoint={row.endpointId}
      data-status={statusName(row.status)}
    >
      <td>
        {/* A new key per update replays the chip's entrance, so changes catch the eye. */}
        <span key={row.cursor} class="changed">
          <StatusChip status={row.status} />
        </span>
      </td>
      <td class="ellipsis" title={row.eventType}>
        {row.eventType}
      </td>
      <td class="ellipsis">
        <a href={detail} class="id" title={`${row.deliveryId} (event ${row.eventId})`}>
          {row.deliveryId}
        </a>
      </td>
      <td class="ellipsis">
        <a href={href("/endpoints", { tenant: row.tenantId, endpoint: row.endpointId })} class="id" title={row.endpointId}>
          {row.endpointId}
        </a>
      </td>
      {showTenant && (
        <td class="ellipsis" title={row.tenantId}>
          {row.tenantId}
        </td>
      )}
      <td class="num">{row.attempts}</td>
      <td class="ellipsis" title={row.error || undefined}>
        {row.attempts > 0 || row.error ? <ResponseCode status={row.responseStatus} /> : <span class="muted">—</span>}
        {row.error && row.responseStatus === 0 ? <span class="error-text"> {row.error}</span> : null}
        {row.nextAttemptAt && (
          <span class="muted" title={`next attempt ${fullTime(row.nextAttemptAt)}`}>
            {" "}
            · next {shortTime(row.nextAttemptAt)}
          </span>
        )}
      </td>
      <td class="time" title={fullTime(row.updatedAt)}>
        {shortTime(row.updatedAt)}
      </td>
    </tr>
  );
}
