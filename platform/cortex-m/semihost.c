/*
 * semihost.c - the semihosting calls the image uses (see semihost.h).
 */
#include "semihost.h"

void sh_write0(const char *s) { (void)sh_call(SH_SYS_WRITE0, s); }

void sh_writec(char c) { (void)sh_call(SH_SYS_WRITEC, &c); }

_Noreturn void sh_exit(int status)
{
    if (status != 0) {
        uint32_t block[2] = { SH_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status };
        (void)sh_call(SH_SYS_EXIT_EXTENDED, block);
        /* still here: the host lacks SYS_EXIT_EXTENDED; any failure is 1 */
        (void)sh_call(SH_SYS_EXIT, (const void *)(uintptr_t)SH_ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    } else {
        (void)sh_call(SH_SYS_EXIT, (const void *)(uintptr_t)SH_ADP_STOPPED_APPLICATION_EXIT);
    }
    for (;;) /* no debugger at all: stop here */
        __asm__ volatile("bkpt 0");
}

int64_t sh_elapsed_ns(void)
{
    static int64_t freq; /* 0: not asked yet, -1: no SYS_ELAPSED */
    if (freq == 0) {
        intptr_t f = (intptr_t)sh_call(SH_SYS_TICKFREQ, 0);
        freq = f > 0 ? f : -1;
    }
    if (freq > 0) {
        uint32_t ticks[2] = { 0, 0 };
        if ((intptr_t)sh_call(SH_SYS_ELAPSED, ticks) == 0) {
            uint64_t t = (uint64_t)ticks[1] << 32 | ticks[0];
            return (int64_t)(t / (uint64_t)freq * 1000000000u +
                             t % (uint64_t)freq * 1000000000u / (uint64_t)freq);
        }
    }
    return (int64_t)sh_call(SH_SYS_CLOCK, 0) * 10000000;
}
