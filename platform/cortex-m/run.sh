#!/bin/sh
# run.sh IMAGE [TIMEOUT_SECONDS] - run a Cortex-M image under QEMU's MPS2
# board with semihosting; QEMU's exit status is the image's (124 if it ran
# out of time). CM_MACHINE picks the board (mps2-an385: Cortex-M3, the
# default; mps2-an386: Cortex-M4), CM_QEMU the emulator.
set -u
image=${1:?usage: run.sh IMAGE [TIMEOUT_SECONDS]}
secs=${2:-60}
machine=${CM_MACHINE:-mps2-an385}
qemu=${CM_QEMU:-qemu-system-arm}
command -v "$qemu" >/dev/null 2>&1 || {
    echo "run.sh: $qemu not found (apt-get install -y qemu-system-arm)" >&2
    exit 127
}
# semihosting output on stdout (a chardev of its own; QEMU's default is stderr)
exec timeout --foreground -k 5 "$secs" "$qemu" -M "$machine" -nographic -monitor none \
    -serial none -chardev stdio,id=semihost,mux=off \
    -semihosting-config enable=on,target=native,chardev=semihost -kernel "$image"
