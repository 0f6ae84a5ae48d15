/*
 * clock.c - the platform clock against the host's: a 50 ms idle wait
 * (WFI until the SysTick that passes the deadline) must take about 50 ms
 * of QEMU's time, as the host's semihosting clock sees it, and must not
 * spin (it executes WFI about once per 1 ms tick).
 */
#include "cortex-m.h"
#include "print.h"
#include "semihost.h"

static int failed;

static void check(int ok, const char *what)
{
    cm_puts(ok ? "ok   " : "FAIL ");
    cm_puts(what);
    cm_puts("\n");
    failed += !ok;
}

static void wait_ms(int ms)
{
    uint32_t wfi0 = cm_idle_wfi_count();
    int64_t h0 = sh_elapsed_ns(), t0 = cm_clock_ns();
    cm_idle_until(t0 + (int64_t)ms * 1000000);
    int64_t t1 = cm_clock_ns(), h1 = sh_elapsed_ns();
    uint32_t wfi = cm_idle_wfi_count() - wfi0;
    cm_puts("wait ");
    cm_puti(ms);
    cm_puts(" ms: target clock ");
    cm_putfix((t1 - t0) / 1000, 3);
    cm_puts(" ms, host clock ");
    cm_putfix((h1 - h0) / 1000, 3);
    cm_puts(" ms, ");
    cm_putu(wfi);
    cm_puts(" WFI\n");
    check(t1 - t0 >= (int64_t)ms * 1000000, "the target clock reached the deadline");
    check(h1 - h0 >= (int64_t)ms * 900000 && h1 - h0 <= (int64_t)ms * 3000000 + 50000000,
          "the host saw about the same time pass");
    check(wfi > 0 && wfi <= (uint32_t)ms * 2 + 4, "the wait slept (WFI about once a tick)");
}

int main(void)
{
    cm_clock_init();
    int64_t a = cm_clock_ns(), b = cm_clock_ns();
    check(b >= a, "the clock is monotonic");
    int back = 0;
    for (int i = 0; i < 20000 && !back; i++) { /* across many SysTick periods */
        int64_t c = cm_clock_ns();
        back = c < b;
        b = c;
    }
    check(!back, "the clock never goes back (20000 reads)");
    wait_ms(50);
    wait_ms(200);

    /* the 32-bit timer wraps every 171.8 s: put the wrap 2 ms ahead */
    cm_clock_test_set_raw(2u * (CM_CPU_HZ / 1000u));
    int64_t w0 = cm_clock_ns(), h0 = sh_elapsed_ns();
    back = 0;
    for (int64_t prev = w0, c; (c = cm_clock_ns()) < w0 + 5000000;) { /* busy: read across it */
        back |= c < prev;
        prev = c;
    }
    int64_t dw = cm_clock_ns() - w0, dh = sh_elapsed_ns() - h0;
    cm_puts("across the timer's wrap: target clock ");
    cm_putfix(dw / 1000, 3);
    cm_puts(" ms, host clock ");
    cm_putfix(dh / 1000, 3);
    cm_puts(" ms\n");
    check(!back && dw >= 5000000 && dh >= 4500000 && dh < 100000000,
          "the clock stays monotonic and on time across the 32-bit wrap");
    cm_puts(failed ? "clock: FAILED\n" : "clock: all passed\n");
    return failed ? 1 : 0;
}
