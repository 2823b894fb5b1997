#!/usr/bin/env bash
# The chart on a real Kubernetes (docs/deploy-kubernetes.md, "Tested on a real node"):
#
#   scripts/k8s/test.sh           # the server-side dry-runs, then the scenarios on a node
#   scripts/k8s/test.sh dry-run   # only `helm install --dry-run=server` and `kubectl apply --dry-run=server`
#                                 # of every example against kube-apiserver (no containers, no Kafka)
#
# 1. scripts/k8s/build.sh: kube-apiserver, controller-manager, scheduler, kubelet, kubectl and etcd from
#    their Go modules (cached; the first build takes many minutes), and Debian's containerd, runc and CNI
#    plugins (apt-get, when missing).
# 2. helm: the one scripts/test-chart.sh builds (run it first when it is not cached yet).
# 3. the images: the relay's from scripts/image.sh (the release path, no Docker), the pod sandbox's
#    (scripts/k8s/pause) with the same tool, both imported into the node's containerd.
# 4. go test ./relay/relaytest/kube with RELAY_K8S=1: TestServerDryRun (etcd + kube-apiserver) and
#    TestChartOnNode (the node, a Kafka broker on 127.0.0.1, the scenarios), then the scenarios' ledger
#    table; lost must be 0 in every row.
#
# A machine that refuses what the node needs (root, PID and mount namespaces, containers) makes the node
# tests skip, saying why, and this script says so; RELAY_REQUIRE_K8S=1 turns that into a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-all}
case $mode in
all) run='^(TestServerDryRun|TestChartOnNode)$' ;;
dry-run) run='^TestServerDryRun$' ;;
*)
	sed -n '2,6s/^# \{0,1\}//p' "$0" >&2
	exit 2
	;;
esac
start=$SECONDS
phase() { echo "== $* ($((SECONDS - start))s)"; }

phase "Kubernetes binaries (scripts/k8s/build.sh)"
runtime=""
if [[ $mode == all ]]; then
	runtime=1 # containerd, runc and the CNI plugins too
fi
RELAY_K8S_BIN=$(RELAY_K8S_RUNTIME=$runtime scripts/k8s/build.sh)
export RELAY_K8S_BIN RELAY_K8S=1

tools=${RELAY_TOOLS:-$HOME/.cache/twilio-relay/tools}
export RELAY_HELM=${RELAY_HELM:-$tools/bin/helm}
if [[ ! -x $RELAY_HELM ]]; then
	phase "helm is not built yet: scripts/test-chart.sh builds it (and tests the chart)"
	scripts/test-chart.sh >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ $mode == all ]]; then
	phase "images: the relay (scripts/image.sh) and the pod sandbox (scripts/k8s/pause)"
	IMAGE=relay.local/twilio-relay RELAY_TOOLS=$tools scripts/image.sh -v k8s-test -o "$work/relay.tar" >"$work/image.log" 2>&1 ||
		{ cat "$work/image.log" >&2; exit 1; }
	CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$work/pause" ./scripts/k8s/pause
	"$tools/bin/ocibuild" -binary "$work/pause" -user 65535:65535 -tag relay.local/pause:1 -o "$work/pause.tar"
	export RELAY_K8S_IMAGES="$work/pause.tar $work/relay.tar" RELAY_K8S_PAUSE_IMAGE=relay.local/pause:1
	export RELAY_K8S_RELAY_IMAGE=relay.local/twilio-relay:k8s-test

	phase "Kafka broker jars"
	RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh)
	export RELAY_KAFKA_LIBS RELAY_REQUIRE_KAFKA=1
fi

phase "go test ./relay/relaytest/kube -run '$run'"
export RELAY_LEDGER_OUT=$work/ledger
set +e
go test -count=1 -v -timeout 30m -run "$run" ./relay/relaytest/kube >"$work/test.log" 2>&1
status=$?
set -e
# The timeline of each test and its result; the containers' own log lines (shown on a failure) are long.
grep -Ev '^ +[0-9-]+T[0-9:.]+Z std(out|err) ' "$work/test.log" || true
if grep -q -- '--- SKIP' "$work/test.log"; then
	echo "!! some Kubernetes tests were SKIPPED on this machine (the reason is in the lines above)"
fi
if [[ -s $RELAY_LEDGER_OUT ]]; then
	phase "ledger of the scenarios on the node"
	go run ./scripts/reliability/table <"$RELAY_LEDGER_OUT" || status=1
fi
phase "done"
exit "$status"
