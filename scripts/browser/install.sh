#!/usr/bin/env bash
# Installs the browser the inspector's end-to-end test drives (cmd/relay TestInspectorInBrowser): Debian's
# chromium, headless. Idempotent: a chromium already on PATH is left alone, and apt-get runs only when it
# is missing. Exits 1 when it cannot be installed (no apt-get, no package): scripts/test.sh then lets the
# test skip with that message instead of failing.
#
#   scripts/browser/install.sh
#
# Runs apt-get through sudo when not root. Output goes to stderr.
set -euo pipefail

die() {
	echo "browser/install.sh: $*" >&2
	exit 1
}

if ! command -v chromium >/dev/null 2>&1; then
	command -v apt-get >/dev/null 2>&1 || die "no chromium and no apt-get: install chromium with your package manager"
	sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "no chromium: run as root or install sudo"
		sudo=(sudo)
	fi
	echo "browser/install.sh: installing chromium" >&2
	"${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2 ||
		die "apt-get install chromium failed"
fi
command -v chromium >/dev/null 2>&1 || die "chromium still not on PATH after installing"
echo "browser/install.sh: $(chromium --version 2>/dev/null | head -n 1)" >&2
