#!/usr/bin/env bash
# Runs one fuzz target for a while on the stable toolchain (no cargo-fuzz, no nightly):
# RUSTC_BOOTSTRAP lets stable rustc take the SanitizerCoverage flags cargo-fuzz would pass, and
# libfuzzer-sys builds libFuzzer with the system C++ compiler. No AddressSanitizer: the targets
# are safe Rust, so panics (asserts, overflow checks) are what we look for.
#
#   edge-worker/fuzz/run.sh fields 300        # target, seconds
#   edge-worker/fuzz/run.sh negotiation 120
#   edge-worker/fuzz/run.sh cache_decision 120
set -euo pipefail
target=${1:?usage: run.sh TARGET [SECONDS]}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --manifest-path "$here/Cargo.toml" --release --target "$host" --bin "$target"
corpus="$here/corpus/$target"
mkdir -p "$corpus"
"$here/target/$host/release/$target" -max_total_time="$seconds" -max_len=4096 "$corpus"
