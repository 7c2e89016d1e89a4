/** Small pieces the views share: status chips, the problem notice, empty states. */
import type { ComponentChildren } from "preact";
import type { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import type { Problem } from "./rpc.js";
import { useConsole } from "./context.js";
import { responseClass, responseCode, statusName } from "./format.js";

/** A delivery status, coloured. */
export function StatusChip({ status }: { status: DeliveryStatus }) {
  const name = statusName(status);
  return (
    <span class={`chip status-${name.toLowerCase()}`} data-status={name}>
      {name}
    </span>
  );
}

/** A chip of any tone. */
export function Chip({ tone, children, title }: { tone: "ok" | "warn" | "bad" | "muted" | "info"; children: ComponentChildren; title?: string }) {
  return (
    <span class={`chip tone-${tone}`} title={title}>
      {children}
    </span>
  );
}

/** An HTTP status code, coloured by class, or "no response". */
export function ResponseCode({ status }: { status: number }) {
  return <span class={`code code-${responseClass(status)}`}>{responseCode(status)}</span>;
}

/**
 * What went wrong with a call, said so the user knows what to do: no token
 * (with a button to enter one), a token that may not, a refused request, or
 * Hookline out of reach.
 */
export function ProblemNotice({ problem, action }: { problem: Problem; action?: string }) {
  const { openSettings, settings } = useConsole();
  const what = action ? `${action}: ` : "";
  switch (problem.kind) {
    case "unauthenticated":
      return (
        <div class="notice notice-auth" role="alert" data-problem="unauthenticated">
          <strong>Hookline needs a token.</strong>{" "}
          {settings.token === ""
            ? "This Hookline requires authentication and no token is set. "
            : "Hookline does not accept the token in Settings (unknown or revoked). "}
          Enter an admin token (<code>HOOKLINE_ADMIN_TOKEN</code>) or a tenant's admin API key.
          <div class="notice-detail">
            {problem.code}: {problem.message}
          </div>
          <button type="button" class="button primary" onClick={openSettings}>
            Enter a token
          </button>
        </div>
      );
    case "permission":
      return (
        <div class="notice notice-error" role="alert" data-problem="permission">
          <strong>{what}Not allowed.</strong> The token in Settings may not do this: an ingest token cannot use the
          console, and a tenant's key sees only its own tenant.
          <div class="notice-detail">
            {problem.code}: {problem.message}
          </div>
        </div>
      );
    case "invalid":
      return (
        <div class="notice notice-error" role="alert" data-problem="invalid">
          <strong>{what}Hookline refused the request.</strong>
          <div class="notice-detail">
            {problem.code}: {problem.message}
          </div>
        </div>
      );
    default:
      return (
        <div class="notice notice-error" role="alert" data-problem="unavailable">
          <strong>{what}Hookline could not be reached.</strong>
          <div class="notice-detail">
            {problem.code ? `${problem.code}: ` : ""}
            {problem.message}
          </div>
        </div>
      );
  }
}

/** A quiet message where a list has nothing to show. */
export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

/** An id in monospace, shortened with an ellipsis by CSS, whole in its tooltip. */
export function Id({ value }: { value: string }) {
  return (
    <span class="id" title={value}>
      {value}
    </span>
  );
}
