#!/usr/bin/env bash
# Generates the Kotlin bindings from the library under test, stages the library as a resource
# where JNA looks for it (linux-x86-64/), and runs `mvn verify`: the tests run with JUnit 5 under
# Surefire against the classes and resources the jar is built from, then the jar is packaged
# (bindings/kotlin/target/guanxi-<version>.jar); `clean` first, so no class of an earlier run
# lingers. Usage: run-tests.sh <cargo target dir> <profile>
# Ends with a "kotlin: N passed, N failed" line read from Surefire's reports.
set -euo pipefail
target=$1 profile=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
lib="$target/$profile/libguanxi_uniffi.so"
out="$target/kotlin"
rm -rf "$out" && mkdir -p "$out/native/linux-x86-64"
# Bindings come from the built library itself, so they can never drift from it.
"$target/$profile/uniffi-bindgen" generate --library "$lib" --language kotlin --no-format --out-dir "$out/gen"
cp "$lib" "$out/native/linux-x86-64/"
pom="$root/bindings/kotlin/pom.xml"
reports="$root/bindings/kotlin/target/surefire-reports"
rm -rf "$reports" # a report of an earlier run must not count for this one
mvn_status=0
mvn -B --no-transfer-progress -Dstyle.color=never -f "$pom" -Dguanxi.generated="$out/gen" -Dguanxi.native="$out/native" clean verify ||
  mvn_status=$?
python3 - "$reports" "$mvn_status" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
total = failed = 0
for f in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    suite = ET.parse(f).getroot()
    total += int(suite.get("tests", 0))
    failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
if sys.argv[2] != "0" and failed == 0:
    failed = 1  # Maven failed outside the tests: it did not build, run or package
print(f"kotlin: {total - failed} passed, {failed} failed")
PY
exit "$mvn_status"
