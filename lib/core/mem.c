/* mem.c: aligned, overflow-checked allocation. */
#include <stdlib.h>
#include <string.h>

#include "core-impl.h"

/* 64 bytes: a cache line, and enough for any vector unit we target. */
#define DNG__ALIGN 64

void *dng__malloc(size_t bytes, const char *what)
{
    void *p = NULL;
    size_t rounded;
    if (bytes == 0)
        bytes = 1;
    if (bytes > SIZE_MAX - 2 * DNG__ALIGN) {
        dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: size overflows size_t", what);
        return NULL;
    }
    /* One spare line past the end: BLIS's micro-kernels may load a few
     * floats beyond the last element of an operand (never using them). */
    rounded = (bytes + DNG__ALIGN - 1) / DNG__ALIGN * DNG__ALIGN + DNG__ALIGN;
    if (posix_memalign(&p, DNG__ALIGN, rounded) != 0) {
        dng__error(DNG_ERR_OUT_OF_MEMORY,
                   "%s: cannot allocate %zu bytes", what, bytes);
        return NULL;
    }
    return p;
}

void *dng__calloc(size_t count, size_t size, const char *what)
{
    void *p;
    if (size != 0 && count > SIZE_MAX / size) {
        dng__error(DNG_ERR_OUT_OF_MEMORY,
                   "%s: %zu x %zu bytes overflows size_t", what, count,
                   size);
        return NULL;
    }
    p = dng__malloc(count * size, what);
    if (p && count > 0 && size > 0)
        memset(p, 0, count * size);
    return p;
}

void dng__free(void *p)
{
    free(p);
}

bool dng__mul_overflow_i64(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
