/**
 * A tenant's endpoints with their state (active, paused, disabled by
 * Hookline) and health (circuit, success rate, failures in a row), and one
 * endpoint's configuration and statistics when selected.
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { useEffect, useState } from "preact/hooks";
import { CircuitState, type Endpoint, type EndpointStats, SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { type AdminClient, isProblem, type Problem, problemOf } from "./rpc.js";
import { useConsole } from "./context.js";
import { circuitName, dateOf, duration, fullTime, percent } from "./format.js";
import { href, navigate } from "./route.js";
import { Chip, Empty, ProblemNotice } from "./ui.js";

/** Stats windows the panel offers. */
const WINDOWS = [
  { value: "1h", label: "Last hour", ms: 3_600_000 },
  { value: "24h", label: "Last 24 hours", ms: 86_400_000 },
  { value: "7d", label: "Last 7 days", ms: 7 * 86_400_000 },
] as const;
const TABLE_WINDOW_MS = 86_400_000;
/** Stats calls in flight at once while a list loads. */
const STATS_CONCURRENCY = 4;

/** The tenant last shown, kept while the page lives so the nav link comes back to it. */
let lastTenant = "";

type Listing =
  | { kind: "loading" }
  | { kind: "needs-tenant" }
  | { kind: "failed"; problem: Problem }
  | { kind: "loaded"; endpoints: Endpoint[]; nextPageToken: string };

/** The endpoints view; `params` carry `tenant` and the selected `endpoint`. */
export function EndpointsView({ params }: { params: URLSearchParams }) {
  const { client } = useConsole();
  const tenant = (params.get("tenant") ?? "").trim();
  const selected = (params.get("endpoint") ?? "").trim();
  const [listing, setListing] = useState<Listing>({ kind: "loading" });
  const [stats, setStats] = useState<ReadonlyMap<string, EndpointStats | Problem>>(new Map());
  const [reload, setReload] = useState(0);

  useEffect(() => {
    if (tenant === "" && lastTenant !== "") navigate(href("/endpoints", { tenant: lastTenant, endpoint: selected }), true);
  }, [tenant, selected]);

  useEffect(() => {
    if (tenant === "" && lastTenant !== "") return; // about to move to it
    const abort = new AbortController();
    setListing({ kind: "loading" });
    setStats(new Map());
    client.listEndpoints({ tenantId: tenant, pageSize: 100 }, { signal: abort.signal }).then(
      (page) => {
        if (tenant !== "") lastTenant = tenant;
        setListing({ kind: "loaded", endpoints: page.endpoints, nextPageToken: page.nextPageToken });
        void loadStats(client, page.endpoints, abort.signal, (id, s) => setStats((m) => new Map(m).set(id, s)));
      },
      (err: unknown) => {
        if (abort.signal.aborted) return;
        const problem = problemOf(err);
        // An admin token lists one tenant at a time; a tenant's key may leave it out.
        if (tenant === "" && problem.kind === "invalid" && problem.message.startsWith("tenant_id")) {
          setListing({ kind: "needs-tenant" });
        } else {
          setListing({ kind: "failed", problem });
        }
      },
    );
    return () => abort.abort();
  }, [client, tenant, reload]);

  const more = async () => {
    if (listing.kind !== "loaded") return;
    try {
      const page = await client.listEndpoints({ tenantId: tenant, pageSize: 100, pageToken: listing.nextPageToken });
      setListing({ kind: "loaded", endpoints: [...listing.endpoints, ...page.endpoints], nextPageToken: page.nextPageToken });
      void loadStats(client, page.endpoints, new AbortController().signal, (id, s) => setStats((m) => new Map(m).set(id, s)));
    } catch (err) {
      setListing({ kind: "failed", problem: problemOf(err) });
    }
  };

  return (
    <section class="view">
      <div class="view-head">
        <h1>Endpoints</h1>
        <TenantForm key={tenant} tenant={tenant} />
        <button type="button" class="button" onClick={() => setReload((n) => n + 1)}>
          Refresh
        </button>
      </div>
      {selected !== "" && <EndpointPanel key={`${selected}/${reload}`} id={selected} tenant={tenant} />}
      <EndpointList listing={listing} stats={stats} tenant={tenant} selected={selected} onMore={more} />
    </section>
  );
}

function TenantForm({ tenant }: { tenant: string }) {
  const [value, setValue] = useState(tenant);
  const submit = (e: Event) => {
    e.preventDefault();
    navigate(href("/endpoints", { tenant: value.trim() }));
  };
  return (
    <form class="inline-form" onSubmit={submit}>
      <label>
        Tenant
        <input name="tenant" value={value} placeholder="acme" onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit" class="button primary">
        Show
      </button>
    </form>
  );
}

function EndpointList(props: {
  listing: Listing;
  stats: ReadonlyMap<string, EndpointStats | Problem>;
  tenant: string;
  selected: string;
  onMore: () => void;
}) {
  const { listing, stats, tenant, selected } = props;
  switch (listing.kind) {
    case "loading":
      return <Empty>Loading endpoints…</Empty>;
    case "needs-tenant":
      return (
        <Empty>
          <p>
            <strong>Which tenant?</strong>
          </p>
          <p>Endpoints are listed one tenant at a time: enter a tenant id above.</p>
        </Empty>
      );
    case "failed":
      return <ProblemNotice problem={listing.problem} action="Listing endpoints" />;
    case "loaded":
      break;
  }
  if (listing.endpoints.length === 0) {
    return <Empty>{tenant ? `Tenant ${tenant} has no endpoints.` : "This tenant has no endpoints."}</Empty>;
  }
  return (
    <>
      <table class="grid endpoints">
        <colgroup>
          <col class="c-url" />
          <col class="c-types" />
          <col class="c-state" />
          <col class="c-state" />
          <col class="c-rate" />
          <col class="c-rate" />
          <col class="c-error" />
        </colgroup>
        <thead>
          <tr>
            <th>Endpoint</th>
            <th>Event types</th>
            <th>State</th>
            <th>Circuit</th>
            <th class="num">Success 24 h</th>
            <th class="num">Failing</th>
            <th>Last error</th>
          </tr>
        </thead>
        <tbody>
          {listing.endpoints.map((e) => (
            <EndpointRow key={e.id} endpoint={e} stats={stats.get(e.id)} selected={e.id === selected} />
          ))}
        </tbody>
      </table>
      {listing.nextPageToken && (
        <button type="button" class="button more" onClick={props.onMore}>
          Load more
        </button>
      )}
    </>
  );
}

function EndpointRow({ endpoint: e, stats, selected }: { endpoint: Endpoint; stats: EndpointStats | Problem | undefined; selected: boolean }) {
  const s = stats && !isProblem(stats) ? stats : undefined;
  const failed = stats && isProblem(stats) ? stats : undefined;
  return (
    <tr data-endpoint-id={e.id} class={selected ? "selected" : undefined}>
      <td class="ellipsis">
        <a href={href("/endpoints", { tenant: e.tenantId, endpoint: e.id })} class="strong" title={e.url}>
          {e.url}
        </a>
        <div class="sub id" title={e.id}>
          {e.id}
          {e.description ? ` · ${e.description}` : ""}
        </div>
      </td>
      <td class="ellipsis" title={e.eventTypes.join(", ") || "every type"}>
        {e.eventTypes.length === 0 ? <span class="muted">all</span> : e.eventTypes.join(", ")}
      </td>
      <td>
        <EndpointState endpoint={e} />
      </td>
      <td>{s ? <Circuit stats={s} /> : failed ? <Chip tone="muted" title={failed.message}>unknown</Chip> : <span class="muted">…</span>}</td>
      <td class="num">{s && (hadAttempts(s) ? percent(s.successRate) : <span class="muted">—</span>)}</td>
      <td class="num">
        {s && (s.consecutiveFailures > 0 ? <span class="bad-text">{s.consecutiveFailures} in a row</span> : <span class="muted">0</span>)}
      </td>
      <td class="ellipsis" title={s?.lastError}>
        {s?.lastError ? <span class="error-text">{s.lastError}</span> : <span class="muted">—</span>}
      </td>
    </tr>
  );
}

/** Whether the endpoint had attempts in the window (a success rate of 0 can mean none). */
function hadAttempts(s: EndpointStats): boolean {
  return s.successRate > 0 || s.consecutiveFailures > 0 || s.lastErrorAt !== undefined;
}

/** Active, Paused (by an operator) or Disabled (by Hookline, with the reason). */
function EndpointState({ endpoint: e }: { endpoint: Endpoint }) {
  if (e.disabled && e.disabledReason) {
    return (
      <span data-state="disabled">
        <Chip tone="bad" title={`Disabled by Hookline: ${e.disabledReason}`}>
          Disabled
        </Chip>
      </span>
    );
  }
  if (e.disabled) {
    return (
      <span data-state="paused">
        <Chip tone="muted" title="Paused by an operator: deliveries wait">
          Paused
        </Chip>
      </span>
    );
  }
  return (
    <span data-state="active">
      <Chip tone="ok">Active</Chip>
    </span>
  );
}

function Circuit({ stats }: { stats: EndpointStats }) {
  const name = circuitName(stats.circuitState);
  const tone = stats.circuitState === CircuitState.OPEN ? "bad" : stats.circuitState === CircuitState.HALF_OPEN ? "warn" : "ok";
  const until = dateOf(stats.circuitOpenUntil);
  return (
    <span data-circuit={name.toLowerCase() || "unknown"}>
      <Chip tone={name ? tone : "muted"} title={until ? `open until ${fullTime(until)}` : undefined}>
        {name || "unknown"}
      </Chip>
    </span>
  );
}

/** One endpoint's configuration and statistics. */
function EndpointPanel({ id, tenant }: { id: string; tenant: string }) {
  const { client } = useConsole();
  const [windowValue, setWindowValue] = useState<string>("24h");
  const [endpoint, setEndpoint] = useState<Endpoint | Problem>();
  const [stats, setStats] = useState<EndpointStats | Problem>();

  useEffect(() => {
    const abort = new AbortController();
    client.getEndpoint({ id }, { signal: abort.signal }).then(
      (r) => setEndpoint(r.endpoint),
      (err: unknown) => abort.signal.aborted || setEndpoint(problemOf(err)),
    );
    return () => abort.abort();
  }, [client, id]);

  useEffect(() => {
    const abort = new AbortController();
    const ms = WINDOWS.find((w) => w.value === windowValue)?.ms ?? TABLE_WINDOW_MS;
    setStats(undefined);
    client.getEndpointStats({ id, window: durationFromMs(ms) }, { signal: abort.signal }).then(
      (r) => setStats(r.stats),
      (err: unknown) => abort.signal.aborted || setStats(problemOf(err)),
    );
    return () => abort.abort();
  }, [client, id, windowValue]);

  const close = href("/endpoints", { tenant });
  if (endpoint && isProblem(endpoint)) {
    return (
      <div class="card">
        <ProblemNotice problem={endpoint} action={`Reading endpoint ${id}`} />
        <a href={close}>Close</a>
      </div>
    );
  }
  const s = stats && !isProblem(stats) ? stats : undefined;
  return (
    <div class="card endpoint-panel" data-endpoint-panel={id}>
      <div class="card-head">
        <div class="card-title">
          <h2 class="ellipsis" title={endpoint?.url}>
            {endpoint?.url ?? id}
          </h2>
          <span class="id">{id}</span>
        </div>
        {endpoint && <EndpointState endpoint={endpoint} />}
        {s && <Circuit stats={s} />}
        <a class="button" href={href("/feed", { tenant: endpoint?.tenantId ?? tenant, endpoint: id })}>
          Watch in feed
        </a>
        <a class="button" href={close}>
          Close
        </a>
      </div>
      <div class="card-columns">
        <dl class="facts">
          {endpoint && (
            <>
              <dt>Tenant</dt>
              <dd>{endpoint.tenantId}</dd>
              {endpoint.description && (
                <>
                  <dt>Description</dt>
                  <dd>{endpoint.description}</dd>
                </>
              )}
              <dt>Event types</dt>
              <dd>{endpoint.eventTypes.join(", ") || "all"}</dd>
              <dt>Channels</dt>
              <dd>{endpoint.channels.join(", ") || "all"}</dd>
              <dt>Signature</dt>
              <dd>{endpoint.signatureScheme === SignatureScheme.GITHUB ? "GitHub style" : "Standard Webhooks"}</dd>
              <dt>Limits</dt>
              <dd>
                {endpoint.timeoutSeconds ? `${endpoint.timeoutSeconds} s timeout` : "default timeout"}
                {endpoint.maxInFlight ? ` · ${endpoint.maxInFlight} in flight` : ""}
                {endpoint.rateLimitPerSecond ? ` · ${endpoint.rateLimitPerSecond}/s` : ""}
                {endpoint.ordered ? " · ordered" : ""}
              </dd>
              {endpoint.disabledReason && (
                <>
                  <dt>Disabled</dt>
                  <dd class="error-text">{endpoint.disabledReason}</dd>
                </>
              )}
              <dt>Created</dt>
              <dd>{fullTime(dateOf(endpoint.createdAt))}</dd>
            </>
          )}
        </dl>
        <div>
          <label class="window">
            Statistics of the
            <select value={windowValue} onChange={(e) => setWindowValue(e.currentTarget.value)}>
              {WINDOWS.map((w) => (
                <option key={w.value} value={w.value}>
                  {w.label.toLowerCase()}
                </option>
              ))}
            </select>
          </label>
          {stats && isProblem(stats) && <ProblemNotice problem={stats} action="Reading statistics" />}
          {s && (
            <dl class="facts stats">
              <dt>Deliveries</dt>
              <dd>
                <span class="ok-text">{s.succeededCount.toString()} succeeded</span> ·{" "}
                <span class={s.failedCount > 0n ? "bad-text" : undefined}>{s.failedCount.toString()} failed</span> ·{" "}
                {s.pendingCount.toString()} waiting
              </dd>
              <dt>Attempts succeeding</dt>
              <dd data-success-rate>{percent(s.successRate)}</dd>
              <dt>Latency</dt>
              <dd>
                p50 {duration(s.latencyP50Ms)} · p95 {duration(s.latencyP95Ms)}
              </dd>
              <dt>Failures in a row</dt>
              <dd>{s.consecutiveFailures}</dd>
              <dt>Last error</dt>
              <dd class={s.lastError ? "error-text" : "muted"}>
                {s.lastError ? `${s.lastError} (${fullTime(dateOf(s.lastErrorAt))})` : "none"}
              </dd>
            </dl>
          )}
        </div>
      </div>
    </div>
  );
}

/** Reads the statistics of `endpoints`, a few at a time, handing each to `done`. */
async function loadStats(
  client: AdminClient,
  endpoints: readonly Endpoint[],
  signal: AbortSignal,
  done: (id: string, stats: EndpointStats | Problem) => void,
): Promise<void> {
  const queue = [...endpoints];
  const worker = async () => {
    for (let e = queue.shift(); e && !signal.aborted; e = queue.shift()) {
      try {
        const r = await client.getEndpointStats({ id: e.id, window: durationFromMs(TABLE_WINDOW_MS) }, { signal });
        if (r.stats && !signal.aborted) done(e.id, r.stats);
      } catch (err) {
        if (!signal.aborted) done(e.id, problemOf(err));
      }
    }
  };
  await Promise.all(Array.from({ length: STATS_CONCURRENCY }, worker));
}
