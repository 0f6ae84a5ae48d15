#include "coro.h"
#include <stdio.h>

struct main_frame { coro_frame co; };           /* async def main(): */

static CORO_FN(main_step)
{
    CORO_BEGIN();
    printf("Hello ...\n");
    CORO_SLEEP(1.0);                            /*     await asyncio.sleep(1) */
    printf("... World!\n");
    CORO_END();
}

int main(void)
{
    struct main_frame m;
    coro_frame_init(&m.co, main_step);          /* main(): builds, runs nothing */
    return coro_run(&m.co, NULL, NULL) != 0;    /* asyncio.run(main()) */
}
