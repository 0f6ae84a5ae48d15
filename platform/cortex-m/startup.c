/*
 * startup.c - reset to main() on a Cortex-M3/M4 (QEMU's MPS2 boards), with
 * no crt0: the vector table, .data copied from flash, .bss zeroed, main()
 * called and its return value made the
 * emulator's exit status (semihosting). Faults print where they happened
 * and exit with status 3.
 */
#include <stdint.h>
#include <string.h>

#include "cortex-m.h"
#include "print.h"
#include "semihost.h"

extern uint32_t __stack_top[];
extern char __data_start[], __data_end[], __data_load[];
extern char __bss_start[], __bss_end[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void);

/* ---- reset ---- */

void Reset_Handler(void)
{
    memcpy(__data_start, __data_load, (size_t)(__data_end - __data_start));
    memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
#if defined(__ARM_FP)
    /* Cortex-M4F built for the FPU: grant CP10/CP11 before any float op */
    CM_SCB_CPACR |= 0xfu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    sh_exit(main());
}

/* ---- faults ---- */

static const char *const fault_names[16] = {
    [2] = "NMI", [3] = "HardFault", [4] = "MemManage", [5] = "BusFault",
    [6] = "UsageFault", [11] = "SVCall", [14] = "PendSV",
};

/* Called with the stacked exception frame: r0-r3, r12, lr, pc, xpsr. */
void cm_fault(const uint32_t *frame, uint32_t ipsr);
void cm_fault(const uint32_t *frame, uint32_t ipsr)
{
    uint32_t n = ipsr & 0x1ffu;
    cm_puts("\n*** ");
    cm_puts(n < 16 && fault_names[n] ? fault_names[n] : "unexpected interrupt");
    cm_puts(" (exception ");
    cm_putu(n);
    cm_puts(") at pc=");
    cm_putu(frame[6]);
    cm_puts(" lr=");
    cm_putu(frame[5]);
    cm_puts(" cfsr=");
    cm_putu(CM_SCB_CFSR);
    cm_puts(" hfsr=");
    cm_putu(CM_SCB_HFSR);
    cm_puts("\n");
    sh_exit(3);
}

/* Every unexpected exception: find the stack that holds the frame. */
__attribute__((naked)) void Default_Handler(void)
{
    __asm__ volatile("tst lr, #4\n\t"
                     "ite eq\n\t"
                     "mrseq r0, msp\n\t"
                     "mrsne r0, psp\n\t"
                     "mrs r1, ipsr\n\t"
                     "b cm_fault");
}

void HardFault_Handler(void) __attribute__((alias("Default_Handler")));

/* ---- the vector table: 16 system entries and the MPS2's 32 interrupts ---- */

typedef void (*cm_vector)(void);

__attribute__((section(".vectors"), used)) static const cm_vector vectors[16 + 32] = {
    (cm_vector)(uintptr_t)__stack_top,
    Reset_Handler,
    Default_Handler,  /* NMI */
    HardFault_Handler,
    Default_Handler,  /* MemManage */
    Default_Handler,  /* BusFault */
    Default_Handler,  /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,  /* SVCall */
    Default_Handler,  /* DebugMon */
    0,
    Default_Handler,  /* PendSV */
    SysTick_Handler,
    [16 ... 16 + 31] = Default_Handler,
};
