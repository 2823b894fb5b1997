#!/usr/bin/env bash
# Runs every fuzz target once, one after the other; a crash fails the run.
#
#   scripts/fuzz.sh               # each for an execution count sized to ~10 s on the 2-core build machine (CI)
#   FUZZTIME=5m scripts/fuzz.sh   # each for that budget (a duration or a count such as 100000x)
#
# The default is a count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a run with
# a bare "context deadline exceeded" when the time runs out mid-execution (golang/go#75804, fixed in Go
# 1.27; seen once in CI here).
set -euo pipefail
cd "$(dirname "$0")/.."
for target in relay/twilio:FuzzDecode:40000x relay/twilio:FuzzVerify:30000x relay/twilio:FuzzVerifyAsTwilioGo:60000x relay/twilio:FuzzClassic:24000x \
	relay/twilio:FuzzValidEquivalent:60000x relay/config:FuzzParse:6000x relay:FuzzTemplate:190000x \
	relay/internal/jsonscan:FuzzMembers:270000x relay/internal/jsonscan:FuzzElements:300000x; do
	IFS=: read -r pkg fn budget <<<"$target"
	budget=${FUZZTIME:-$budget}
	echo "== fuzz $fn ($budget)"
	go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$budget" -fuzzminimizetime=1s "./$pkg"
done
