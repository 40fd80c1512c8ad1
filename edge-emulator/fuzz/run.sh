#!/usr/bin/env bash
# Runs one of the emulator's fuzz targets for a while on the stable toolchain, as
# edge-worker/fuzz/run.sh does for the core's (FUZZING.md): SanitizerCoverage through
# RUSTC_BOOTSTRAP, debug assertions and overflow checks, no AddressSanitizer. The first build
# compiles the whole emulator (wasmtime, and the wasm guest through its build script).
#
#   edge-emulator/fuzz/run.sh topology 300    # target, seconds
#   edge-worker/fuzz/run-all.sh 600           # every target of both crates in turn
#
# Targets (fuzz_targets/; FUZZING.md has what each covers and how long it has run):
#   topology           the emulator's topology files (edge_emulator::topology)
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
