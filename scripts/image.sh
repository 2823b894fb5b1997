#!/usr/bin/env bash
# The relay's container image without Docker: a tarball that `docker load -i` and
# `ctr -n k8s.io images import` take, with the same layout as the Dockerfile's image.
#
#   scripts/image.sh [-v VERSION] [-a ARCH] [-o FILE]
#
#   -v VERSION  stamped into the binary (relay version) and the tag; default: `git describe --tags
#               --always --dirty` without a leading "v" (tag v1.2.3 gives 1.2.3, the chart's appVersion
#               and the image tag the release workflow publishes)
#   -a ARCH     GOARCH of the image (amd64, arm64, ...); default: this machine's
#   -o FILE     the tarball; default: dist/twilio-relay-VERSION-linux-ARCH.tar
#   IMAGE       environment: the repository, default ghcr.io/relaykit/twilio-relay; the tag is
#               $IMAGE:VERSION
#   SOURCE_DATE_EPOCH  environment: the time of the image and its files (default 0), for reproducible
#               digests
#
# The image: /relay (static: CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=VERSION",
# as in the Dockerfile), ENTRYPOINT ["/relay"], CMD ["serve"], /etc/relay/config.yaml (the repository's
# config.yaml), ENV RELAY_CONFIG=/etc/relay/config.yaml, USER 65532:65532, the CA bundle
# /etc/ssl/certs/ca-certificates.crt (from this machine: TLS to managed Kafka, Redis, HTTP sinks), an
# empty /tmp (1777), ports 8080 and 9090, OCI labels. It prints the tarball's path last.
#
# The image is written by scripts/tools/ocibuild (its own Go module, go-containerregistry), built into
# ${RELAY_TOOLS:-~/.cache/twilio-relay/tools}/bin on first use. scripts/test-chart.sh reads the tarball
# back with scripts/tools/ocibuild/inspect and runs the binary in it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
version=${version#v}
arch=$(go env GOARCH)
out=""
while getopts "v:a:o:" opt; do
	case $opt in
	v) version=${OPTARG#v} ;;
	a) arch=$OPTARG ;;
	o) out=$OPTARG ;;
	*)
		sed -n '2,25s/^# \{0,1\}//p' "$0" >&2
		exit 2
		;;
	esac
done
image=${IMAGE:-ghcr.io/relaykit/twilio-relay}
out=${out:-dist/twilio-relay-$version-linux-$arch.tar}
ca=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca ]] || {
	echo "image.sh: $ca is missing (Debian/Ubuntu: apt-get install ca-certificates)" >&2
	exit 1
}

# ocibuild, built once per version of its sources.
bin=${RELAY_TOOLS:-$HOME/.cache/twilio-relay/tools}/bin
src=$root/scripts/tools/ocibuild
stamp=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go "$src"/inspect/*.go | sha256sum | cut -c1-12)
if [[ ! -x $bin/ocibuild || ! -x $bin/ocibuild-inspect || $(cat "$bin/.ocibuild" 2>/dev/null) != "$stamp" ]]; then
	mkdir -p "$bin"
	(cd "$src" && go build -buildvcs=false -trimpath -o "$bin/ocibuild" . && go build -buildvcs=false -trimpath -o "$bin/ocibuild-inspect" ./inspect)
	echo "$stamp" >"$bin/.ocibuild"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -buildvcs=false -trimpath \
	-ldflags "-s -w -X main.version=$version" -o "$work/relay" ./cmd/relay

mkdir -p "$(dirname "$out")"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
"$bin/ocibuild" -binary "$work/relay" -entrypoint '["/relay"]' -cmd '["serve"]' \
	-file "$root/config.yaml:/etc/relay/config.yaml" -file "$ca:$ca" -dir /tmp:1777 \
	-env RELAY_CONFIG=/etc/relay/config.yaml -user 65532:65532 -expose 8080/tcp -expose 9090/tcp \
	-label org.opencontainers.image.title=twilio-relay \
	-label org.opencontainers.image.source=https://github.com/relaykit/twilio-relay \
	-label "org.opencontainers.image.version=$version" \
	-label "org.opencontainers.image.revision=$revision" \
	-tag "$image:$version" -platform "linux/$arch" -o "$out"
echo "$out"
