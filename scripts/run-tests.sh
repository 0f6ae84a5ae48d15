#!/usr/bin/env bash
# scripts/run-tests.sh - run cmocka test programs, one line each (make test-one).
#
#   scripts/run-tests.sh BINARY...
#
# Each program's whole output goes to $TEST_LOGS/NAME.log; the terminal gets
# one line: its name, how many cmocka tests passed and failed (read from
# cmocka's own "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)" lines,
# and "[  SKIPPED ] N test(s)" when there are any)
# and the seconds it took. A failing program's log is printed in full, and so
# is every log with TEST_VERBOSE=1. A program that crashes, times out or
# prints no cmocka summary counts as one failed test, with the reason.
#
# A program that passed leaves a stamp, $TEST_STAMPS/NAME, holding its counts;
# while the binary is older than its stamp the program is not run again (it
# still counts), unless TEST_AGAIN=1.
#
# Environment (make test-one sets it): TEST_STAMPS, TEST_LOGS, TEST_TIMEOUT
# (seconds, 0 for none), TEST_RUNNER (a prefix such as valgrind ...),
# TEST_JOBS (programs run at once; default the cores, 1 under a runner),
# TEST_AGAIN, TEST_VERBOSE, and TEST_TALLY: a file to which "PASSED FAILED"
# is appended for make test's final line; without it this script prints
# that line itself.
set -u

stamps=${TEST_STAMPS:?} logs=${TEST_LOGS:?}
timeout_s=${TEST_TIMEOUT:-0} again=${TEST_AGAIN:-} verbose=${TEST_VERBOSE:-}
read -r -a runner <<<"${TEST_RUNNER:-}"
mkdir -p "$stamps" "$logs"

timeout_cmd=()
if [ "$timeout_s" != 0 ] && command -v timeout >/dev/null 2>&1; then
    timeout_cmd=(timeout "$timeout_s")
fi
export CMOCKA_MESSAGE_OUTPUT=stdout

now() { date +%s.%N 2>/dev/null || date +%s; }

# count WORD LOG: the N of cmocka's last "[  WORD  ] N test(s)" line (its
# words are padded to 8 characters: PASSED and FAILED, SKIPPED)
count() {
    local tag
    tag=$(printf '%-8s' "$1")
    sed -n "s/^\[  $tag\] \([0-9][0-9]*\) test(s).*/\1/p" "$2" | tail -n 1
}

# skipped N: ", N skipped" when N is not 0
skipped() { [ "$1" != 0 ] && printf ', %s skipped' "$1"; }

# fresh BIN: 0 when the program passed and was not rebuilt since
fresh() {
    local stamp=$stamps/${1##*/}
    [ "$again" != 1 ] && [ -f "$stamp" ] && [ "$stamp" -nt "$1" ]
}

# run_one BIN: run it, its output to its log, its exit status and seconds
# beside it (LOG.rc, LOG.secs)
run_one() {
    local bin=$1 name=${1##*/} path t0 rc
    local log=$logs/$name.log
    case $bin in /*) path=$bin ;; *) path=./$bin ;; esac
    t0=$(now)
    ${timeout_cmd[@]+"${timeout_cmd[@]}"} ${runner[@]+"${runner[@]}"} "$path" >"$log" 2>&1
    rc=$?
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }' >"$log.secs"
    echo "$rc" >"$log.rc"
}

# The programs run TEST_JOBS at a time (default: the cores; 1 under a
# runner such as valgrind), then are reported in order.
jobs=${TEST_JOBS:-}
if [ -z "$jobs" ]; then
    jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    [ -n "${TEST_RUNNER:-}" ] && jobs=1
fi
running=0
for bin in "$@"; do
    fresh "$bin" && continue
    rm -f "$stamps/${bin##*/}"
    if [ "$jobs" -le 1 ]; then
        run_one "$bin"
        continue
    fi
    if [ "$running" -ge "$jobs" ]; then
        wait -n 2>/dev/null || wait
        running=$((running - 1))
    fi
    run_one "$bin" &
    running=$((running + 1))
done
wait

total_pass=0 total_fail=0 total_skip=0 failed_names=()
for bin in "$@"; do
    name=${bin##*/}
    stamp=$stamps/$name log=$logs/$name.log
    if [ -f "$stamp" ] && fresh "$bin"; then
        read -r pass secs skip <"$stamp"
        skip=${skip:-0}
        printf '  %-14s %4d passed  %3d failed  (passed before in %ss%s; AGAIN=1 reruns it)\n' \
            "$name" "$pass" 0 "$secs" "$(skipped "$skip")"
        total_pass=$((total_pass + pass)) total_skip=$((total_skip + skip))
        continue
    fi
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    secs=$(cat "$log.secs" 2>/dev/null || echo 0)
    pass=$(count PASSED "$log") fail=$(count FAILED "$log") skip=$(count SKIPPED "$log")
    # no summary (a crash, a timeout): the tests cmocka saw pass still count
    [ -z "$pass" ] && [ -z "$fail" ] && pass=$(grep -c '^\[       OK \]' "$log")
    pass=${pass:-0} fail=${fail:-0} skip=${skip:-0}
    why=
    if [ "$rc" -eq 124 ] && [ ${#timeout_cmd[@]} -ne 0 ]; then
        why="timed out after ${timeout_s}s"
    elif [ "$rc" -gt 128 ]; then
        why="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    elif [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        why="exit status $rc with no failed cmocka test"
        [ ${#runner[@]} -ne 0 ] && why="$why (see ${runner[0]} in the log)"
    elif [ "$rc" -eq 0 ] && [ "$pass" -eq 0 ]; then
        why="no cmocka summary in its output"
    fi
    if [ -n "$why" ] && [ "$fail" -eq 0 ]; then
        fail=1
    fi
    if [ "$fail" -ne 0 ] || [ "$verbose" = 1 ]; then
        cat "$log"
    fi
    if [ "$fail" -eq 0 ]; then
        printf '%s %s %s\n' "$pass" "$secs" "$skip" >"$stamp"
        printf '  %-14s %4d passed  %3d failed  %6ss%s\n' "$name" "$pass" 0 "$secs" "$(skipped "$skip")"
    else
        printf '  %-14s %4d passed  %3d failed  %6ss  FAILED%s (log: %s)\n' \
            "$name" "$pass" "$fail" "$secs" "${why:+: $why}" "$log"
        failed_names+=("$name")
    fi
    total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail)) total_skip=$((total_skip + skip))
done

if [ -n "${TEST_TALLY:-}" ]; then
    printf '%d %d %d\n' "$total_pass" "$total_fail" "$total_skip" >>"$TEST_TALLY"
else
    printf '%d passed, %d failed%s\n' "$total_pass" "$total_fail" "$(skipped "$total_skip")"
fi
[ ${#failed_names[@]} -eq 0 ]
