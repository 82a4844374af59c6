/* conv2d_transpose.c: 2-D transposed convolution (the adjoint of conv2d
 * with respect to its input) on [N, in, H, W], W [in, out, kh, kw] and
 * b [out] as in PyTorch, output H' = (H - 1) stride - 2 pad + kh. The
 * forward is conv2d's input gradient: col = W^T x, then col2im. */
#include <inttypes.h>
#include <string.h>

#include "layer-impl.h"

/* Positions of the constructor arguments in iargs; the model file stores
 * them in this order. */
enum { ARG_IN, ARG_OUT, ARG_KH, ARG_KW, ARG_STRIDE, ARG_PAD };

#define MAX_CHANNELS ((int64_t)1 << 24)
#define MAX_KERNEL 1024
#define MAX_STRIDE 1024

typedef struct convt_priv {
    float *col;     /* [K, g P]: columns of a group, K = out kh kw, P = H W */
    size_t col_cap;
    float *mat;     /* [in, g P]: a group's x or dx, when g > 1 */
    size_t mat_cap;
    float *ones;    /* H' W' ones: db = dy 1 as a matrix-vector product */
    size_t ones_cap;
} convt_priv;

/* The sizes of one layer, seen from the underlying convolution: its
 * "image" is this layer's output [out, H', W'] and its window positions
 * are this layer's input positions H x W. */
typedef struct geom {
    dng__conv_geom img;
    int64_t in, k, p;
} geom;

static geom get_geom(const dng_layer *l)
{
    geom g;
    g.in = l->iargs[ARG_IN];
    g.img.c = l->iargs[ARG_OUT];
    g.img.h = l->out_shape[1];
    g.img.w = l->out_shape[2];
    g.img.oh = l->in_shape[1];
    g.img.ow = l->in_shape[2];
    g.img.kh = (int)l->iargs[ARG_KH];
    g.img.kw = (int)l->iargs[ARG_KW];
    g.img.stride = (int)l->iargs[ARG_STRIDE];
    g.img.pad = (int)l->iargs[ARG_PAD];
    g.k = g.img.c * g.img.kh * g.img.kw;
    g.p = g.img.oh * g.img.ow;
    return g;
}

static int64_t group_size(const geom *g, int64_t n)
{
    return dng__conv_group(g->k > g->in ? g->k : g->in, g->p, n);
}

static dng_status convt_infer(dng_layer *l, int ndim, const int64_t *in)
{
    int64_t cin = l->iargs[ARG_IN], out = l->iargs[ARG_OUT], oh, ow, t;
    int kh = (int)l->iargs[ARG_KH], kw = (int)l->iargs[ARG_KW];
    int stride = (int)l->iargs[ARG_STRIDE], pad = (int)l->iargs[ARG_PAD];
    int64_t k = out * kh * kw;
    if (ndim != 3 || in[0] != cin)
        return dng__error(DNG_ERR_SHAPE, "conv2d_transpose expects [%"
                          PRId64 ", H, W]", cin);
    /* H' = (H - 1) stride - 2 pad + kh must be positive. */
    if (dng__mul_overflow_i64(in[1] - 1, stride, &oh) ||
        dng__mul_overflow_i64(in[2] - 1, stride, &ow) ||
        (oh += kh - 2 * (int64_t)pad) < 1 ||
        (ow += kw - 2 * (int64_t)pad) < 1)
        return dng__error(DNG_ERR_SHAPE, "conv2d_transpose expects [%"
                          PRId64 ", H, W] with (H - 1)*stride + kh > 2*pad "
                          "and (W - 1)*stride + kw > 2*pad (stride = %d, "
                          "pad = %d, kh = %d, kw = %d)", cin, stride, pad,
                          kh, kw);
    /* The output, and a sample's workspaces of K x H W floats. */
    if (dng__mul_overflow_i64(oh, ow, &t) ||
        dng__mul_overflow_i64(t, out, &t) ||
        (uint64_t)t > SIZE_MAX / sizeof(float) / 4 ||
        dng__mul_overflow_i64(in[1], in[2], &t) ||
        dng__mul_overflow_i64(t, k > cin ? k : cin, &t) ||
        (uint64_t)t > SIZE_MAX / sizeof(float) / 4)
        return dng__error(DNG_ERR_SHAPE, "conv2d_transpose: the output [%"
                          PRId64 ", %" PRId64 ", %" PRId64 "] is too large",
                          out, oh, ow);
    l->in_ndim = 3;
    memcpy(l->in_shape, in, 3 * sizeof *in);
    l->out_ndim = 3;
    l->out_shape[0] = out;
    l->out_shape[1] = oh;
    l->out_shape[2] = ow;
    return DNG_OK;
}

static dng_status convt_reserve(dng_layer *l, int64_t n)
{
    convt_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t gs = group_size(&g, n);
    size_t ones = pv->ones_cap;
    dng_status s;
    s = dng__buf_reserve(&pv->col, &pv->col_cap, (size_t)(g.k * gs * g.p));
    if (s == DNG_OK && gs > 1)
        s = dng__buf_reserve(&pv->mat, &pv->mat_cap,
                             (size_t)(g.in * gs * g.p));
    if (s == DNG_OK)
        s = dng__buf_reserve(&pv->ones, &pv->ones_cap,
                             (size_t)(g.img.h * g.img.w));
    if (s != DNG_OK)
        return dng__error_prefix(s, "conv2d_transpose workspace");
    if (pv->ones_cap != ones)
        for (size_t i = 0; i < pv->ones_cap; i++)
            pv->ones[i] = 1.0f;
    return DNG_OK;
}

/* Workspaces are sized by the reserve hook; this allocates only when a
 * caller (a wrapping layer, say) skipped it. */
static dng_status ensure_reserved(dng_layer *l, const geom *g, int64_t n)
{
    const convt_priv *pv = l->priv;
    int64_t gs = group_size(g, n);
    if ((size_t)(g->k * gs * g->p) <= pv->col_cap &&
        (size_t)(g->img.h * g->img.w) <= pv->ones_cap &&
        (gs == 1 || (size_t)(g->in * gs * g->p) <= pv->mat_cap))
        return DNG_OK;
    return convt_reserve(l, n);
}

static dng_status convt_forward(dng_layer *l, const dng_tensor *x,
                                dng_tensor *y)
{
    convt_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t n = x->shape[0], gs = group_size(&g, n);
    int64_t xs = g.in * g.p, ys = g.img.c * g.img.h * g.img.w;
    const float *w = l->param[0]->data, *b = l->param[1]->data;
    int nt = dng__threads();
    dng_status s = ensure_reserved(l, &g, n);
    if (s != DNG_OK)
        return s;
    for (int64_t s0 = 0; s0 < n; s0 += gs) {
        int64_t m = n - s0 < gs ? n - s0 : gs, ld = m * g.p;
        const float *xb = x->data + s0 * xs;
        if (m > 1) {
            dng__conv_gather(xb, m, g.in, g.p, pv->mat, nt);
            xb = pv->mat;
        }
        /* col [out kh kw, m H W] = W^T x over the group */
        dng__sgemm(true, false, g.k, ld, g.in, 1.0f, w, g.k, xb, ld, 0.0f,
                   pv->col, ld, dng__conv_threads(g.k * g.in * ld));
        /* y_i = col2im(col_i) + b */
        dng__conv_raise(&g.img, pv->col, m, b, y->data + s0 * ys, nt);
    }
    return DNG_OK;
}

static dng_status convt_backward(dng_layer *l, const dng_tensor *x,
                                 const dng_tensor *y, const dng_tensor *dy,
                                 dng_tensor *dx)
{
    convt_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t n = x->shape[0], gs = group_size(&g, n);
    int64_t plane = g.img.h * g.img.w, xs = g.in * g.p, ys = g.img.c * plane;
    const float *w = l->param[0]->data;
    bool pgrad = !l->skip_param_grad;
    int nt = dng__threads();
    dng_status s = ensure_reserved(l, &g, n);
    if (s != DNG_OK)
        return s;
    if (pgrad) /* db += dy_i 1 for each sample, in order */
        for (int64_t i = 0; i < n; i++)
            dng__sgemm(false, false, g.img.c, 1, plane, 1.0f,
                       dy->data + i * ys, plane, pv->ones, 1, 1.0f,
                       l->grad[1]->data, 1, 1);
    if (!pgrad && !dx)
        return DNG_OK;
    for (int64_t s0 = 0; s0 < n; s0 += gs) {
        int64_t m = n - s0 < gs ? n - s0 : gs, ld = m * g.p;
        int gt = dng__conv_threads(g.k * g.in * ld);
        /* col [out kh kw, m H W] = im2col(dy_i) side by side */
        dng__conv_lower(&g.img, dy->data + s0 * ys, m, pv->col, nt);
        if (pgrad) {
            const float *xb = x->data + s0 * xs;
            if (m > 1) {
                dng__conv_gather(xb, m, g.in, g.p, pv->mat, nt);
                xb = pv->mat;
            }
            /* dW [in, out kh kw] += x col^T over the group */
            dng__sgemm(false, true, g.in, g.k, ld, 1.0f, xb, ld, pv->col, ld,
                       1.0f, l->grad[0]->data, g.k, gt);
        }
        if (dx) {
            float *dxs = dx->data + s0 * xs;
            /* dx = W col */
            dng__sgemm(false, false, g.in, ld, g.k, 1.0f, w, g.k, pv->col,
                       ld, 0.0f, m > 1 ? pv->mat : dxs, ld, gt);
            if (m > 1)
                dng__conv_scatter(pv->mat, m, g.in, g.p, NULL, dxs, nt);
        }
    }
    return DNG_OK;
}

static void convt_init(dng_layer *l, dng_init scheme, dng_rng *rng)
{
    /* PyTorch computes the fans from the weight's shape [in, out, kh, kw]
     * as for any weight: fan_in = size(1) kh kw = out kh kw. */
    int64_t rf = l->iargs[ARG_KH] * l->iargs[ARG_KW];
    int64_t fan_in = l->iargs[ARG_OUT] * rf, fan_out = l->iargs[ARG_IN] * rf;
    dng__init_weight(l->param[0], scheme, fan_in, fan_out, rng);
    dng__init_bias(l->param[1], scheme, fan_in, rng);
}

static void convt_destroy(dng_layer *l)
{
    convt_priv *pv = l->priv;
    if (!pv)
        return;
    dng__free(pv->col);
    dng__free(pv->mat);
    dng__free(pv->ones);
    dng__free(pv);
    l->priv = NULL;
}

static const dng__layer_ops convt_ops = {
    .name = "conv2d_transpose",
    .kind = DNG__LAYER_CONV2D_TRANSPOSE,
    .infer = convt_infer,
    .reserve = convt_reserve,
    .forward = convt_forward,
    .backward = convt_backward,
    .init = convt_init,
    .destroy = convt_destroy,
};

DNG_API dng_layer *dng_conv2d_transpose(int64_t in_ch, int64_t out_ch,
                                        int kh, int kw, int stride, int pad)
{
    int64_t args[6] = {in_ch, out_ch, kh, kw, stride, pad};
    int64_t wshape[4] = {in_ch, out_ch, kh, kw};
    dng_layer *l;
    if (in_ch < 1 || in_ch > MAX_CHANNELS || out_ch < 1 ||
        out_ch > MAX_CHANNELS) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d_transpose: in_ch = "
                   "%" PRId64 " and out_ch = %" PRId64 " must be in 1..%"
                   PRId64, in_ch, out_ch, MAX_CHANNELS);
        return NULL;
    }
    if (kh < 1 || kh > MAX_KERNEL || kw < 1 || kw > MAX_KERNEL) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d_transpose: kh = %d "
                   "and kw = %d must be in 1..%d", kh, kw, MAX_KERNEL);
        return NULL;
    }
    if (stride < 1 || stride > MAX_STRIDE) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d_transpose: stride "
                   "= %d is outside 1..%d", stride, MAX_STRIDE);
        return NULL;
    }
    if (pad < 0 || pad >= kh || pad >= kw) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d_transpose: pad = %d "
                   "must be at least 0 and less than kh = %d and kw = %d",
                   pad, kh, kw);
        return NULL;
    }
    l = dng__layer_new(&convt_ops, "dng_conv2d_transpose", 6, args, 0, NULL);
    if (!l)
        return NULL;
    l->priv = dng__calloc(1, sizeof(convt_priv), "dng_conv2d_transpose");
    if (!l->priv || dng__layer_add_param(l, "weight", 4, wshape) != DNG_OK ||
        dng__layer_add_param(l, "bias", 1, &out_ch) != DNG_OK) {
        dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_conv2d_transpose");
        dng__layer_free(l);
        return NULL;
    }
    return l;
}
