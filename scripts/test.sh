#!/usr/bin/env bash
# Runs the whole suite (race detector on) against the real Kafka and Redis
# that scripts/services.sh started, keeps the full verbose log in
# .cache/test.log, and prints what a reader needs: each top-level test's
# result, which real services the integration tests used, their figures,
# and every package's closing line.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
log=.cache/test.log
go test -race -count=1 -v "$@" ./... >"$log" 2>&1
status=$?
grep -E '^(--- (PASS|FAIL|SKIP)|ok |FAIL|panic:|PASS$)|real Kafka|SIGKILL|kills,|DATA RACE|^\s+\S+_test\.go:[0-9]+: ' "$log" \
  | grep -vE '^\s+\S+_test\.go:[0-9]+: leadscore: ' \
  | grep -vE '^\s+(logger|observer)\.go'
echo
if [ $status -eq 0 ]; then
  echo "all tests passed (full log: $log)"
else
  echo "TESTS FAILED (exit $status; full log: $log)"
fi
exit $status
