#!/usr/bin/env bash
# make test-e2e: run the dev-cluster suite with PARALLEL clusters at a time,
# keep its whole output in _output/e2e.log, and print the go test result
# lines and a table of the tests by wall time. On failure the failing tests'
# lines and the log's tail are printed too.
#
#   hack/e2e.sh PARALLEL TIMEOUT [go test flags...]
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
parallel=${1:-4}
timeout=${2:-45m}
shift 2 || true
mkdir -p "$root/_output"
log="$root/_output/e2e.log"
start=$(date +%s)
(cd "$root" && go test -count=1 -v -parallel "$parallel" -timeout "$timeout" "$@" ./test/e2e/...) >"$log" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
echo "e2e tier: ${took}s wall with $parallel clusters at a time (load average: $(cut -d' ' -f1-3 /proc/loadavg)); full output in _output/e2e.log"
echo "slowest tests:"
grep -E '^--- (PASS|FAIL|SKIP): Test[^/ ]* \(' "$log" | sed -E 's/^--- ([A-Z]+): ([^ ]+) \(([0-9.]+)s\)/\3 \1 \2/' | sort -rn | head -40 | awk '{printf "  %8.1fs  %-4s  %s\n", $1, $2, $3}'
if [ "$rc" -ne 0 ]; then
  echo "failures (the tests' own messages; controller logs are in the full output):"
  grep -E -- '^\s*--- FAIL|^panic:|^\s+[A-Za-z0-9_]+_test\.go:[0-9]+: ' "$log" | head -120
  awk -f "$root/hack/e2e-failed.awk" "$log"
fi
# The go test result lines, as go test prints them without -v.
grep -E '^(ok|FAIL|---)[[:space:]]' "$log" | grep -vE '^--- (PASS|SKIP)' | grep -vE '^--- FAIL: Test[^ ]*/' || true
exit "$rc"
