#!/usr/bin/env bash
# Fetches the jars of an Apache Kafka broker (KRaft) from Maven Central into a cache directory and
# prints that libs directory as the only line on stdout. Everything else goes to stderr.
#
#   RELAY_KAFKA_LIBS=$(scripts/kafka/fetch.sh) go test ./...
#
# Environment:
#   RELAY_KAFKA_CACHE    cache root (default: $HOME/.cache/twilio-relay)
#   RELAY_KAFKA_VERSION  org.apache.kafka:kafka_2.13 version (default: 4.1.1)
#   MVN                  maven command (default: mvn)
#
# Idempotent: a marker file is written after a complete download; later runs only print the path.
# The marker records a hash of pom.xml, so editing the pom triggers a fresh download.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom="$script_dir/pom.xml"
version=${RELAY_KAFKA_VERSION:-4.1.1}
cache=${RELAY_KAFKA_CACHE:-${HOME:?HOME is not set}/.cache/twilio-relay}
base="$cache/kafka-$version"
libs="$base/libs"
marker="$libs/.complete"
mvn=${MVN:-mvn}

die() {
	echo "fetch.sh: $*" >&2
	exit 1
}

[[ -f $pom ]] || die "missing $pom"
stamp="kafka_2.13=$version pom-sha256=$(sha256sum "$pom" | cut -d' ' -f1)"

complete() {
	[[ -f $marker && "$(cat "$marker")" == "$stamp" && -f "$libs/kafka_2.13-$version.jar" ]]
}

if complete; then
	echo "$libs"
	exit 0
fi

command -v java >/dev/null 2>&1 || die "java not found (Kafka $version needs Java 17+)"
command -v "$mvn" >/dev/null 2>&1 || die "maven ('$mvn') not found; install it (e.g. apt-get install maven)"

mkdir -p "$base"
# Serialise concurrent runs (e.g. parallel CI jobs sharing a cache).
exec 9>"$base/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if complete; then # another run finished while we waited
	echo "$libs"
	exit 0
fi

tmp=$(mktemp -d "$base/libs.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetch.sh: downloading org.apache.kafka:kafka_2.13:$version and dependencies into $libs" >&2
if ! "$mvn" -q -B -Dstyle.color=never -f "$pom" \
	-Dkafka.version="$version" \
	dependency:copy-dependencies -DoutputDirectory="$tmp" >&2; then
	echo >&2 # maven -q leaves stray colour codes without a newline
	die "maven failed to fetch org.apache.kafka:kafka_2.13:$version (see the maven output above)"
fi
echo >&2
[[ -f "$tmp/kafka_2.13-$version.jar" ]] || die "maven succeeded but $tmp/kafka_2.13-$version.jar is missing"
[[ -n "$(compgen -G "$tmp/log4j-core-*.jar")" ]] || die "maven succeeded but log4j-core is missing"

rm -rf "$libs"
chmod 755 "$tmp"
mv "$tmp" "$libs"
trap - EXIT
echo "$stamp" >"$marker"
echo "fetch.sh: done ($(find "$libs" -name '*.jar' | wc -l) jars)" >&2
echo "$libs"
