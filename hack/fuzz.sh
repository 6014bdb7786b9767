#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each: `make fuzz FUZZTIME=30s`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
git grep -l '^func Fuzz' -- '*_test.go' | while read -r f; do
  pkg=./$(dirname "$f")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$f" | awk '{print $2}'); do
    echo "fuzz: $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
