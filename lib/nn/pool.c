/* pool.c: max and average pooling over k x k windows of each plane of
 * [N, C, H, W], no padding, floor mode (PyTorch's defaults apart from the
 * stride, which is explicit here). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "layer-impl.h"

enum { ARG_K, ARG_STRIDE };

#define MAX_KERNEL 1024
#define MAX_STRIDE 1024

/* Planes are independent, so they are shared among threads without
 * changing any result; small batches stay on one thread. */
#if defined(_OPENMP)
#define POOL_PRAGMA(x) _Pragma(#x)
#else
#define POOL_PRAGMA(x)
#endif
#define PARALLEL_PLANES                                                      \
    POOL_PRAGMA(omp parallel for num_threads(dng__threads())                 \
                if (planes > 1 && planes * in > 65536))

typedef struct pool_priv {
    int32_t *argmax; /* max pool: per output, its input's index in the plane */
    size_t cap;      /* int32 slots allocated */
} pool_priv;

/* The sizes of one layer: planes of h x w pooled to oh x ow. */
typedef struct geom {
    int64_t c, h, w, oh, ow;
    int k, stride;
} geom;

static geom get_geom(const dng_layer *l)
{
    geom g;
    g.k = (int)l->iargs[ARG_K];
    g.stride = (int)l->iargs[ARG_STRIDE];
    g.c = l->in_shape[0];
    g.h = l->in_shape[1];
    g.w = l->in_shape[2];
    g.oh = l->out_shape[1];
    g.ow = l->out_shape[2];
    return g;
}

static dng_status pool_infer(dng_layer *l, int ndim, const int64_t *in)
{
    int k = (int)l->iargs[ARG_K], stride = (int)l->iargs[ARG_STRIDE];
    if (ndim != 3 || in[1] < k || in[2] < k)
        return dng__error(DNG_ERR_SHAPE, "%s expects [C, H, W] with H >= k "
                          "and W >= k (k = %d)", l->ops->name, k);
    /* Argmax indices are 32-bit offsets within a plane. */
    if (in[1] > INT32_MAX / in[2])
        return dng__error(DNG_ERR_SHAPE, "%s: planes of %" PRId64 " x %"
                          PRId64 " are too large (at most 2^31 - 1 values)",
                          l->ops->name, in[1], in[2]);
    l->in_ndim = 3;
    memcpy(l->in_shape, in, 3 * sizeof *in);
    l->out_ndim = 3;
    l->out_shape[0] = in[0];
    l->out_shape[1] = (in[1] - k) / stride + 1;
    l->out_shape[2] = (in[2] - k) / stride + 1;
    return DNG_OK;
}

static dng_status maxpool_reserve(dng_layer *l, int64_t n)
{
    pool_priv *pv = l->priv;
    size_t need = (size_t)n * (size_t)(l->out_shape[0] * l->out_shape[1] *
                                       l->out_shape[2]);
    int32_t *p;
    if (need <= pv->cap)
        return DNG_OK;
    p = dng__calloc(need, sizeof *p, "maxpool2d indices");
    if (!p)
        return DNG_ERR_OUT_OF_MEMORY;
    dng__free(pv->argmax);
    pv->argmax = p;
    pv->cap = need;
    return DNG_OK;
}

/* y[q, oy, ox] = max over the window of x[q] (the first maximum, or a NaN,
 * as PyTorch picks), remembering where it was. */
static void maxpool_plane(const geom *g, const float *x, float *y,
                          int32_t *arg)
{
    for (int64_t oy = 0; oy < g->oh; oy++) {
        for (int64_t ox = 0; ox < g->ow; ox++) {
            int64_t base = oy * g->stride * g->w + ox * g->stride;
            int64_t best_i = base;
            float best = -INFINITY;
            for (int ky = 0; ky < g->k; ky++) {
                const float *row = x + base + ky * g->w;
                for (int kx = 0; kx < g->k; kx++) {
                    float v = row[kx];
                    if (v > best || isnan(v)) {
                        best = v;
                        best_i = base + ky * g->w + kx;
                    }
                }
            }
            y[oy * g->ow + ox] = best;
            arg[oy * g->ow + ox] = (int32_t)best_i;
        }
    }
}

static dng_status maxpool_forward(dng_layer *l, const dng_tensor *x,
                                  dng_tensor *y)
{
    pool_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t planes = x->shape[0] * g.c, in = g.h * g.w, out = g.oh * g.ow;
    dng_status s = maxpool_reserve(l, x->shape[0]); /* no-op once sized */
    if (s != DNG_OK)
        return dng__error_prefix(s, "maxpool2d");
    PARALLEL_PLANES
    for (int64_t q = 0; q < planes; q++)
        maxpool_plane(&g, x->data + q * in, y->data + q * out,
                      pv->argmax + q * out);
    return DNG_OK;
}

static dng_status maxpool_backward(dng_layer *l, const dng_tensor *x,
                                   const dng_tensor *y, const dng_tensor *dy,
                                   dng_tensor *dx)
{
    const pool_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t planes = x->shape[0] * g.c, in = g.h * g.w, out = g.oh * g.ow;
    if (!dx)
        return DNG_OK;
    /* dx[q, argmax] += dy[q, j]; overlapping windows may share an input,
     * so the plane is cleared and accumulated in a fixed order. */
    PARALLEL_PLANES
    for (int64_t q = 0; q < planes; q++) {
        float *d = dx->data + q * in;
        const float *gy = dy->data + q * out;
        const int32_t *arg = pv->argmax + q * out;
        memset(d, 0, (size_t)in * sizeof *d);
        for (int64_t j = 0; j < out; j++)
            d[arg[j]] += gy[j];
    }
    return DNG_OK;
}

/* y[q, oy, ox] = mean over the k x k window of x[q] */
static void avgpool_plane(const geom *g, const float *x, float *y)
{
    const float scale = 1.0f / (float)(g->k * g->k);
    for (int64_t oy = 0; oy < g->oh; oy++) {
        for (int64_t ox = 0; ox < g->ow; ox++) {
            const float *win = x + oy * g->stride * g->w + ox * g->stride;
            float sum = 0.0f;
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++)
                    sum += win[ky * g->w + kx];
            y[oy * g->ow + ox] = sum * scale;
        }
    }
}

/* dx[q, window(j)] += dy[q, j] / k^2 */
static void avgpool_plane_back(const geom *g, const float *dy, float *dx)
{
    const float scale = 1.0f / (float)(g->k * g->k);
    memset(dx, 0, (size_t)(g->h * g->w) * sizeof *dx);
    for (int64_t oy = 0; oy < g->oh; oy++) {
        for (int64_t ox = 0; ox < g->ow; ox++) {
            float *win = dx + oy * g->stride * g->w + ox * g->stride;
            const float v = dy[oy * g->ow + ox] * scale;
            for (int ky = 0; ky < g->k; ky++)
                for (int kx = 0; kx < g->k; kx++)
                    win[ky * g->w + kx] += v;
        }
    }
}

static dng_status avgpool_forward(dng_layer *l, const dng_tensor *x,
                                  dng_tensor *y)
{
    geom g = get_geom(l);
    int64_t planes = x->shape[0] * g.c, in = g.h * g.w, out = g.oh * g.ow;
    PARALLEL_PLANES
    for (int64_t q = 0; q < planes; q++)
        avgpool_plane(&g, x->data + q * in, y->data + q * out);
    return DNG_OK;
}

static dng_status avgpool_backward(dng_layer *l, const dng_tensor *x,
                                   const dng_tensor *y, const dng_tensor *dy,
                                   dng_tensor *dx)
{
    geom g = get_geom(l);
    int64_t planes = x->shape[0] * g.c, in = g.h * g.w, out = g.oh * g.ow;
    if (!dx)
        return DNG_OK;
    PARALLEL_PLANES
    for (int64_t q = 0; q < planes; q++)
        avgpool_plane_back(&g, dy->data + q * out, dx->data + q * in);
    return DNG_OK;
}

static void pool_destroy(dng_layer *l)
{
    pool_priv *pv = l->priv;
    if (!pv)
        return;
    dng__free(pv->argmax);
    dng__free(pv);
    l->priv = NULL;
}

static const dng__layer_ops maxpool_ops = {
    .name = "maxpool2d",
    .kind = DNG__LAYER_MAXPOOL2D,
    .infer = pool_infer,
    .reserve = maxpool_reserve,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .destroy = pool_destroy,
};

static const dng__layer_ops avgpool_ops = {
    .name = "avgpool2d",
    .kind = DNG__LAYER_AVGPOOL2D,
    .infer = pool_infer,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

static dng_layer *pool_new(const dng__layer_ops *ops, const char *func, int k,
                           int stride)
{
    int64_t args[2] = {k, stride};
    dng_layer *l;
    if (k < 1 || k > MAX_KERNEL) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: k = %d is outside 1..%d",
                   func, k, MAX_KERNEL);
        return NULL;
    }
    if (stride < 1 || stride > MAX_STRIDE) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: stride = %d is outside "
                   "1..%d", func, stride, MAX_STRIDE);
        return NULL;
    }
    l = dng__layer_new(ops, func, 2, args, 0, NULL);
    if (!l || ops != &maxpool_ops)
        return l;
    l->priv = dng__calloc(1, sizeof(pool_priv), func);
    if (!l->priv) {
        dng__layer_free(l);
        return NULL;
    }
    return l;
}

DNG_API dng_layer *dng_maxpool2d(int k, int stride)
{
    return pool_new(&maxpool_ops, "dng_maxpool2d", k, stride);
}

DNG_API dng_layer *dng_avgpool2d(int k, int stride)
{
    return pool_new(&avgpool_ops, "dng_avgpool2d", k, stride);
}
