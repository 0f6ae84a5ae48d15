/*
 * cortex-m.h - the platform's own interface on the bare-metal target: the
 * few registers it touches, the clock, the idle wait and the wake-up.
 *
 * This is what a bare-metal user of coro writes once (issue 9's "one small
 * file"): a monotonic clock in nanoseconds (a free-running timer here), a
 * periodic SysTick to wake the core, a wait until a
 * deadline that sleeps the core (WFI), and a wake-up an interrupt handler
 * may call. port.c hands them to the core through coro_platform.h.
 */
#ifndef CM_CORTEX_M_H
#define CM_CORTEX_M_H

#include <stdint.h>

#define CM_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* SysTick (ARMv7-M B3.3) */
#define CM_SYST_CSR CM_REG(0xE000E010u)
#define CM_SYST_RVR CM_REG(0xE000E014u)
#define CM_SYST_CVR CM_REG(0xE000E018u)
#define CM_SYST_CSR_ENABLE 0x1u
#define CM_SYST_CSR_TICKINT 0x2u
#define CM_SYST_CSR_CLKSOURCE 0x4u /* the processor clock */
#define CM_SYST_CSR_COUNTFLAG 0x10000u
/* The MPS2's CMSDK APB timer 0 (AN385 memory map): a 32-bit down
 * counter on the 25 MHz peripheral clock */
#define CM_TIMER0_CTRL CM_REG(0x40000000u)
#define CM_TIMER0_VALUE CM_REG(0x40000004u)
#define CM_TIMER0_RELOAD CM_REG(0x40000008u)
#define CM_TIMER_CTRL_EN 0x1u
/* System control block */
#define CM_SCB_ICSR CM_REG(0xE000ED04u)
#define CM_SCB_ICSR_PENDSTSET (1u << 26)
#define CM_SCB_CPACR CM_REG(0xE000ED88u)
#define CM_SCB_CFSR CM_REG(0xE000ED28u)
#define CM_SCB_HFSR CM_REG(0xE000ED2Cu)

/* The processor clock SysTick counts, and the peripheral clock of the
 * CMSDK timers: QEMU's MPS2 boards run both at 25 MHz. */
#ifndef CM_CPU_HZ
#define CM_CPU_HZ 25000000u
#endif
/* SysTick interrupts per second: the idle wait's granularity. */
#ifndef CM_TICK_HZ
#define CM_TICK_HZ 1000u
#endif

/* Start the clock (CMSDK timer 0, free-running) and SysTick (CM_TICK_HZ
 * interrupts a second, the idle wait's wake-ups). */
void cm_clock_init(void);
/* Nanoseconds since cm_clock_init, monotonic, to a timer cycle (40 ns at
 * 25 MHz); safe in thread mode and in handlers. */
int64_t cm_clock_ns(void);
/* Sleep the core (WFI) until cm_clock_ns() >= deadline_ns or cm_wake()
 * was called; a deadline of INT64_MAX waits for the wake-up alone. Returns
 * 1 if woken by cm_wake, 0 at the deadline. The check and the WFI are made
 * with interrupts masked, so a wake-up that lands between them is not lost
 * (a pending interrupt still ends WFI). */
int cm_idle_until(int64_t deadline_ns);
/* For the clock's test: load the free-running timer with `raw` (e.g. a
 * little before its 32-bit wrap), keeping the time read so far. */
void cm_clock_test_set_raw(uint32_t raw);
/* Called from the SysTick interrupt on every tick while set (tests post
 * to the loop from it with coro_call_soon_isr). */
extern void (*volatile cm_tick_hook)(void);
/* Interrupt-safe: end the current or next cm_idle_until. */
void cm_wake(void);
/* How many times cm_idle_until executed WFI (to show a sleeping loop does
 * not spin), and how many SysTick interrupts there were. */
uint32_t cm_idle_wfi_count(void);
uint32_t cm_tick_count(void);
/* How many report lines the core wrote through coro_platform_write. */
uint32_t cm_report_lines(void);
/* Bytes malloc has taken from the linker script's heap so far (newlib's
 * _sbrk, libc_stubs.c): its high-water mark, as malloc never gives back. */
#include <stddef.h>
size_t cm_heap_used(void);

#endif
