/*
 * print.h - the image's output: strings and integers over semihosting,
 * with no printf (the image stays small and links no stdio).
 */
#ifndef CM_PRINT_H
#define CM_PRINT_H

#include <stdint.h>

void cm_puts(const char *s);          /* no newline added */
void cm_putc(char c);
void cm_putu(uint64_t v);             /* decimal */
void cm_puti(int64_t v);              /* decimal, signed */
/* v / 10^decimals with that many decimals: cm_putfix(1234567, 6) is 1.234567 */
void cm_putfix(int64_t v, unsigned decimals);

#endif
