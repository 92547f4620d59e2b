#!/usr/bin/env bash
# Builds an Android library (AAR) of guanxi: the Kotlin bindings, compiled by the same Maven
# build as the JVM jar, and libguanxi_uniffi.so cross-compiled for each ABI into jni/<abi>/ (an
# app's src/main/jniLibs/<abi>/, once packaged). Usage: build-aar.sh [out dir] (default
# target/android).
#
# Needs what this repository's CI machines lack, so CI does not run it:
#   - the Android NDK, with ANDROID_NDK_HOME naming it (r26 or newer);
#   - cargo-ndk (`cargo install cargo-ndk`) and the Rust targets
#     (`rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`);
#   - Maven and a JDK 17 (as for the JVM jar).
# An app then depends on the AAR and on JNA's Android build:
#   implementation(files("libs/guanxi-0.1.0.aar"))
#   implementation("net.java.dev.jna:jna:5.17.0@aar")
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:-$root/target/android}
abis=(arm64-v8a armeabi-v7a x86_64)

missing=()
[ -n "${ANDROID_NDK_HOME:-}" ] && [ -d "${ANDROID_NDK_HOME:-}" ] || missing+=("the Android NDK (ANDROID_NDK_HOME)")
command -v cargo-ndk >/dev/null || missing+=("cargo-ndk (cargo install cargo-ndk)")
command -v mvn >/dev/null || missing+=("Maven (mvn)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'build-aar.sh needs: %s\n' "${missing[@]}" >&2
  exit 2
fi

rm -rf "$out" && mkdir -p "$out/aar" "$out/jniLibs"
# 1. The native library for every ABI (release, stripped by cargo-ndk's linker settings).
targets=()
for abi in "${abis[@]}"; do targets+=(-t "$abi"); done
(cd "$root" && cargo ndk "${targets[@]}" -o "$out/jniLibs" build --release -p guanxi-uniffi --locked)

# 2. The Kotlin bindings, generated from the host build of the same library, compiled by Maven
#    (no native resource: on Android the library comes from jni/<abi>/).
(cd "$root" && cargo build --release -p guanxi-uniffi -p uniffi-bindgen --locked)
"$root/target/release/uniffi-bindgen" generate --library "$root/target/release/libguanxi_uniffi.so" \
  --language kotlin --no-format --out-dir "$out/gen"
mkdir -p "$out/no-native"
mvn -B --no-transfer-progress -f "$root/bindings/kotlin/pom.xml" -DskipTests \
  -Dguanxi.generated="$out/gen" -Dguanxi.native="$out/no-native" package
version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' "$root/bindings/kotlin/pom.xml" | head -1)

# 3. The AAR: a zip of the manifest, classes.jar, jni/<abi>/*.so and an empty R.txt.
cp "$root/bindings/kotlin/target/guanxi-$version.jar" "$out/aar/classes.jar"
cp -r "$out/jniLibs" "$out/aar/jni"
: > "$out/aar/R.txt"
cat > "$out/aar/AndroidManifest.xml" <<'XML'
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="io.github.guanxicrm">
    <uses-sdk android:minSdkVersion="24" />
</manifest>
XML
(cd "$out/aar" && rm -f "../guanxi-$version.aar" && python3 -m zipfile -c "../guanxi-$version.aar" AndroidManifest.xml classes.jar R.txt jni)
echo "built $out/guanxi-$version.aar"
