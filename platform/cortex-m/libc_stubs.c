/*
 * libc_stubs.c - the system calls newlib's own functions reach (its
 * libnosys would make them all fail; these go to semihosting where that
 * means something). The core itself needs none of them but _sbrk: its
 * default allocator is malloc.
 *
 *   _sbrk           malloc's heap: the linker script's .heap, bounded
 *   _write          fd 1 and 2 to the semihosting console (printf, if a
 *                   program uses it)
 *   _exit           the semihosting exit, so abort() and exit() end QEMU
 *   the rest        fail with ENOSYS/EBADF: no files here
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cortex-m.h"
#include "semihost.h"

/* newlib's system calls (the ones its stdio and malloc reach) */

int _write(int fd, const char *buf, int len);
int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    for (int i = 0; i < len; i++)
        sh_writec(buf[i]);
    return len;
}

extern char __heap_start[], __heap_end[];
static char *brk = __heap_start;

size_t cm_heap_used(void) { return (size_t)(brk - __heap_start); }

void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr)
{
    if (incr < 0 ? brk + incr < __heap_start : __heap_end - brk < incr) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *old = brk;
    brk += incr;
    return old;
}

_Noreturn void _exit(int status);
_Noreturn void _exit(int status) { sh_exit(status); }

int _close(int fd);
int _close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st);
int _fstat(int fd, struct stat *st)
{
    if (fd < 0 || fd > 2) {
        errno = EBADF;
        return -1;
    }
    st->st_mode = S_IFCHR; /* the console: line buffered */
    return 0;
}

int _isatty(int fd);
int _isatty(int fd) { return fd >= 0 && fd <= 2; }

int _lseek(int fd, int off, int whence);
int _lseek(int fd, int off, int whence)
{
    (void)fd;
    (void)off;
    (void)whence;
    errno = ESPIPE;
    return -1;
}

int _read(int fd, char *buf, int len);
int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    errno = ENOSYS;
    return -1;
}

int _kill(int pid, int sig);
int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = ENOSYS;
    return -1;
}

int _getpid(void);
int _getpid(void) { return 1; }
