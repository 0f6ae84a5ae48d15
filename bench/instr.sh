#!/usr/bin/env bash
# bench/instr.sh - instructions per op of the micro rows, coro beside C++20,
# counted by callgrind: the figure that does not move with the machine.
#
#   bash bench/instr.sh [ROW...]     (make bench-instr)
#
# Wall-clock rows on a shared VM move by 5-20% from run to run, and by as
# much again with code layout alone; an instruction count is the same on
# every run. It is not time (a taken branch or a cache miss costs more than
# an add): `make bench` stays the measure, this is the profile beside it,
# and what a hot-path commit quotes.
#
# How: each binary runs the row under `valgrind --tool=callgrind` at N and
# at 2N ops; the difference, divided by N and by the row's repeats (3 in
# bench/micro.c and bench/peers/cpp20.cc), is the cost of one op without
# the set-up. Rows without a C++20 twin show coro alone; resume also shows
# the floor (an indirect call through a function pointer).
#
# Environment: BENCH_BIN (the ndebug build's bench directory; the Makefile
# sets it), BENCH_CXX (g++). Needs valgrind (Debian package valgrind).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${BENCH_BIN:-build/bench}
cxx=${BENCH_CXX:-g++}
repeats=3
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(resume yield yield_many await_depth_1 await_depth_32 call_depth_32
                                spawn timers timeout_churn queue_pingpong)

command -v valgrind >/dev/null 2>&1 || {
    echo "bench-instr: valgrind is missing: apt-get install valgrind" >&2
    exit 2
}
[ -x "$bin/micro" ] || { echo "bench-instr: no $bin/micro (make bench-build)" >&2; exit 2; }

# The C++20 peer, built as bench/run.sh builds it (skipped, with a reason, without g++).
cpp20="$bin/peers/cpp20"
if [ ! -x "$cpp20" ] || [ "$here/peers/cpp20.cc" -nt "$cpp20" ]; then
    if command -v "$cxx" >/dev/null 2>&1; then
        mkdir -p "$bin/peers"
        "$cxx" -O2 -std=c++20 -fcoroutines -o "$cpp20" "$here/peers/cpp20.cc"
    else
        echo "bench-instr: no C++20 column: $cxx is not installed (Debian package g++)" >&2
        cpp20=""
    fi
fi

# Ops per measurement: enough to dwarf the noise of start-up, few enough for valgrind.
ops_for() {
    case $1 in
    call_depth_32 | timers) echo 2000 ;;
    queue_pingpong | timeout_churn | spawn) echo 10000 ;;
    *) echo 20000 ;;
    esac
}

# instructions BINARY ARGS...: what callgrind counted for the whole run.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' | tr -d ,
}

# per_op ROW N BINARY [IMPL]: instructions of one op, or "-" when BINARY has no such row.
per_op() {
    local row=$1 n=$2 b=$3 impl=${4:-} i1 i2
    if [ -z "$b" ] || ! "$b" list | grep -q "^$row ${impl:-cpp20}\$"; then
        echo -
        return
    fi
    i1=$(instructions "$b" "$row" "$n" $impl)
    i2=$(instructions "$b" "$row" $((2 * n)) $impl)
    [ -n "$i1" ] && [ -n "$i2" ] || { echo "bench-instr: callgrind failed on $b $row" >&2; exit 1; }
    echo $(((i2 - i1) / (n * repeats)))
}

for row in "${rows[@]}"; do
    case $row in
    skynet | memory_per_task)
        echo "bench-instr: $row is not a per-op row (a tree of tasks; bytes): make bench measures it" >&2
        exit 2 ;;
    esac
    "$bin/micro" list | grep -q "^$row coro\$" || {
        echo "bench-instr: no micro row '$row'; the rows: $("$bin/micro" list | awk '$2 == "coro" { printf "%s ", $1 }')" >&2
        exit 2
    }
done

printf '%-16s %8s %8s %8s %7s\n' row coro floor cpp20 ratio
for row in "${rows[@]}"; do
    n=$(ops_for "$row")
    c=$(per_op "$row" "$n" "$bin/micro" coro)
    f=-
    [ "$row" != resume ] || f=$(per_op "$row" "$n" "$bin/micro" floor)
    p=$(per_op "$row" "$n" "$cpp20")
    r=-
    [ "$p" = - ] || [ "$p" = 0 ] || r=$(awk -v a="$c" -v b="$p" 'BEGIN { printf "%.2f", a / b }')
    printf '%-16s %8s %8s %8s %7s\n' "$row" "$c" "$f" "$p" "$r"
done
echo "instructions per op (callgrind, (2N - N ops) / N / $repeats repeats); ratio = coro / cpp20"
