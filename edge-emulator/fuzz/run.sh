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
here=$(cd "$(dirname "$0")" && pwd)
# The same build and run as the core's targets, from this crate.
FUZZ_CRATE="$here" exec "$here/../../edge-worker/fuzz/run.sh" "$@"
