#!/usr/bin/env bash
# scripts/docblocks.sh - the docs' C blocks compile, and the programs run.
#
#   scripts/docblocks.sh FILE.md...      (make test-docs)
#
# Every ```c block of each file is compiled on its own, after a prelude that
# includes "coro.h" and the usual libc headers (stdio, stdlib, string,
# stdint, errno, signal, unistd). A block that defines main is also linked against
# the library and run (10 s at most); it must exit 0. Its output is kept in
# $DOC_OUT/FILE-N.out, nowhere else.
#
# A marker on the line right before a block's fence says what else to do;
# it is an HTML comment, so a reader of the rendered page never sees it:
#
#   <!-- doc: continues -->       the block goes on from the blocks before it
#                                 in the same file, back to the last one
#                                 without this marker: they are compiled
#                                 together, this one last, so it may use
#                                 their structs and steps (a block that
#                                 defines main is a program of its own and
#                                 is left out of what later blocks continue)
#   <!-- doc: compile-fail -->    the block shows a mistake: it must NOT compile
#   <!-- doc: skip REASON -->     not compiled; the reason is printed
#
# Environment: DOC_CC, DOC_CFLAGS, DOC_LDFLAGS, DOC_LIBS (the library and
# what it needs), DOC_OUT (a scratch directory); DOC_DEPS (files whose change
# means a rerun: with all of them and the docs older than $DOC_OUT/.passed,
# the check is not run again unless DOC_AGAIN=1); DOC_VERBOSE=1 prints each
# block's name.
set -u

cc=${DOC_CC:-cc} out=${DOC_OUT:?} stamp=${DOC_OUT}/.passed
read -r -a cflags <<<"${DOC_CFLAGS:-}"
read -r -a ldflags <<<"${DOC_LDFLAGS:-}"
read -r -a libs <<<"${DOC_LIBS:-}"
read -r -a deps <<<"${DOC_DEPS:-}"
mkdir -p "$out" && out=$(cd "$out" && pwd) stamp=$out/.passed

fresh=1
if [ "${DOC_AGAIN:-}" = 1 ] || [ ! -f "$stamp" ]; then
    fresh=0
else
    for f in "$@" "${deps[@]}"; do
        [ "$f" -nt "$stamp" ] && fresh=0
    done
fi
if [ "$fresh" = 1 ]; then
    printf 'docs: %s (passed before; AGAIN=1 reruns it)\n' "$(cat "$stamp")"
    exit 0
fi
rm -f "$stamp"

timeout_cmd=()
command -v timeout >/dev/null 2>&1 && timeout_cmd=(timeout 10)

prelude='#include "coro.h"
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>'

compiled=0 ran=0 failed=0 skipped=0 refused=0

# fail WHAT LOG: report one failing block with the compiler's or program's words
fail() {
    echo "docs: FAILED: $1"
    [ -n "${2:-}" ] && sed 's/^/    /' "$2"
    failed=$((failed + 1))
}

for md in "$@"; do
    base=$(echo "$md" | tr '/.' '__')
    rm -f "$out/$base"-*
    # Split the file: one NAME.c per block, and NAME.kind holding its marker
    # (none, continues, compile-fail or skip ...) and its first line number.
    awk -v dir="$out" -v base="$base" '
        /^```c[ \t]*$/ && !inb {
            inb = 1; n++; f = sprintf("%s/%s-%02d", dir, base, n)
            kind = "none"
            if (prev ~ /^<!-- doc: [a-z-]+.* -->[ \t]*$/) {
                kind = prev; sub(/^<!-- doc: /, "", kind); sub(/ -->[ \t]*$/, "", kind)
            }
            print kind > (f ".kind"); print FNR + 1 > (f ".line")
            printf "" > (f ".body"); next
        }
        /^```/ && inb { inb = 0; close(f ".body"); prev = ""; next }
        inb { print > (f ".body"); next }
        { if ($0 !~ /^[ \t]*$/) prev = $0 }
    ' "$md"
    chain=
    for body in "$out/$base"-*.body; do
        [ -e "$body" ] || continue
        name=${body%.body}
        kind=$(cat "$name.kind") line=$(cat "$name.line")
        where="$md:$line"
        [ "${DOC_VERBOSE:-}" = 1 ] && echo "docs: $where ($kind)"
        case $kind in
            skip*)
                reason=${kind#skip} reason=${reason#:} reason=${reason# }
                echo "docs: $where not compiled: ${reason:-no reason given}"
                skipped=$((skipped + 1)) chain=
                continue ;;
            continues) ;;
            none | compile-fail) chain= ;;
            *) fail "$where: unknown marker '<!-- doc: $kind -->'"; continue ;;
        esac
        has_main=0
        grep -Eq '^(int|static int) main\(' "$body" && has_main=1
        {
            printf '%s\n' "$prelude"
            for b in $chain $body; do
                printf '#line %s "%s"\n' "$(cat "${b%.body}.line")" "$md"
                cat "$b"
            done
        } >"$name.c"
        if [ "$kind" = compile-fail ]; then
            if "$cc" "${cflags[@]}" -c -o "$name.o" "$name.c" >"$name.log" 2>&1; then
                fail "$where compiled, but it is marked compile-fail"
            else
                refused=$((refused + 1))
            fi
            chain=
            continue
        fi
        if ! "$cc" "${cflags[@]}" -c -o "$name.o" "$name.c" >"$name.log" 2>&1; then
            fail "$where does not compile" "$name.log"
            [ "$has_main" = 0 ] && chain="$chain $body"
            continue
        fi
        compiled=$((compiled + 1))
        if [ "$has_main" = 0 ]; then
            chain="$chain $body"
            continue
        fi
        if ! "$cc" "${ldflags[@]}" -o "$name" "$name.o" "${libs[@]}" >"$name.log" 2>&1; then
            fail "$where does not link" "$name.log"
            continue
        fi
        (cd "$out" && ${timeout_cmd[@]+"${timeout_cmd[@]}"} "$name") >"$name.out" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
            fail "$where: the program exited with status $rc$([ "$rc" = 124 ] && echo ' (timed out)')" "$name.out"
            continue
        fi
        ran=$((ran + 1))
    done
done

# plural N WORD: "1 block", "2 blocks"
plural() { if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }
summary="$(plural "$compiled" block) compiled, $(plural "$ran" program) ran"
[ "$refused" -ne 0 ] && summary="$summary, $refused refused to compile (as marked)"
[ "$skipped" -ne 0 ] && summary="$summary, $skipped skipped"
if [ "$failed" -ne 0 ]; then
    echo "docs: $summary; $failed FAILED"
    exit 1
fi
echo "$summary" >"$stamp"
echo "docs: $summary"
