#!/usr/bin/env bash
# fuzz/run.sh - build the libFuzzer harnesses (make fuzz) and fuzz each one
# for a bounded time over its corpus in fuzz/corpus/<name>/.
#
#   bash fuzz/run.sh                 every fuzz/fuzz_*.c, FUZZ_SECONDS each
#   bash fuzz/run.sh fuzz_http ...   only those
#
# Prints one line per harness (executions, rate, result) and exits 1 if any
# harness crashed, failed a check, leaked, timed out on an input, or did not
# run; the crashing input is kept in $FUZZ_OUT/<name>/ (crash-*, leak-*,
# timeout-*) and the log beside it. The corpus in the tree is only read: new
# inputs go to $FUZZ_OUT/<name>/corpus/ (FUZZ_MERGE=1 merges them back into
# fuzz/corpus/<name>/ with -merge=1, keeping only what adds coverage).
#
# Environment:
#   FUZZ_SECONDS   seconds per harness (default 60)
#   FUZZ_OUT       scratch directory (default build/fuzz/out)
#   FUZZ_MERGE=1   merge new coverage back into fuzz/corpus/
#   FUZZ_JOBS      make -j (default 2)
#   FUZZ_CC        the compiler make fuzz uses (default clang)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

SECONDS_EACH=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-build/fuzz/out}
MERGE=${FUZZ_MERGE:-0}
JOBS=${FUZZ_JOBS:-2}
BIN=build/fuzz

# Per-harness libFuzzer options: the longest input worth trying.
max_len() {
    case $1 in
    fuzz_http) echo 12000 ;;  # past HTTP_MAX_HEAD (8192) for 414/431
    fuzz_sched) echo 256 ;;   # 96 driver ops at most
    *) echo 4096 ;;
    esac
}

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in fuzz/fuzz_*.c; do
        n=${f##*/}
        names+=("${n%.c}")
    done
fi

make --no-print-directory -j"$JOBS" ${FUZZ_CC:+FUZZ_CC="$FUZZ_CC"} fuzz || {
    echo "fuzz/run.sh: make fuzz failed" >&2
    exit 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for name in "${names[@]}"; do
    bin=$BIN/$name
    seeds=fuzz/corpus/$name
    work=$OUT/$name
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        printf '%-12s no binary or no corpus (%s, %s): FAILED\n' "$name" "$bin" "$seeds"
        failed+=("$name")
        continue
    fi
    rm -rf "$work"
    mkdir -p "$work/corpus"
    log=$work/log.txt
    rc=0
    "$bin" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$name")" -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    execs=${execs:-0}
    [ -n "$secs" ] && [ "$secs" -gt 0 ] || secs=$SECONDS_EACH
    rate=$((execs / (secs > 0 ? secs : 1)))
    artifacts=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
        -o -name 'timeout-*' -o -name 'oom-*' \) | sort | tr '\n' ' ' | sed 's/ $//')
    if [ "$rc" -eq 0 ] && [ -z "$artifacts" ] && [ "$execs" -gt 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc${artifacts:+; input: $artifacts}; log: $log)"
        failed+=("$name")
        grep -E 'check failed|ERROR: |SUMMARY: ' "$log" | head -n 5 | sed 's/^/    /' >&2
    fi
    line=$(printf '%-12s %9s execs in %3ss (%6s/s), corpus %s: %s' "$name" "$execs" "$secs" \
        "$rate" "$(find "$seeds" -type f | wc -l | tr -d ' ')" "$result")
    echo "$line"
    if [ "$MERGE" = 1 ] && [ "$result" = ok ]; then
        "$bin" -merge=1 -max_len="$(max_len "$name")" "$seeds" "$work/corpus" >"$work/merge.txt" 2>&1 ||
            echo "$name: merge failed (see $work/merge.txt)" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== fuzz FAILED (${SECONDS_EACH}s each): ${failed[*]}"
    exit 1
fi
echo "== fuzz passed (${#names[@]} harnesses, ${SECONDS_EACH}s each)"
