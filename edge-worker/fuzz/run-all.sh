#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) in turn, SECONDS each, through its crate's run.sh:
# the core's (edge-worker/fuzz/) then the emulator's (edge-emulator/fuzz/). One at a time, so
# it never takes more than one core. Logs go to ${TMPDIR:-/tmp}/fuzz-TARGET.log and crash
# inputs to the crate's artifacts/ (edge-worker/fuzz/ or edge-emulator/fuzz/). Prints one summary
# line per target.
#
#   edge-worker/fuzz/run-all.sh 600              # every target, 10 minutes each
#   edge-worker/fuzz/run-all.sh 60 jwt topology  # just these
set -uo pipefail
seconds=${1:?usage: run-all.sh SECONDS [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
crates=("$here" "$(cd "$here/../../edge-emulator/fuzz" && pwd)")
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for crate in "${crates[@]}"; do
        for file in "$crate"/fuzz_targets/*.rs; do
            targets+=("$(basename "$file" .rs)")
        done
    done
fi
summary=()
failed=0
for target in "${targets[@]}"; do
    log="${TMPDIR:-/tmp}/fuzz-$target.log"
    crate=
    for c in "${crates[@]}"; do
        [ -f "$c/fuzz_targets/$target.rs" ] && crate=$c
    done
    if [ -z "$crate" ]; then
        echo "no fuzz target named $target" >&2
        exit 2
    fi
    mkdir -p "$crate/artifacts"
    (cd "$crate/artifacts" && "$crate/run.sh" "$target" "$seconds") >"$log" 2>&1
    status=$?
    # libFuzzer ends with "Done N runs in S second(s)"; on a crash, the last "#N" line counts.
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n1)
    if [ -n "$done_line" ]; then
        runs=$(awk '{print $2}' <<<"$done_line")
        secs=$(awk '{print $5}' <<<"$done_line")
    else
        runs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#')
        secs="-"
    fi
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -n1 | awk '{print $2}')
    corpus=$(find "$crate/corpus/$target" -type f 2>/dev/null | wc -l)
    if [ "$status" -eq 0 ]; then
        crashes=0
    else
        crashes="1 (exit $status, see $log)"
        failed=1
    fi
    summary+=("$(printf '%-18s runs=%-12s seconds=%-5s exec/s=%-8s corpus=%-6s crashes=%s' \
        "$target" "${runs:-0}" "$secs" "${rate:-0}" "$corpus" "$crashes")")
    echo "${summary[-1]}"
done
echo
echo "summary:"
printf '%s\n' "${summary[@]}"
exit "$failed"
