/* What the bench drivers share: thread CPU time (the VM is shared: wall time would count other
 * jobs) and the comparison qsort needs for medians. */
#ifndef CAED_BENCH_TIMING_H
#define CAED_BENCH_TIMING_H

#include <time.h>

static double thread_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
