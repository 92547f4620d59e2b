#!/usr/bin/env bash
# Builds GuanxiFFI.xcframework (the static library for iOS devices, the iOS simulator and macOS,
# with the C headers uniffi generates and their module map) and the Swift sources beside it
# (Guanxi.swift, GuanxiCore.swift), for an Xcode or
# SwiftPM app on Apple platforms. Usage: build-xcframework.sh [out dir] (default target/apple).
#
# Needs macOS with Xcode's command-line tools (xcodebuild, lipo) and the Rust targets
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin
# so CI (Linux) does not run it. In a package, reference the result with
#   .binaryTarget(name: "GuanxiFFI", path: "GuanxiFFI.xcframework")
# in place of the systemLibrary target of bindings/swift/Package.swift, and add the Swift sources
# to the Guanxi target.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/target/apple}
[ "$(uname -s)" = Darwin ] && command -v xcodebuild >/dev/null ||
  { echo "build-xcframework.sh needs macOS with Xcode's command-line tools" >&2; exit 2; }

cd "$root"
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin; do
  # A static library for the app bundle, without making every other build produce one.
  cargo rustc --release --locked -p guanxi-uniffi --lib --target "$t" --crate-type staticlib
done
cargo build --release --locked -p uniffi-bindgen
cargo build --release --locked -p guanxi-uniffi --target aarch64-apple-darwin # the dylib bindgen reads
rm -rf "$out" && mkdir -p "$out/headers" "$out/ios-sim" "$out/macos"
target/release/uniffi-bindgen generate --library target/aarch64-apple-darwin/release/libguanxi_uniffi.dylib \
  --language swift --out-dir "$out/gen"
# One header and one Swift file per uniffi crate (bindings/uniffi, guanxi-core's domain types).
cp "$out"/gen/*.h "$out/headers/"
bash "$root/bindings/swift/modulemap.sh" "$out/headers" > "$out/headers/module.modulemap"
cp "$out"/gen/*.swift "$out/"
lib=libguanxi_uniffi.a
lipo -create target/aarch64-apple-ios-sim/release/$lib target/x86_64-apple-ios/release/$lib -output "$out/ios-sim/$lib"
lipo -create target/aarch64-apple-darwin/release/$lib target/x86_64-apple-darwin/release/$lib -output "$out/macos/$lib"
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/$lib -headers "$out/headers" \
  -library "$out/ios-sim/$lib" -headers "$out/headers" \
  -library "$out/macos/$lib" -headers "$out/headers" \
  -output "$out/GuanxiFFI.xcframework"
echo "built $out/GuanxiFFI.xcframework and the Swift sources beside it ($out/*.swift)"
