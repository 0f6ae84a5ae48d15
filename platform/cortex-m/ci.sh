#!/bin/sh
# platform/cortex-m/ci.sh - the bare-metal stage of CI (issue 9, item 5).
#
# Installs the cross compiler, newlib and QEMU with apt-get when run as root
# (says what to run otherwise), then for each CPU in $CM_CPUS (default:
# cortex-m3 on mps2-an385, then cortex-m4 on mps2-an386) builds coro's core
# for it, runs the images under qemu-system-arm (make PLATFORM=cortex-m
# test) and prints their sizes; then the Cortex-M3 suite once more in the
# labels-as-values resume form (CM_LABELS=1). Exits non-zero if anything failed.
#
#   platform/cortex-m/ci.sh                  from anywhere in the checkout
#   CM_CPUS=cortex-m3 platform/cortex-m/ci.sh
#   JOBS=2 (make -j), CM_TIMEOUT=60 (seconds per image)
set -eu

cd "$(dirname "$0")/../.."
CM_CPUS=${CM_CPUS:-"cortex-m3 cortex-m4"}
JOBS=${JOBS:-2}
PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"

missing=
command -v arm-none-eabi-gcc >/dev/null 2>&1 || missing="$missing gcc-arm-none-eabi"
if ! echo '#include <stdlib.h>' | arm-none-eabi-gcc --specs=nano.specs -E -x c - >/dev/null 2>&1; then
    missing="$missing libnewlib-arm-none-eabi"
fi
command -v qemu-system-arm >/dev/null 2>&1 || missing="$missing qemu-system-arm"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "ci.sh: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends $PKGS
    else
        echo "ci.sh: missing$missing; as root run:" >&2
        echo "    apt-get install -y --no-install-recommends $PKGS" >&2
        exit 2
    fi
fi
arm-none-eabi-gcc --version | head -n 1
qemu-system-arm --version | head -n 1

status=0
for cpu in $CM_CPUS; do
    echo "==== cortex-m: $cpu"
    if ! make --no-print-directory -j"$JOBS" PLATFORM=cortex-m CM_CPU="$cpu" test; then
        echo "ci.sh: $cpu FAILED" >&2
        status=1
        continue
    fi
    make --no-print-directory PLATFORM=cortex-m CM_CPU="$cpu" size || status=1
done
echo "==== cortex-m: cortex-m3, labels-as-values resume form (CORO_LABELS)"
make --no-print-directory -j"$JOBS" PLATFORM=cortex-m CM_CPU=cortex-m3 CM_LABELS=1 test || status=1
[ "$status" -eq 0 ] && echo "ci.sh: cortex-m passed ($CM_CPUS)"
exit "$status"
