/* init.c: weight initialisation schemes. */
#include <math.h>

#include "layer-impl.h"

void dng__init_weight(dng_tensor *w, dng_init scheme, int64_t fan_in,
                      int64_t fan_out, dng_rng *rng)
{
    float a;
    switch (scheme) {
    case DNG_INIT_XAVIER_UNIFORM: /* U(+-sqrt(6 / (fan_in + fan_out))) */
        a = (float)sqrt(6.0 / (double)(fan_in + fan_out));
        dng_rng_uniform(rng, w->data, w->numel, -a, a);
        break;
    case DNG_INIT_HE_NORMAL: /* N(0, 2 / fan_in) */
        dng_rng_normal(rng, w->data, w->numel, 0.0f,
                       (float)sqrt(2.0 / (double)fan_in));
        break;
    case DNG_INIT_NORMAL_002: /* DCGAN's N(0, 0.02^2) */
        dng_rng_normal(rng, w->data, w->numel, 0.0f, 0.02f);
        break;
    default: /* PyTorch's kaiming_uniform(a = sqrt 5): U(+-1/sqrt(fan_in)) */
        a = (float)(1.0 / sqrt((double)fan_in));
        dng_rng_uniform(rng, w->data, w->numel, -a, a);
        break;
    }
}

void dng__init_bias(dng_tensor *b, dng_init scheme, int64_t fan_in,
                    dng_rng *rng)
{
    if (scheme == DNG_INIT_DEFAULT) {
        float a = (float)(1.0 / sqrt((double)fan_in));
        dng_rng_uniform(rng, b->data, b->numel, -a, a);
    } else {
        dng_tensor_fill(b, 0.0f);
    }
}
