#!/usr/bin/env bash
# Runs one fuzz target for a while on the stable toolchain (no cargo-fuzz, no nightly):
# RUSTC_BOOTSTRAP lets stable rustc take the SanitizerCoverage flags cargo-fuzz would pass, and
# libfuzzer-sys builds libFuzzer with the system C++ compiler. No AddressSanitizer: the targets
# are safe Rust, so panics (asserts, overflow checks) are what we look for.
#
#   edge-worker/fuzz/run.sh fields 300        # target, seconds
#   edge-worker/fuzz/run-all.sh 600           # every target in turn (the emulator's too)
#
# Targets (fuzz_targets/; FUZZING.md has what each covers and how long it has run):
#   cache_control      Cache-Control parsing and accessors (cache_control.rs)
#   cdn_cache_control  CDN-Cache-Control (RFC 9213): as_cache_control, effective
#   cache_decision     cache key, Vary, storage capture and the freshness decision
#   negotiation        Accept-Encoding negotiation and precondition evaluation
#   if_none_match      entity tags, If-None-Match / If-Match lists, evaluate, not_modified
#   fields             ?fields= masks and the streaming JSON projection
#   jwt                Bearer credentials, JWT header/claims, Verifier::verify, the auth gate
#   config             auth and routing configuration: JSON, and TOML as the emulator reads it
#   routing            routing configuration and route plans
#   pipeline           the whole EdgeWorker::handle against a fuzz-chosen upstream
#   ranges_and_dates   Range / If-Range answers (range.rs) and HTTP-date forms (http_date.rs)
#   vary_values        the normal form of Vary'd request fields (vary/normalise.rs)
#   esi_template       edge templates: the ESI subset and JSON placeholders (compose/)
# The emulator's targets (topology) are in edge-emulator/fuzz/, with a run.sh like this one.
set -euo pipefail
target=${1:?usage: run.sh TARGET [SECONDS]}
seconds=${2:-60}
# FUZZ_CRATE: another fuzz crate to build and run from (edge-emulator/fuzz/run.sh sets it).
here=${FUZZ_CRATE:-$(cd "$(dirname "$0")" && pwd)}
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --manifest-path "$here/Cargo.toml" --release --target "$host" --bin "$target"
corpus="$here/corpus/$target"
mkdir -p "$corpus"
"$here/target/$host/release/$target" -max_total_time="$seconds" -max_len=4096 "$corpus"
