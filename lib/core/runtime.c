/* runtime.c: version, thread settings and the clock. */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core-impl.h"

/* 0 means "not chosen yet": resolved to the online processor count. */
static atomic_int num_threads;

DNG_API int dng_version(void)
{
    return DNG_VERSION;
}

DNG_API const char *dng_version_string(void)
{
    return DNG_VERSION_STRING;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 1024 ? 1024 : (int)n;
}

/* The default: DNG_NUM_THREADS from the environment when it holds a
 * number in 1..1024, else every online processor. */
static int default_threads(void)
{
    const char *env = getenv("DNG_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 1024)
            return (int)v;
    }
    return online_cpus();
}

DNG_API dng_status dng_set_num_threads(int n)
{
    if (n < 0 || n > 1024)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_set_num_threads: n = %d is outside 0..1024",
                          n);
    atomic_store(&num_threads, n == 0 ? default_threads() : n);
    return DNG_OK;
}

DNG_API int dng_get_num_threads(void)
{
    return dng__threads();
}

int dng__threads(void)
{
    int n = atomic_load(&num_threads);
    if (n == 0) {
        n = default_threads();
        atomic_store(&num_threads, n);
    }
    return n;
}

double dng__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
