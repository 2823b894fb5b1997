#!/usr/bin/env bash
# Builds the binaries of a single-node Kubernetes from the Go module proxy into a cache directory and
# prints that bin directory as the only line on stdout. Everything else goes to stderr.
#
#   RELAY_K8S_BIN=$(scripts/k8s/build.sh)
#
# What it provides:
#   - kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl, the upstream commands
#     of k8s.io/kubernetes built from the wrapper module scripts/k8s/kube (the version is its go.mod's);
#   - etcd, the upstream command of go.etcd.io/etcd/server/v3, from the wrapper module scripts/k8s/etcd;
#   - with RELAY_K8S_RUNTIME=1 (what scripts/k8s/cluster.sh needs to run pods): Debian's containerd, runc and
#     containernetworking-plugins, installed with apt-get when missing (through sudo when not root).
#
# Environment:
#   RELAY_K8S_CACHE  cache root (default: $HOME/.cache/twilio-relay); binaries go to
#                    $RELAY_K8S_CACHE/k8s-<kubernetes version>-etcd-<etcd version>/bin
#   RELAY_K8S_RUNTIME=1  also install the container runtime packages
#
# Idempotent: each binary has a marker holding the versions and a hash of the wrapper modules' go.mod
# and go.sum; editing either rebuilds. Builds run under `nice` one after the other (so the figure of each
# is its own; the first pays for the packages they share) and their times go to build-times.txt next to
# bin/. Cold on 2 shared cores: see docs/deploy-kubernetes.md ("tested on a real node").
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${RELAY_K8S_CACHE:-${HOME:?HOME is not set}/.cache/twilio-relay}

die() {
	echo "build.sh: $*" >&2
	exit 1
}

# module_version DIR MODULE: the version DIR/go.mod requires of MODULE.
module_version() {
	sed -n "s#^\t$2 \(v[^ ]*\).*#\1#p; s#^require $2 \(v[^ ]*\).*#\1#p" "$1/go.mod" | head -1
}
kube_version=$(module_version "$script_dir/kube" k8s.io/kubernetes)
etcd_version=$(module_version "$script_dir/etcd" go.etcd.io/etcd/server/v3)
[[ -n $kube_version && -n $etcd_version ]] || die "cannot read the versions from $script_dir/{kube,etcd}/go.mod"

base=$cache/k8s-$kube_version-etcd-$etcd_version
bin=$base/bin
mkdir -p "$bin" "$base/logs"

install_runtime() {
	local missing=() sudo=()
	command -v containerd >/dev/null 2>&1 || missing+=(containerd)
	command -v runc >/dev/null 2>&1 || missing+=(runc)
	[[ -x /usr/lib/cni/loopback || -x /opt/cni/bin/loopback ]] || missing+=(containernetworking-plugins)
	((${#missing[@]} > 0)) || return 0
	command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them with your package manager"
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root or install sudo"
		sudo=(sudo)
	fi
	echo "build.sh: installing ${missing[*]}" >&2
	"${sudo[@]}" apt-get update -qq >&2
	# containerd's package may try to start a system-wide daemon; cluster.sh never uses it.
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
if [[ ${RELAY_K8S_RUNTIME:-} == 1 ]]; then
	install_runtime
fi

stamp="kubernetes=$kube_version etcd=$etcd_version $(go env GOVERSION) mod-sha256=$(cat "$script_dir"/kube/go.{mod,sum} "$script_dir"/etcd/go.{mod,sum} | sha256sum | cut -c1-16)"

# Serialise concurrent runs sharing the cache.
exec 9>"$base/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

# Helm and kubectl read the server's version from these; without them it is v0.0.0 and Helm refuses the
# chart's kubeVersion. Static binaries (like upstream's release builds of the control plane).
minor=${kube_version#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done

# build NAME MODULE_DIR PACKAGE [LDFLAGS]
build() {
	local name=$1 dir=$2 pkg=$3 flags=${4:-"-s -w"} begin=$SECONDS
	if [[ -x $bin/$name && -f $bin/.$name && $(cat "$bin/.$name") == "$stamp" ]]; then
		return
	fi
	echo "build.sh: building $name ($pkg; log: $base/logs/$name.log)" >&2
	rm -f "$bin/.$name"
	if ! (cd "$dir" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "$flags" -o "$bin/$name.tmp" "$pkg") \
		>"$base/logs/$name.log" 2>&1; then
		tail -40 "$base/logs/$name.log" >&2
		die "building $name failed"
	fi
	mv "$bin/$name.tmp" "$bin/$name"
	echo "$stamp" >"$bin/.$name"
	local took=$((SECONDS - begin))
	echo "build.sh: $name built in $((took / 60))m$((took % 60))s" >&2
	echo "$(date -u +%FT%TZ) $name $((took / 60))m$((took % 60))s $(du -m "$bin/$name" | cut -f1)MB $stamp" >>"$base/build-times.txt"
}

build etcd "$script_dir/etcd" go.etcd.io/etcd/server/v3
for name in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
	build "$name" "$script_dir/kube" "k8s.io/kubernetes/cmd/$name" "$ldflags"
done
echo "$bin"
