#!/usr/bin/env bash
# scripts/pipeline.sh - examples/pipeline.c against examples/pipeline_frames.c
# (make test-pipeline): the two programs print the same thing, and the one
# written with the inline forms (CORO_WITH_*, CORO_TRY) stays the shorter,
# in lines that are neither blank nor comment only: their ratio must not
# pass PIPELINE_MAX_RATIO (default 0.80).
#
# Issue 10 aims at half (0.50). Written honestly, the two measure 106 and
# 136 lines (0.78): the inline forms save a frame struct, a step function
# and an init function per `async with` (about 15 lines each, two scopes
# here), and the rest (three coroutines, the queue, the printing) is common
# to both. The limit guards that saving; it does not claim the aim is met.
#
#   scripts/pipeline.sh BUILD_DIR      (the examples are BUILD_DIR/examples/*)
set -u

bin=${1:?usage: pipeline.sh BUILD_DIR}/examples
src=examples

# code_lines FILE: the lines left once comments are removed and blank ones dropped
code_lines() {
    awk '{
        out = ""; line = $0
        while (line != "") {
            if (incomment) {
                i = index(line, "*/")
                if (i == 0) { line = ""; break }
                line = substr(line, i + 2); incomment = 0; continue
            }
            i = index(line, "/*"); j = index(line, "//")
            if (j && (!i || j < i)) { out = out substr(line, 1, j - 1); line = ""; break }
            if (i == 0) { out = out line; line = ""; break }
            out = out substr(line, 1, i - 1); line = substr(line, i + 2); incomment = 1
        }
        if (out ~ /[^ \t]/) n++
    } END { print n + 0 }' "$1"
}

run() {
    if command -v timeout >/dev/null 2>&1; then timeout 10 "$@"; else "$@"; fi
}

rc=0
new=$(run "$bin/pipeline" 2>&1) || { echo "pipeline: $bin/pipeline failed ($?)"; rc=1; }
old=$(run "$bin/pipeline_frames" 2>&1) || { echo "pipeline: $bin/pipeline_frames failed ($?)"; rc=1; }
[ "$rc" = 0 ] || exit 1
if [ "$new" != "$old" ] || [ -z "$new" ]; then
    echo "pipeline: the two programs print different things:"
    diff <(printf '%s\n' "$new") <(printf '%s\n' "$old") | sed 's/^/    /'
    exit 1
fi
a=$(code_lines "$src/pipeline.c") b=$(code_lines "$src/pipeline_frames.c")
max=${PIPELINE_MAX_RATIO:-0.80}
ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
if ! awk -v a="$a" -v b="$b" -v m="$max" 'BEGIN { exit !(a <= m * b) }'; then
    echo "pipeline: same output, but $a lines vs $b ($ratio): above the limit $max"
    exit 1
fi
echo "pipeline: same output, $a lines vs $b ($ratio; limit $max, issue 10 aims at 0.50)"
