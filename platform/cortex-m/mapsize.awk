# mapsize.awk - what each archive member puts in a linked image, from the
# GNU ld map (-Wl,-Map): text (.text, .rodata), data (.data), bss (.bss),
# per member, largest first. -v lib=libcoro.a: that archive's members and
# their total; -v lib=ALL: every archive member of the image; -v top=N:
# only the N largest rows (the total still counts all).
function hex(s,    i, c, v) {
    v = 0
    s = tolower(s); sub(/^0x/, "", s)
    for (i = 1; i <= length(s); i++) {
        c = index("0123456789abcdef", substr(s, i, 1))
        if (c == 0) return 0
        v = v * 16 + c - 1
    }
    return v
}
/^Linker script and memory map/ { inmap = 1; next }
!inmap { next }
# an input section: " .text.name 0xADDR 0xSIZE file" (the name may sit on
# its own line, the rest on the next)
/^ (\.[A-Za-z_]|COMMON)/ && NF == 1 { pending = $1; next }
{
    if (pending != "" && $1 ~ /^0x/) { sec = pending; addr = $1; size = $2; file = $3 }
    else if (($1 ~ /^\./ || $1 == "COMMON") && $2 ~ /^0x/ && $3 ~ /^0x/) { sec = $1; addr = $2; size = $3; file = $4 }
    else { pending = ""; next }
    pending = ""
    if (file == "" || hex(addr) == 0) next
    n = hex(size)
    if (n == 0) next
    if (!match(file, /\(([^)]*)\)$/)) next
    arch = file; sub(/\(.*$/, "", arch); sub(/^.*\//, "", arch)
    member = substr(file, RSTART + 1, RLENGTH - 2)
    if (lib != "ALL" && arch != lib) next
    key = (lib == "ALL" ? arch ":" : "") member
    if (sec ~ /^\.(text|rodata|vectors|ARM\.exidx|ARM\.extab)/) text[key] += n
    else if (sec ~ /^\.(data|tdata)/) data[key] += n
    else if (sec ~ /^\.(bss|tbss)/ || sec ~ /^COMMON/) bss[key] += n
    else next # debug information, comments, attributes: not in the image
    seen[key] = 1
}
END {
    printf "%8s %6s %6s  %s\n", "text", "data", "bss", "member"
    cmd = "sort -k1,1nr" (top > 0 ? " | head -" top : "")
    for (k in seen) {
        printf "%8d %6d %6d  %s\n", text[k], data[k], bss[k], k | cmd
        tt += text[k]; td += data[k]; tb += bss[k]
    }
    close(cmd)
    printf "%8d %6d %6d  (total%s)\n", tt, td, tb, lib == "ALL" ? "" : " of " lib
}
