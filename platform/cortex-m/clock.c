/*
 * clock.c - the monotonic clock and the idle wait.
 *
 * The clock: the MPS2's CMSDK timer 0 counts the 25 MHz peripheral clock
 * down from 0xffffffff and wraps every 171.8 s; each read extends it to 64
 * bits by noticing the wrap (the value went up since the last read). Reads
 * are made with interrupts masked and at least once a millisecond (the
 * SysTick handler reads too), so no wrap is missed.
 *
 * Why not SysTick's own counter plus a tick count: in QEMU the counter is
 * computed from the virtual clock when read, but the wrap's interrupt is
 * raised later by the emulator's timer thread, so a read can see the
 * counter already wrapped with neither the tick counted nor the interrupt
 * pending, and time goes back by a tick (seen here: 0.43 ms back). A
 * free-running counter needs no such agreement. (On hardware the SysTick
 * form works; this one works on both.)
 *
 * SysTick interrupts CM_TICK_HZ times a second only to end WFI: the idle
 * wait checks the deadline at each tick. In QEMU both run on the virtual
 * clock, which follows the host's time without -icount.
 */
#include "cortex-m.h"

#define SYST_RELOAD (CM_CPU_HZ / CM_TICK_HZ - 1u)

static uint32_t last_raw; /* the timer's value at the last read */
static uint64_t elapsed;  /* timer cycles up to that read */
static volatile uint32_t ticks;
static volatile uint32_t wake_flag;
static uint32_t wfi_count;

static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
}

/* Timer cycles since cm_clock_init; call with interrupts masked. */
static uint64_t cycles_locked(void)
{
    uint32_t raw = CM_TIMER0_VALUE;
    elapsed += (uint32_t)(last_raw - raw); /* a down counter: modulo 2^32 */
    last_raw = raw;
    return elapsed;
}

void SysTick_Handler(void);
void (*volatile cm_tick_hook)(void);

void SysTick_Handler(void)
{
    void (*hook)(void) = cm_tick_hook;
    ticks++;
    if (hook)
        hook(); /* in the interrupt: what a test posts from an ISR */
    uint32_t m = irq_save();
    (void)cycles_locked(); /* at least one read a tick: no wrap is missed */
    irq_restore(m);
}

void cm_clock_init(void)
{
    CM_TIMER0_CTRL = 0;
    CM_TIMER0_RELOAD = 0xffffffffu;
    CM_TIMER0_VALUE = 0xffffffffu;
    last_raw = 0xffffffffu;
    elapsed = 0;
    CM_TIMER0_CTRL = CM_TIMER_CTRL_EN;

    CM_SYST_CSR = 0;
    CM_SYST_RVR = SYST_RELOAD;
    CM_SYST_CVR = 0;
    CM_SYST_CSR = CM_SYST_CSR_CLKSOURCE | CM_SYST_CSR_TICKINT | CM_SYST_CSR_ENABLE;
}

int64_t cm_clock_ns(void)
{
    uint32_t m = irq_save();
    uint64_t c = cycles_locked();
    irq_restore(m);
    /* 25 MHz: 40 ns a cycle; in general split to keep the product in range */
    return (int64_t)(c / CM_CPU_HZ * 1000000000u + c % CM_CPU_HZ * 1000000000u / CM_CPU_HZ);
}

int cm_idle_until(int64_t deadline_ns)
{
    for (;;) {
        __asm__ volatile("cpsid i" ::: "memory");
        if (wake_flag) {
            wake_flag = 0;
            __asm__ volatile("cpsie i" ::: "memory");
            return 1;
        }
        if (deadline_ns != INT64_MAX && cm_clock_ns() >= deadline_ns) {
            __asm__ volatile("cpsie i" ::: "memory");
            return 0;
        }
        wfi_count++;
        __asm__ volatile("dsb\n\twfi" ::: "memory"); /* a pending interrupt ends it */
        __asm__ volatile("cpsie i\n\tisb" ::: "memory"); /* and is taken here */
    }
}

void cm_wake(void)
{
    wake_flag = 1;
    __asm__ volatile("sev" ::: "memory");
}

void cm_clock_test_set_raw(uint32_t raw)
{
    uint32_t m = irq_save();
    (void)cycles_locked(); /* account for the time up to now */
    CM_TIMER0_VALUE = raw;
    last_raw = raw;
    irq_restore(m);
}

uint32_t cm_idle_wfi_count(void) { return wfi_count; }
uint32_t cm_tick_count(void) { return ticks; }
