#!/usr/bin/env bash
# Tests of the Helm chart (charts/relay) that need no cluster and no Docker:
#
#   1. tools: helm, helm-unittest, kubectl-validate and actionlint at pinned versions, built with Go into
#      a cache (${RELAY_TOOLS:-~/.cache/twilio-relay/tools}; idempotent; the first run takes minutes).
#      Helm's config, data, cache and plugins live there too, so the user's own helm is never touched.
#   2. helm lint --strict with the minimal required values and with every worked example.
#   3. helm-unittest suites in charts/relay/tests/.
#   4. for every case (minimal, each example, the spool, everything on): helm template, then
#      kubectl-validate against Kubernetes 1.30's schemas (ServiceMonitor: scripts/tools/crds), then the
#      real `relay check` on the rendered config.yaml with exactly the environment the pod would have
#      (placeholders for Secret values): the chart can never render a configuration the relay rejects.
#   5. checks across renders (a config change rolls the pods, an unrelated change does not; the admin
#      port never on the webhook Service; the oldest Kubernetes the chart admits; the Strimzi example's
#      KafkaTopics) and failures that must happen (schema, `fail` for every setting that would strand
#      events or expose the admin port, relay check).
#   6. the relay built exactly as the Dockerfile builds it: static, version stamped, its shipped
#      config.yaml accepted; then the image without Docker (scripts/image.sh), read back with
#      go-containerregistry (entrypoint, user, env, files) and its /relay run; the Dockerfile says the
#      same; actionlint on .github/workflows.
#
# Ends with "chart: N passed, M failed" and exits non-zero when M > 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
chart=$root/charts/relay

tools=${RELAY_TOOLS:-$HOME/.cache/twilio-relay/tools}
bin=$tools/bin
helm_version=v3.22.0
# Helm's Makefile stamps the Kubernetes version it defaults to from its client-go (v0.37.0 in v3.22.0).
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in pkg/lint/rules pkg/chartutil; do
	helm_ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
done
kubectl_validate_version=v0.0.4
unittest_dir=$root/scripts/tools/helm-unittest
kube_version=1.30 # rendered and validated for this Kubernetes (kubectl-validate's newest schemas)
oldest_kube=1.23  # the oldest the chart admits (Chart.yaml kubeVersion), rendered and validated too
actionlint_version=v1.7.12

export HELM_CONFIG_HOME=$tools/helm/config HELM_DATA_HOME=$tools/helm/data HELM_CACHE_HOME=$tools/helm/cache
export HELM_PLUGINS=$tools/helm/plugins
export PATH=$bin:$PATH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
phase() { echo "== $* ($((SECONDS - start))s)"; }

# ---------------------------------------------------------------------------------------------------
phase "tools in $tools"
mkdir -p "$bin" "$tools/logs"

# install NAME STAMP COMMAND...: runs COMMAND in the background unless bin/.NAME holds STAMP.
pids=()
names=()
install() {
	local name=$1 stamp=$2
	shift 2
	if [[ -f $bin/.$name && $(cat "$bin/.$name") == "$stamp" ]]; then
		echo "   $name: cached ($stamp)"
		return
	fi
	echo "   $name: building $stamp (log: $tools/logs/$name.log)"
	rm -f "$bin/.$name"
	("$@" && echo "$stamp" >"$bin/.$name") >"$tools/logs/$name.log" 2>&1 &
	pids+=($!)
	names+=("$name")
}
unittest_stamp="$(sed -n 's/^require github.com\/helm-unittest\/helm-unittest \(v[^ ]*\).*/\1/p; s/^\tgithub.com\/helm-unittest\/helm-unittest \(v[^ ]*\).*/\1/p' "$unittest_dir/go.mod" | head -1)-$(cat "$unittest_dir/go.mod" "$unittest_dir/go.sum" | sha256sum | cut -c1-12)"
build_unittest() {
	mkdir -p "$tools/helm-unittest"
	(cd "$unittest_dir" && go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$tools/helm-unittest/untt" \
		github.com/helm-unittest/helm-unittest/cmd/helm-unittest)
	cat >"$tools/helm-unittest/plugin.yaml" <<EOF
name: unittest
version: ${unittest_stamp%%-*}
usage: unit tests for helm charts
description: helm-unittest built from scripts/tools/helm-unittest (no install hooks)
command: \$HELM_PLUGIN_DIR/untt
EOF
}
install helm "$helm_version" env GOBIN="$bin" go install -trimpath -ldflags "$helm_ldflags" "helm.sh/helm/v3/cmd/helm@$helm_version"
install kubectl-validate "$kubectl_validate_version" env GOBIN="$bin" go install -trimpath "sigs.k8s.io/kubectl-validate@$kubectl_validate_version"
install helm-unittest "$unittest_stamp" build_unittest
install actionlint "$actionlint_version" env GOBIN="$bin" go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
for i in "${!pids[@]}"; do
	if ! wait "${pids[$i]}"; then
		echo "!! building ${names[$i]} failed:" >&2
		tail -40 "$tools/logs/${names[$i]}.log" >&2
		exit 1
	fi
done
if ! helm plugin list 2>/dev/null | grep -q '^unittest'; then
	helm plugin install "$tools/helm-unittest" >/dev/null
fi
echo "   $(helm version --short), helm-unittest $(helm plugin list | awk '$1 == "unittest" {print $2}'), kubectl-validate $kubectl_validate_version, actionlint $actionlint_version"

phase "relay and chartcheck binaries"
# Built exactly as the Dockerfile builds the image's binary.
CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "-s -w -X main.version=chart-test" -o "$work/relay" ./cmd/relay
go build -buildvcs=false -o "$work/chartcheck" ./scripts/tools/chartcheck

# ---------------------------------------------------------------------------------------------------
passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "   ok    $1"
}
bad() {
	failed=$((failed + 1))
	echo "   FAIL  $1"
	[[ -z ${2:-} ]] || sed 's/^/         /' "$2" | tail -40
}
# check NAME COMMAND...: passes when COMMAND exits 0.
check() {
	local name=$1 log=$work/log
	shift
	if "$@" >"$log" 2>&1; then ok "$name"; else bad "$name" "$log"; fi
}
# check_fails NAME PATTERN COMMAND...: passes when COMMAND fails with output matching PATTERN.
check_fails() {
	local name=$1 pattern=$2 log=$work/log
	shift 2
	if "$@" >"$log" 2>&1; then
		bad "$name (succeeded, should have failed)" "$log"
	elif grep -Eq -- "$pattern" "$log"; then
		ok "$name"
	else
		bad "$name (failed without /$pattern/)" "$log"
	fi
}

# The cases rendered and validated: NAME and helm arguments.
required=(-f "$chart/tests/values/required.yaml")
everything=("${required[@]}"
	--set ingress.enabled=true --set ingress.className=nginx
	--set 'ingress.tls[0].secretName=relay-tls' --set 'ingress.tls[0].hosts[0]=relay.example.com'
	--set autoscaling.enabled=true --set autoscaling.targetMemoryUtilizationPercentage=80
	--set serviceMonitor.enabled=true --set startupProbe.enabled=true
	--set networkPolicy.enabled=true --set networkPolicy.twilioSourceOnly=true
	--set 'networkPolicy.webhookExtraCidrs[0]=203.0.113.0/24' --set 'networkPolicy.admin.namespaces[0]=monitoring'
	--set twilio.basicAuth.username=twilio --set twilio.basicAuth.password=basic-pass
	--set kafka.sasl.mechanism=scram-sha-512 --set kafka.sasl.username=relay --set kafka.sasl.password=kafka-pass
	--set kafka.tls.enabled=true --set kafka.tls.caSecret.name=kafka-ca
	--set kafka.tls.clientCertSecret.name=relay-user
	--set adminAuth.enabled=true --set adminAuth.token=0123456789abcdef0123456789abcdef)
declare -A cases=(
	[minimal]="${required[*]}"
	[spool]="${required[*]} --set spool.enabled=true --set autoscaling.enabled=true --set autoscaling.allowWithSpool=true"
	[everything]="${everything[*]}"
)
for example in "$chart"/examples/*.yaml; do
	cases[example-$(basename "$example" .yaml)]="-f $example"
done
case_names=$(printf '%s\n' "${!cases[@]}" | sort)
set -f # the cases' arguments are split on spaces; "[0]" in them is no glob

template() { helm template relay "$chart" --namespace twilio --kube-version "$kube_version.0" "$@"; }

# relay_check DIR: the real `relay check` on DIR/config.yaml, in the environment of the pod and no other.
relay_check() {
	local dir=$1 vars
	"$work/chartcheck" -out "$dir" <"$dir/manifests.yaml" || return 1
	mapfile -t vars <"$dir/env"
	env -i "${vars[@]}" "$work/relay" check -config "$dir/config.yaml"
}

# ---------------------------------------------------------------------------------------------------
phase "helm lint --strict"
for name in $case_names; do
	[[ $name == minimal || $name == example-* ]] || continue
	# shellcheck disable=SC2086 # the case's arguments are words
	check "lint $name" helm lint --strict "$chart" --kube-version "$kube_version.0" ${cases[$name]}
done

phase "helm-unittest (charts/relay/tests)"
if helm unittest "$chart" >"$work/unittest.log" 2>&1; then status=0; else status=1; fi
summary=$(grep -E '^Tests:' "$work/unittest.log" || true)
u_passed=$(sed -n 's/.* \([0-9]\+\) passed.*/\1/p' <<<"$summary")
u_failed=$(sed -n 's/.* \([0-9]\+\) failed.*/\1/p' <<<"$summary")
u_errored=$(sed -n 's/.* \([0-9]\+\) errored.*/\1/p' <<<"$summary")
passed=$((passed + ${u_passed:-0}))
failed=$((failed + ${u_failed:-0} + ${u_errored:-0}))
echo "   ${summary:-no summary}"
if [[ $status != 0 || -z $u_passed ]]; then
	[[ -n ${u_failed:-}${u_errored:-} ]] || failed=$((failed + 1))
	sed 's/^/         /' "$work/unittest.log" | tail -60
fi

phase "helm template, kubectl-validate $kube_version, relay check"
for name in $case_names; do
	dir=$work/$name
	mkdir -p "$dir"
	# shellcheck disable=SC2086
	if ! template ${cases[$name]} >"$dir/manifests.yaml" 2>"$dir/template.log"; then
		bad "template $name" "$dir/template.log"
		continue
	fi
	ok "template $name ($(grep -c '^kind:' "$dir/manifests.yaml") objects: $(grep '^kind:' "$dir/manifests.yaml" | cut -d' ' -f2 | sort | tr '\n' ' '))"
	check "kubectl-validate $name" kubectl-validate --version "$kube_version" \
		--local-crds "$root/scripts/tools/crds" "$dir/manifests.yaml"
	check "relay check $name" relay_check "$dir"
done

phase "across renders"
annotation() { grep -m1 "$1:" "$2" | awk '{print $2}'; }
template "${required[@]}" --set config.log.level=debug >"$work/debug.yaml"
template "${required[@]}" --set replicaCount=3 >"$work/replicas.yaml"
template "${required[@]}" --set 'twilio.authTokens[0]=rotated' >"$work/rotated.yaml"
base=$work/minimal/manifests.yaml
check "a config change changes checksum/config" \
	test "$(annotation checksum/config "$base")" != "$(annotation checksum/config "$work/debug.yaml")"
check "an unrelated change keeps checksum/config" \
	test "$(annotation checksum/config "$base")" == "$(annotation checksum/config "$work/replicas.yaml")"
check "a token change changes checksum/secret" \
	test "$(annotation checksum/secret "$base")" != "$(annotation checksum/secret "$work/rotated.yaml")"
check "the spool case is a StatefulSet with a claim" \
	grep -q '^  volumeClaimTemplates:' "$work/spool/manifests.yaml"
check "no rendered case holds a token or password" \
	bash -c '! grep -rlE "tok-primary|tok-secondary|basic-pass|kafka-pass" "$1"/*/config.yaml' _ "$work"

# doc KIND NAME FILE: one object of a rendered file.
doc() { awk -v kind="$1" -v name="$2" 'BEGIN { RS = "\n---\n" } $0 ~ "\nkind: " kind "\n" && $0 ~ "\n  name: " name "\n"' "$3"; }
template "${required[@]}" --set service.type=LoadBalancer >"$work/lb.yaml"
check "the webhook Service (LoadBalancer) carries the webhook port only" \
	bash -c '[[ $1 == *"name: webhook"* && $1 != *"name: admin"* && $1 == *"type: LoadBalancer"* ]]' _ "$(doc Service relay "$work/lb.yaml")"
check "the admin port is on the ClusterIP Service relay-metrics" \
	bash -c '[[ $1 == *"name: admin"* && $1 == *"type: ClusterIP"* ]]' _ "$(doc Service relay-metrics "$work/lb.yaml")"
long=relay-$(printf 'a%.0s' {1..57})
template "${required[@]}" --set spool.enabled=true --set fullnameOverride="$long" >"$work/long.yaml"
check "no name over 63 characters with a 63-character fullnameOverride (Services -metrics, -headless cut)" \
	bash -c '! grep -qE "^  name: .{64,}$" "$1" && [[ -n $2 && -n $3 ]]' _ "$work/long.yaml" \
	"$(doc Service "${long:0:55}-metrics" "$work/long.yaml")" "$(doc Service "${long:0:54}-headless" "$work/long.yaml")"
check "plain helm template, without --kube-version, renders" \
	helm template relay "$chart" "${required[@]}"
for name in minimal spool everything; do
	mkdir -p "$work/oldest-$name"
	# shellcheck disable=SC2086
	helm template relay "$chart" --namespace twilio --kube-version "$oldest_kube.0" ${cases[$name]} \
		>"$work/oldest-$name/manifests.yaml" 2>&1 || true
	check "$name on Kubernetes $oldest_kube (the oldest admitted): kubectl-validate $oldest_kube" \
		kubectl-validate --version "$oldest_kube" --local-crds "$root/scripts/tools/crds" "$work/oldest-$name/manifests.yaml"
done
check "before 1.30 (no sleep action) preStop waits with relay drain (POST /drain)" \
	grep -qF '["/relay", "drain", "-admin", "127.0.0.1:9090", "-delay", "10s", "-timeout", "0s"]' "$work/oldest-minimal/manifests.yaml"

# Every sink kind and the shared dedupe tier get their egress rule, and the relay accepts the config.
sinks=("${required[@]}" --set networkPolicy.enabled=true
	--set 'config.sinks[0].name=kafka' --set 'config.sinks[0].kafka.acks=all'
	--set 'config.sinks[1].name=streams' --set 'config.sinks[1].redis.addr=redis-master.data:6380'
	--set 'config.sinks[2].name=jetstream' --set 'config.sinks[2].nats.urls[0]=nats://nats.data'
	--set 'config.sinks[3].name=webhook' --set 'config.sinks[3].http.url=https://hooks.example.net/in'
	--set 'config.dedupe.shared.redis.addr=dedupe-redis.data:6379')
mkdir -p "$work/sinks"
template "${sinks[@]}" >"$work/sinks/manifests.yaml"
check "relay check of a config with Kafka, Redis, NATS and HTTP sinks and the shared tier" relay_check "$work/sinks"
check "egress opens the ports of every sink kind and of the shared dedupe tier" \
	bash -c 'for p in 9092 6380 6379 4222 443; do grep -q "port: $p\$" <<<"$1" || exit 1; done' _ \
	"$(doc NetworkPolicy relay "$work/sinks/manifests.yaml")"

# The Strimzi example's KafkaTopic objects: valid, and one for every topic its configuration writes to.
topics=$chart/examples/strimzi/kafkatopics.yaml
check "examples/strimzi/kafkatopics.yaml: kubectl-validate (KafkaTopic kafka.strimzi.io/v1)" \
	kubectl-validate --version "$kube_version" --local-crds "$root/scripts/tools/crds" "$topics"
check "examples/strimzi/kafkatopics.yaml holds every topic of example-strimzi's routes and dead_letter" \
	diff <(sed -n 's/^ *topic: //p' "$work/example-strimzi/config.yaml" | sort -u) \
	<(sed -n 's/^  name: //p' "$topics" | sort -u)

phase "failures that must happen"
check_fails "no values: publicUrl is required" "publicUrl is required" template
# Settings that would strand events or expose the admin port (each also a helm-unittest case).
check_fails "spool + HPA without autoscaling.allowWithSpool" "set autoscaling.allowWithSpool=true" \
	template "${required[@]}" --set spool.enabled=true --set autoscaling.enabled=true
check_fails "a grace period shorter than the spool's drain" "spool.drainTimeoutSeconds" \
	template "${required[@]}" --set spool.enabled=true --set terminationGracePeriodSeconds=60
check_fails "Ingress: publicUrl's path is not the endpoint's" "Twilio calls /hooks/twilio" \
	template "${required[@]}" --set publicUrl=https://relay.example.com/hooks/twilio --set ingress.enabled=true
check_fails "Ingress: ingress.paths without publicUrl's path" "does not route /twilio/events, the path Twilio calls" \
	template "${required[@]}" --set ingress.enabled=true --set 'ingress.paths[0]=/twilio'
check_fails "NetworkPolicy + ServiceMonitor without admin namespaces" "networkPolicy.admin.namespaces" \
	template "${required[@]}" --set networkPolicy.enabled=true --set serviceMonitor.enabled=true
check_fails "NetworkPolicy: a sink address without a readable port" "list the ports in networkPolicy.egress.redisPorts" \
	template "${sinks[@]}" --set 'config.sinks[1].redis.addr=${REDIS_ADDR}'
check_fails "podLabels repeating a selector key" "app.kubernetes.io/name is a selector label" \
	template "${required[@]}" --set 'podLabels.app\.kubernetes\.io/name=other'
check_fails "a memory limit GOMEMLIMIT cannot be computed from" "resources.limits.memory: cannot read" \
	template "${required[@]}" --set resources.limits.memory=lots
check_fails "schema: unknown value" "additional properties 'replicas' not allowed" template "${required[@]}" --set replicas=3
check_fails "schema: admin listener on loopback" "/config/admin/listen" \
	template "${required[@]}" --set config.admin.listen=127.0.0.1:9090
check_fails "schema: unknown SASL mechanism" "/kafka/sasl/mechanism" \
	template "${required[@]}" --set kafka.sasl.mechanism=gssapi
mkdir -p "$work/deadline"
template "${required[@]}" --set config.limits.request_deadline=5s >"$work/deadline/manifests.yaml"
check_fails "relay check: a config the chart cannot judge" "limits.request_deadline: 5s must be above 0 and below" \
	relay_check "$work/deadline"
mkdir -p "$work/unset"
template "${required[@]}" --set 'config.endpoints[0].name=events' --set 'config.endpoints[0].path=/twilio/events' \
	--set 'config.endpoints[0].auth_tokens[0]=${OTHER_TOKENS}' >"$work/unset/manifests.yaml"
check_fails "relay check: a \${VAR} the pod does not set" "environment variable OTHER_TOKENS is not set" \
	relay_check "$work/unset"

phase "the relay as the Dockerfile builds it"
check "relay version is stamped" grep -qx "relay chart-test" <("$work/relay" version)
check "relay binary is static (CGO_ENABLED=0)" bash -c 'go version -m "$1" | grep -q "CGO_ENABLED=0"' _ "$work/relay"
check "the image's config.yaml passes relay check" \
	env -i TWILIO_AUTH_TOKENS=placeholder RELAY_CONFIG="$root/config.yaml" "$work/relay" check

phase "the image without Docker (scripts/image.sh), read back with go-containerregistry"
app_version=$(sed -n 's/^appVersion: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart/Chart.yaml")
ref=ghcr.io/relaykit/twilio-relay:$app_version
ca=/etc/ssl/certs/ca-certificates.crt
if RELAY_TOOLS=$tools scripts/image.sh -v "$app_version" -o "$work/image.tar" >"$work/image.log" 2>&1 &&
	"$bin/ocibuild-inspect" -tag "$ref" -extract /relay="$work/image-relay" \
		-extract /etc/relay/config.yaml="$work/image-config.yaml" "$work/image.tar" >"$work/image.txt" 2>>"$work/image.log"; then
	ok "scripts/image.sh -v $app_version: $(du -h "$work/image.tar" | cut -f1) tarball, read back as $ref"
	sed 's/^/         /' "$work/image.txt"
else
	bad "scripts/image.sh, or reading its tarball back" "$work/image.log"
fi
line() { grep -qxF -- "$1" "$work/image.txt"; }
check "image: the tag is the chart's default image (appVersion)" grep -q "image: \"$ref\"" "$work/minimal/manifests.yaml"
check "image: docker load's manifest.json names the tag" \
	bash -c 'tar -xOf "$1" manifest.json | grep -qF "\"RepoTags\":[\"$2\"]"' _ "$work/image.tar" "$ref"
check "image: entrypoint [\"/relay\"], cmd [\"serve\"]" \
	bash -c 'grep -qxF "entrypoint [\"/relay\"]" "$1" && grep -qxF "cmd [\"serve\"]" "$1"' _ "$work/image.txt"
check "image: user 65532:65532" line "user 65532:65532"
check "image: env RELAY_CONFIG=/etc/relay/config.yaml" line "env RELAY_CONFIG=/etc/relay/config.yaml"
check "image: /relay, mode 0755, root's" grep -qE '^file /relay 0755 0:0 [0-9]+ sha256:' "$work/image.txt"
check "image: /etc/relay/config.yaml is the repository's config.yaml" cmp "$root/config.yaml" "$work/image-config.yaml"
check "image: the CA bundle at $ca" \
	line "file $ca 0644 0:0 $(stat -c %s "$ca") sha256:$(sha256sum "$ca" | cut -d' ' -f1)"
check "image: /tmp, mode 1777" line "dir /tmp 1777 0:0"
check "image: its /relay runs: relay version says $app_version" grep -qx "relay $app_version" <("$work/image-relay" version)
check "image: its /relay is static (CGO_ENABLED=0, -trimpath)" \
	bash -c 'go version -m "$1" | grep -q "CGO_ENABLED=0" && go version -m "$1" | grep -q -- "-trimpath=true"' _ "$work/image-relay"
# The Dockerfile builds the same image.
df=$root/Dockerfile
check "Dockerfile: ENTRYPOINT, CMD, USER and ENV as in the image" bash -c '
	[[ "entrypoint $(sed -n "s/^ENTRYPOINT //p" "$1")" == "$(grep ^entrypoint "$2")" &&
		"cmd $(sed -n "s/^CMD //p" "$1")" == "$(grep ^cmd "$2")" &&
		"user $(sed -n "s/^USER //p" "$1")" == "$(grep ^user "$2")" &&
		"env $(sed -n "s/^ENV //p" "$1")" == "$(grep ^env "$2")" ]]' _ "$df" "$work/image.txt"
check "Dockerfile: cross-compiles (FROM --platform=\$BUILDPLATFORM, GOOS/GOARCH from TARGETOS/TARGETARCH)" bash -c '
	grep -q "^FROM --platform=\$BUILDPLATFORM " "$1" && grep -q "GOOS=\$TARGETOS GOARCH=\$TARGETARCH" "$1"' _ "$df"
check "Dockerfile: the golang image is pinned at go.mod's Go version" \
	grep -q "^FROM --platform=\$BUILDPLATFORM golang:$(sed -n 's/^go //p' "$root/go.mod")-" "$df"

phase "actionlint $actionlint_version (.github/workflows)"
check "actionlint$(command -v shellcheck >/dev/null && echo ' (with shellcheck)')" \
	bash -c 'cd "$1" && actionlint -color=false' _ "$root"
check "release.yml: image tag, relay version and appVersion are the tag without v" bash -c '
	grep -q "version=\${TAG#v}" "$1" && grep -q -- "--app-version \"\$VERSION\"" "$1" &&
		grep -q "VERSION=\${{ needs.version.outputs.version }}" "$1"' _ "$root/.github/workflows/release.yml"

phase "done"
echo "chart: $passed passed, $failed failed"
[[ $failed == 0 ]]
