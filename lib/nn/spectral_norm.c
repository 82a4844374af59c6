/* spectral_norm.c: spectral normalisation of a dense, conv2d or
 * conv2d-transpose layer (Miyato et al. 2018), as PyTorch's
 * torch.nn.utils.spectral_norm with one power iteration per training
 * forward.
 *
 * The weight is viewed as a matrix W_mat [h, w]: dim 0 first for dense
 * and conv2d ([out, in...]), dim 1 first for conv2d-transpose
 * ([in, out, kh, kw] -> [out, in kh kw]). The wrapper owns the raw weight
 * ("weight_orig") and its gradient; the inner layer's own weight tensor
 * holds W / sigma for the inner forward, and its weight gradient receives
 * dL/d(W / sigma), which backward folds into weight_orig's gradient. The
 * bias tensors are the inner layer's, shared. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "layer-impl.h"

#define SN_NORM_EPS 1e-12
/* Weights smaller than this many floats run their power iteration on one
 * thread. */
#define SN_THREADS_MIN (INT64_C(1) << 20)

/* The sum(G .* W) reduction runs in double; the simd pragma lets the
 * compiler vectorise it despite reordering the additions. */
#if defined(_OPENMP)
#define SN_PRAGMA(x) _Pragma(#x)
#define SN_SIMD_SUM(...) SN_PRAGMA(omp simd reduction(+ : __VA_ARGS__))
#else
#define SN_SIMD_SUM(...)
#endif

typedef struct sn_priv {
    int wi;         /* index of "weight" among the inner's parameters */
    int bi;         /* index of "bias", or -1 */
    int64_t h, w;   /* W_mat is h x w */
    bool dim1;      /* weight is [d0, h, kk] and W_mat needs a permute */
    int64_t d0, kk; /* for dim1: leading size and trailing extent */
    float *wmat;    /* [h, w] permuted copy of weight_orig (dim1 only) */
    float *t;       /* [h] W_mat v */
    double sigma;   /* u . W_mat v of the last forward */
} sn_priv;

/* Copy the mode and context the network set on the wrapper to the inner
 * layer, which the network never sees. */
static void sn_sync(dng_layer *l)
{
    dng_layer *in = l->inner;
    in->training = l->training;
    in->freeze_state = l->freeze_state;
    in->skip_param_grad = l->skip_param_grad;
    in->rng = l->rng;
}

static dng_status sn_infer(dng_layer *l, int ndim, const int64_t *in)
{
    dng_layer *inner = l->inner;
    dng_status s = inner->ops->infer(inner, ndim, in);
    if (s != DNG_OK)
        return dng__error_prefix(s, "spectral_norm(%s)", inner->ops->name);
    l->in_ndim = inner->in_ndim;
    memcpy(l->in_shape, inner->in_shape,
           (size_t)inner->in_ndim * sizeof *inner->in_shape);
    l->out_ndim = inner->out_ndim;
    memcpy(l->out_shape, inner->out_shape,
           (size_t)inner->out_ndim * sizeof *inner->out_shape);
    return DNG_OK;
}

static dng_status sn_reserve(dng_layer *l, int64_t n)
{
    dng_layer *inner = l->inner;
    sn_sync(l);
    return inner->ops->reserve ? inner->ops->reserve(inner, n) : DNG_OK;
}

/* x /= max(|x|, 1e-12), as torch.nn.functional.normalize. */
static void sn_normalize(float *x, int64_t n)
{
    double norm = sqrt(dng__sumsq(x, n));
    dng__scale(n, (float)(1.0 / (norm > SN_NORM_EPS ? norm : SN_NORM_EPS)),
               x);
}

static dng_status sn_forward(dng_layer *l, const dng_tensor *x, dng_tensor *y)
{
    sn_priv *sp = l->priv;
    dng_layer *inner = l->inner;
    const float *worig = l->param[0]->data;
    float *wsn = inner->param[sp->wi]->data;
    float *u = l->buffer[0]->data, *v = l->buffer[1]->data;
    const int64_t h = sp->h, w = sp->w, numel = h * w;
    /* Matrix-vector products are memory bound: extra threads only pay
     * off on large weights, and on small ones their start-up and barrier
     * cost more than the work. */
    const int nt = numel >= SN_THREADS_MIN ? dng__threads() : 1;
    const float *wm = worig;
    double sigma;
    if (sp->dim1) {
        /* W_mat[o, i kk + r] = W[i, o, r] */
        const int64_t kk = sp->kk;
        for (int64_t i = 0; i < sp->d0; i++)
            for (int64_t o = 0; o < h; o++)
                memcpy(sp->wmat + o * w + i * kk, worig + (i * h + o) * kk,
                       (size_t)kk * sizeof(float));
        wm = sp->wmat;
    }
    if (l->training && !l->freeze_state) {
        /* One power iteration: v = normalize(W^T u) */
        dng__sgemm(true, false, w, 1, h, 1.0f, wm, w, u, 1, 0.0f, v, 1, nt);
        sn_normalize(v, w);
    }
    /* t = W v, then u = normalize(t) when iterating */
    dng__sgemm(false, false, h, 1, w, 1.0f, wm, w, v, 1, 0.0f, sp->t, 1, nt);
    if (l->training && !l->freeze_state) {
        memcpy(u, sp->t, (size_t)h * sizeof(float));
        sn_normalize(u, h);
    }
    /* sigma = u . (W v) */
    sigma = 0.0;
    for (int64_t o = 0; o < h; o++)
        sigma += (double)u[o] * (double)sp->t[o];
    /* Only a zero or non-finite estimate is refused. A negative one (the
     * stored u, v of evaluation mode pointing against a changed weight)
     * is used as is, as PyTorch does. */
    if ((float)sigma == 0.0f || !isfinite((float)sigma))
        return dng__error(DNG_ERR_NUMERIC, "spectral_norm: the estimated "
                          "largest singular value is %g (an all-zero or "
                          "non-finite weight?)", sigma);
    /* W_sn = W / sigma, in the inner layer's own layout; backward divides
     * by the same float. */
    {
        const float sg = (float)sigma;
        sp->sigma = (double)sg;
        for (int64_t k = 0; k < numel; k++)
            wsn[k] = worig[k] / sg;
    }
    sn_sync(l);
    return inner->ops->forward(inner, x, y);
}

static dng_status sn_backward(dng_layer *l, const dng_tensor *x,
                              const dng_tensor *y, const dng_tensor *dy,
                              dng_tensor *dx)
{
    sn_priv *sp = l->priv;
    dng_layer *inner = l->inner;
    float *g = inner->grad[sp->wi]->data;
    const int64_t h = sp->h, w = sp->w, numel = h * w;
    const bool params = !l->skip_param_grad;
    dng_status s;
    if (params) /* the inner weight gradient is scratch: G = dL/dW_sn */
        memset(g, 0, (size_t)numel * sizeof(float));
    sn_sync(l);
    s = inner->ops->backward(inner, x, y, dy, dx);
    if (s != DNG_OK || !params)
        return s;
    {
        /* With u, v held constant, sigma = u^T W v, so
         * dL/dW = G / sigma - (sum(G .* W) / sigma^2) u v^T. */
        const float *worig = l->param[0]->data;
        const float *u = l->buffer[0]->data, *v = l->buffer[1]->data;
        float *dw = l->grad[0]->data;
        const double sigma = sp->sigma;
        double gw = 0.0;
        float inv, k;
        SN_SIMD_SUM(gw)
        for (int64_t i = 0; i < numel; i++)
            gw += (double)g[i] * (double)worig[i];
        inv = (float)(1.0 / sigma);
        k = (float)(gw / (sigma * sigma));
        if (!sp->dim1) {
            for (int64_t o = 0; o < h; o++) {
                const float *gr = g + o * w;
                float *dr = dw + o * w;
                const float ku = k * u[o];
                for (int64_t j = 0; j < w; j++)
                    dr[j] += gr[j] * inv - ku * v[j];
            }
        } else {
            /* weight [d0, h, kk]: element (i, o, r) is W_mat[o, i kk + r] */
            const int64_t kk = sp->kk;
            for (int64_t i = 0; i < sp->d0; i++)
                for (int64_t o = 0; o < h; o++) {
                    const float *gr = g + (i * h + o) * kk;
                    const float *vr = v + i * kk;
                    float *dr = dw + (i * h + o) * kk;
                    const float ku = k * u[o];
                    for (int64_t r = 0; r < kk; r++)
                        dr[r] += gr[r] * inv - ku * vr[r];
                }
        }
    }
    return DNG_OK;
}

/* Fill x with N(0, 1) draws and normalise it, as PyTorch's u and v. */
static void sn_draw_unit(float *x, int64_t n, dng_rng *rng)
{
    dng_rng_normal(rng, x, n, 0.0f, 1.0f);
    sn_normalize(x, n);
}

static void sn_init(dng_layer *l, dng_init scheme, dng_rng *rng)
{
    sn_priv *sp = l->priv;
    dng_layer *inner = l->inner;
    if (inner->ops->init)
        inner->ops->init(inner, scheme, rng);
    memcpy(l->param[0]->data, inner->param[sp->wi]->data,
           (size_t)l->param[0]->numel * sizeof(float));
    sn_draw_unit(l->buffer[0]->data, sp->h, rng);
    sn_draw_unit(l->buffer[1]->data, sp->w, rng);
}

static void sn_destroy(dng_layer *l)
{
    sn_priv *sp = l->priv;
    /* Slots shared with the inner layer are freed with it: clear them. */
    for (int i = 0; i < l->nparams; i++)
        for (int j = 0; l->inner && j < l->inner->nparams; j++)
            if (l->param[i] && l->param[i] == l->inner->param[j]) {
                l->param[i] = NULL;
                l->grad[i] = NULL;
            }
    if (!sp)
        return;
    dng__free(sp->wmat);
    dng__free(sp->t);
    dng__free(sp);
    l->priv = NULL;
}

static const dng__layer_ops sn_ops = {
    .name = "spectral_norm",
    .kind = DNG__LAYER_SPECTRAL_NORM,
    .infer = sn_infer,
    .reserve = sn_reserve,
    .forward = sn_forward,
    .backward = sn_backward,
    .init = sn_init,
    .destroy = sn_destroy,
};

static int sn_find_param(const dng_layer *l, const char *name)
{
    for (int i = 0; i < l->nparams; i++)
        if (strcmp(l->param_name[i], name) == 0)
            return i;
    return -1;
}

DNG_API dng_layer *dng_spectral_norm(dng_layer *inner)
{
    dng_layer *l;
    sn_priv *sp;
    const dng_tensor *wt;
    int wi, bi;
    if (!inner) {
        char prev[512];
        snprintf(prev, sizeof prev, "%s", dng_last_error());
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_spectral_norm: inner is "
                   "NULL (its constructor failed%s%s)", prev[0] ? ": " : "",
                   prev);
        return NULL;
    }
    if (inner->owner) {
        /* Freeing it would break the network that owns it. */
        dng__error(DNG_ERR_STATE, "dng_spectral_norm: the inner %s layer "
                   "already belongs to a network", inner->ops->name);
        return NULL;
    }
    if (inner->ops->kind != DNG__LAYER_DENSE &&
        inner->ops->kind != DNG__LAYER_CONV2D &&
        inner->ops->kind != DNG__LAYER_CONV2D_TRANSPOSE) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_spectral_norm: inner is "
                   "a %s layer; only dense, conv2d and conv2d-transpose "
                   "can be wrapped (the inner layer was freed)",
                   inner->ops->name);
        dng__layer_free(inner);
        return NULL;
    }
    wi = sn_find_param(inner, "weight");
    bi = sn_find_param(inner, "bias");
    if (wi < 0 || inner->param[wi]->ndim < 2) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_spectral_norm: the inner "
                   "%s layer has no weight matrix (the inner layer was "
                   "freed)", inner->ops->name);
        dng__layer_free(inner);
        return NULL;
    }
    l = dng__layer_new(&sn_ops, "dng_spectral_norm", 0, NULL, 0, NULL);
    if (!l) {
        dng__layer_free(inner);
        return NULL;
    }
    l->inner = inner; /* from here on, freeing l frees inner */
    sp = dng__calloc(1, sizeof *sp, "dng_spectral_norm");
    l->priv = sp;
    if (!sp)
        goto fail;
    wt = inner->param[wi];
    sp->wi = wi;
    sp->bi = bi;
    sp->dim1 = inner->ops->kind == DNG__LAYER_CONV2D_TRANSPOSE;
    if (sp->dim1) {
        sp->d0 = wt->shape[0];
        sp->h = wt->shape[1];
        sp->kk = wt->numel / (sp->d0 * sp->h);
        sp->w = wt->numel / sp->h;
    } else {
        sp->h = wt->shape[0];
        sp->w = wt->numel / sp->h;
    }
    sp->t = dng__calloc((size_t)sp->h, sizeof(float), "dng_spectral_norm");
    if (!sp->t)
        goto fail;
    if (sp->dim1 &&
        !(sp->wmat = dng__calloc((size_t)wt->numel, sizeof(float),
                                 "dng_spectral_norm")))
        goto fail;
    if (dng__layer_add_param(l, "weight_orig", wt->ndim, wt->shape) !=
        DNG_OK)
        goto fail;
    if (bi >= 0) {
        l->param[l->nparams] = inner->param[bi];
        l->grad[l->nparams] = inner->grad[bi];
        l->param_name[l->nparams] = "bias";
        l->nparams++;
    }
    if (dng__layer_add_buffer(l, "weight_u", 1, &sp->h) != DNG_OK ||
        dng__layer_add_buffer(l, "weight_v", 1, &sp->w) != DNG_OK)
        goto fail;
    memcpy(l->param[0]->data, wt->data, (size_t)wt->numel * sizeof(float));
    /* dng_net_add draws u and v at random; until then they are the
     * uniform unit vectors, a valid start for the power iteration. */
    dng_tensor_fill(l->buffer[0], (float)(1.0 / sqrt((double)sp->h)));
    dng_tensor_fill(l->buffer[1], (float)(1.0 / sqrt((double)sp->w)));
    return l;
fail:
    dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_spectral_norm");
    dng__layer_free(l);
    return NULL;
}
