#!/usr/bin/env bash
# Twilio-shaped duplicates through the relay into a real Kafka (issue #20), not run by CI: the relay
# binary with a Kafka sink (acks=all), `relay bench` offering RATE events/s in bodies of BATCH with
# DUP_RATIO of them byte-identical re-sends of earlier events, for DURATION, then reading the topic back.
# Expect 0 missing and 0 extra records (no fault is injected), and no "Unsolicited response" from the
# load generator's HTTP client. Needs Java 17+ and Maven (scripts/kafka/fetch.sh).
#
#   scripts/bench/duplicates.sh                   # RATE=1500 BATCH=3 DUP_RATIO=0.1 DURATION=600s
#   DURATION=30s scripts/bench/duplicates.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-1500}
BATCH=${BATCH:-3}
DUP_RATIO=${DUP_RATIO:-0.1}
DURATION=${DURATION:-600s}
TOKEN=bench-auth-token-0123456789abcdef
PUBLIC=https://relay.example.com/twilio/events
W=$(mktemp -d /tmp/relay-dups.XXXXXX)
echo "work dir $W" >&2

libs=$(scripts/kafka/fetch.sh)
go build -o "$W/relay" ./cmd/relay
go build -o "$W/kafka" ./scripts/bench/kafka

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$W/kafka" -libs "$libs" -topics "twilio.events,twilio.deadletter" -partitions 3 -addr-file "$W/kafka.addr" >"$W/kafka.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [[ -s $W/kafka.addr ]] && break; sleep 1; done
[[ -s $W/kafka.addr ]] || { echo "kafka did not start" >&2; tail "$W/kafka.log" >&2; exit 1; }
BROKER=$(cat "$W/kafka.addr")

cat >"$W/relay.yaml" <<YAML
listen: 127.0.0.1:18080
admin: { listen: 127.0.0.1:19090 }
log: { level: warn }
endpoints:
  - { name: events, path: /twilio/events, public_url: $PUBLIC, auth_tokens: [ "$TOKEN" ] }
sinks:
  - { name: kafka, kafka: { brokers: [ "$BROKER" ], acks: all, mode: binary, batch_timeout: 1ms } }
routes:
  - { name: all, match: { types: [ "*" ] }, to: [ { sink: kafka, topic: twilio.events } ] }
dead_letter: { sink: kafka, topic: twilio.deadletter }
YAML
"$W/relay" serve -config "$W/relay.yaml" >"$W/relay.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done

set -x
"$W/relay" bench -url http://127.0.0.1:18080/twilio/events -public-url "$PUBLIC" -token "$TOKEN" \
	-rate "$RATE" -batch "$BATCH" -dup-ratio "$DUP_RATIO" -duration "$DURATION" \
	-verify-kafka "$BROKER" -topic twilio.events -out "$W/result.json" 2>"$W/bench.stderr" | tee "$W/bench.out"
set +x
unsolicited=$(grep -c "Unsolicited response" "$W/bench.stderr" || true)
echo "load generator's HTTP client: $unsolicited unsolicited responses (stderr: $W/bench.stderr)"
curl -s http://127.0.0.1:19090/metrics | grep -E '^relay_events_(received|duplicate)_total' | awk '{s[$1 ~ /duplicate/ ? "duplicate" : "received"] += $2} END {for (k in s) print "relay_events_" k "_total", s[k]}'
