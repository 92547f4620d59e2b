#!/usr/bin/env bash
# Generates Kotlin bindings from the library under test, compiles the tests with kotlinc against
# them and JNA, and runs them on the JVM. Usage: run-tests.sh <cargo target dir> <profile> <tools dir>
set -euo pipefail
target=$1 profile=$2 tools=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
lib="$target/$profile/libguanxi_uniffi.so"
out="$target/kotlin"
kotlinc="$tools/node_modules/kotlin-compiler/bin/kotlinc"
stdlib="$tools/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar"
jna=/usr/share/java/jna.jar
rm -rf "$out" && mkdir -p "$out/classes"
# Bindings come from the built library itself, so they can never drift from it.
"$target/$profile/uniffi-bindgen" generate --library "$lib" --language kotlin --no-format --out-dir "$out/gen"
"$kotlinc" -nowarn -cp "$jna" $(find "$out/gen" -name '*.kt') "$root/bindings/kotlin/CrmTest.kt" -d "$out/classes"
java -cp "$out/classes:$jna:$stdlib" -Djna.library.path="$target/$profile" CrmTestKt
