#!/usr/bin/env bash
# scripts/check-exports.sh - libcoro.so exports the API and no internals.
#
#   scripts/check-exports.sh LIBCORO.SO PUBLIC_HEADER...    (make test-exports)
#
# Of the internal coro__ names, the shared library may export only those
# the public headers use outside comments (the functions their macros and
# static inline functions call, such as coro__await_future); any other
# coro__ symbol in `nm -D --defined-only` fails the check. libcoro.map is
# what keeps the rest hidden.
set -u
so=$1
shift

# the headers' code without its comments, then every coro__ name in it
allowed=$(awk '{
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
}' "$@" | grep -o 'coro__[A-Za-z0-9_]*' | sort -u)

syms=$(nm -D --defined-only "$so") || exit 1
extra=$(printf '%s\n' "$syms" | awk '$3 ~ /^coro__/ { print $3 }' | grep -vxF "$allowed")
n=$(printf '%s\n' "$syms" | awk '$3 ~ /^coro_/' | wc -l)
if [ -n "$extra" ]; then
    echo "exports: FAILED: $so exports internal symbols:" $extra
    exit 1
fi
echo "exports: $n coro_ symbols, no internal one but those coro.h's macros call"
