#!/usr/bin/env bash
# shellcheck disable=SC2317 # teardown, stop and the readiness checks run from traps and wait_for
# A single-node Kubernetes for tests, on 127.0.0.1, with every process and every byte of state under DIR.
#
#   scripts/k8s/cluster.sh node DIR        # etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet
#   scripts/k8s/cluster.sh apiserver DIR   # etcd and kube-apiserver only: server-side dry-runs, no containers
#
# It runs in the foreground. Once the API server answers (and, for `node`, the node is Ready) it writes
# DIR/kubeconfig (cluster-admin) and DIR/ready, and prints `export KUBECONFIG=DIR/kubeconfig`. It stops
# everything on SIGTERM or SIGINT, or when any component exits, and then exits (1 if a component died).
# Logs: DIR/logs/<component>.log. The Go harness relay/relaytest/kube drives it; by hand:
#
#   scripts/k8s/cluster.sh node /tmp/k8s & ; export KUBECONFIG=/tmp/k8s/kubeconfig; kubectl get nodes
#
# Environment:
#   RELAY_K8S_BIN     binaries (default: what scripts/k8s/build.sh prints; built on first use)
#   RELAY_K8S_IMAGES  image tarballs (OCI/docker archives) imported into containerd before the kubelet
#                     starts; one must be the pod sandbox image RELAY_K8S_PAUSE_IMAGE (node only)
#   RELAY_K8S_PAUSE_IMAGE  the sandbox ("pause") image reference (default: relay.local/pause:1)
#
# Isolation. The script re-runs itself as the first process of new PID and mount namespaces (unshare,
# root only): every process it starts, containerd's shims and the pods' containers included, dies with it
# whatever ends it (SIGKILL too), and every mount (secret volumes, a private /run/containerd) vanishes
# with it. It listens only on 127.0.0.1 (free ports). Nothing is left outside DIR but the empty mount
# points /run/containerd and /var/log/containers (created if missing): the stop deletes the containers'
# tasks, and runc their cgroups (/k8s.io/<id> in each hierarchy; the IDs are listed in DIR/containers);
# after a SIGKILL, empty cgroup directories can remain.
#
# What it cannot do (one node, no pod network): the CNI configuration holds only the loopback plugin (enough
# for the node to be Ready), so pods must use hostNetwork: their ports are the machine's, and two pods with
# the same port cannot run at once. Services get a ClusterIP but nothing routes to it (no kube-proxy, no
# cluster DNS); no Ingress controller, no LoadBalancer; PersistentVolumes must be made by hand (hostPath, no
# provisioner). The node's address is the machine's own (the kubelet refuses a loopback one): the pods'
# probes and hooks go there. `kubectl logs/exec` do not work (the kubelet listens on 127.0.0.1 only): the
# containers' logs are under DIR/pod-logs/<namespace>_<pod>_<uid>/<container>/.
set -euo pipefail

mode=${1:-}
dir=${2:-}
if [[ $mode != node && $mode != apiserver ]] || [[ -z $dir ]]; then
	echo "usage: $0 node|apiserver DIR" >&2
	exit 2
fi
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

# Refusals that mean "this machine cannot run it" exit 3 with the reason, so that tests can skip on it.
refuse() {
	echo "cluster.sh: cannot run a cluster here: $*" >&2
	exit 3
}

if [[ -z ${RELAY_K8S_IN_NAMESPACE:-} ]]; then
	[[ $(id -u) == 0 ]] || refuse "needs root (PID and mount namespaces; the kubelet and containerd)"
	unshare --pid --mount --fork true 2>/dev/null || refuse "unshare --pid --mount is not permitted"
	if [[ -z ${RELAY_K8S_BIN:-} ]]; then
		RELAY_K8S_BIN=$(RELAY_K8S_RUNTIME=$([[ $mode == node ]] && echo 1) "$script_dir/build.sh")
	fi
	export RELAY_K8S_BIN RELAY_K8S_IN_NAMESPACE=1
	# --kill-child: this namespace's first process gets SIGKILL when unshare dies, and the kernel kills
	# every other process of the namespace when the first one exits.
	exec unshare --pid --mount --fork --kill-child --mount-proc --propagation private "$0" "$@"
fi

bin=$RELAY_K8S_BIN
export PATH=$bin:$PATH
for b in etcd kube-apiserver; do
	[[ -x $bin/$b ]] || die "no $bin/$b (run scripts/k8s/build.sh)"
done
pause_image=${RELAY_K8S_PAUSE_IMAGE:-relay.local/pause:1}
node_name=relay-node
logs=$dir/logs
pki=$dir/pki
mkdir -p "$logs" "$pki"
rm -f "$dir/ready"
begin=$SECONDS
log() { echo "cluster.sh: [$((SECONDS - begin))s] $*" >&2; }

# Every component runs as its own job (job control gives each its own process group, so that a ^C or a
# SIGTERM reaches this script only and the teardown can stop them in order).
set -m
declare -A pids=()
start() {
	local name=$1
	shift
	"$@" >"$logs/$name.log" 2>&1 &
	pids[$name]=$!
}

# stop NAME...: SIGTERM, then SIGKILL after 10 s.
stop() {
	local name pid
	for name in "$@"; do
		pid=${pids[$name]:-}
		[[ -n $pid ]] || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		unset "pids[$name]"
	done
}

teardown() {
	local status=$?
	trap - EXIT TERM INT
	set +m # no job notices while stopping
	log "stopping"
	stop kubelet
	if [[ -n ${pids[containerd]:-} ]]; then
		# The pods' containers, so that runc removes their cgroups (the namespace's end would kill them anyway).
		local ids
		ids=$(ctr -a "$dir/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null || true)
		echo "$ids" >>"$dir/containers"
		for id in $ids; do
			ctr -a "$dir/containerd/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		for id in $ids; do
			for _ in $(seq 50); do
				ctr -a "$dir/containerd/containerd.sock" -n k8s.io tasks delete "$id" >/dev/null 2>&1 && break
				sleep 0.1
			done
		done
	fi
	stop containerd kube-scheduler kube-controller-manager kube-apiserver etcd
	# containerd puts the containers' cgroups under /k8s.io (its namespace) in every hierarchy; runc removed
	# them with the tasks, and the parents go when no other cluster uses them.
	rmdir /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/k8s.io 2>/dev/null || true
	log "stopped"
	exit "$status"
}
trap teardown EXIT
trap 'exit 0' TERM INT

# free_port: a TCP port nothing listens on, not handed out before by this run, below the kernel's
# ephemeral range (ip_local_port_range), where every other test's ":0" listener and every outgoing
# connection take theirs: a port from that range can be taken between this check and the bind.
declare -A taken=()
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
port_low=$((ephemeral_low > 22000 ? 12000 : 2000))
port_high=$((ephemeral_low > 22000 ? ephemeral_low - 1 : 9999))
free_port() {
	local p
	while :; do
		p=$((port_low + RANDOM % (port_high - port_low)))
		[[ -z ${taken[$p]:-} ]] || continue
		[[ -z $(ss -Htln "sport = :$p") ]] || continue
		taken[$p]=1
		echo "$p"
		return
	done
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 0.2 s; dies naming WHAT after SECONDS, or as soon
# as a component has exited.
wait_for() {
	local what=$1 limit=$2 name
	shift 2
	local until=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		for name in "${!pids[@]}"; do
			kill -0 "${pids[$name]}" 2>/dev/null ||
				die "$name exited while waiting for $what; tail of $logs/$name.log:
$(tail -20 "$logs/$name.log")"
		done
		((SECONDS < until)) || die "$what not ready after ${limit}s"
		sleep 0.2
	done
}

# --- credentials: a CA, the API server's certificate, the service-account key, static tokens ----------
openssl_quiet() { openssl "$@" 2>>"$logs/openssl.log"; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=relay-k8s-ca" \
	-keyout "$pki/ca.key" -out "$pki/ca.crt"
openssl_quiet req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
	-keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' >"$pki/san.ext"
openssl_quiet x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
	-days 2 -extfile "$pki/san.ext" -out "$pki/apiserver.crt"
openssl_quiet genrsa -out "$pki/sa.key" 2048

declare -A tokens=()
for who in admin controller-manager scheduler kubelet; do
	tokens[$who]=$(openssl rand -hex 24)
done
cat >"$pki/tokens.csv" <<EOF
${tokens[admin]},admin,admin,"system:masters"
${tokens[controller-manager]},system:kube-controller-manager,kcm
${tokens[scheduler]},system:kube-scheduler,scheduler
${tokens[kubelet]},system:node:$node_name,kubelet,"system:nodes"
EOF
chmod 600 "$pki"/*.key "$pki/tokens.csv"

etcd_port=$(free_port)
etcd_peer_port=$(free_port)
api_port=$(free_port)
server=https://127.0.0.1:$api_port

# kubeconfig FILE WHO
kubeconfig() {
	cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: relay-k8s
    cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
  - name: $2
    user: {token: "${tokens[$2]}"}
contexts:
  - name: relay-k8s
    context: {cluster: relay-k8s, user: $2, namespace: default}
current-context: relay-k8s
EOF
	chmod 600 "$1"
}
for who in controller-manager scheduler kubelet; do
	kubeconfig "$dir/$who.kubeconfig" "$who"
done
kubeconfig "$dir/admin.kubeconfig" admin

# --- control plane -----------------------------------------------------------------------------------
log "etcd on 127.0.0.1:$etcd_port"
start etcd etcd --name relay-k8s --data-dir "$dir/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster "relay-k8s=http://127.0.0.1:$etcd_peer_port" \
	--listen-metrics-urls "" --unsafe-no-fsync --quota-backend-bytes $((512 << 20))
wait_for etcd 60 curl -sf "http://127.0.0.1:$etcd_port/health"

log "kube-apiserver on $server"
start kube-apiserver kube-apiserver \
	--etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
	--authorization-mode Node,RBAC \
	--service-account-key-file "$pki/sa.key" --service-account-signing-key-file "$pki/sa.key" \
	--service-account-issuer https://kubernetes.default.svc \
	--service-cluster-ip-range 10.96.0.0/24 \
	--endpoint-reconciler-type none --profiling=false
admin_curl() { curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer ${tokens[admin]}" "$server$1"; }
wait_for kube-apiserver 120 admin_curl /readyz

if [[ $mode == node ]]; then
	log "controller-manager and scheduler"
	start kube-controller-manager kube-controller-manager --kubeconfig "$dir/controller-manager.kubeconfig" \
		--secure-port 0 --leader-elect=false --use-service-account-credentials \
		--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
		--profiling=false
	start kube-scheduler kube-scheduler --kubeconfig "$dir/scheduler.kubeconfig" \
		--secure-port 0 --leader-elect=false --profiling=false
fi

# --- containerd and the kubelet ------------------------------------------------------------------------
if [[ $mode == node ]]; then
	for b in kube-controller-manager kube-scheduler kubelet kubectl; do
		[[ -x $bin/$b ]] || die "no $bin/$b (run scripts/k8s/build.sh)"
	done
	if ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
		refuse "containerd and runc are not installed (RELAY_K8S_RUNTIME=1 scripts/k8s/build.sh installs them)"
	fi
	cni_bin=/usr/lib/cni
	[[ -x $cni_bin/loopback ]] || cni_bin=/opt/cni/bin
	[[ -x $cni_bin/loopback ]] || refuse "no CNI loopback plugin (containernetworking-plugins)"

	# containerd's shims and runc keep state under /run/containerd whatever the configuration says: a
	# private tmpfs there (this mount namespace's own) leaves nothing behind. The kubelet's symlinks to
	# container logs go to /var/log/containers, always: the same.
	mkdir -p /run/containerd /var/log/containers
	mount -t tmpfs -o mode=0711 relay-k8s /run/containerd
	mount -t tmpfs -o mode=0755 relay-k8s /var/log/containers

	ctrd=$dir/containerd
	mkdir -p "$ctrd" "$dir/cni" "$dir/pod-logs" "$dir/kubelet"
	cat >"$dir/cni/10-loopback.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "loopback", "plugins": [{"type": "loopback"}]}
EOF
	cat >"$ctrd/config.toml" <<EOF
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri.aufs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$ctrd/containerd.sock"
[ttrpc]
  address = "$ctrd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Without it every pod sandbox fails with runc's "can't get final child's PID from pipe" on machines
  # that may not lower oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$cni_bin"
    conf_dir = "$dir/cni"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd/opt"
EOF
	log "containerd ($ctrd/containerd.sock)"
	start containerd containerd --config "$ctrd/config.toml"
	ctr_() { ctr -a "$ctrd/containerd.sock" -n k8s.io "$@"; }
	wait_for containerd 60 ctr_ version
	for image in ${RELAY_K8S_IMAGES:-}; do
		ctr_ images import --snapshotter native "$image" >>"$logs/images.log" 2>&1 || die "importing $image failed: $(tail -5 "$logs/images.log")"
	done
	images=$(ctr_ images ls -q)
	grep -qxF "$pause_image" <<<"$images" ||
		die "the sandbox image $pause_image is not among the imported images (RELAY_K8S_IMAGES): $(tr '\n' ' ' <<<"$images")"

	# The kubelet refuses a loopback node IP, and a node without an address gives host-network pods no IP,
	# so that their httpGet hooks fail (probes happen to work). The machine's own address it is: probes and
	# hooks go there, and never leave the machine.
	dev=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
	node_ip=$(ip -4 -o addr show ${dev:+dev "$dev"} scope global | awk '{sub("/.*", "", $4); print $4; exit}')
	[[ -n $node_ip ]] || refuse "no IPv4 address but loopback for the node (the kubelet refuses 127.0.0.1)"
	kubelet_port=$(free_port)
	cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kubelet_port
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$ctrd/containerd.sock
podLogsDir: $dir/pod-logs
# cgroup v1 or v2 without systemd: plain cgroupfs, no QoS tree, no allocatable enforcement (containerd
# puts each container's cgroup under /k8s.io/<container id>).
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
# The kubelet cannot read the image filesystem's usage under every sandbox: evict on nothing.
evictionHard: {memory.available: "1Mi", nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
serializeImagePulls: false
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
resolvConf: /etc/resolv.conf
EOF
	log "kubelet (node $node_name)"
	start kubelet kubelet --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet.kubeconfig" \
		--root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" \
		--hostname-override "$node_name" --node-ip "$node_ip"
	node_ready() {
		[[ $(kubectl --kubeconfig "$dir/admin.kubeconfig" get node "$node_name" \
			-o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
	}
	wait_for "node $node_name Ready" 180 node_ready

	# A Ready node does not prove that containers run here: a pod of the sandbox image must. If it cannot,
	# this machine refuses containers (say, no namespaces for runc): exit 3 with the runtime's reason.
	kubectl_() { kubectl --kubeconfig "$dir/admin.kubeconfig" "$@"; }
	wait_for "the default ServiceAccount" 60 kubectl_ -n default get serviceaccount default
	kubectl_ -n default run relay-k8s-probe --image "$pause_image" --image-pull-policy Never --restart Never \
		--overrides '{"spec": {"hostNetwork": true, "automountServiceAccountToken": false}}' >/dev/null
	if ! kubectl_ -n default wait pod/relay-k8s-probe --for condition=Ready --timeout 90s >/dev/null 2>&1; then
		refuse "a pod of $pause_image did not start: $(kubectl_ -n default get events \
			--field-selector involvedObject.name=relay-k8s-probe -o 'jsonpath={range .items[*]}{.reason}: {.message}; {end}')"
	fi
	kubectl_ -n default delete pod relay-k8s-probe --grace-period 1 --wait=false >/dev/null
	log "a pod ran"
fi

cp "$dir/admin.kubeconfig" "$dir/kubeconfig"
echo "ready in $((SECONDS - begin))s ($mode)" >"$dir/ready"
log "ready ($mode)"
echo "export KUBECONFIG=$dir/kubeconfig"

# Until told to stop, or until a component exits.
set +e
wait -n "${pids[@]}"
for name in "${!pids[@]}"; do
	if ! kill -0 "${pids[$name]}" 2>/dev/null; then
		log "$name exited; tail of $logs/$name.log:"
		tail -20 "$logs/$name.log" >&2
	fi
done
exit 1
