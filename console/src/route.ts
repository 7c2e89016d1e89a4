/**
 * Hash routing: `#/feed`, `#/endpoints`, `#/deliveries/<id>`, each with
 * optional query parameters (`#/feed?tenant=acme`). Every view is one
 * index.html, so the server serves static files only, and every view and
 * filter has a URL that can be shared or reloaded.
 */
import { useEffect, useState } from "preact/hooks";

/** Where the console is. */
export type Route =
  | { view: "feed"; params: URLSearchParams }
  | { view: "endpoints"; params: URLSearchParams }
  | { view: "delivery"; id: string; params: URLSearchParams }
  | { view: "unknown"; path: string; params: URLSearchParams };

/** The route of a location hash ("" and "#/" are the feed). */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  const path = (q === -1 ? raw : raw.slice(0, q)).replace(/\/+$/, "");
  const params = new URLSearchParams(q === -1 ? "" : raw.slice(q + 1));
  if (path === "" || path === "/feed") return { view: "feed", params };
  if (path === "/endpoints") return { view: "endpoints", params };
  const delivery = /^\/deliveries\/([^/]+)$/.exec(path);
  if (delivery) return { view: "delivery", id: decodeURIComponent(delivery[1]!), params };
  return { view: "unknown", path, params };
}

/** "#/feed?tenant=acme" from a path and parameters; empty values are left out. */
export function href(path: string, params: Record<string, string | undefined> = {}): string {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) query.set(k, v);
  const q = query.toString();
  return `#${path}${q ? `?${q}` : ""}`;
}

/** Goes to `hash`; `replace` changes the current history entry instead of adding one. */
export function navigate(hash: string, replace = false): void {
  if (hash === window.location.hash) return;
  if (!replace) {
    window.location.hash = hash;
    return;
  }
  history.replaceState(null, "", hash);
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

/** The current route, following hash changes. */
export function useRoute(): Route {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const onChange = () => setHash(window.location.hash);
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return parseRoute(hash);
}
