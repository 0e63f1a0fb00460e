#!/usr/bin/env bash
# Fetches the Hazelcast member jar from Maven Central into a cache outside git, and builds the
# members' merge policies beside it (scripts/build-merge-policies.sh).
# Used by `npm start`, the tests and .ci/run, so no machine needs a hand install.
set -euo pipefail
version="${HAZELCAST_VERSION:-5.6.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${HAZELCAST_JAR_DIR:-$root/.cache/hazelcast}"
jar="$dir/hazelcast-$version.jar"
if [ ! -s "$jar" ]; then
  mkdir -p "$dir"
  command -v mvn >/dev/null || { echo "fetch-hazelcast: mvn (Maven) is required to fetch the member jar" >&2; exit 1; }
  command -v java >/dev/null || { echo "fetch-hazelcast: java (17+) is required to run Hazelcast members" >&2; exit 1; }
  mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
    -Dartifact="com.hazelcast:hazelcast:$version" -DoutputDirectory="$dir" >&2
  [ -s "$jar" ] || { echo "fetch-hazelcast: $jar was not written" >&2; exit 1; }
fi
# The members' own merge policies, compiled against that jar (printed on stderr: stdout is the jar's path).
bash "$root/scripts/build-merge-policies.sh" >&2
echo "$jar"
