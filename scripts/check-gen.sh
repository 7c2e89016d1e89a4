#!/usr/bin/env bash
# Fails when gen/ is not exactly what `buf generate` makes from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx buf generate -o "$tmp"
if ! diff -r "$tmp/gen" gen; then
  echo "gen/ is stale: run 'npm run generate' and commit gen/." >&2
  exit 1
fi
echo "gen/ is up to date with proto/."
