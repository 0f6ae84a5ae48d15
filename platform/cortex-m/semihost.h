/*
 * semihost.h - Arm semihosting for the bare-metal target: output, time and
 * the exit status, through the debugger (here QEMU with
 * -semihosting-config enable=on,target=native).
 *
 * A semihosting call is `bkpt 0xab` on M-profile, operation in r0, argument
 * (a value or a pointer to a parameter block) in r1, result in r0. Without
 * a debugger attached a real board would take a HardFault here: these are
 * for the emulator and the debug probe only.
 */
#ifndef CM_SEMIHOST_H
#define CM_SEMIHOST_H

#include <stdint.h>

/* Operation numbers (Arm "Semihosting for AArch32 and AArch64", 2.0). */
enum {
    SH_SYS_WRITEC = 0x03,        /* one character, r1 -> char */
    SH_SYS_WRITE0 = 0x04,        /* a NUL-terminated string, r1 -> string */
    SH_SYS_CLOCK = 0x10,         /* centiseconds since the program started */
    SH_SYS_EXIT = 0x18,          /* r1 = reason (AArch32) */
    SH_SYS_EXIT_EXTENDED = 0x20, /* r1 -> {reason, subcode} */
    SH_SYS_ELAPSED = 0x30,       /* r1 -> 64-bit tick count */
    SH_SYS_TICKFREQ = 0x31       /* ticks per second of SYS_ELAPSED */
};

/* angel_SWIReason_ReportException reasons. */
#define SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define SH_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

static inline uintptr_t sh_call(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_write0(const char *s);
void sh_writec(char c);
/* Leave the emulator with `status` as its exit status: SYS_EXIT with
 * ApplicationExit for 0; SYS_EXIT_EXTENDED with the status as subcode
 * otherwise (QEMU then exits with it), and if the host does not know the
 * extended call, SYS_EXIT with a run-time error (QEMU exits 1). */
_Noreturn void sh_exit(int status);
/* The host's elapsed time in nanoseconds (SYS_ELAPSED/SYS_TICKFREQ; falls
 * back to SYS_CLOCK's centiseconds). For measuring the target clock. */
int64_t sh_elapsed_ns(void);

#endif
