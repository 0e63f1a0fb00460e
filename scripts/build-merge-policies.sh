#!/usr/bin/env bash
# Compiles the members' merge policies (src/member-plugins, Java) into a jar beside the member jar,
# which every local member and test member puts on its classpath (src/local/paths.ts). Rebuilt only
# when a source is newer than the jar. Needs a JDK (javac, jar) and the member jar to compile against.
set -euo pipefail
version="${HAZELCAST_VERSION:-5.6.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${HAZELCAST_JAR_DIR:-$root/.cache/hazelcast}"
member_jar="${HAZELCAST_JAR:-$dir/hazelcast-$version.jar}"
out="$dir/mqlab-merge-policies.jar"
src="$root/src/member-plugins"
if [ -s "$out" ] && [ -z "$(find "$src" -name '*.java' -newer "$out" -print -quit)" ]; then
  echo "$out"
  exit 0
fi
[ -s "$member_jar" ] || { echo "build-merge-policies: $member_jar is missing (npm run hazelcast:fetch fetches it)" >&2; exit 1; }
for tool in javac jar; do
  command -v "$tool" >/dev/null || { echo "build-merge-policies: $tool (a JDK, 17+) is required to build the members' merge policies" >&2; exit 1; }
done
mkdir -p "$dir"
classes="$(mktemp -d)"
trap 'rm -rf "$classes"' EXIT
# Release 17: the members run on Java 17 (the stand-in image) or newer (the official image: 21).
javac --release 17 -nowarn -cp "$member_jar" -d "$classes" $(find "$src" -name '*.java' | sort)
jar --create --file "$out.tmp" -C "$classes" .
mv "$out.tmp" "$out"
echo "$out"
