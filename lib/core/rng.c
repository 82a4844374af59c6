/* rng.c: Philox4x32-10, a counter-based generator (Salmon, Moraes, Dror and
 * Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11). The stream is
 * a pure function of (seed, counter), so it is the same on every host and
 * whatever the thread count. */
#include <math.h>
#include <string.h>

#include "core-impl.h"

#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9)
#define PHILOX_W1 UINT32_C(0xBB67AE85)

void dng__philox4x32(uint64_t key, uint64_t counter, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

DNG_API dng_rng *dng_rng_create(uint64_t seed)
{
    dng_rng *rng = dng__calloc(1, sizeof *rng, "dng_rng_create");
    if (!rng)
        return NULL;
    rng->key = seed;
    rng->used = 4;
    return rng;
}

DNG_API void dng_rng_destroy(dng_rng *rng)
{
    dng__free(rng);
}

uint32_t dng__rng_u32(dng_rng *rng)
{
    if (rng->used >= 4) {
        dng__philox4x32(rng->key, rng->counter, rng->buf);
        rng->counter++;
        rng->used = 0;
    }
    return rng->buf[rng->used++];
}

float dng__rng_uniform01(dng_rng *rng)
{
    /* The top 24 bits: every float in [0, 1) on a 2^-24 grid. */
    return (float)(dng__rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

float dng__rng_normal1(dng_rng *rng)
{
    /* Box-Muller in double; the second variate is kept for the next call. */
    double u1, u2, r;
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    u1 = 1.0 - (double)dng__rng_uniform01(rng); /* (0, 1]: log is finite */
    u2 = (double)dng__rng_uniform01(rng);
    r = sqrt(-2.0 * log(u1));
    rng->spare = (float)(r * sin(2.0 * M_PI * u2));
    rng->has_spare = 1;
    return (float)(r * cos(2.0 * M_PI * u2));
}

uint64_t dng__rng_below(dng_rng *rng, uint64_t n)
{
    /* Rejection sampling on 64 bits: no modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = ((uint64_t)dng__rng_u32(rng) << 32) | dng__rng_u32(rng);
    } while (x >= limit);
    return x % n;
}

DNG_API dng_status dng_rng_uniform(dng_rng *rng, float *out, int64_t n,
                                   float lo, float hi)
{
    DNG__CHECK_NULL(rng, "dng_rng_uniform");
    if (n < 0)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_uniform: n = %lld is negative",
                          (long long)n);
    if (n > 0 && !out)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_uniform: out is NULL");
    if (!isfinite(lo) || !isfinite(hi) || !(lo <= hi))
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_uniform: lo = %g and hi = %g must be "
                          "finite with lo <= hi", (double)lo, (double)hi);
    if (isfinite(hi - lo)) {
        for (int64_t i = 0; i < n; i++) {
            float v = lo + (hi - lo) * dng__rng_uniform01(rng);
            out[i] = v < hi ? v : lo; /* rounding may reach hi */
        }
    } else {
        /* hi - lo overflows float (e.g. [-FLT_MAX, FLT_MAX)): scale in
         * double, where the span is finite, then round back. */
        for (int64_t i = 0; i < n; i++) {
            float v = (float)((double)lo + ((double)hi - (double)lo) *
                                               dng__rng_uniform01(rng));
            out[i] = v < hi ? v : lo;
        }
    }
    return DNG_OK;
}

DNG_API dng_status dng_rng_normal(dng_rng *rng, float *out, int64_t n,
                                  float mean, float std)
{
    DNG__CHECK_NULL(rng, "dng_rng_normal");
    if (n < 0)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_normal: n = %lld is negative",
                          (long long)n);
    if (n > 0 && !out)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_normal: out is NULL");
    if (!isfinite(mean) || !isfinite(std) || std < 0)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_normal: mean = %g and std = %g must be "
                          "finite with std >= 0", (double)mean, (double)std);
    for (int64_t i = 0; i < n; i++)
        out[i] = mean + std * dng__rng_normal1(rng);
    return DNG_OK;
}

DNG_API dng_status dng_rng_get_state(const dng_rng *rng, uint64_t state[4])
{
    uint32_t bits;
    DNG__CHECK_NULL(rng, "dng_rng_get_state");
    DNG__CHECK_NULL(state, "dng_rng_get_state");
    memcpy(&bits, &rng->spare, sizeof bits);
    state[0] = rng->key;
    state[1] = rng->counter;
    state[2] = (uint64_t)rng->used | ((uint64_t)(rng->has_spare != 0) << 8);
    state[3] = bits;
    return DNG_OK;
}

DNG_API dng_status dng_rng_set_state(dng_rng *rng, const uint64_t state[4])
{
    uint32_t bits;
    int used;
    DNG__CHECK_NULL(rng, "dng_rng_set_state");
    DNG__CHECK_NULL(state, "dng_rng_set_state");
    used = (int)(state[2] & 0xff);
    if (used > 4 || (state[2] >> 9) != 0 || state[3] > UINT32_MAX ||
        (used < 4 && state[1] == 0))
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_rng_set_state: state was not produced by "
                          "dng_rng_get_state");
    rng->key = state[0];
    rng->counter = state[1];
    rng->used = used;
    rng->has_spare = (int)((state[2] >> 8) & 1);
    bits = (uint32_t)state[3];
    memcpy(&rng->spare, &bits, sizeof bits);
    if (used < 4) /* the block in use was generated from counter - 1 */
        dng__philox4x32(rng->key, rng->counter - 1, rng->buf);
    return DNG_OK;
}
