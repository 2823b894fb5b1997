#!/usr/bin/env bash
# Side-by-side comparison (not run by CI): bare Fiber, the relay with an acking sink (file sink, no_sync,
# to a temp file), the relay into a real Kafka (acks=all), the Benthos peer into the same Kafka, and
# Kafka's own Java producer (ProducerPerformance, acks=all: the broker's ceiling), alternating, for ROUNDS
# rounds. One Kafka 4.1.1 broker started with the JVM's defaults (C2, G1, its own heap). Open loop (the
# default): each HTTP system at each offered rate in RATES. Closed loop (MODE=closed): CONC requests
# back to back, BATCH events each. Every system is also given as a ratio to the Java producer's records/s.
# Writes $OUT/bench-results.json and $OUT/bench-latency.png, and prints the Markdown tables. Needs Java
# 17+, Maven (scripts/kafka/fetch.sh; the kafka-tools jar comes from Maven Central).
#
#   scripts/bench/compare.sh                      # RATES="1000 2000 4000 8000" DURATION=15s ROUNDS=3
#   RATES="1000 2000" DURATION=6s ROUNDS=2 scripts/bench/compare.sh
#   MODE=closed BATCH=50 CONC=64 DURATION=15s SYSTEMS="relay-kafka benthos-kafka java" OUT=/tmp/batch scripts/bench/compare.sh
#   BASE_BIN=/tmp/relay-before SYSTEMS="relay-base relay-kafka" ...   # another build of the relay, side by side
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${MODE:-open}                   # open: RATES offered; closed: CONC requests always in flight
RATES=${RATES:-1000 2000 4000 8000}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-1}                    # events per POST body
SYSTEMS=${SYSTEMS:-bare relay-ack relay-kafka benthos-kafka java}
BASE_BIN=${BASE_BIN:-}               # system relay-base: this relay binary into Kafka (e.g. the previous commit)
JAVA_RECORDS=${JAVA_RECORDS:-600000} # records per Java producer run (~10 s at the ceiling seen here)
RECORD_SIZE=${RECORD_SIZE:-700}      # bytes per Java producer record (a Twilio event's data is 300-700)
if [[ $MODE == closed ]]; then
	CONC=${CONC:-64}
	RATES=0 # results are filed under rate 0
else
	CONC=${CONC:-512}
fi
KAFKA_OPTS=${KAFKA_OPTS:-}           # more keys for the relay's kafka sink, e.g. ", batch_timeout: 1ms"
PROFILE_RATE=${PROFILE_RATE:-2000}   # a 10 s CPU profile of relay+Kafka at this rate in round 1 (closed loop: 0)
LOADCPU=${LOADCPU:-0}                # taskset cores: load generator / server (Kafka's JVM is not pinned)
SRVCPU=${SRVCPU:-1}
JAVACPU=${JAVACPU-$SRVCPU}           # the Java producer's cores, like a server's; JAVACPU= leaves it unpinned
OUT=${OUT:-docs}
TOKEN=bench-auth-token-0123456789abcdef
PUBLIC=https://relay.example.com/twilio/events
W=$(mktemp -d /tmp/relay-bench.XXXXXX)
echo "work dir $W" >&2

libs=$(scripts/kafka/fetch.sh)
tools=${M2_REPO:-$HOME/.m2/repository}/org/apache/kafka/kafka-tools/4.1.1/kafka-tools-4.1.1.jar
if [[ " $SYSTEMS " == *" java "* && ! -f $tools ]]; then
	mvn -q -B dependency:get -Dartifact=org.apache.kafka:kafka-tools:4.1.1 -Dtransitive=false >&2
fi
go build -o "$W/relay" ./cmd/relay
go build -o "$W/kafka" ./scripts/bench/kafka
go build -o "$W/bare" ./scripts/bench/bare
(cd scripts/bench/plot && go build -o "$W/plot" .)
(cd /work/shared/peers/benthos && go build -o "$W/benthos" .)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

topics=""
for r in $(seq 1 "$ROUNDS"); do
	topics+="java.$r,"
	for rate in $RATES; do topics+="relay.$r.$rate,base.$r.$rate,benthos.$r.$rate,"; done
done
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
	relay-kafka | relay-base)
		local bin=$W/relay topic=relay.$r.$rate
		[[ $sys == relay-base ]] && bin=${BASE_BIN:?relay-base needs BASE_BIN} topic=base.$r.$rate
		relay_config "    kafka: { brokers: [ \"$BROKER\" ], acks: all, mode: binary$KAFKA_OPTS }" "$topic" >"$W/relay.yaml"
		taskset -c "$SRVCPU" "$bin" serve -config "$W/relay.yaml" >>"$W/relay.log" 2>&1 & srv=$!
		url=http://127.0.0.1:8080/twilio/events; wait_port 8080
		verify=(-verify-kafka "$BROKER" -topic "$topic") ;;
	benthos-kafka)
		local split=() # several events per body: one record each, as the relay writes them
		((BATCH > 1)) && split=(-s 'pipeline.processors.-.unarchive.format=json_array')
		KAFKA_BROKERS=$BROKER KAFKA_TOPIC=benthos.$r.$rate taskset -c "$SRVCPU" "$W/benthos" -c /work/shared/peers/benthos/peer.yaml "${split[@]}" >>"$W/benthos.log" 2>&1 & srv=$!
		url=http://127.0.0.1:4195/events; wait_port 4195; sign=()
		verify=(-verify-kafka "$BROKER" -topic "benthos.$r.$rate") ;;
	esac
	sleep 1 # producers connect
}

# run_java runs Kafka's own producer flat out into java.$1, pinned like the servers (JAVACPU), and files
# its summary line as a result at rate 0: records/s as achieved events/s, its per-record latencies.
run_java() {
	local r=$1 out pin=()
	[[ -n $JAVACPU ]] && pin=(taskset -c "$JAVACPU")
	echo "round $r java" >&2
	out=$("${pin[@]}" java -cp "$libs/*:$tools" org.apache.kafka.tools.ProducerPerformance \
		--topic "java.$r" --num-records "$JAVA_RECORDS" --record-size "$RECORD_SIZE" --throughput -1 \
		--producer-props bootstrap.servers="$BROKER" acks=all linger.ms=1 2>"$W/java.log" | tail -n 1)
	echo "  $out" >&2
	# "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P ms 50th, Q ms 95th, S ms 99th, T ms 99.9th."
	awk -F', ' -v records="$JAVA_RECORDS" '{
		split($2, a, " "); split($5, p50, " "); split($7, p99, " "); split($8, p999, " ")
		printf "{\"offered_events_per_s\": 0, \"achieved_events_per_s\": %s, \"sent\": %d, \"late\": 0, \"errors\": %d, ", a[1], records, records - $1
		printf "\"latency_ms\": {\"p50\": %s, \"p99\": %s, \"p99_9\": %s}}\n", p50[1], p99[1], p999[1]
	}' <<<"$out" >"$W/results/java_0_${r}.json"
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
			if [[ $sys == java ]]; then
				[[ $rate == "$(awk '{print $1}' <<<"$RATES")" ]] && run_java "$r" # once a round: it is not offered a rate
				continue
			fi
			start_server "$sys" "$r" "$rate"
			prof=""
			if [[ $sys == relay-kafka && $r == 1 && $rate == "$PROFILE_RATE" ]]; then
				(sleep 2; curl -s -o "$W/relay-kafka.pprof" "http://127.0.0.1:9091/debug/pprof/profile?seconds=10") & prof=$!
			fi
			echo "round $r $sys $rate/s" >&2
			offer=(-closed)
			[[ $MODE == closed ]] || offer=(-rate "$rate")
			taskset -c "$LOADCPU" "$W/relay" bench -url "$url" "${sign[@]}" "${offer[@]}" -duration "$DURATION" -batch "$BATCH" \
				-concurrency "$CONC" -timeout 5s -id-prefix "r${r}x${rate}" "${verify[@]}" \
				-out "$W/results/${sys}_${rate}_${r}.json" >&2 || echo "  (bench reported an error)" >&2
			[[ -n $prof ]] && wait "$prof"
			# The server's CPU time over its whole run (user + system, in clock ticks): plot divides it by the
			# events answered 2xx, a figure a busy machine disturbs less than the throughput.
			awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$srv/stat" >"$W/results/${sys}_${rate}_${r}.cpu" || true
			kill "$srv"; wait "$srv" 2>/dev/null || true
		done
	done
done

mkdir -p "$OUT"
cp -r "$W/results" "$OUT/bench-runs" 2>/dev/null || true
"$W/plot" -dir "$W/results" -json "$OUT/bench-results.json" -png "$OUT/bench-latency.png"
[[ -s $W/relay-kafka.pprof ]] && echo "profile: go tool pprof -top $W/relay $W/relay-kafka.pprof" >&2
