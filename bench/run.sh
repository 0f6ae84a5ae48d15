#!/usr/bin/env bash
# bench/run.sh - run a benchmark suite and print the side-by-side table.
#
#   bash bench/run.sh [micro|net]   run a suite (make bench / make bench-net call this;
#                                   net runs bench/net/run.sh, described there)
#   bash bench/run.sh check         the latest micro run against the aims
#                                   (docs/benchmarks.md lists them); exits 1 naming each miss
#   bash bench/run.sh docs          rewrite docs/benchmarks.md and its charts
#                                   (docs/bench-micro.png, docs/bench-net.png)
#                                   from the latest runs
#
# Every measurement is appended to $BENCH_OUT/results.jsonl as one JSON
# object (bench, impl, metric, value, unit, ...); the table shows coro, each peer that
# ran, and the coro/peer ratio (below 1 means coro is faster or smaller).
#
# The peers live in bench/peers/ and are built here into $BENCH_BIN/peers:
#   cpp20    peers/cpp20.cc        g++ -O2 -std=c++20 -fcoroutines
#   go       peers/go/micro.go     go build (GOMAXPROCS=1 at run time)
#   asyncio  peers/asyncio_micro.py  python3 (Debian's /usr/bin/python3 first)
#   libuv    peers/libuv.c         $CC -O2 ... -luv
# A missing toolchain is installed with apt-get when we are root (g++,
# golang-go, libuv1-dev, python3); otherwise that peer is skipped with a
# one-line reason, never silently. Each peer binary answers "list" with its
# rows ("name impl") and "NAME" with one JSON line, like bench/micro.c.
#
# Environment (the Makefile's bench-run target sets these): BENCH_BIN,
# BENCH_OUT, CC. Optional: BENCH_CXX (g++), BENCH_PYTHON, BENCH_PEERS (a
# space-separated subset of "cpp20 go asyncio libuv"), BENCH_ROW_TIMEOUT
# (seconds one row may take, default 180), BENCH_NO_INSTALL=1, BENCH_CPU
# (the CPU every micro row is pinned to with taskset, default the last
# one; "none" does not pin: a row that migrates between cores mid-run is
# the noisiest figure this machine gives).
set -euo pipefail

suite=${1:-${BENCH_SUITE:-micro}}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
bin=${BENCH_BIN:-build/bench}
out=${BENCH_OUT:-bench/out}
mkdir -p "$out"
results="$out/results.jsonl"
report="$here/peers/report.py"

pick_python() {
    if [ -n "${BENCH_PYTHON:-}" ]; then
        command -v "$BENCH_PYTHON" || true
    elif [ -x /usr/bin/python3 ]; then
        echo /usr/bin/python3 # Debian's (PGO) build: the asyncio users get
    else
        command -v python3 || true
    fi
}

is_root() { [ "$(id -u)" = 0 ]; }
can_install() { is_root && [ -z "${BENCH_NO_INSTALL:-}" ] && command -v apt-get >/dev/null 2>&1; }

# apt_install PKG... : install quietly; refresh the lists once if it fails.
apt_install() {
    local log="$out/apt.log"
    echo "bench: installing $* (apt-get, log in $log)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$log" 2>&1 || return 1
    fi
}

# ---- check and docs: read the latest run ----------------------------------

latest_run() {
    local f="$out/last-micro.jsonl"
    if [ ! -s "$f" ] && [ -s "$results" ]; then
        # no last run kept: the newest value of every (bench, impl, metric)
        f="$out/latest-from-results.jsonl"
        python3 - "$results" >"$f" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    r = json.loads(line)
    if r.get("suite") == "micro":
        last[(r["bench"], r["impl"], r["metric"])] = line.strip()
print("\n".join(last.values()))
PY
    fi
    echo "$f"
}

if [ "$suite" = check ]; then
    py=$(pick_python)
    [ -n "$py" ] || { echo "bench-check: python3 is missing" >&2; exit 2; }
    exec "$py" "$report" check "$(latest_run)"
fi

if [ "$suite" = docs ]; then
    py=$(pick_python)
    [ -n "$py" ] || { echo "bench: python3 is missing" >&2; exit 2; }
    if ! command -v gnuplot >/dev/null 2>&1; then
        if can_install; then
            apt_install gnuplot-nox || echo "bench: could not install gnuplot-nox: no chart" >&2
        else
            echo "bench: gnuplot is missing and we are not root: the page gets no chart" >&2
        fi
    fi
    machine="$out/last-micro.machine.txt"
    [ -s "$machine" ] || { echo "bench: $machine is missing: run 'make bench' first" >&2; exit 2; }
    # the network section: from the latest 'make bench-net' run, when there is one
    net=()
    if [ -s "$out/last-net.jsonl" ] && [ -s "$out/last-net.machine.txt" ]; then
        net=("$out/last-net.jsonl" "$out/last-net.machine.txt" "$root/docs/bench-net.png"
            "$out/last-net.skips.txt" "$out/last-net.notes.txt")
    else
        echo "bench: no network run in $out (make bench-net): the page gets no network section" >&2
    fi
    exec "$py" "$report" docs "$(latest_run)" "$machine" "$root/docs/benchmarks.md" \
        "$root/docs/bench-micro.png" "$out/chart" "${net[@]+"${net[@]}"}"
fi

if [ "$suite" = net ]; then
    # the network suite lives in bench/net/ (its own runner, same environment)
    BENCH_BIN=$bin BENCH_OUT=$out exec bash "$here/net/run.sh"
fi

if [ "$suite" != micro ]; then
    echo "bench: no suite named '$suite' (micro, net, check or docs)" >&2
    exit 1
fi

run_file="$out/last-$suite.jsonl"
notes="$out/notes-$suite.txt"
: >"$run_file"
: >"$notes"
t_start=$SECONDS

micro="$bin/micro"
[ -x "$micro" ] || { echo "bench: $micro is missing: run 'make bench'" >&2; exit 1; }

# ---- the peers: install what is missing, build ------------------------------

peer_bin="$bin/peers"
mkdir -p "$peer_bin"
want_peers=${BENCH_PEERS:-cpp20 go asyncio libuv}
cxx=${BENCH_CXX:-g++}
cc=${CC:-cc}
py=$(pick_python)
skipped=() # one-line reasons

wants() { [[ " $want_peers " == *" $1 "* ]]; }

have_uv() { printf '#include <uv.h>\nint main(void){return uv_version()==0;}\n' |
    "$cc" -x c - -o "$peer_bin/.uvtest" -luv >/dev/null 2>&1; }

missing_pkgs=()
wants cpp20 && [ "$cxx" = g++ ] && ! command -v g++ >/dev/null 2>&1 && missing_pkgs+=(g++)
wants go && ! command -v go >/dev/null 2>&1 && missing_pkgs+=(golang-go)
wants libuv && ! have_uv && missing_pkgs+=(libuv1-dev)
wants asyncio && [ -z "$py" ] && [ -z "${BENCH_PYTHON:-}" ] && missing_pkgs+=(python3)
if [ ${#missing_pkgs[@]} -gt 0 ]; then
    if can_install; then
        apt_install "${missing_pkgs[@]}" || echo "bench: apt-get could not install ${missing_pkgs[*]}" >&2
        py=$(pick_python)
    elif ! is_root; then
        echo "bench: not root, so not installing: ${missing_pkgs[*]}" >&2
    fi
fi

# stale OUT SRC...: true when OUT is missing or older than one of the SRCs
stale() {
    local out=$1
    shift
    [ -e "$out" ] || return 0
    for s in "$@"; do [ "$s" -nt "$out" ] && return 0; done
    return 1
}

# build NAME OUT LOG CMD...: a failed build skips the peer with its first error
build() {
    local name=$1 out=$2 log=$3
    shift 3
    if ! "$@" >"$log" 2>&1; then
        rm -f "$out"
        skipped+=("$name: the build failed ($(grep -m1 -i 'error' "$log" || head -n1 "$log"); log: $log)")
        return 1
    fi
}

peers_ok=()
if wants cpp20; then
    if ! command -v "$cxx" >/dev/null 2>&1; then
        skipped+=("cpp20: $cxx is not installed (Debian package g++)")
    elif stale "$peer_bin/cpp20" "$here/peers/cpp20.cc"; then
        build cpp20 "$peer_bin/cpp20" "$peer_bin/cpp20.log" \
            "$cxx" -O2 -std=c++20 -fcoroutines -o "$peer_bin/cpp20" "$here/peers/cpp20.cc" &&
            peers_ok+=(cpp20)
    else
        peers_ok+=(cpp20)
    fi
fi
if wants go; then
    if ! command -v go >/dev/null 2>&1; then
        skipped+=("go: go is not installed (Debian package golang-go)")
    elif stale "$peer_bin/go-micro" "$here/peers/go/micro.go"; then
        # standard library only: no module download, a build cache of our own
        build go "$peer_bin/go-micro" "$peer_bin/go.log" \
            env GOPROXY=off GOFLAGS= GOCACHE="$peer_bin/go-cache" \
            go build -o "$peer_bin/go-micro" "$here/peers/go/micro.go" &&
            peers_ok+=(go)
    else
        peers_ok+=(go)
    fi
fi
if wants asyncio; then
    if [ -z "$py" ]; then
        skipped+=("asyncio: ${BENCH_PYTHON:-python3} is not installed (Debian package python3)")
    elif ! "$py" -c 'import asyncio, sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
        skipped+=("asyncio: $py is older than 3.8")
    else
        peers_ok+=(asyncio)
    fi
fi
if wants libuv; then
    if ! have_uv; then
        skipped+=("libuv: uv.h or -luv not found (Debian package libuv1-dev)")
    elif stale "$peer_bin/libuv" "$here/peers/libuv.c"; then
        build libuv "$peer_bin/libuv" "$peer_bin/libuv.log" \
            "$cc" -O2 -o "$peer_bin/libuv" "$here/peers/libuv.c" -luv &&
            peers_ok+=(libuv)
    else
        peers_ok+=(libuv)
    fi
fi
rm -f "$peer_bin/.uvtest"

# Every row, coro's and the peers', runs on the same one CPU.
pin=()
cpus=$(nproc 2>/dev/null || echo 1)
cpu=${BENCH_CPU:-$((cpus - 1))}
if [ "$cpu" != none ] && command -v taskset >/dev/null 2>&1 && taskset -c "$cpu" true 2>/dev/null; then
    pin=(taskset -c "$cpu")
fi

# set_cmd IMPL: cmd=(the command line of a row of IMPL, without the bench name)
set_cmd() {
    case $1 in
    coro | floor) cmd=("$micro") ;;
    cpp20) cmd=("$peer_bin/cpp20") ;;
    go) cmd=(env GOMAXPROCS=1 "$peer_bin/go-micro") ;;
    asyncio) cmd=("$py" "$here/peers/asyncio_micro.py") ;;
    libuv) cmd=("$peer_bin/libuv") ;;
    *) cmd=(false) ;;
    esac
    cmd=("${pin[@]+"${pin[@]}"}" "${cmd[@]}")
}

# ---- the rows: coro's, then every peer's, in the order of the spec ----------

rows=()
while read -r name impl; do rows+=("$name $impl"); done < <("$micro" list)
for p in "${peers_ok[@]}"; do
    set_cmd "$p"
    if ! list=$("${cmd[@]}" list 2>&1); then
        skipped+=("$p: '${cmd[*]} list' failed: $(head -n1 <<<"$list")")
        continue
    fi
    while read -r name impl; do [ -n "$name" ] && rows+=("$name $impl"); done <<<"$list"
done
order="resume yield yield_many await_depth_1 await_depth_32 call_depth_32 spawn memory_per_task timers timeout_churn queue_pingpong skynet"
impls="coro floor cpp20 go asyncio libuv"
mapfile -t rows < <(
    for r in "${rows[@]}"; do
        read -r name impl <<<"$r"
        bi=99 ii=99 k=0
        for b in $order; do [ "$b" = "$name" ] && bi=$k; k=$((k + 1)); done
        k=0
        for x in $impls; do [ "$x" = "$impl" ] && ii=$k; k=$((k + 1)); done
        printf '%02d %02d %s\n' "$bi" "$ii" "$r"
    done | sort -s -k1,2 | cut -d' ' -f3-
)

row_timeout=${BENCH_ROW_TIMEOUT:-180}
tty=0
[ -t 2 ] && tty=1
i=0
for row in "${rows[@]}"; do
    i=$((i + 1))
    read -r name impl <<<"$row"
    if [ $tty = 1 ]; then
        printf '\r[%d/%d] %-16s %-8s %4ds ' "$i" "${#rows[@]}" "$name" "$impl" $((SECONDS - t_start)) >&2
    else
        printf '[%d/%d] %s %s (%ds)\n' "$i" "${#rows[@]}" "$name" "$impl" $((SECONDS - t_start)) >&2
    fi
    set_cmd "$impl"
    case $impl in
    coro | floor) cmd+=("$name" 0 "$impl") ;;
    *) cmd+=("$name") ;;
    esac
    rc=0
    line=$(timeout -k 5 "$row_timeout" "${cmd[@]}" 2>>"$notes") || rc=$?
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        if [ $rc -eq 124 ]; then
            echo "bench: $name ($impl) took longer than ${row_timeout}s: no figure" >>"$notes"
        else
            echo "bench: $name ($impl) failed (exit $rc): no figure" >>"$notes"
        fi
        continue
    fi
    printf '%s\n' "$line" >>"$run_file"
done
if [ $tty = 1 ]; then printf '\r%-60s\r' '' >&2; fi
cat "$run_file" >>"$results"

# The machine this run was made on (docs/benchmarks.md quotes it).
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cores (nproc): $(nproc)"
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel: $(uname -sr)"
    echo "C compiler: $("$cc" --version 2>/dev/null | head -n1)"
    if [[ " ${peers_ok[*]} " == *" cpp20 "* ]]; then echo "C++ compiler: $("$cxx" --version | head -n1)"; fi
    if [[ " ${peers_ok[*]} " == *" go "* ]]; then echo "Go: $(go version)"; fi
    if [[ " ${peers_ok[*]} " == *" asyncio "* ]]; then echo "Python: $("$py" -VV 2>&1 | head -n1 | tr -s ' ')"; fi
    if [[ " ${peers_ok[*]} " == *" libuv "* ]]; then
        echo "libuv: $(dpkg-query -W -f '${Version}' libuv1-dev 2>/dev/null || echo unknown)"
    fi
} >"$out/last-$suite.machine.txt"

table_py=${py:-$(command -v python3 || true)}
if [ -n "$table_py" ]; then
    "$table_py" "$report" table "$run_file"
else
    echo "bench: no python3 to draw the table; the raw figures:"
    cat "$run_file"
fi
if [ ${#skipped[@]} -gt 0 ]; then
    echo
    for s in "${skipped[@]}"; do echo "bench: skipped peer $s"; done
fi
if [ -s "$notes" ]; then
    echo
    sort -u "$notes"
fi
rm -f "$notes"
echo
echo "results appended to $results ($((SECONDS - t_start))s)"
