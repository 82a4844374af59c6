/* batchnorm.c: batch normalisation over [N, C] or [N, C, H, W] (any
 * trailing per-channel extent), PyTorch's BatchNorm1d/2d with eps 1e-5,
 * momentum 0.1 and an affine weight and bias. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "layer-impl.h"

#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1

/* Statistics are accumulated in double; the simd reduction pragma lets
 * the compiler vectorise those sums, which plain C forbids because it
 * reorders the additions. */
#if defined(_OPENMP)
#define BN_PRAGMA(x) _Pragma(#x)
#define BN_SIMD_SUM(...) BN_PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define BN_SIMD_SUM(...)
#endif

typedef struct bn_priv {
    int64_t channels;
    float *mean;      /* [C] the mean the last forward subtracted */
    float *invstd;    /* [C] the 1 / sqrt(var + eps) it multiplied by */
    double *acc0;     /* [C] per-channel sums (forward and backward) */
    double *acc1;     /* [C] */
    float *coef;      /* [3 C] per-channel coefficients of a pass */
    bool batch_stats; /* the last forward normalised with batch statistics */
} bn_priv;

/* Elements per channel in one sample: the product of the trailing dims. */
static int64_t bn_plane(const dng_layer *l)
{
    int64_t p = 1;
    for (int i = 1; i < l->in_ndim; i++)
        p *= l->in_shape[i];
    return p;
}

static dng_status bn_infer(dng_layer *l, int ndim, const int64_t *in)
{
    if (ndim < 1 || in[0] != l->iargs[0])
        return dng__error(DNG_ERR_SHAPE, "batchnorm expects [C] or "
                          "[C, H, W] samples with C = %" PRId64,
                          l->iargs[0]);
    l->in_ndim = l->out_ndim = ndim;
    memcpy(l->in_shape, in, (size_t)ndim * sizeof *in);
    memcpy(l->out_shape, in, (size_t)ndim * sizeof *in);
    return DNG_OK;
}

/* acc[c] = sum over samples and plane of x[i, c, p] (shift == NULL) or of
 * (x[i, c, p] - shift[c])^2. */
static void bn_channel_sums(const float *x, int64_t n, int64_t C, int64_t P,
                            const float *shift, double *acc)
{
    for (int64_t c = 0; c < C; c++)
        acc[c] = 0.0;
    if (P == 1) {
        /* [N, C]: walk rows so the inner loop runs over channels. */
        for (int64_t i = 0; i < n; i++) {
            const float *r = x + i * C;
            if (shift)
                for (int64_t c = 0; c < C; c++) {
                    double d = (double)r[c] - (double)shift[c];
                    acc[c] += d * d;
                }
            else
                for (int64_t c = 0; c < C; c++)
                    acc[c] += (double)r[c];
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float *r = x + (i * C + c) * P;
            double s = 0.0;
            if (shift) {
                const double m = (double)shift[c];
                BN_SIMD_SUM(s)
                for (int64_t p = 0; p < P; p++) {
                    double d = (double)r[p] - m;
                    s += d * d;
                }
            } else {
                BN_SIMD_SUM(s)
                for (int64_t p = 0; p < P; p++)
                    s += (double)r[p];
            }
            acc[c] += s;
        }
}

/* y = (x - m[c]) a[c] + b[c] per channel. */
static void bn_affine(const float *x, float *y, int64_t n, int64_t C,
                      int64_t P, const float *m, const float *a,
                      const float *b)
{
    if (P == 1) {
        for (int64_t i = 0; i < n; i++) {
            const float *xr = x + i * C;
            float *yr = y + i * C;
            for (int64_t c = 0; c < C; c++)
                yr[c] = (xr[c] - m[c]) * a[c] + b[c];
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float *xr = x + (i * C + c) * P;
            float *yr = y + (i * C + c) * P;
            const float mc = m[c], ac = a[c], bc = b[c];
            for (int64_t p = 0; p < P; p++)
                yr[p] = (xr[p] - mc) * ac + bc;
        }
}

static dng_status bn_forward(dng_layer *l, const dng_tensor *x, dng_tensor *y)
{
    bn_priv *bp = l->priv;
    const int64_t C = bp->channels, P = bn_plane(l), n = x->shape[0];
    const float *gamma = l->param[0]->data, *beta = l->param[1]->data;
    float *rmean = l->buffer[0]->data, *rvar = l->buffer[1]->data;
    float *a = bp->coef;
    if (l->training) {
        const int64_t m = n * P;
        if (m < 2)
            return dng__error(DNG_ERR_SHAPE, "batchnorm: training needs "
                              "more than one value per channel (batch %"
                              PRId64 " of %" PRId64 " per channel)", n, P);
        /* Two passes, mean then centred squares: the one-pass formula
         * E[x^2] - E[x]^2 cancels badly when |mean| >> std. */
        bn_channel_sums(x->data, n, C, P, NULL, bp->acc0);
        for (int64_t c = 0; c < C; c++)
            bp->mean[c] = (float)(bp->acc0[c] / (double)m);
        bn_channel_sums(x->data, n, C, P, bp->mean, bp->acc1);
        for (int64_t c = 0; c < C; c++) {
            double var = bp->acc1[c] / (double)m;
            bp->invstd[c] = (float)(1.0 / sqrt(var + BN_EPS));
            if (!l->freeze_state) {
                /* running = (1 - momentum) running + momentum stat, with
                 * the unbiased variance, as PyTorch. */
                double unbiased = bp->acc1[c] / (double)(m - 1);
                rmean[c] = (float)((1.0 - BN_MOMENTUM) * rmean[c] +
                                   BN_MOMENTUM * bp->acc0[c] / (double)m);
                rvar[c] = (float)((1.0 - BN_MOMENTUM) * rvar[c] +
                                  BN_MOMENTUM * unbiased);
            }
        }
        bp->batch_stats = true;
    } else {
        for (int64_t c = 0; c < C; c++) {
            bp->mean[c] = rmean[c];
            bp->invstd[c] = (float)(1.0 / sqrt((double)rvar[c] + BN_EPS));
        }
        bp->batch_stats = false;
    }
    /* y = (x - mean) a + beta with a = invstd gamma; subtracting the mean
     * first keeps precision when |mean| >> std (a x + b would cancel). */
    for (int64_t c = 0; c < C; c++)
        a[c] = gamma[c] * bp->invstd[c];
    bn_affine(x->data, y->data, n, C, P, bp->mean, a, beta);
    return DNG_OK;
}

/* sdy[c] = sum dy, sdyx[c] = sum dy (x - mean[c]) over samples and plane. */
static void bn_grad_sums(const float *x, const float *dy, int64_t n,
                         int64_t C, int64_t P, const float *mean,
                         double *sdy, double *sdyx)
{
    for (int64_t c = 0; c < C; c++)
        sdy[c] = sdyx[c] = 0.0;
    if (P == 1) {
        for (int64_t i = 0; i < n; i++) {
            const float *xr = x + i * C, *gr = dy + i * C;
            for (int64_t c = 0; c < C; c++) {
                sdy[c] += (double)gr[c];
                sdyx[c] += (double)gr[c] * ((double)xr[c] - (double)mean[c]);
            }
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float *xr = x + (i * C + c) * P, *gr = dy + (i * C + c) * P;
            const double m = (double)mean[c];
            double s0 = 0.0, s1 = 0.0;
            BN_SIMD_SUM(s0, s1)
            for (int64_t p = 0; p < P; p++) {
                s0 += (double)gr[p];
                s1 += (double)gr[p] * ((double)xr[p] - m);
            }
            sdy[c] += s0;
            sdyx[c] += s1;
        }
}

static dng_status bn_backward(dng_layer *l, const dng_tensor *x,
                              const dng_tensor *y, const dng_tensor *dy,
                              dng_tensor *dx)
{
    bn_priv *bp = l->priv;
    const int64_t C = bp->channels, P = bn_plane(l), n = x->shape[0];
    const float *gamma = l->param[0]->data;
    double *sdy = bp->acc0, *sdyx = bp->acc1;
    if (l->skip_param_grad && !dx)
        return DNG_OK;
    bn_grad_sums(x->data, dy->data, n, C, P, bp->mean, sdy, sdyx);
    if (!l->skip_param_grad) {
        /* dgamma += sum dy x_hat, dbeta += sum dy */
        float *dg = l->grad[0]->data, *db = l->grad[1]->data;
        for (int64_t c = 0; c < C; c++) {
            dg[c] += (float)(sdyx[c] * (double)bp->invstd[c]);
            db[c] += (float)sdy[c];
        }
    }
    if (!dx)
        return DNG_OK;
    for (int64_t c = 0; c < C; c++) {
        /* Training: dx = a (dy - mean(dy) - x_hat mean(dy x_hat)), with
         * a = gamma invstd, since mean and variance depend on x.
         * Evaluation: dx = a dy (the statistics are constants).
         * Written as dx = a dy - k1 (x - mean) - k0 per channel. */
        const double inv = (double)bp->invstd[c];
        const double ac = (double)gamma[c] * inv;
        double k1 = 0.0, k0 = 0.0;
        if (bp->batch_stats) {
            const double m = (double)(n * P);
            k1 = ac * inv * inv * sdyx[c] / m;
            k0 = ac * sdy[c] / m;
        }
        bp->coef[c] = (float)ac;
        bp->coef[C + c] = (float)k1;
        bp->coef[2 * C + c] = (float)k0;
    }
    {
        const float *ca = bp->coef, *c1 = bp->coef + C, *c0 = bp->coef + 2 * C;
        const float *mu = bp->mean, *xd = x->data, *gd = dy->data;
        float *out = dx->data;
        if (P == 1) {
            for (int64_t i = 0; i < n; i++) {
                const float *xr = xd + i * C, *gr = gd + i * C;
                float *o = out + i * C;
                for (int64_t c = 0; c < C; c++)
                    o[c] = ca[c] * gr[c] - c1[c] * (xr[c] - mu[c]) - c0[c];
            }
        } else {
            for (int64_t i = 0; i < n; i++)
                for (int64_t c = 0; c < C; c++) {
                    const int64_t off = (i * C + c) * P;
                    const float *xr = xd + off, *gr = gd + off;
                    const float ac = ca[c], k1 = c1[c], k0 = c0[c];
                    const float mc = mu[c];
                    float *o = out + off;
                    for (int64_t p = 0; p < P; p++)
                        o[p] = ac * gr[p] - k1 * (xr[p] - mc) - k0;
                }
        }
    }
    return DNG_OK;
}

static void bn_init(dng_layer *l, dng_init scheme, dng_rng *rng)
{
    /* DCGAN draws batch-norm weights from N(1, 0.02^2); every other
     * scheme starts from the identity transform, as PyTorch. */
    if (scheme == DNG_INIT_NORMAL_002)
        dng_tensor_fill_normal(l->param[0], rng, 1.0f, 0.02f);
    else
        dng_tensor_fill(l->param[0], 1.0f);
    dng_tensor_fill(l->param[1], 0.0f);
    dng_tensor_fill(l->buffer[0], 0.0f);
    dng_tensor_fill(l->buffer[1], 1.0f);
}

static void bn_destroy(dng_layer *l)
{
    bn_priv *bp = l->priv;
    if (!bp)
        return;
    dng__free(bp->mean);
    dng__free(bp->invstd);
    dng__free(bp->acc0);
    dng__free(bp->acc1);
    dng__free(bp->coef);
    dng__free(bp);
    l->priv = NULL;
}

static const dng__layer_ops bn_ops = {
    .name = "batchnorm",
    .kind = DNG__LAYER_BATCHNORM,
    .infer = bn_infer,
    .forward = bn_forward,
    .backward = bn_backward,
    .init = bn_init,
    .destroy = bn_destroy,
};

DNG_API dng_layer *dng_batchnorm(int64_t channels)
{
    dng_layer *l;
    bn_priv *bp;
    if (channels < 1 || channels > INT64_C(1) << 40) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_batchnorm: channels = %"
                   PRId64 " must be in 1..2^40", channels);
        return NULL;
    }
    l = dng__layer_new(&bn_ops, "dng_batchnorm", 1, &channels, 0, NULL);
    if (!l)
        return NULL;
    bp = dng__calloc(1, sizeof *bp, "dng_batchnorm");
    l->priv = bp;
    if (!bp)
        goto fail;
    bp->channels = channels;
    bp->mean = dng__calloc((size_t)channels, sizeof(float), "dng_batchnorm");
    bp->invstd = dng__calloc((size_t)channels, sizeof(float),
                             "dng_batchnorm");
    bp->acc0 = dng__calloc((size_t)channels, sizeof(double),
                           "dng_batchnorm");
    bp->acc1 = dng__calloc((size_t)channels, sizeof(double),
                           "dng_batchnorm");
    bp->coef = dng__calloc(3 * (size_t)channels, sizeof(float),
                           "dng_batchnorm");
    if (!bp->mean || !bp->invstd || !bp->acc0 || !bp->acc1 || !bp->coef)
        goto fail;
    if (dng__layer_add_param(l, "weight", 1, &channels) != DNG_OK ||
        dng__layer_add_param(l, "bias", 1, &channels) != DNG_OK ||
        dng__layer_add_buffer(l, "running_mean", 1, &channels) != DNG_OK ||
        dng__layer_add_buffer(l, "running_var", 1, &channels) != DNG_OK)
        goto fail;
    /* Usable before dng_net_add initialises it: the identity transform. */
    bn_init(l, DNG_INIT_DEFAULT, NULL);
    return l;
fail:
    dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_batchnorm");
    dng__layer_free(l);
    return NULL;
}
