/* core-impl.h: internals shared across the library (never installed). */
#ifndef DNG_CORE_IMPL_H
#define DNG_CORE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnngen.h"

#if defined(__GNUC__)
#define DNG__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DNG__PRINTF(a, b)
#endif

/* ---- errors ------------------------------------------------------------ */

/* Record a message for dng_last_error() and return status, so that a
 * failing path reads: return dng__error(DNG_ERR_SHAPE, "...", ...); */
dng_status dng__error(dng_status status, const char *fmt, ...)
    DNG__PRINTF(2, 3);

/* Prefix the current message with "context: ". Returns status. */
dng_status dng__error_prefix(dng_status status, const char *fmt, ...)
    DNG__PRINTF(2, 3);

/* Check a pointer argument; on NULL record "<func>: <name> is NULL". */
#define DNG__CHECK_NULL(ptr, func)                                           \
    do {                                                                     \
        if ((ptr) == NULL)                                                   \
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: %s is NULL",    \
                              func, #ptr);                                   \
    } while (0)

/* ---- memory ------------------------------------------------------------ */

/* Allocation with overflow checks: count * size bytes, 64-byte aligned,
 * zeroed. NULL (and an error message naming what) on failure. */
void *dng__calloc(size_t count, size_t size, const char *what);
void *dng__malloc(size_t bytes, const char *what);
void dng__free(void *p);

/* a * b into *out; false on overflow of int64_t. */
bool dng__mul_overflow_i64(int64_t a, int64_t b, int64_t *out);

/* ---- threads ----------------------------------------------------------- */

int dng__threads(void);

/* ---- tensors ----------------------------------------------------------- */

struct dng_tensor {
    int ndim;
    int64_t shape[DNG_MAX_DIMS];
    int64_t numel;
    float *data;
    size_t cap;  /* floats allocated (0 for wrapped memory) */
    bool wrapped;
};

/* Validate ndim/shape and compute the element count. Names the caller in
 * the message. */
dng_status dng__shape_check(const char *func, int ndim, const int64_t *shape,
                            int64_t *numel);

/* Give an owned tensor a new shape, growing its storage only when the new
 * element count exceeds the capacity (contents are then undefined; new
 * storage is zeroed). Wrapped tensors may only keep or shrink. */
dng_status dng__tensor_resize(dng_tensor *t, int ndim, const int64_t *shape);

/* Create or resize *t to [n, sample...]. */
dng_status dng__tensor_ensure(dng_tensor **t, int64_t n, int sample_ndim,
                              const int64_t *sample_shape);

/* True when the two tensors have the same shape. */
bool dng__same_shape(const dng_tensor *a, const dng_tensor *b);

/* Format a shape as "[2, 3, 4]" into buf (always terminated). */
const char *dng__shape_str(char *buf, size_t len, int ndim,
                           const int64_t *shape);

/* ---- random numbers ---------------------------------------------------- */

struct dng_rng {
    uint64_t key;
    uint64_t counter;  /* next block */
    uint32_t buf[4];   /* current block */
    int used;          /* words of buf consumed (4 = empty) */
    int has_spare;     /* a cached normal variate */
    float spare;
};

uint32_t dng__rng_u32(dng_rng *rng);
/* Uniform in [0, 1). */
float dng__rng_uniform01(dng_rng *rng);
float dng__rng_normal1(dng_rng *rng);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t dng__rng_below(dng_rng *rng, uint64_t n);
/* Philox4x32-10 on one counter block (exposed for tests). */
void dng__philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]);

/* ---- time -------------------------------------------------------------- */

double dng__now(void); /* monotonic seconds */

#endif
