/* dropout.c: inverted dropout, PyTorch's nn.Dropout(p). */
#include <inttypes.h>
#include <string.h>

#include "layer-impl.h"

typedef struct drop_priv {
    float *mask;  /* [n, sample] 0 or 1 / (1 - p) of the last forward */
    size_t cap;
    bool masked;  /* the last forward applied the mask */
} drop_priv;

static dng_status drop_infer(dng_layer *l, int ndim, const int64_t *in)
{
    l->in_ndim = l->out_ndim = ndim;
    memcpy(l->in_shape, in, (size_t)ndim * sizeof *in);
    memcpy(l->out_shape, in, (size_t)ndim * sizeof *in);
    return DNG_OK;
}

static dng_status drop_reserve(dng_layer *l, int64_t n)
{
    drop_priv *dp = l->priv;
    int64_t per = 1;
    /* Evaluation-only use and p = 0 never need the mask. */
    if (l->fargs[0] == 0.0f)
        return DNG_OK;
    for (int i = 0; i < l->in_ndim; i++)
        per *= l->in_shape[i];
    return dng__buf_reserve(&dp->mask, &dp->cap, (size_t)(n * per));
}

static dng_status drop_forward(dng_layer *l, const dng_tensor *x,
                               dng_tensor *y)
{
    drop_priv *dp = l->priv;
    const float p = l->fargs[0];
    const int64_t n = x->numel;
    float *mask = dp->mask;
    dp->masked = false;
    if (!l->training || p == 0.0f) {
        memcpy(y->data, x->data, (size_t)n * sizeof(float));
        return DNG_OK;
    }
    if (!l->rng)
        return dng__error(DNG_ERR_STATE, "dropout: no generator (the layer "
                          "runs outside a network)");
    if ((size_t)n > dp->cap)
        return dng__error(DNG_ERR_STATE, "dropout: forward on %" PRId64
                          " elements before reserve sized it", n);
    {
        /* mask = 0 with probability p, else 1 / (1 - p), so that the
         * expected output equals the input. */
        const float scale = (float)(1.0 / (1.0 - (double)p));
        for (int64_t i = 0; i < n; i++)
            mask[i] = dng__rng_uniform01(l->rng) < p ? 0.0f : scale;
    }
    /* y = x mask */
    for (int64_t i = 0; i < n; i++)
        y->data[i] = x->data[i] * mask[i];
    dp->masked = true;
    return DNG_OK;
}

static dng_status drop_backward(dng_layer *l, const dng_tensor *x,
                                const dng_tensor *y, const dng_tensor *dy,
                                dng_tensor *dx)
{
    drop_priv *dp = l->priv;
    const int64_t n = dy->numel;
    if (!dx)
        return DNG_OK;
    if (!dp->masked) {
        memcpy(dx->data, dy->data, (size_t)n * sizeof(float));
        return DNG_OK;
    }
    /* dx = dy mask */
    for (int64_t i = 0; i < n; i++)
        dx->data[i] = dy->data[i] * dp->mask[i];
    return DNG_OK;
}

static void drop_destroy(dng_layer *l)
{
    drop_priv *dp = l->priv;
    if (!dp)
        return;
    dng__free(dp->mask);
    dng__free(dp);
    l->priv = NULL;
}

static const dng__layer_ops drop_ops = {
    .name = "dropout",
    .kind = DNG__LAYER_DROPOUT,
    .infer = drop_infer,
    .reserve = drop_reserve,
    .forward = drop_forward,
    .backward = drop_backward,
    .destroy = drop_destroy,
};

DNG_API dng_layer *dng_dropout(float p)
{
    dng_layer *l;
    if (!(p >= 0.0f && p < 1.0f)) { /* also rejects NaN */
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dropout: p = %g is "
                   "outside [0, 1)", (double)p);
        return NULL;
    }
    l = dng__layer_new(&drop_ops, "dng_dropout", 0, NULL, 1, &p);
    if (!l)
        return NULL;
    l->priv = dng__calloc(1, sizeof(drop_priv), "dng_dropout");
    if (!l->priv) {
        dng__layer_free(l);
        return NULL;
    }
    return l;
}
