#!/usr/bin/env bash
# bench/net/run.sh - the network suite (rows and aims: docs/benchmarks.md);
# `make bench-net` gets here through `bash bench/run.sh net`.
#
# Loopback only (127.0.0.1). For every bench and every server (coro's
# examples/echo_server and examples/http_server, then each peer): start the
# server pinned to one CPU (taskset), wait until its port accepts, run the
# load client pinned to another CPU, stop the server and check that it did
# not crash. Then the table (coro/peer ratios, a note where the client was the
# bottleneck), and every figure appended to $BENCH_OUT/results.jsonl.
#
#   echo_1k_c50, echo_1k_c1, echo_64k_c10   netload echo (bench/net/netload.c):
#       one client for every server, every byte checked; req/s, p99 and the
#       server's CPU time per request (cpu_us_per_req, from /proc)
#       peers: libuv (echo_libuv.c), go (go/echo), node (echo_node.js),
#       asyncio (echo_asyncio.py streams), asyncio_proto (echo_asyncio.py protocol)
#   http_c100_loops1, http_c100_loops2      coro's http_server --loops 1 and 2 (one
#       loop per thread, SO_REUSEPORT), wrk -t1 -c100 as http_c100, but server
#       and client both on the two CPUs (taskset A,B): server CPU is the whole
#       process's; coro only (loops_rows below)
#   idle_conn_bytes                         bench/net/idle.py: RSS per idle keep-alive
#       HTTP connection (10,000, or what ulimit -n allows) and RSS 1 s after
#       they closed (metrics bytes_per_conn, rss_after_spike); coro only
#   http_c100, http_c1000                   wrk -t1 --latency, after a 1 s warm-up
#       run and a check that GET / answers "hello, world\n" twice on one
#       keep-alive connection (netload httpcheck)
#       peers: nginx (one worker, config generated here), go (go/http,
#       net/http), node (http_node.js), asyncio_proto (http_asyncio.py)
#   resp_c50, resp_c50_p16                  redis-benchmark -c 50 -r 100000 -t set,get
#       -n BENCH_NET_RESP_N (200,000; five times that with -P 16), without
#       and with -P 16, after a short warm-up run (bench/net/resp.py: req/s
#       over both tests, the worse p99, CPU from /proc)
#       servers: coro (examples/kv_server), redis (redis-server --save ''
#       --appendonly no)
#   resp_mem                                bench/net/resp.py mem: RSS per idle
#       connection (1,000 after one PING each) and per stored key (100,000
#       SETs of 12-byte keys and 16-byte values); coro and redis
#
# Every server is started afresh for each row and killed at the end even on
# failure (trap). Missing tools (golang-go, libuv1-dev, nodejs, nginx-light,
# wrk, python3, redis-server, redis-tools) are installed with apt-get when we
# are root; otherwise that peer is skipped with a one-line reason.
#
# Environment: BENCH_BIN, BENCH_OUT, CC, CORO_BUILD (the Makefile sets them),
# BENCH_PYTHON, BENCH_NO_INSTALL=1, BENCH_NET_IMPLS (a subset of
# "coro libuv go node asyncio asyncio_proto nginx redis"), BENCH_NET_BENCHES
# (a subset of the twelve names), BENCH_NET_DURATION (seconds measured, default
# 5), BENCH_NET_WARMUP (seconds of warm-up, default 1; whole numbers of
# seconds), BENCH_NET_RESP_N (requests per redis-benchmark test, default
# 200000).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) # bench/net
root=$(cd "$here/../.." && pwd)
bin=${BENCH_BIN:-$root/build/bench}
out=${BENCH_OUT:-$root/bench/out}
mkdir -p "$out" "$bin"
out=$(cd "$out" && pwd) # absolute, before we move to the root
bin=$(cd "$bin" && pwd)
cd "$root"
results="$out/results.jsonl"
report="$here/../peers/report.py"
nb="$bin/net"
mkdir -p "$nb"
nb=$(cd "$nb" && pwd)
logs="$out/net-logs"
rm -rf "$logs"
mkdir -p "$logs"
cc=${CC:-cc}
dur=${BENCH_NET_DURATION:-5}
warm=${BENCH_NET_WARMUP:-1}
want_impls=${BENCH_NET_IMPLS:-coro libuv go node asyncio asyncio_proto nginx redis}
want_benches=${BENCH_NET_BENCHES:-echo_1k_c50 echo_1k_c1 echo_64k_c10 http_c100 http_c1000 idle_conn_bytes resp_c50 resp_c50_p16 resp_mem}
[ -n "${BENCH_NET_BENCHES:-}" ] || want_benches+=" http_c100_loops1 http_c100_loops2" # loops_rows
resp_n=${BENCH_NET_RESP_N:-200000}
[[ "$dur" =~ ^[1-9][0-9]*$ && "$warm" =~ ^[0-9]+$ && "$resp_n" =~ ^[1-9][0-9]*$ ]] || {
    echo "bench-net: BENCH_NET_DURATION and BENCH_NET_WARMUP are whole seconds" >&2
    exit 2
}

run_file="$out/last-net.jsonl"
skips_file="$out/last-net.skips.txt"
notes_file="$out/last-net.notes.txt"
: >"$run_file"
: >"$notes_file"
skipped=() # one-line reasons
t_start=$SECONDS
load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?')

# ---- cleanup: every server we started dies with us -------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coro-bench-net.XXXXXX")
servers=() # pids of servers still running
# kill_tree PID: SIGTERM, up to 3 s to go, then SIGKILL for it and the
# children it had (nginx's worker outlives a SIGKILLed master otherwise)
kill_tree() {
    local pid=$1 kids i
    kids=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ' || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    # shellcheck disable=SC2086
    kill -KILL "$pid" $kids 2>/dev/null || true
}
cleanup() {
    local p
    for p in "${servers[@]+"${servers[@]}"}"; do kill_tree "$p"; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "bench-net: interrupted" >&2; exit 130' INT TERM

note() { echo "$*" >>"$notes_file"; }

# ---- tools: install what is missing when we may -----------------------------

is_root() { [ "$(id -u)" = 0 ]; }
can_install() { is_root && [ -z "${BENCH_NO_INSTALL:-}" ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
    local log="$out/apt.log"
    echo "bench-net: installing $* (apt-get, log in $log)" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$log" 2>&1 || return 1
    fi
}
pick_python() {
    if [ -n "${BENCH_PYTHON:-}" ]; then
        command -v "$BENCH_PYTHON" || true
    elif [ -x /usr/bin/python3 ]; then
        echo /usr/bin/python3 # Debian's build, the one asyncio users get
    else
        command -v python3 || true
    fi
}
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
have_uv() {
    printf '#include <uv.h>\nint main(void){return uv_version()==0;}\n' |
        "$cc" -x c - -o "$tmp/uvtest" -luv >/dev/null 2>&1
}
wants() { [[ " $want_impls " == *" $1 "* ]]; }
wants_bench() { [[ " $want_benches " == *" $1 "* ]]; }
any_http() { wants_bench http_c100 || wants_bench http_c1000 || any_loops; }
any_loops() { wants_bench http_c100_loops1 || wants_bench http_c100_loops2; } # loops_rows
any_echo() { wants_bench echo_1k_c50 || wants_bench echo_1k_c1 || wants_bench echo_64k_c10; }
any_resp() { wants_bench resp_c50 || wants_bench resp_c50_p16 || wants_bench resp_mem; }

missing=()
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
wants go && ! command -v go >/dev/null 2>&1 && missing+=(golang-go)
wants libuv && any_echo && ! have_uv && missing+=(libuv1-dev)
wants node && ! command -v node >/dev/null 2>&1 && missing+=(nodejs)
wants nginx && any_http && [ -z "$(find_nginx)" ] && missing+=(nginx-light)
any_http && ! command -v wrk >/dev/null 2>&1 && missing+=(wrk)
{ wants asyncio || wants asyncio_proto || any_resp; } && [ -z "$(pick_python)" ] && [ -z "${BENCH_PYTHON:-}" ] && missing+=(python3)
wants redis && any_resp && ! command -v redis-server >/dev/null 2>&1 && missing+=(redis-server)
any_resp && ! command -v redis-benchmark >/dev/null 2>&1 && missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
    if can_install; then
        if ! apt_install "${missing[@]}"; then
            for p in "${missing[@]}"; do apt_install "$p" || echo "bench-net: apt-get could not install $p" >&2; done
        fi
    elif ! is_root; then
        echo "bench-net: not root, so not installing: ${missing[*]}" >&2
    fi
fi
py=$(pick_python)
nginx=$(find_nginx)
command -v taskset >/dev/null 2>&1 || { echo "bench-net: taskset is missing (Debian package util-linux)" >&2; exit 2; }

# ---- CPUs: the server on one, the client on another -------------------------

# the CPUs this process may run on, from its affinity list ("0-3,6")
cpus=()
for part in $(taskset -pc $$ | sed 's/.*: *//' | tr ',' ' '); do
    if [[ "$part" == *-* ]]; then
        for ((c = ${part%-*}; c <= ${part#*-}; c++)); do cpus+=("$c"); done
    else
        cpus+=("$part")
    fi
done
srv_cpu=${cpus[0]}
cli_cpu=${cpus[1]:-${cpus[0]}}
if awk -v l="$load_start" 'BEGIN { exit !(l + 0 > 0.5) }'; then
    note "bench-net: the machine was busy before the run (load average $load_start): other work competes for the two CPUs, the figures are noisier than usual"
fi
if [ "$srv_cpu" = "$cli_cpu" ]; then
    note "bench-net: only one CPU is available: server and client share CPU $srv_cpu, so every figure is held down by the client"
fi

# ---- file descriptors: 1,000 connections and then some -----------------------

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
[ "$nofile" = unlimited ] && nofile=1048576

# ---- build the client and the peers -----------------------------------------

stale() {
    local o=$1
    shift
    [ -e "$o" ] || return 0
    for s in "$@"; do [ "$s" -nt "$o" ] && return 0; done
    return 1
}
# build NAME OUT LOG CMD...: a failed build skips NAME with its first error
build() {
    local name=$1 o=$2 log=$3
    shift 3
    if ! "$@" >"$log" 2>&1; then
        rm -f "$o"
        skipped+=("$name: the build failed ($(grep -m1 -i 'error' "$log" || head -n1 "$log"); log: $log)")
        return 1
    fi
}

if stale "$nb/netload" "$here/netload.c"; then
    if ! "$cc" -O2 -Wall -o "$nb/netload" "$here/netload.c" >"$nb/netload.log" 2>&1; then
        echo "bench-net: the load client does not build (log: $nb/netload.log):" >&2
        head -n 5 "$nb/netload.log" >&2
        exit 1
    fi
fi

ok_impl=() # "impl kind" pairs that can run (kind: echo or http)
ok() { ok_impl+=("$1 $2"); }
can() { [[ " ${ok_impl[*]/%/;} " == *" $1 $2; "* ]]; }

# coro: its example servers, built -O2 -DNDEBUG like the micro suite when the
# Makefile told us where (CORO_BUILD), else whatever build/examples/ holds.
declare -A coro_bin=()
coro_server() { # NAME KIND
    local name=$1 kind=$2 src="$root/examples/$1.c" cand=() c rel
    if [ -n "${CORO_BUILD:-}" ] && [ -f "$src" ]; then
        rel=${CORO_BUILD#"$root"/}
        if [ "$rel" != "$CORO_BUILD" ]; then
            if ! make --no-print-directory -C "$root" "$rel/examples/$name" SANITIZER= VALGRIND= NDEBUG=1 \
                CC="$cc" >"$nb/coro-$name.log" 2>&1; then
                skipped+=("coro ($kind): examples/$name.c does not build ($(grep -m1 -i 'error' "$nb/coro-$name.log" || tail -n1 "$nb/coro-$name.log"); log: $nb/coro-$name.log)")
                return
            fi
        fi
        cand+=("$CORO_BUILD/examples/$name")
    fi
    cand+=("$root/build/examples/$name")
    for c in "${cand[@]}"; do
        if [ -x "$c" ]; then
            coro_bin[$kind]=$c
            ok coro "$kind"
            return
        fi
    done
    if [ -f "$src" ]; then
        skipped+=("coro ($kind): server not built yet (build/examples/$name does not exist: make examples)")
    else
        skipped+=("coro ($kind): server not built yet (examples/$name.c does not exist)")
    fi
}
if wants coro; then
    any_echo && coro_server echo_server echo
    { any_http || wants_bench idle_conn_bytes; } && coro_server http_server http
    any_resp && coro_server kv_server resp
fi

if wants libuv && any_echo; then
    if ! have_uv; then
        skipped+=("libuv: uv.h or -luv not found (Debian package libuv1-dev)")
    elif ! stale "$nb/echo_libuv" "$here/echo_libuv.c" ||
        build libuv "$nb/echo_libuv" "$nb/echo_libuv.log" "$cc" -O2 -o "$nb/echo_libuv" "$here/echo_libuv.c" -luv; then
        ok libuv echo
    fi
fi
if wants go; then
    if ! command -v go >/dev/null 2>&1; then
        skipped+=("go: go is not installed (Debian package golang-go)")
    else
        # standard library only: no module download, a build cache of our own
        for k in echo http; do
            if [ $k = echo ] && ! any_echo; then continue; fi
            if [ $k = http ] && ! any_http; then continue; fi
            if ! stale "$nb/go-$k" "$here/go/$k/main.go" ||
                build "go ($k)" "$nb/go-$k" "$nb/go-$k.log" env GOPROXY=off GOFLAGS= GOCACHE="$nb/go-cache" \
                    go build -o "$nb/go-$k" "$here/go/$k/main.go"; then
                ok go $k
            fi
        done
    fi
fi
if wants node; then
    if command -v node >/dev/null 2>&1; then
        ok node echo
        ok node http
    else
        skipped+=("node: node is not installed (Debian package nodejs)")
    fi
fi
if wants asyncio || wants asyncio_proto; then
    if [ -z "$py" ]; then
        skipped+=("asyncio: ${BENCH_PYTHON:-python3} is not installed (Debian package python3)")
    elif ! "$py" -c 'import asyncio, sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
        skipped+=("asyncio: $py is older than 3.8")
    else
        wants asyncio && ok asyncio echo
        wants asyncio_proto && ok asyncio_proto echo && ok asyncio_proto http
    fi
fi
if wants nginx && any_http; then
    if [ -n "$nginx" ]; then
        ok nginx http
    else
        skipped+=("nginx: nginx is not installed (Debian package nginx-light)")
    fi
fi
if wants redis && any_resp; then
    if command -v redis-server >/dev/null 2>&1; then
        ok redis resp
    else
        skipped+=("redis: redis-server is not installed (Debian package redis-server)")
    fi
fi
if any_resp && { ! command -v redis-benchmark >/dev/null 2>&1 || [ -z "$py" ]; }; then
    skipped+=("resp_c50, resp_c50_p16, resp_mem: redis-benchmark (Debian package redis-tools) or python3 is missing: no resp row")
fi
if any_http && ! command -v wrk >/dev/null 2>&1; then
    skipped+=("http_c100, http_c1000: wrk is not installed (Debian package wrk): no http row")
fi

# ---- one server ---------------------------------------------------------------

# nginx_conf PORT: a one-worker config in $tmp/nginx, return 200 "hello, world\n"
nginx_conf() {
    local d="$tmp/nginx"
    mkdir -p "$d/logs"
    cat >"$d/nginx.conf" <<EOF
# generated by bench/net/run.sh: one worker, keep-alive, no access log
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
worker_rlimit_nofile 8192;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type text/plain;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$1 backlog=1024;
        location = / {
            return 200 "hello, world\n";
        }
    }
}
EOF
}

# server_cmd IMPL KIND PORT: cmd=(the server's command line)
server_cmd() {
    local impl=$1 kind=$2 port=$3
    case "$impl $kind" in
    "coro "*) cmd=("${coro_bin[$kind]}" "$port") ;;
    "libuv echo") cmd=("$nb/echo_libuv" "$port") ;;
    "go echo" | "go http") cmd=(env GOMAXPROCS=1 "$nb/go-$kind" "$port") ;;
    "node echo") cmd=(node "$here/echo_node.js" "$port") ;;
    "node http") cmd=(node "$here/http_node.js" "$port") ;;
    "asyncio echo") cmd=("$py" "$here/echo_asyncio.py" streams "$port") ;;
    "asyncio_proto echo") cmd=("$py" "$here/echo_asyncio.py" protocol "$port") ;;
    "asyncio_proto http") cmd=("$py" "$here/http_asyncio.py" "$port") ;;
    "redis resp")
        mkdir -p "$tmp/redis"
        cmd=(redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
            --dir "$tmp/redis" --logfile '')
        ;;
    "nginx http")
        nginx_conf "$port"
        cmd=("$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log")
        ;;
    *) cmd=(false) ;;
    esac
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# listens PID PORT: PID holds the socket listening on 127.0.0.1:PORT (so the
# port is ours, not someone else's who took it in between); where /proc/net/tcp
# is missing, that the port accepts a connection
listens() {
    local pid=$1 port=$2 inodes ino
    [ -r /proc/net/tcp ] || { accepts "$port"; return; }
    inodes=$(awk -v a="$(printf '0100007F:%04X' "$port")" '$2 == a && $4 == "0A" { print $10 }' /proc/net/tcp)
    [ -n "$inodes" ] || return 1
    for ino in $inodes; do
        find "/proc/$pid/fd" -maxdepth 1 -lname "socket:\[$ino\]" 2>/dev/null | grep -q . && return 0
    done
    return 1
}

# start_server IMPL KIND PORT LOG: srv_pid (the process), meas_pid (the one
# doing the work: nginx's worker); returns 1 with srv_err set on failure
start_server() {
    local impl=$1 kind=$2 port=$3 log=$4 i
    server_cmd "$impl" "$kind" "$port"
    taskset -c "$srv_cpu" "${cmd[@]}" >"$log" 2>&1 </dev/null &
    srv_pid=$!
    servers+=("$srv_pid")
    meas_pid=$srv_pid
    for ((i = 0; i < 200; i++)); do # up to 10 s
        if ! kill -0 "$srv_pid" 2>/dev/null; then
            srv_err="exited at start ($(grep -m1 -iE 'error|cannot|fail|denied|in use' "$log" 2>/dev/null ||
                tail -n1 "$log" 2>/dev/null || true); log: $log)"
            stop_server || true
            return 1
        fi
        if listens "$srv_pid" "$port"; then
            if [ "$impl" = nginx ]; then
                meas_pid=$(pgrep -P "$srv_pid" | head -n1 || true)
                [ -n "$meas_pid" ] || meas_pid=$srv_pid
            fi
            return 0
        fi
        sleep 0.05
    done
    srv_err="does not accept on 127.0.0.1:$port after 10 s (log: $log)"
    stop_server || true
    return 1
}

# stop_server: kill $srv_pid and reap it; srv_crash says what went wrong
# (empty when it was alive and stopped cleanly). Not in a subshell: it waits.
stop_server() {
    local rc=0 alive=1
    srv_crash=
    kill -0 "$srv_pid" 2>/dev/null || alive=0
    if [ $alive = 1 ]; then
        kill_tree "$srv_pid"
    fi
    wait "$srv_pid" 2>/dev/null || rc=$?
    local keep=()
    for p in "${servers[@]}"; do [ "$p" != "$srv_pid" ] && keep+=("$p"); done
    servers=("${keep[@]+"${keep[@]}"}")
    if [ $alive = 0 ]; then
        if [ $rc -gt 128 ]; then
            srv_crash="died during the run (signal $((rc - 128)): SIG$(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        else
            srv_crash="exited during the run (status $rc)"
        fi
        return 1
    fi
    # a clean stop: 0, or SIGTERM's default (143); SIGKILL (137): it ignored SIGTERM
    case $rc in
    0 | 143) return 0 ;;
    137) return 0 ;;
    *)
        if [ $rc -gt 128 ]; then
            srv_crash="crashed when stopped (signal $((rc - 128)): SIG$(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
        else
            srv_crash="exited with status $rc when stopped"
        fi
        return 1
        ;;
    esac
}

free_port() { "$nb/netload" freeport; }

# ---- the rows -------------------------------------------------------------------

declare -A conns=([echo_1k_c50]=50 [echo_1k_c1]=1 [echo_64k_c10]=10 [http_c100]=100 [http_c1000]=1000
    [resp_c50]=50 [resp_c50_p16]=50)
declare -A pipeline=([resp_c50]=1 [resp_c50_p16]=16)
declare -A size=([echo_1k_c50]=1024 [echo_1k_c1]=1024 [echo_64k_c10]=65536)
impl_order="coro libuv go node asyncio asyncio_proto nginx redis"

rows=()
for b in echo_1k_c50 echo_1k_c1 echo_64k_c10 http_c100 http_c1000 resp_c50 resp_c50_p16; do
    wants_bench "$b" || continue
    kind=${b%%_*}
    if [ "$kind" = http ] && ! command -v wrk >/dev/null 2>&1; then continue; fi
    if [ "$kind" = resp ] && { ! command -v redis-benchmark >/dev/null 2>&1 || [ -z "$py" ]; }; then continue; fi
    if [ "$b" = http_c1000 ] && [ "$nofile" -lt 1100 ]; then
        skipped+=("http_c1000: only $nofile file descriptors (ulimit -n) for 1,000 connections")
        continue
    fi
    for impl in $impl_order; do
        can "$impl" "$kind" && rows+=("$b $impl")
    done
done

tty=0
[ -t 2 ] && tty=1
i=0
for row in "${rows[@]}"; do
    i=$((i + 1))
    read -r b impl <<<"$row"
    kind=${b%%_*}
    if [ $tty = 1 ]; then
        printf '\r[%d/%d] %-14s %-14s %4ds ' "$i" "${#rows[@]}" "$b" "$impl" $((SECONDS - t_start)) >&2
    else
        printf '[%d/%d] %s %s (%ds)\n' "$i" "${#rows[@]}" "$b" "$impl" $((SECONDS - t_start)) >&2
    fi
    port=$(free_port)
    slog="$logs/$b-$impl.server.log"
    clog="$logs/$b-$impl.client.log"
    if ! start_server "$impl" "$kind" "$port" "$slog"; then
        # someone else may have taken the port in between: once more, on another
        if grep -qiE 'in use|EADDRINUSE' "$slog" 2>/dev/null; then
            port=$(free_port)
            start_server "$impl" "$kind" "$port" "$slog" || srv_pid=
        else
            srv_pid=
        fi
        if [ -z "$srv_pid" ]; then
            note "bench-net: $b ($impl): the server $srv_err: no figure"
            continue
        fi
    fi
    rc=0
    if [ "$kind" = resp ]; then
        n=$resp_n
        [ "${pipeline[$b]}" -gt 1 ] && n=$((resp_n * 5))
        # warm-up: a tenth of the run, not measured
        timeout -k 2 60 taskset -c "$cli_cpu" redis-benchmark -h 127.0.0.1 -p "$port" -c "${conns[$b]}" \
            -n $((n / 10)) -r 100000 -t set,get -P "${pipeline[$b]}" -q >"$logs/$b-$impl.warmup.log" 2>&1 || true
        lines=$(timeout -k 2 200 "$py" "$here/resp.py" load --port "$port" --bench "$b" --impl "$impl" \
            --server-pid "$meas_pid" --cpus "$srv_cpu,$cli_cpu" --requests "$n" --conns "${conns[$b]}" \
            --pipeline "${pipeline[$b]}" --timeout 180 2>"$clog") || rc=$?
    elif [ "$kind" = echo ]; then
        lines=$(timeout -k 2 $((warm + dur + 20)) taskset -c "$cli_cpu" "$nb/netload" echo --port "$port" \
            --conns "${conns[$b]}" --size "${size[$b]}" --warmup "$warm" --duration "$dur" \
            --bench "$b" --impl "$impl" --server-pid "$meas_pid" --cpus "$srv_cpu,$cli_cpu" 2>"$clog") || rc=$?
    else
        if ! "$nb/netload" httpcheck --port "$port" --impl "$impl" 2>"$clog"; then
            rc=3
        else
            url="http://127.0.0.1:$port/"
            c=${conns[$b]}
            if [ "$warm" -gt 0 ]; then
                timeout -k 2 $((warm + 15)) taskset -c "$cli_cpu" wrk -t1 -c"$c" -d"${warm}s" "$url" \
                    >"$logs/$b-$impl.warmup.log" 2>&1 || true
            fi
            lines=$(timeout -k 2 $((dur + 20)) taskset -c "$cli_cpu" "$nb/netload" wrk --bench "$b" \
                --impl "$impl" --server-pid "$meas_pid" --cpus "$srv_cpu,$cli_cpu" -- wrk -t1 -c"$c" -d"${dur}s" --latency "$url" \
                2>>"$clog") || rc=$?
        fi
    fi
    stop_server || true
    crash=$srv_crash
    grep '^netload: warning' "$clog" | sed 's/^netload: warning: /bench-net: /' >>"$notes_file" || true
    if [ -n "$crash" ]; then
        note "bench-net: $b ($impl): the server $crash (log: $slog)"
    fi
    if [ $rc -ne 0 ] || [ -z "${lines:-}" ]; then
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            why="the client did not finish in time"
        else
            why=$(grep -v '^netload: warning' "$clog" | tail -n1 || true)
            why=${why#netload: }
            why=${why#resp.py: }
            why=${why#"$b ($impl): "}
            [[ "$why" == "httpcheck ($impl): "* ]] && why="the GET / check failed: ${why#"httpcheck ($impl): "}"
            [ -n "$why" ] || why="the client failed (exit $rc)"
        fi
        note "bench-net: $b ($impl) FAILED: $why: no figure"
        lines=
        continue
    fi
    if [ -n "$crash" ]; then
        note "bench-net: $b ($impl): its figures are kept out of the table because the server did not survive"
        lines=
        continue
    fi
    printf '%s\n' "$lines" >>"$run_file"
    lines=
done
if [ $tty = 1 ]; then printf '\r%-60s\r' '' >&2; fi

# ---- http_c100_loops1, http_c100_loops2: one loop per thread -------------------
#
# coro's http_server --loops N (examples/loops.h: N loops, each with its own
# SO_REUSEPORT server on the port). Both rows run the same way, so only N
# differs: the server may use both CPUs and so may wrk (-t1 -c100, as
# http_c100), taskset "$srv_cpu,$cli_cpu" for both. On a 2-core machine the
# client takes a core's share of the two, so two loops cannot double req/s:
# the server's CPU per request (the whole process, every thread) is the
# figure to compare. coro only: the peers' rows are single-loop.

# loops_row BENCH NLOOPS: one row, appended to $run_file; a note on failure
loops_row() {
    local b=$1 n=$2 port slog clog rc=0 i pin="$srv_cpu,$cli_cpu" url out=
    port=$(free_port)
    slog="$logs/$b-coro.server.log"
    clog="$logs/$b-coro.client.log"
    taskset -c "$pin" "${coro_bin[http]}" --loops "$n" "$port" >"$slog" 2>&1 </dev/null &
    srv_pid=$!
    servers+=("$srv_pid")
    for ((i = 0; i < 200; i++)); do # up to 10 s
        listens "$srv_pid" "$port" && break
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.05
    done
    if ! listens "$srv_pid" "$port"; then
        stop_server || true
        note "bench-net: $b (coro): the server did not start (log: $slog): no figure"
        return
    fi
    url="http://127.0.0.1:$port/"
    if ! "$nb/netload" httpcheck --port "$port" --impl coro 2>"$clog"; then
        rc=3
    else
        if [ "$warm" -gt 0 ]; then
            timeout -k 2 $((warm + 15)) taskset -c "$pin" wrk -t1 -c100 -d"${warm}s" "$url" \
                >"$logs/$b-coro.warmup.log" 2>&1 || true
        fi
        out=$(timeout -k 2 $((dur + 20)) taskset -c "$pin" "$nb/netload" wrk --bench "$b" --impl coro \
            --server-pid "$srv_pid" --cpus "$pin" -- wrk -t1 -c100 -d"${dur}s" --latency "$url" \
            2>>"$clog") || rc=$?
    fi
    stop_server || true
    grep '^netload: warning' "$clog" | sed 's/^netload: warning: /bench-net: /' >>"$notes_file" || true
    if [ -n "$srv_crash" ]; then
        note "bench-net: $b (coro): the server $srv_crash (log: $slog): no figure"
    elif [ $rc -ne 0 ] || [ -z "$out" ]; then
        note "bench-net: $b (coro) FAILED: $(tail -n1 "$clog"): no figure"
    else
        printf '%s\n' "$out" >>"$run_file"
    fi
}

loops_rows() {
    local b
    can coro http && command -v wrk >/dev/null 2>&1 || return 0
    for b in http_c100_loops1 http_c100_loops2; do
        wants_bench "$b" || continue
        printf '%s (coro, %ds)\n' "$b" $((SECONDS - t_start)) >&2
        loops_row "$b" "${b##*loops}"
    done
}
loops_rows

# ---- idle_conn_bytes: RSS per idle keep-alive connection, and after the spike
# (coro's http_server only: bench/net/idle.py; 10,000 connections, or what
# the descriptor limit allows, less a margin: the row's "conns" says which)
idle_line=
resp_mem_lines=()
if wants_bench idle_conn_bytes && can coro http; then
    py_idle=${py:-$(command -v python3 || true)}
    idle_n=$((nofile - 64))
    [ "$idle_n" -gt 10000 ] && idle_n=10000
    if [ -z "$py_idle" ]; then
        skipped+=("idle_conn_bytes: no python3 for bench/net/idle.py")
    elif [ "$idle_n" -lt 100 ]; then
        skipped+=("idle_conn_bytes: only $nofile file descriptors (ulimit -n)")
    else
        port=$(free_port)
        slog="$logs/idle_conn_bytes-coro.server.log"
        if start_server coro http "$port" "$slog"; then
            if lines=$(timeout -k 2 150 "$py_idle" "$here/idle.py" --port "$port" --pid "$meas_pid" \
                --conns "$idle_n" --impl coro 2>"$logs/idle_conn_bytes-coro.client.log"); then
                printf '%s\n' "$lines" >>"$run_file"
                idle_line=$(tail -n1 "$logs/idle_conn_bytes-coro.client.log")
            else
                note "bench-net: idle_conn_bytes (coro) FAILED: $(tail -n1 "$logs/idle_conn_bytes-coro.client.log")"
            fi
            stop_server || true
        else
            note "bench-net: idle_conn_bytes (coro): the server $srv_err: no figure"
        fi
        lines=
    fi
fi
# ---- resp_mem: RSS per idle connection and per stored key, coro and redis ----
if wants_bench resp_mem && [ -n "$py" ]; then
    for impl in coro redis; do
        can "$impl" resp || continue
        port=$(free_port)
        slog="$logs/resp_mem-$impl.server.log"
        if start_server "$impl" resp "$port" "$slog"; then
            if lines=$(timeout -k 2 120 "$py" "$here/resp.py" mem --port "$port" --pid "$meas_pid" \
                --impl "$impl" --conns $((nofile > 1200 ? 1000 : 100)) --keys 100000 \
                2>"$logs/resp_mem-$impl.client.log"); then
                printf '%s\n' "$lines" >>"$run_file"
                resp_mem_lines+=("$(tail -n1 "$logs/resp_mem-$impl.client.log")")
            else
                note "bench-net: resp_mem ($impl) FAILED: $(tail -n1 "$logs/resp_mem-$impl.client.log")"
            fi
            stop_server || true
        else
            note "bench-net: resp_mem ($impl): the server $srv_err: no figure"
        fi
        lines=
    done
fi
cat "$run_file" >>"$results"

# ---- the machine and the tools this run used ----------------------------------

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cores (nproc): $(nproc)"
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
    echo "kernel: $(uname -sr)"
    echo "pinning: servers on CPU $srv_cpu, the load client on CPU $cli_cpu (taskset)"
    echo "run: ${warm} s warm-up, ${dur} s measured per row, loopback (127.0.0.1)"
    echo "load average (1 min): $load_start before the run, $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo '?') after it"
    echo "C compiler: $("$cc" --version 2>/dev/null | head -n1)"
    [ -n "${coro_bin[echo]:-}" ] && echo "coro echo_server: ${coro_bin[echo]#"$root"/}"
    [ -n "${coro_bin[http]:-}" ] && echo "coro http_server: ${coro_bin[http]#"$root"/}"
    [ -n "${coro_bin[resp]:-}" ] && echo "coro kv_server: ${coro_bin[resp]#"$root"/}"
    can redis resp && echo "redis-server: $(redis-server --version | sed 's/^Redis server //' | cut -d' ' -f1)"
    any_resp && command -v redis-benchmark >/dev/null 2>&1 && echo "redis-benchmark: $(dpkg-query -W -f '${Version}' redis-tools 2>/dev/null || echo unknown)"
    can libuv echo && echo "libuv: $(dpkg-query -W -f '${Version}' libuv1-dev 2>/dev/null || echo unknown)"
    { can go echo || can go http; } && echo "Go: $(go version)"
    can node echo && echo "Node.js: $(node --version)"
    { can asyncio echo || can asyncio_proto echo; } && echo "Python: $("$py" -VV 2>&1 | head -n1 | tr -s ' ')"
    can nginx http && echo "nginx: $("$nginx" -v 2>&1 | sed 's/.*: *//')"
    command -v wrk >/dev/null 2>&1 && any_http && echo "wrk: $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}')"
    true
} >"$out/last-net.machine.txt"
printf '%s\n' "${skipped[@]+"${skipped[@]}"}" | sed '/^$/d' >"$skips_file"

# ---- the table ------------------------------------------------------------------

table_py=${py:-$(command -v python3 || true)}
if [ -n "$table_py" ] && [ -s "$run_file" ]; then
    "$table_py" "$report" nettable "$run_file"
elif [ -s "$run_file" ]; then
    echo "bench-net: no python3 to draw the table; the raw figures:"
    cat "$run_file"
else
    echo "bench-net: no figure at all"
fi
if [ ${#skipped[@]} -gt 0 ]; then
    echo
    for s in "${skipped[@]}"; do echo "bench-net: skipped $s"; done
fi
if [ -n "$idle_line" ]; then
    echo
    echo "idle_conn_bytes: ${idle_line#idle.py: }"
fi
for l in "${resp_mem_lines[@]+"${resp_mem_lines[@]}"}"; do
    echo "${l#resp.py: }"
done
if [ -s "$notes_file" ]; then
    echo
    cat "$notes_file"
fi
echo
echo "results appended to $results; server and client logs in $logs ($((SECONDS - t_start))s)"
