#!/usr/bin/env bash
# make fuzz: run every fuzz target of the module for FUZZTIME each. The
# unit tier already runs their seed corpora (and any failures found and
# saved under testdata/fuzz); this looks for new ones.
#
#   hack/fuzz.sh [FUZZTIME]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fuzztime=${1:-30s}
cd "$root"
mapfile -t files < <(grep -rl --include='*_test.go' '^func Fuzz' . | sort)
for file in "${files[@]}"; do
  pkg="./$(dirname "${file#./}")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -d' ' -f2); do
    echo ">> $target ($pkg, $fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" </dev/null
  done
done
