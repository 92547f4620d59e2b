#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 30 s) from its committed corpus; new inputs
# go to a scratch directory, so the committed corpora stay small. Needs cargo-fuzz and a
# nightly toolchain (or RUSTC_BOOTSTRAP=1 on stable). Usage: tests/fuzz/run.sh [seconds] [target…]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(import_file commerce_file customer_input customer_filter match_rules segment)
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then toolchain=(+nightly); else export RUSTC_BOOTSTRAP=1; fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo "${toolchain[@]}" fuzz build --fuzz-dir tests/fuzz -s none
status=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "fuzz: $t for ${seconds}s"
  if cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz -s none "$t" "$scratch/$t" "tests/fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 2>"$scratch/$t.log"; then
    echo "fuzz: $t passed ($(grep -Eo 'Done [0-9]+ runs' "$scratch/$t.log" | tail -1))"
  else
    echo "fuzz: $t FAILED"; tail -40 "$scratch/$t.log"; status=1
  fi
done
exit $status
