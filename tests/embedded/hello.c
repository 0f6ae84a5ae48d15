/*
 * hello.c - the smallest image: prints a line over semihosting and exits
 * with HELLO_STATUS (0 or 1), so `make PLATFORM=cortex-m test` can check
 * that QEMU's exit status is the program's before trusting the suite's.
 */
#include "print.h"

#ifndef HELLO_STATUS
#define HELLO_STATUS 0
#endif

int main(void)
{
    cm_puts("hello from the Cortex-M image, exiting with status ");
    cm_putu(HELLO_STATUS);
    cm_puts("\n");
    return HELLO_STATUS;
}
