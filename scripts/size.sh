#!/usr/bin/env bash
# scripts/size.sh [docs] - what coro costs, measured, never typed by hand
# (make size; make size-docs rewrites the block of docs/embedding.md
# between its `size:` markers with this output).
#
#   x86-64  the core and structure objects built with -Os (text), the hello
#           program linked with --gc-sections (coro's share of its text),
#           and the size of each object a user declares (sizeof)
#   Cortex-M3  the same from make PLATFORM=cortex-m (when arm-none-eabi-gcc
#           is installed): the minimal image (one sleeping task, one
#           generator) and coro's share of it, and the RAM of each object
#           as the test image prints it
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
CC=${CC:-cc}
out=build/size
mkdir -p "$out"

core=(errors.c mem.c arena.c loop.c report.c runner.c heap.c future.c task.c gen.c agen.c inspect.c fd.c
      selectors/none.c)
structure=(waitq.c sync.c queue.c group.c)
flags=(-std=c11 -Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -DCORO_HOSTED=0 -I.)

text_of() { size -t "$@" | awk 'END { print $1 }'; }

measure() {
    local objs=() sobjs=() f o
    for f in "${core[@]}" "${structure[@]}"; do
        o=$out/$(basename "${f%.c}").o
        "$CC" "${flags[@]}" -c "$f" -o "$o"
        case " ${structure[*]} " in
        *" $f "*) sobjs+=("$o") ;;
        *) objs+=("$o") ;;
        esac
    done
    local total stotal
    total=$(text_of "${objs[@]}")
    stotal=$(text_of "${sobjs[@]}")
    # hello on the core: the port is platform/posix.c's clock and write
    "$CC" "${flags[@]}" -c platform/posix.c -o "$out/posix.o"
    "$CC" "${flags[@]}" -c examples/hello.c -o "$out/hello.o"
    "$CC" -Wl,--gc-sections -Wl,-Map="$out/hello.map" -o "$out/hello" "$out/hello.o" "${objs[@]}" \
        "${sobjs[@]}" "$out/posix.o"
    local share
    share=$(awk '
        function hex(s,   i, c, v) { v = 0; s = tolower(s); sub(/^0x/, "", s)
            for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
            return v }
        function add(sz, file) { if (file ~ /build\/size\/[a-z]+\.o$/ && file !~ /(hello|posix)\.o$/) s += hex(sz) }
        /^Linker script and memory map/ { on = 1 }
        !on { next }
        /^ \.text/ && NF >= 4 && $2 ~ /^0x/ { add($3, $4); next }
        /^ \.text\./ && NF == 1 { getline; if (NF >= 3 && $1 ~ /^0x/) add($2, $3) }
        END { print s + 0 }' "$out/hello.map")
    cat >"$out/sizeof.c" <<'PROG'
#include "coro.h"
#include <stdio.h>
int main(void)
{
    printf("| loop | %zu |\n| task | %zu |\n| frame header | %zu |\n| future | %zu |\n",
           sizeof(coro_loop), sizeof(coro_task), sizeof(coro_frame), sizeof(coro_future));
    printf("| lock | %zu |\n| event | %zu |\n| semaphore | %zu |\n| queue | %zu |\n",
           sizeof(coro_lock), sizeof(coro_event), sizeof(coro_semaphore), sizeof(coro_queue));
    printf("| gather op (a frame field) | %zu |\n| timeout scope op | %zu |\n",
           sizeof(coro_gather_op), sizeof(coro_timeout_op));
    return 0;
}
PROG
    "$CC" -std=c11 -I. "$out/sizeof.c" -o "$out/sizeof"
    echo "x86-64, $("$CC" --version | head -n 1), -Os:"
    echo
    echo "| what | bytes |"
    echo "|---|---|"
    echo "| core objects, text (every function kept) | $total |"
    echo "| structure objects (sync, queue, group, waiters), text | $stotal |"
    echo "| hello (one sleeping task), coro's share of its text (--gc-sections) | $share |"
    "$out/sizeof"
}

measure_cm() {
    if ! command -v arm-none-eabi-gcc >/dev/null 2>&1; then
        echo "Cortex-M3: arm-none-eabi-gcc is not installed here (make PLATFORM=cortex-m installs it as root)."
        return
    fi
    local log=$out/cortex-m.log
    make --no-print-directory PLATFORM=cortex-m size >"$log" 2>&1
    make --no-print-directory PLATFORM=cortex-m test >"$out/cortex-m-test.log" 2>&1 || true
    echo "Cortex-M3 (mps2-an385 under QEMU), $(arm-none-eabi-gcc --version | head -n 1), -Os, newlib-nano:"
    echo
    echo "| what | bytes |"
    echo "|---|---|"
    awk '/^ *[0-9]+.*core\/.*\.o$/ || /\(TOTALS\)/ { if ($6 == "(TOTALS)") print "| core and structure objects, text (every function kept) | " $1 " |" }' "$log"
    awk '$6 == "minimal.elf" { print "| the minimal image (one sleeping task, one generator), text | " $1 " |" }
         $6 == "test_embedded-heapfree.elf" { print "| the heap-free test image (47 checks, 16 KB arena), text | " $1 " |" }' "$log"
    awk '/^== minimal.elf: coro.s own share/ { f = 1; next } f && /total of libcoro.a/ { print "| coro'"'"'s share of the minimal image | " $1 " |"; f = 0 }' "$log"
    grep -m1 -o 'sizes: .*bytes;' "$out/cortex-m-test.log" | sed -E 's/sizes: //; s/ bytes;//' |
        tr ',' '\n' | sed -E 's/^ *//; s/(.*) ([0-9]+)$/| \1 | \2 |/'
}

report() {
    measure
    echo
    measure_cm
}

if [ "${1:-}" = docs ]; then
    doc=docs/embedding.md
    report >"$out/report.md"
    awk -v rep="$out/report.md" '
        /<!-- size: begin -->/ { print; while ((getline line < rep) > 0) print line; skip = 1; next }
        /<!-- size: end -->/ { skip = 0 }
        !skip' "$doc" >"$doc.tmp"
    mv "$doc.tmp" "$doc"
    echo "size: $doc rewritten"
else
    report
fi
