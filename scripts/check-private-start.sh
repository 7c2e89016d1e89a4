#!/usr/bin/env bash
# As root, `npm start` works from a clone in a directory closed to other
# users (mode 0700, like /root or a `mktemp -d` folder), where the embedded
# PostgreSQL's user `postgres` reaches neither node_modules nor ./.hookline
# (see docs/configuration.md#embedded-postgresql): it serves /healthz, then
# stops on SIGTERM. Clones HEAD of this checkout; node_modules is
# hard-linked (or copied) from it. Skipped when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "not root: skipped (this checks the start as root from a private directory)"
  exit 0
fi
private=$(mktemp -d)
chmod 700 "$private"
log="$private/start.log"
pgid=""
cleanup() {
  [ -n "$pgid" ] && kill -KILL -- "-$pgid" 2>/dev/null || true
  # The cluster the start put under /var/lib/hookline for this clone.
  dir=$(grep -o '"dir":"/var/lib/hookline/clusters/[0-9a-f]*/pg"' "$log" 2>/dev/null | head -1 | cut -d'"' -f4 || true)
  [ -n "$dir" ] && rm -rf "$(dirname "$dir")"
  rm -rf "$private"
}
trap cleanup EXIT

git clone --quiet . "$private/hookline"
cp -al node_modules "$private/hookline/node_modules" 2>/dev/null ||
  { rm -rf "$private/hookline/node_modules" && cp -a node_modules "$private/hookline/node_modules"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port)
pgport=$(free_port)

# Its own process group, so SIGTERM reaches the server under npm and sh.
(cd "$private/hookline" && HOOKLINE_PORT="$port" HOOKLINE_EMBEDDED_PG_PORT="$pgport" exec setsid npm start) >"$log" 2>&1 &
starter=$!
for _ in $(seq 1 300); do
  pgid=$(ps -o pgid= -p "$starter" 2>/dev/null | tr -d ' ' || true)
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$starter" 2>/dev/null; then
    cat "$log" >&2
    echo "npm start exited before serving /healthz" >&2
    exit 1
  fi
  sleep 1
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$log" >&2; echo "no /healthz in 300 s" >&2; exit 1; }
echo "npm start serves /healthz from $private/hookline (mode 0700 above it)"
grep -o '"dir":"[^"]*"' "$log" | head -1

kill -TERM -- "-$pgid"
for _ in $(seq 1 60); do
  grep -q '"msg":"Hookline stopped"' "$log" && ! curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
if ! grep -q '"msg":"Hookline stopped"' "$log"; then
  cat "$log" >&2
  echo "no graceful stop within 30 s of SIGTERM" >&2
  exit 1
fi
pgid=""
echo "stopped on SIGTERM"
