#!/usr/bin/env bash
# The project's test command (README.md): gofmt, vet, the whole suite with the race detector against a real
# Apache Kafka broker (fetched from Maven Central on first use and cached) and real Redis and NATS
# servers, the Helm chart's tests (helm, helm-unittest and kubectl-validate built from the Go module
# proxy on first use and cached), the chart on a real single-node Kubernetes (built from the Go module
# proxy on first use and cached: scripts/k8s/test.sh), then short fuzz runs. The inspector's browser
# test drives Debian's chromium (scripts/browser/install.sh).
#
#   scripts/test.sh            # everything
#   FUZZTIME=0 scripts/test.sh # skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt, go vet"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	echo "not gofmt-formatted (run gofmt -w on them):" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

echo "== Kafka broker jars"
RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh)
export RELAY_KAFKA_LIBS
export RELAY_REQUIRE_KAFKA=1 # integration tests fail, not skip, without a broker

echo "== Redis and NATS servers"
scripts/servers/install.sh     # redis-server, nats-server (apt-get, only when missing)
export RELAY_REQUIRE_SERVERS=1 # sink tests fail, not skip, without them

echo "== chromium (the inspector's browser test)"
if scripts/browser/install.sh; then
	export RELAY_REQUIRE_BROWSER=1 # the browser test fails, not skips, when chromium does not run
else
	echo "!! chromium could not be installed: the inspector's browser test will skip" >&2
fi

echo "== go test (race detector, real Kafka; the fault and bad-input scenarios in their short form)"
ledger=$(mktemp)
trap 'rm -f "$ledger"' EXIT
RELAY_LEDGER_OUT=$ledger go test -race -count=1 -timeout 30m ./...

echo "== ledger of the fault and bad-input scenarios (docs/reliability.md; scripts/reliability.sh runs them alone)"
go run ./scripts/reliability/table <"$ledger"

echo "== Helm chart (lint, unit tests, offline schema validation, relay check of every render), the image without Docker, actionlint"
scripts/test-chart.sh

echo "== Kubernetes: server-side dry-runs of the examples, the chart on a real node next to Kafka (scripts/k8s/test.sh)"
scripts/k8s/test.sh

# Short fuzz runs of every target (scripts/fuzz.sh); FUZZTIME=0 skips them.
if [[ ${FUZZTIME:-} != 0 ]]; then
	scripts/fuzz.sh
fi
echo "== all tests passed"
