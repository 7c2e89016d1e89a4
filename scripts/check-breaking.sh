#!/usr/bin/env bash
# `buf breaking` for the published API: hookline.v1 only ever grows.
#
# Compared against (1) BREAKING_BASE when set (a branch or commit, e.g. main
# when checking a feature branch), else origin/main when it differs from HEAD;
# (2) the commit before HEAD; and (3) the first commit that had the v1 protos,
# so no sequence of commits can remove or change what v1 published.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "not a git checkout: skipping buf breaking"
  exit 0
fi
bases=()
if [ -n "${BREAKING_BASE:-}" ]; then
  bases+=("$BREAKING_BASE")
elif git rev-parse -q --verify origin/main >/dev/null && [ "$(git rev-parse origin/main)" != "$(git rev-parse HEAD)" ]; then
  bases+=("origin/main")
fi
if git rev-parse -q --verify HEAD~1 >/dev/null; then bases+=("HEAD~1"); fi
first=$(git log --reverse --format=%H -- proto/hookline/v1 | sed -n 1p)
if [ -n "$first" ]; then bases+=("$first"); fi
checked=0
for base in "${bases[@]}"; do
  commit=$(git rev-parse "$base")
  if ! git cat-file -e "$commit:proto/hookline/v1" 2>/dev/null; then
    continue
  fi
  echo "buf breaking against $base ($commit)"
  npx buf breaking --against ".git#ref=$commit"
  checked=$((checked + 1))
done
echo "buf breaking: $checked base(s) checked."
