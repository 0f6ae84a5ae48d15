#!/usr/bin/env bash
# scripts/how-it-works.sh - docs/how-it-works.md from its template and the
# real sources (make docs writes it; make test-howitworks checks it).
#
#   scripts/how-it-works.sh TEMPLATE OUT
#
# The template is Markdown with placeholders, filled from the files as they
# are now, so the page cannot drift from the code. PATH is relative to the
# top of the tree; ITEM names a function (`work_step`, also written
# `static CORO_FN(work_step)`), a struct (`struct work`) or, for DEFINE, a
# macro. On a line of its own:
#
#   @SOURCE PATH:ITEM@        the item's text, each line with its number
#   @DEFINE PATH:MACRO@       a #define with its continuation lines (the
#                             switch form: one under #ifdef CORO_LABELS is
#                             passed over), numbered
#   @EXPAND PATH:ITEM@        the function run through the preprocessor with
#   @EXPAND PATH:ITEM:A|B@    the project's headers, formatted; each source
#                             line a macro changed is shown first as a
#                             comment with its number; A|B keeps only the
#                             lines from the first containing A to the
#                             first after it containing B
#   @PYCOMMENT PATH:ITEM@     the comment right above the item, which holds
#                             the Python it retells, as a python block
#   @PYTHON PATH:ITEM@        the Python the tour prints in ITEM: the
#                             strings of its python(...) calls
# Anywhere in a line:
#   @LINE PATH:ITEM:TEXT@     the number of the item's first line holding TEXT
#
# Every code block it writes is marked `<!-- doc: skip generated excerpt -->`
# for scripts/docblocks.sh (they are excerpts, not programs). A placeholder
# that finds nothing is an error: the page is not written.
#
# The expansion is formatted by the small formatter below, not by
# clang-format, so the page is the same on every machine: whitespace is
# collapsed, one statement per line after `;` `{` `}` and labels, four
# spaces per brace level. gcc is the preprocessor whatever CC is (CC only
# when there is no gcc): the page shows GCC's expansion, which has one
# thing clang's lacks (the hot label before each suspension).
set -u
export LC_ALL=C

template=${1:?usage: how-it-works.sh TEMPLATE OUT}
out=${2:?usage: how-it-works.sh TEMPLATE OUT}
cc=gcc
command -v gcc >/dev/null 2>&1 || cc=${CC:-cc}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

die() { printf 'how-it-works: %s\n' "$*" >&2; exit 1; }

# locate PATH ITEM KIND: "FIRST LAST", the item's line range (KIND is
# item or define).
locate() {
    [ -f "$1" ] || die "no file $1"
    awk -v item="$2" -v kind="$3" '
        function is_labels_branch(   k) {
            for (k = 1; k <= depth; k++) if (stack[k] == "L") return 1
            return 0
        }
        BEGIN { name = item; sub(/^static CORO_FN\(/, "", name); sub(/\)$/, "", name) }
        # #if nesting, for the DEFINE kind (the switch form, not CORO_LABELS)
        /^#[ \t]*if/ { stack[++depth] = ($0 ~ /^#[ \t]*ifdef[ \t]+CORO_LABELS/) ? "L" : "O" }
        /^#[ \t]*else/ { if (stack[depth] == "L") stack[depth] = "O"; else if ($0 !~ /CORO_LABELS/) stack[depth] = stack[depth] }
        /^#[ \t]*endif/ { depth-- }
        first == 0 && kind == "define" {
            if (index($0, "#define " name "(") == 1 || index($0, "#define " name " ") == 1) {
                if (!is_labels_branch()) { first = NR; cont = 1 }
            }
        }
        first == 0 && kind == "item" {
            if (name ~ /^struct /) {
                if ($0 == name " {") first = NR
            } else if ($0 ~ /^[A-Za-z]/ && $0 !~ /;[ \t]*$/ && $0 !~ /^#/) {
                s = " " $0
                if (index(s, "CORO_FN(" name ")") || s ~ ("[^A-Za-z0-9_]" name "\\(")) first = NR
            }
        }
        first != 0 && last == 0 && NR >= first {
            if (kind == "define") { if ($0 !~ /\\$/) last = NR }
            else if (name ~ /^struct /) { if ($0 ~ /^};/) last = NR }
            else if ($0 ~ /^}/) last = NR
        }
        END { if (first && last) print first, last }
    ' "$1"
}

range_of() { # PATH ITEM KIND -> sets FIRST LAST or dies
    local r
    r=$(locate "$1" "$2" "$3")
    [ -n "$r" ] || die "$1: no $2"
    FIRST=${r% *} LAST=${r#* }
}

# line_of PATH ITEM TEXT [FROM]: the first line of the item (from FROM on)
# holding TEXT
line_of() {
    range_of "$1" "$2" item
    local from=${4:-$FIRST} n
    n=$(awk -v a="$from" -v b="$LAST" -v t="$3" 'NR >= a && NR <= b && index($0, t) { print NR; exit }' "$1")
    [ -n "$n" ] || die "$1: no \"$3\" in $2"
    printf '%s' "$n"
}

numbered() { # PATH FIRST LAST
    awk -v a="$2" -v b="$3" 'NR >= a && NR <= b { printf "%4d  %s\n", NR, $0 }' "$1"
}

fence() { # LANG, then the body on stdin
    printf '<!-- doc: skip generated excerpt -->\n```%s\n' "$1"
    cat
    printf '```\n'
}

# The preprocessed text of PATH, once per file.
preprocessed() {
    local key=${1//\//_}
    if [ ! -f "$tmp/$key.i" ]; then
        "$cc" -E -I. -D_GNU_SOURCE -D_DEFAULT_SOURCE "$1" >"$tmp/$key.i" || die "$cc -E $1 failed"
    fi
    printf '%s' "$tmp/$key.i"
}

# expand PATH ITEM [A|B]
expand() {
    local path=$1 item=$2 win=${3:-} a b
    range_of "$path" "$item" item
    a=$FIRST b=$LAST
    if [ -n "$win" ]; then
        a=$(line_of "$path" "$item" "${win%%|*}")
        b=$(line_of "$path" "$item" "${win#*|}" "$a")
    fi
    local pp
    pp=$(preprocessed "$path")
    # Pass 1: the expansion of each source line in a..b, by the line markers
    # (# N "file"): "N<TAB>expansion" with the line's pieces joined.
    awk -v file="$path" -v a="$a" -v b="$b" '
        /^# [0-9]+ "/ {
            cur = $3; gsub(/"/, "", cur); line = $2 + 0; next
        }
        /^#pragma/ { if (cur == file && line >= a && line <= b) text[line - 1] = text[line - 1] "\n" $0 "\n"; next }
        {
            if (cur == file && line >= a && line <= b) text[line] = text[line] " " $0
            line++
        }
        END { for (n = a; n <= b; n++) printf "%d\t%s\n", n, text[n] }
    ' "$pp" >"$tmp/exp" || die "expand $path:$item"
    # Pass 2: format, with each changed source line as a comment first.
    awk -v a="$a" -v b="$b" -v src="$path" -v shortname="${path##*/}" '
        # strip comments, collapse blanks (strings kept as they are)
        function norm(s,   o, i, c, q, n) {
            o = ""; n = length(s)
            for (i = 1; i <= n; i++) {
                c = substr(s, i, 1)
                if (c == "\"" || c == "\047") {
                    q = c; o = o c
                    for (i++; i <= n; i++) {
                        c = substr(s, i, 1); o = o c
                        if (c == "\\") { i++; o = o substr(s, i, 1); continue }
                        if (c == q) break
                    }
                    continue
                }
                if (c == "/" && substr(s, i + 1, 1) == "*") {
                    for (i += 2; i < n && substr(s, i, 2) != "*/"; i++) ;
                    i++; o = o " "; continue
                }
                if (c == "/" && substr(s, i + 1, 1) == "/") break
                if (c == "\t") c = " "
                if (c == " " && (o == "" || substr(o, length(o), 1) == " ")) continue
                o = o c
            }
            sub(/ +$/, "", o)
            return o
        }
        function rtrim() { sub(/ +$/, "", cur) }
        function emit(s, ind,   k, pad) {
            if (ind < 0) ind = 0
            pad = ""
            for (k = 0; k < ind; k++) pad = pad "    "
            print pad s
        }
        function flush() { rtrim(); if (cur != "") emit(cur, label ? indent - 1 : indent); cur = ""; label = 0 }
        # feed a piece of code to the formatter
        function feed(s,   i, c, q, n, rest) {
            n = length(s)
            for (i = 1; i <= n; i++) {
                c = substr(s, i, 1)
                if (c == "\n") {           # a #pragma on a line of its own
                    flush(); j = index(substr(s, i + 1), "\n")
                    emit(substr(s, i + 1, j - 1), 0); i += j; continue
                }
                if (c == "\t") c = " "
                if (c == " ") { if (cur != "" && substr(cur, length(cur), 1) != " ") cur = cur " "; continue }
                if (pend != "") {          # after a label or a closing brace
                    rest = substr(s, i)
                    if (c == ";" || (pend == "}" && (rest ~ /^else[^A-Za-z0-9_]/ || rest ~ /^while[^A-Za-z0-9_]/))) {
                        rtrim(); if (c != ";") cur = cur " "
                    } else
                        flush()
                    pend = ""
                }
                if (c == "\"" || c == "\047") {
                    q = c; cur = cur c
                    for (i++; i <= n; i++) {
                        c = substr(s, i, 1); cur = cur c
                        if (c == "\\") { i++; cur = cur substr(s, i, 1); continue }
                        if (c == q) break
                    }
                    continue
                }
                if (c == "(") { paren++; cur = cur c; continue }
                if (c == ")") { paren--; rtrim(); cur = cur c; continue }
                if (c == "," || c == ";") {
                    rtrim(); cur = cur c
                    if (c == ";" && paren == 0) flush()
                    continue
                }
                if (paren == 0 && c == "{") {
                    rtrim(); cur = (cur == "" ? "{" : cur " {"); flush(); indent++; continue
                }
                if (paren == 0 && c == "}") {
                    flush(); indent--; cur = "}"; pend = "}"; continue
                }
                if (paren == 0 && c == ":" && substr(s, i + 1, 1) != ":") {
                    rtrim()
                    if (cur ~ /^case / || cur == "default" || cur ~ /^[A-Za-z_][A-Za-z0-9_]*$/) {
                        cur = cur ":"; label = 1; pend = ":"; continue
                    }
                }
                if (c == "-" && substr(s, i + 1, 1) == ">") { rtrim(); cur = cur "->"; i++; continue }
                if (substr(cur, length(cur), 1) == "(" && c == " ") continue
                cur = cur c
            }
        }
        FNR == NR { code[$1 + 0] = substr($0, index($0, "\t") + 1); next }
        { orig[FNR] = $0 }
        END {
            for (ln = a; ln <= b; ln++) {
                s = norm(orig[ln]); e = norm(code[ln])
                if (s != e) {
                    if (pend != "") { flush(); pend = "" }
                    flush()
                    emit("// " shortname ":" ln ":  " s, indent)
                }
                feed(code[ln] " ")
            }
            if (pend != "") flush()
            flush()
        }
    ' "$tmp/exp" "$path"
}

# pycomment PATH ITEM: the /* ... */ block right above the item
pycomment() {
    range_of "$1" "$2" item
    awk -v first="$FIRST" '
        { l[NR] = $0 }
        END {
            e = first - 1
            if (l[e] !~ /\*\/[ \t]*$/) exit 1
            for (s = e; s > 0 && l[s] !~ /^\/\*/; s--) ;
            for (k = s; k <= e; k++) {
                t = l[k]
                sub(/^\/\* ?/, "", t); sub(/^ \* ?/, "", t); sub(/[ \t]*\*\/[ \t]*$/, "", t)
                print t
            }
        }' "$1" || die "$1: no comment above $2"
}

# python PATH ITEM: the string arguments of the item's python(...) calls
python_of() {
    range_of "$1" "$2" item
    awk -v a="$FIRST" -v b="$LAST" '
        NR < a || NR > b { next }
        index($0, "python(") { on = 1 }
        on {
            t = $0
            while (match(t, /"([^"\\]|\\.)*"/)) {
                s = substr(t, RSTART + 1, RLENGTH - 2); gsub(/\\"/, "\"", s); print s
                t = substr(t, RSTART + RLENGTH)
            }
            if (index($0, "NULL);")) { on = 0; print "" }
        }' "$1" | sed '$d'
}

split_ref() { # PATH:ITEM[:REST] -> P I R
    local r=${1#*:}
    P=${1%%:*} I=${r%%:*} R=
    [ "$I" != "$r" ] && R=${r#*:}
    [ -n "$P" ] && [ -n "$I" ] || die "bad reference $1"
}

: >"$tmp/out"
n=0
while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in
    @SOURCE\ *@)
        split_ref "${line:8:${#line}-9}"
        range_of "$P" "$I" item
        numbered "$P" "$FIRST" "$LAST" | fence c ;;
    @DEFINE\ *@)
        split_ref "${line:8:${#line}-9}"
        range_of "$P" "$I" define
        numbered "$P" "$FIRST" "$LAST" | fence c ;;
    @EXPAND\ *@)
        split_ref "${line:8:${#line}-9}"
        out_exp=$(expand "$P" "$I" "$R") || exit 1
        printf '%s\n' "$out_exp" | fence c ;;
    @PYCOMMENT\ *@)
        split_ref "${line:11:${#line}-12}"
        out_py=$(pycomment "$P" "$I") || exit 1
        printf '%s\n' "$out_py" | fence python ;;
    @PYTHON\ *@)
        split_ref "${line:8:${#line}-9}"
        out_py=$(python_of "$P" "$I") || exit 1
        [ -n "$out_py" ] || die "$P: no python(...) in $I"
        printf '%s\n' "$out_py" | fence python ;;
    *@LINE\ *)
        while [[ $line =~ @LINE\ ([^@]*)@ ]]; do
            split_ref "${BASH_REMATCH[1]}"
            [ -n "$R" ] || die "template line $n: @LINE needs PATH:ITEM:TEXT"
            num=$(line_of "$P" "$I" "$R") || exit 1
            line=${line/"${BASH_REMATCH[0]}"/$num}
        done
        printf '%s\n' "$line" ;;
    *@[A-Z]*\ *:*@*)
        case $line in *'`'*) printf '%s\n' "$line" ;; *) die "template line $n: unknown placeholder: $line" ;; esac ;;
    *) printf '%s\n' "$line" ;;
    esac
done <"$template" >>"$tmp/out" || exit 1

mkdir -p "$(dirname "$out")"
mv "$tmp/out" "$out"
