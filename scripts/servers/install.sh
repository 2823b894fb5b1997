#!/usr/bin/env bash
# Installs the servers the sink integration tests run against, from the distribution's packages:
# redis-server (relay/redis) and nats-server (relay/nats; needs JetStream, nats-server -js).
# Idempotent: a server already on PATH is left alone, and apt-get runs only when something is missing.
#
#   scripts/servers/install.sh
#
# Runs apt-get through sudo when not root. Output goes to stderr.
set -euo pipefail

die() {
	echo "install.sh: $*" >&2
	exit 1
}

declare -A pkg_of=([redis-server]=redis-server [nats-server]=nats-server)
missing=()
for bin in redis-server nats-server; do
	command -v "$bin" >/dev/null 2>&1 || missing+=("${pkg_of[$bin]}")
done

if ((${#missing[@]} > 0)); then
	command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them with your package manager"
	sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root or install sudo"
		sudo=(sudo)
	fi
	echo "install.sh: installing ${missing[*]}" >&2
	"${sudo[@]}" apt-get update -qq >&2
	# The packages' init scripts may try to start a system-wide server; the tests never use it.
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

for bin in redis-server nats-server; do
	command -v "$bin" >/dev/null 2>&1 || die "$bin still not on PATH after installing"
done
echo "install.sh: $(redis-server --version | cut -d' ' -f1-3), nats-server $(nats-server --version 2>&1 | awk '{print $NF}')" >&2
