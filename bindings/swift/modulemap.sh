#!/usr/bin/env bash
# Prints the module map of the GuanxiFFI C module: every uniffi header in the folder given
# (one per crate that exports types: bindings/uniffi and guanxi-core), and, when a library name
# is given, a link to it (not for an XCFramework, which carries its static library itself).
# Usage: modulemap.sh <folder with the generated .h files> [library to link]
set -euo pipefail
echo "module GuanxiFFI {"
for h in "$1"/*.h; do echo "    header \"$(basename "$h")\""; done
[ -z "${2:-}" ] || echo "    link \"$2\""
echo "    export *"
echo "}"
