#!/usr/bin/env bash
# examples/demo_net.sh BUILD_DIR - the network programs, a few seconds each
# (make demo runs it after the tour). Everything listens on 127.0.0.1 with a
# port the server picks; every server is stopped with SIGINT and must exit 0,
# also with a client that stopped reading (in under 2 s); a request head
# left unfinished gets a 408 once the header timeout passes.
set -euo pipefail
bin=${1:-build}/examples
pids=()
trap 'for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done' EXIT

start() { # start NAME [ARGS...]: run a server (ARGS default: port 0); sets $port and $pid
    local log name=$1
    shift
    [ $# -gt 0 ] || set -- 0
    log=$(mktemp)
    "$bin/$name" "$@" >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do
        if grep -q "serving on" "$log"; then
            port=$(grep -oE '(127\.0\.0\.1|\[::1\]):[0-9]+' "$log" | head -1 | sed 's/.*://')
            rm -f "$log"
            return
        fi
        sleep 0.1
    done
    echo "demo: $name did not start" >&2
    cat "$log" >&2
    exit 1
}

stop() { # stop PID: SIGINT, it must exit 0
    kill -INT "$1"
    wait "$1"
}

echo
echo "== echo_server: every byte comes back ========================================"
start echo_server
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello, coro\n' >&3
IFS= read -r -t 5 reply <&3
exec 3<&-
echo "    sent 'hello, coro', got back '$reply'"
[ "$reply" = "hello, coro" ]
stop "$pid" && echo "    SIGINT: echo_server stopped cleanly (exit 0)"

echo
echo "== http_server + fetch_all: twelve cities, concurrent vs sequential =========="
start http_server
"$bin/fetch_all" "$port" Paris Oslo Lima Cairo Tokyo Delhi Quito Accra Hanoi Sofia Lagos Perth
stop "$pid" && echo "    SIGINT: http_server stopped cleanly (exit 0)"

# (only where the loopback has IPv6: Linux's /proc, or lo0 on the BSDs)
if [ -s /proc/net/if_inet6 ] || { [ ! -e /proc/net ] && ifconfig lo0 2>/dev/null | grep -q inet6; }; then
    echo
    echo "== echo_server on ::1 (HOST on the command line) ==========================="
    start echo_server 0 ::1
    exec 3<>"/dev/tcp/::1/$port"
    printf 'hello, IPv6\n' >&3
    IFS= read -r -t 5 reply <&3
    exec 3<&-
    echo "    [::1]:$port: sent 'hello, IPv6', got back '$reply'"
    [ "$reply" = "hello, IPv6" ]
    stop "$pid"
fi

echo
echo "== holding up: a client that never reads, a slowloris ========================"
start echo_server
exec 3<>"/dev/tcp/127.0.0.1/$port"
timeout 3 head -c 8000000 /dev/zero >&3 2>/dev/null & # sends 8 MB, reads nothing
feeder=$!
sleep 0.5
t0=$(date +%s%N)
stop "$pid"
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$feeder" 2>/dev/null || true
exec 3<&-
echo "    echo_server with a client that stopped reading: stopped in $ms ms (exit 0)"
[ "$ms" -lt 2000 ]
start http_server -t 0.5 0
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HT' >&3 # half a request line, then nothing
IFS= read -r -t 5 reply <&3
exec 3<&-
echo "    a head never finished: '${reply%$'\r'}' after the 0.5 s header timeout"
[[ "$reply" == "HTTP/1.1 408 "* ]]
stop "$pid" && echo "    SIGINT: http_server stopped cleanly (exit 0)"
pids=()
