#!/usr/bin/env bash
# scripts/exports.sh - what libcoro.so exports: the API, no internals.
#
#   scripts/exports.sh map   "HEADER..." OBJECT...          > libcoro.map
#   scripts/exports.sh check "HEADER..." OBJECT... -- LIBCORO.SO
#
# The API is every coro_ name. Of the internal coro__ functions, the shared
# library must export exactly those the public headers call from their
# macros and static inline functions (coro__await_future, ...): a program
# that uses the macros links against them. Those are the coro__ names that
# appear in the headers' code (comments stripped) and that the objects
# define. `map` prints the GNU ld version script that says so (the Makefile
# links libcoro.so with it); `check` (make test-exports) reads the real
# exports with nm -D and fails on an internal symbol exported or a needed
# one missing.
set -u
mode=$1 headers=$2
shift 2
objs=() so=
while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then so=$2; break; fi
    objs+=("$1")
    shift
done

# the coro__ names the headers' code uses (not their comments)
# shellcheck disable=SC2086
used=$(awk '{
    line = $0; out = ""
    while (line != "") {
        if (inc) {
            i = index(line, "*/"); if (!i) { line = ""; break }
            line = substr(line, i + 2); inc = 0
        } else {
            i = index(line, "/*"); if (!i) { out = out line; break }
            out = out substr(line, 1, i - 1); line = substr(line, i + 2); inc = 1
        }
    }
    print out
}' $headers | grep -o 'coro__[A-Za-z0-9_]*' | sort -u)
defined=$(nm -g --defined-only "${objs[@]}" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
needed=$(comm -12 <(printf '%s\n' "$used") <(printf '%s\n' "$defined"))

case $mode in
map)
    echo "/* libcoro.so's exports, written by scripts/exports.sh: the API (coro_"
    echo " * and a letter or digit), the internals coro.h's macros call; no more. */"
    echo "{"
    echo "global:"
    echo "    coro_[a-zA-Z0-9]*;"
    printf '    %s;\n' $needed
    echo "local:"
    echo "    *;"
    echo "};"
    ;;
check)
    syms=$(nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | sort -u) || exit 1
    extra=$(printf '%s\n' "$syms" | grep '^coro__' | grep -vxF "$needed")
    missing=$(comm -23 <(printf '%s\n' "$needed") <(printf '%s\n' "$syms"))
    n=$(printf '%s\n' "$syms" | grep -c '^coro_')
    rc=0
    if [ -n "$extra" ]; then
        echo "exports: FAILED: $so exports internal symbols:" $extra
        rc=1
    fi
    if [ -n "$missing" ]; then
        echo "exports: FAILED: $so lacks what the headers' macros call:" $missing
        rc=1
    fi
    [ "$rc" = 0 ] && echo "exports: $n coro_ symbols; of the internals only" $needed
    exit "$rc"
    ;;
*)
    echo "usage: scripts/exports.sh map|check ..." >&2
    exit 2
    ;;
esac
