/* layernorm.c: layer normalisation over the last dimension of each
 * sample, PyTorch's nn.LayerNorm(features) with eps 1e-5 and an
 * elementwise affine weight and bias. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "layer-impl.h"

#define LN_EPS 1e-5

/* Row statistics are accumulated in double; the simd reduction pragma
 * lets the compiler vectorise those sums despite the reordering. */
#if defined(_OPENMP)
#define LN_PRAGMA(x) _Pragma(#x)
#define LN_SIMD_SUM(...) LN_PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define LN_SIMD_SUM(...)
#endif

typedef struct ln_priv {
    float *mean;   /* [rows] of the last forward */
    float *invstd; /* [rows] */
    size_t mean_cap, invstd_cap;
} ln_priv;

static dng_status ln_infer(dng_layer *l, int ndim, const int64_t *in)
{
    if (ndim < 1 || in[ndim - 1] != l->iargs[0])
        return dng__error(DNG_ERR_SHAPE, "layernorm expects samples whose "
                          "last dimension is %" PRId64, l->iargs[0]);
    l->in_ndim = l->out_ndim = ndim;
    memcpy(l->in_shape, in, (size_t)ndim * sizeof *in);
    memcpy(l->out_shape, in, (size_t)ndim * sizeof *in);
    return DNG_OK;
}

/* Rows of length `features` in one sample. */
static int64_t ln_rows_per_sample(const dng_layer *l)
{
    int64_t r = 1;
    for (int i = 0; i + 1 < l->in_ndim; i++)
        r *= l->in_shape[i];
    return r;
}

static dng_status ln_reserve(dng_layer *l, int64_t n)
{
    ln_priv *lp = l->priv;
    size_t rows = (size_t)(n * ln_rows_per_sample(l));
    dng_status s = dng__buf_reserve(&lp->mean, &lp->mean_cap, rows);
    if (s == DNG_OK)
        s = dng__buf_reserve(&lp->invstd, &lp->invstd_cap, rows);
    return s;
}

static dng_status ln_forward(dng_layer *l, const dng_tensor *x, dng_tensor *y)
{
    ln_priv *lp = l->priv;
    const int64_t F = l->iargs[0], rows = x->numel / F;
    const float *gamma = l->param[0]->data, *beta = l->param[1]->data;
    if ((size_t)rows > lp->mean_cap || (size_t)rows > lp->invstd_cap)
        return dng__error(DNG_ERR_STATE, "layernorm: forward on %" PRId64
                          " rows before reserve sized it", rows);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * F;
        float *yr = y->data + r * F;
        double s = 0.0, q = 0.0, mean;
        float mu, inv;
        /* Two passes (mean, then centred squares) for accuracy when
         * |mean| >> std. */
        LN_SIMD_SUM(s)
        for (int64_t j = 0; j < F; j++)
            s += (double)xr[j];
        mean = s / (double)F;
        LN_SIMD_SUM(q)
        for (int64_t j = 0; j < F; j++) {
            double d = (double)xr[j] - mean;
            q += d * d;
        }
        mu = (float)mean;
        inv = (float)(1.0 / sqrt(q / (double)F + LN_EPS));
        lp->mean[r] = mu;
        lp->invstd[r] = inv;
        /* y = (x - mean) invstd gamma + beta */
        for (int64_t j = 0; j < F; j++)
            yr[j] = (xr[j] - mu) * inv * gamma[j] + beta[j];
    }
    return DNG_OK;
}

static dng_status ln_backward(dng_layer *l, const dng_tensor *x,
                              const dng_tensor *y, const dng_tensor *dy,
                              dng_tensor *dx)
{
    ln_priv *lp = l->priv;
    const int64_t F = l->iargs[0], rows = x->numel / F;
    const float *gamma = l->param[0]->data;
    float *dg = l->grad[0]->data, *db = l->grad[1]->data;
    const bool params = !l->skip_param_grad;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * F, *gr = dy->data + r * F;
        const float mu = lp->mean[r], inv = lp->invstd[r];
        if (params) /* dgamma += dy x_hat, dbeta += dy */
            for (int64_t j = 0; j < F; j++) {
                dg[j] += gr[j] * ((xr[j] - mu) * inv);
                db[j] += gr[j];
            }
        if (dx) {
            /* g = dy gamma; dx = invstd (g - mean(g) - x_hat mean(g x_hat)) */
            float *o = dx->data + r * F;
            double s1 = 0.0, s2 = 0.0;
            float m1, m2;
            LN_SIMD_SUM(s1, s2)
            for (int64_t j = 0; j < F; j++) {
                double g = (double)gr[j] * (double)gamma[j];
                s1 += g;
                s2 += g * ((double)xr[j] - (double)mu);
            }
            m1 = (float)(s1 / (double)F);
            /* mean(g x_hat) = invstd s2 / F; times x_hat once more */
            m2 = (float)(s2 * (double)inv * (double)inv / (double)F);
            for (int64_t j = 0; j < F; j++)
                o[j] = inv * (gr[j] * gamma[j] - m1 - (xr[j] - mu) * m2);
        }
    }
    return DNG_OK;
}

static void ln_init(dng_layer *l, dng_init scheme, dng_rng *rng)
{
    /* Like batch norm's: N(1, 0.02^2) weights for DCGAN's scheme, the
     * identity transform otherwise. */
    if (scheme == DNG_INIT_NORMAL_002)
        dng_tensor_fill_normal(l->param[0], rng, 1.0f, 0.02f);
    else
        dng_tensor_fill(l->param[0], 1.0f);
    dng_tensor_fill(l->param[1], 0.0f);
}

static void ln_destroy(dng_layer *l)
{
    ln_priv *lp = l->priv;
    if (!lp)
        return;
    dng__free(lp->mean);
    dng__free(lp->invstd);
    dng__free(lp);
    l->priv = NULL;
}

static const dng__layer_ops ln_ops = {
    .name = "layernorm",
    .kind = DNG__LAYER_LAYERNORM,
    .infer = ln_infer,
    .reserve = ln_reserve,
    .forward = ln_forward,
    .backward = ln_backward,
    .init = ln_init,
    .destroy = ln_destroy,
};

DNG_API dng_layer *dng_layernorm(int64_t features)
{
    dng_layer *l;
    if (features < 1 || features > INT64_C(1) << 40) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_layernorm: features = %"
                   PRId64 " must be in 1..2^40", features);
        return NULL;
    }
    l = dng__layer_new(&ln_ops, "dng_layernorm", 1, &features, 0, NULL);
    if (!l)
        return NULL;
    l->priv = dng__calloc(1, sizeof(ln_priv), "dng_layernorm");
    if (!l->priv ||
        dng__layer_add_param(l, "weight", 1, &features) != DNG_OK ||
        dng__layer_add_param(l, "bias", 1, &features) != DNG_OK) {
        dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_layernorm");
        dng__layer_free(l);
        return NULL;
    }
    ln_init(l, DNG_INIT_DEFAULT, NULL);
    return l;
}
