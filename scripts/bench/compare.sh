#!/usr/bin/env bash
# Open-loop comparison, side by side (not run by CI): bare Fiber, the relay with an acking sink (file
# sink, no_sync, to a temp file), the relay into a real Kafka (acks=all) and the Benthos peer into the same
# Kafka, at the same offered rates, alternating, for ROUNDS rounds. Writes docs/bench-results.json and
# docs/bench-latency.png, and prints the Markdown tables. Needs Java 17+, Maven (scripts/kafka/fetch.sh).
#
#   scripts/bench/compare.sh                      # RATES="1000 2000 4000 8000" DURATION=15s ROUNDS=3
#   RATES="1000 2000" DURATION=6s ROUNDS=2 scripts/bench/compare.sh
#   SYSTEMS=relay-kafka BATCH=50 RATES="50000 100000" OUT=/tmp/batch scripts/bench/compare.sh  # batched bodies
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${RATES:-1000 2000 4000 8000}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
CONC=${CONC:-512}
BATCH=${BATCH:-1}                    # events per POST body
SYSTEMS=${SYSTEMS:-bare relay-ack relay-kafka benthos-kafka}
KAFKA_OPTS=${KAFKA_OPTS:-}           # more keys for the relay's kafka sink, e.g. ", batch_size: 100"
PROFILE_RATE=${PROFILE_RATE:-2000}   # a 10 s CPU profile of relay+Kafka at this rate in round 1
LOADCPU=${LOADCPU:-0}                # taskset cores: load generator / server (Kafka's JVM is not pinned)
SRVCPU=${SRVCPU:-1}
OUT=${OUT:-docs}
TOKEN=bench-auth-token-0123456789abcdef
PUBLIC=https://relay.example.com/twilio/events
W=$(mktemp -d /tmp/relay-bench.XXXXXX)
echo "work dir $W" >&2

libs=$(scripts/kafka/fetch.sh)
go build -o "$W/relay" ./cmd/relay
go build -o "$W/kafka" ./scripts/bench/kafka
go build -o "$W/bare" ./scripts/bench/bare
(cd scripts/bench/plot && go build -o "$W/plot" .)
(cd /work/shared/peers/benthos && go build -o "$W/benthos" .)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

topics=""
for r in $(seq 1 "$ROUNDS"); do for rate in $RATES; do topics+="relay.$r.$rate,benthos.$r.$rate,"; done; done
"$W/kafka" -libs "$libs" -topics "$topics" -partitions 3 -addr-file "$W/kafka.addr" >"$W/kafka.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do [[ -s $W/kafka.addr ]] && break; sleep 1; done
[[ -s $W/kafka.addr ]] || { echo "kafka did not start" >&2; tail "$W/kafka.log" >&2; exit 1; }
BROKER=$(cat "$W/kafka.addr")
echo "kafka $BROKER" >&2

relay_config() { # $1: sink yaml, $2: topic
	cat <<YAML
listen: 127.0.0.1:8080
admin: { listen: 127.0.0.1:9091, pprof: true }
log: { level: warn }
limits: { request_deadline: 4s, max_in_flight: 4096 }
dedupe: { window: 4h, max_ids: 1500000 }
endpoints:
  - name: events
    path: /twilio/events
    public_url: $PUBLIC
    auth_tokens: [ "$TOKEN" ]
sinks:
  - name: out
$1
routes:
  - name: all
    match: { types: [ "*" ] }
    to: [ { sink: out, topic: "$2" } ]
dead_letter: { sink: out, topic: "$2" }
YAML
}

wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; return 1; }

start_server() { # $1 system, $2 round, $3 rate; sets srv and url, sign, verify
	local sys=$1 r=$2 rate=$3
	sign=(-token "$TOKEN" -public-url "$PUBLIC"); verify=()
	case $sys in
	bare)
		taskset -c "$SRVCPU" "$W/bare" -listen 127.0.0.1:8081 >"$W/bare.log" 2>&1 & srv=$!
		url=http://127.0.0.1:8081/twilio/events; wait_port 8081 ;;
	relay-ack)
		relay_config "    file: { path: $W/sink.out, no_sync: true }" "ignored" >"$W/relay.yaml"
		rm -f "$W/sink.out"
		taskset -c "$SRVCPU" "$W/relay" serve -config "$W/relay.yaml" >>"$W/relay.log" 2>&1 & srv=$!
		url=http://127.0.0.1:8080/twilio/events; wait_port 8080 ;;
	relay-kafka)
		relay_config "    kafka: { brokers: [ \"$BROKER\" ], acks: all, mode: binary, batch_timeout: 1ms$KAFKA_OPTS }" "relay.$r.$rate" >"$W/relay.yaml"
		taskset -c "$SRVCPU" "$W/relay" serve -config "$W/relay.yaml" >>"$W/relay.log" 2>&1 & srv=$!
		url=http://127.0.0.1:8080/twilio/events; wait_port 8080
		verify=(-verify-kafka "$BROKER" -topic "relay.$r.$rate") ;;
	benthos-kafka)
		KAFKA_BROKERS=$BROKER KAFKA_TOPIC=benthos.$r.$rate taskset -c "$SRVCPU" "$W/benthos" -c /work/shared/peers/benthos/peer.yaml >>"$W/benthos.log" 2>&1 & srv=$!
		url=http://127.0.0.1:4195/events; wait_port 4195; sign=()
		verify=(-verify-kafka "$BROKER" -topic "benthos.$r.$rate") ;;
	esac
	sleep 1 # producers connect
}

mkdir -p "$W/results"
for r in $(seq 1 "$ROUNDS"); do
	for rate in $RATES; do
		read -r -a systems <<<"$SYSTEMS"
		if ((r % 2 == 0)); then # alternate the order
			for ((i = 0, j = ${#systems[@]} - 1; i < j; i++, j--)); do
				t=${systems[i]} systems[i]=${systems[j]} systems[j]=$t
			done
		fi
		for sys in "${systems[@]}"; do
			start_server "$sys" "$r" "$rate"
			prof=""
			if [[ $sys == relay-kafka && $r == 1 && $rate == "$PROFILE_RATE" ]]; then
				(sleep 2; curl -s -o "$W/relay-kafka.pprof" "http://127.0.0.1:9091/debug/pprof/profile?seconds=10") & prof=$!
			fi
			echo "round $r $sys $rate/s" >&2
			taskset -c "$LOADCPU" "$W/relay" bench -url "$url" "${sign[@]}" -rate "$rate" -duration "$DURATION" -batch "$BATCH" \
				-concurrency "$CONC" -timeout 5s -id-prefix "r${r}x${rate}" "${verify[@]}" \
				-out "$W/results/${sys}_${rate}_${r}.json" >&2 || echo "  (bench reported an error)" >&2
			[[ -n $prof ]] && wait "$prof"
			kill "$srv"; wait "$srv" 2>/dev/null || true
		done
	done
done

mkdir -p "$OUT"
cp -r "$W/results" "$OUT/bench-runs" 2>/dev/null || true
"$W/plot" -dir "$W/results" -json "$OUT/bench-results.json" -png "$OUT/bench-latency.png"
[[ -s $W/relay-kafka.pprof ]] && echo "profile: go tool pprof -top $W/relay $W/relay-kafka.pprof" >&2
