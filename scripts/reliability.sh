#!/usr/bin/env bash
# Issue #7's reliability and security suite in one command, against real Apache Kafka brokers: the fault
# scenarios and the bad-input tests, then the ledger table that docs/reliability.md shows. Lost must read
# 0 in every row; the command fails otherwise.
#
#   scripts/reliability.sh            # short forms: 8 s of traffic per scenario (CI runs these inside scripts/test.sh)
#   scripts/reliability.sh long       # long forms: 60 s at 600 events/s per scenario (~15 min)
#   scripts/reliability.sh soak [30m] # steady traffic with duplicates and a broker restart every 5 min
#   scripts/reliability.sh fuzz [5m]  # each fuzz target for the given time, one after the other
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-short}
RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh)
export RELAY_KAFKA_LIBS RELAY_REQUIRE_KAFKA=1

case $mode in
short | long)
	out=$(mktemp)
	log=${RELAY_RELIABILITY_LOG:-$(mktemp --suffix=.log)}
	trap 'rm -f "$out"' EXIT
	set +e
	RELAY_LEDGER_OUT=$out RELAY_FAULTS=$mode go test -count=1 -timeout 60m -v \
		-run '^(TestFault|TestBadInput)' ./cmd/relay/ >"$log" 2>&1
	status=$?
	set -e
	# The timeline of each scenario and its result; the relay's own log lines stay in $log.
	grep -E '^(=== RUN|--- |ok|FAIL|PASS|panic)|(faults|scenario|badinput)_test.go' "$log" | grep -v ' relay: ' || true
	echo
	go run ./scripts/reliability/table <"$out" || status=1
	if [[ $status != 0 ]]; then
		echo "reliability: FAILED; the whole log is $log" >&2
	fi
	exit "$status"
	;;
soak)
	RELAY_SOAK=${2:-30m} go test -count=1 -timeout 3h -v -run '^TestSoak$' ./cmd/relay/ | grep -v ' relay: '
	;;
fuzz)
	FUZZTIME=${2:-5m} scripts/fuzz.sh
	;;
*)
	echo "usage: scripts/reliability.sh [short|long|soak [duration]|fuzz [duration]]" >&2
	exit 2
	;;
esac
