#!/usr/bin/env bash
# Builds the Swift package from bindings generated out of the library under test and runs its
# XCTest suite with swiftlang in a Debian 13 chroot (Debian 12 has no Swift). Everything mounted
# is unmounted on exit, failure included.
# Usage: run-tests.sh <cargo target dir> <profile> <chroot dir>
set -euo pipefail
target=$1 profile=$2 root=$3
here=$(cd "$(dirname "$0")" && pwd)
pkg="$target/swift-package"

# 1. Assemble the package: committed manifest and tests + freshly generated sources.
rm -rf "$pkg" && mkdir -p "$pkg/Sources/GuanxiFFI" "$pkg/Sources/Guanxi" "$pkg/lib"
cp -r "$here/Package.swift" "$here/Tests" "$pkg/"
"$target/$profile/uniffi-bindgen" generate --library "$target/$profile/libguanxi_uniffi.so" \
  --language swift --no-format --out-dir "$pkg/gen"
# One Swift file and one C header per uniffi crate (bindings/uniffi and guanxi-core's domain
# types): the Swift files make the one Guanxi module, the headers the one GuanxiFFI module.
mv "$pkg"/gen/*.swift "$pkg/Sources/Guanxi/"
mv "$pkg"/gen/*.h "$pkg/Sources/GuanxiFFI/"
bash "$here/modulemap.sh" "$pkg/Sources/GuanxiFFI" guanxi_uniffi > "$pkg/Sources/GuanxiFFI/module.modulemap"
cp "$target/$profile/libguanxi_uniffi.so" "$pkg/lib/"
rm -rf "$pkg/gen"
# How a consumer's build finds the library: pkg-config, the one way SwiftPM allows without unsafe flags.
mkdir -p "$pkg/lib/pkgconfig"
cat > "$pkg/lib/pkgconfig/guanxi.pc" <<'PC'
prefix=/work
libdir=${prefix}/lib
includedir=${prefix}/Sources/GuanxiFFI

Name: guanxi
Description: guanxi's C ABI (uniffi), the native half of the Guanxi Swift package
Version: 0.1.0
Libs: -L${libdir} -lguanxi_uniffi
Cflags: -I${includedir}
PC

# 2. The toolchain: a minimal Debian 13 root with swiftlang (kept between runs).
if [ ! -x "$root/usr/bin/swift" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  [ -x "$root/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >/dev/null
fi

mounts=()
cleanup() {
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_into() { mkdir -p "${*: -1}"; mount "$@" && mounts+=("${*: -1}"); }
mount_into -t proc proc "$root/proc"
mount_into --bind /dev "$root/dev"
mount_into --bind "$pkg" "$root/work"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

if [ ! -x "$root/usr/bin/swift" ] || [ ! -x "$root/usr/bin/pkg-config" ]; then
  chroot "$root" apt-get update -qq
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    swiftlang libc6-dev libstdc++-14-dev pkg-config >/dev/null
fi

# 3. Build and test inside the chroot.
chroot "$root" env HOME=/root PKG_CONFIG_PATH=/work/lib/pkgconfig LD_LIBRARY_PATH=/work/lib \
  bash -c 'cd /work && swift build --build-tests && swift test'
