/* conv2d.c: 2-D convolution on [N, C, H, W] with a square stride and zero
 * padding, W [out, in, kh, kw] and b [out] as in PyTorch, lowered to GEMM
 * through im2col. Also the batched lowering that conv2d_transpose.c
 * shares. */
#include <inttypes.h>
#include <string.h>

#include "layer-impl.h"

/* Loops over samples or planes whose iterations touch disjoint memory:
 * sharing them among lt threads changes no result. */
#if defined(_OPENMP)
#define CONV_PRAGMA(x) _Pragma(#x)
#define PARALLEL_FOR                                                         \
    CONV_PRAGMA(omp parallel for num_threads(lt) if (lt > 1)                 \
                schedule(static))
#else
#define PARALLEL_FOR (void)lt;
#endif

/* Positions of the constructor arguments in iargs; the model file stores
 * them in this order. */
enum { ARG_IN, ARG_OUT, ARG_KH, ARG_KW, ARG_STRIDE, ARG_PAD };

/* Upper bounds that keep every size product far from overflow while
 * allowing any network that fits in memory. */
#define MAX_CHANNELS ((int64_t)1 << 24)
#define MAX_KERNEL 1024
#define MAX_STRIDE 1024

/* The samples whose columns go through one GEMM are capped so that the
 * group's buffers stay near this many floats (16 MiB each): enough for
 * BLIS to see long panels on small images, not so much that memory is
 * hoarded on large ones. */
#define GROUP_FLOATS ((int64_t)1 << 22)

/* Below these sizes, starting threads costs more than it saves: a GEMM
 * of 2^20 multiply-adds takes about 25 us on one core, a copy of 2^15
 * floats a few. */
#define GEMM_MIN_WORK ((int64_t)1 << 20)
#define COPY_MIN_WORK ((int64_t)1 << 15)

/* ---- batched lowering ---------------------------------------------- */

int64_t dng__conv_group(int64_t rows, int64_t p, int64_t n)
{
    int64_t cap = GROUP_FLOATS / (rows * p);
    if (cap < 1)
        cap = 1;
    return n < cap ? n : cap;
}

int dng__conv_threads(int64_t work)
{
    return work < GEMM_MIN_WORK ? 1 : dng__threads();
}

/* Threads for a loop of `iters` independent iterations moving about
 * `work` floats, at most `threads`. */
static int loop_threads(int threads, int64_t iters, int64_t work)
{
    if (threads < 2 || iters < 2 || work < COPY_MIN_WORK)
        return 1;
    return iters < threads ? (int)iters : threads;
}

/* The output columns ox whose input column ox * stride + off lies in
 * [0, w): [*lo, *hi). Found once per kernel column, so that the copy
 * loops carry no bounds checks. */
static void valid_range(int64_t w, int64_t ow, int stride, int64_t off,
                        int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = w - off <= 0 ? 0 : (w - off + stride - 1) / stride;
    if (b > ow)
        b = ow;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

/* col[(ky, kx), oy OW + ox] = x[oy s - p + ky, ox s - p + kx], or 0 in
 * the padding, for one plane x of one image; col has row stride ld. This
 * is dng__im2col with a leading dimension, so that the columns of a group
 * of images land side by side without a second copy (measured 1.7x
 * faster than lowering each image into a block and copying it). */
static void lower_plane(const dng__conv_geom *restrict g,
                        const float *restrict x, float *restrict col,
                        int64_t ld)
{
    int64_t ow = g->ow, s = g->stride;
    for (int ky = 0; ky < g->kh; ky++) {
        int64_t ylo, yhi;
        valid_range(g->h, g->oh, g->stride, (int64_t)ky - g->pad, &ylo,
                    &yhi);
        for (int kx = 0; kx < g->kw; kx++) {
            int64_t off = (int64_t)kx - g->pad, lo, hi;
            float *row = col + (ky * g->kw + kx) * ld;
            valid_range(g->w, ow, g->stride, off, &lo, &hi);
            memset(row, 0, (size_t)(ylo * ow) * sizeof *row);
            for (int64_t oy = ylo; oy < yhi; oy++) {
                /* Indexing from the row's start keeps the pointer inside
                 * the image when off < 0. */
                const float *src = x + (oy * s - g->pad + ky) * g->w;
                float *dst = row + oy * ow;
                for (int64_t ox = 0; ox < lo; ox++)
                    dst[ox] = 0.0f;
                if (s == 1)
                    memcpy(dst + lo, src + lo + off,
                           (size_t)(hi - lo) * sizeof *dst);
                else
                    for (int64_t ox = lo; ox < hi; ox++)
                        dst[ox] = src[ox * s + off];
                for (int64_t ox = hi; ox < ow; ox++)
                    dst[ox] = 0.0f;
            }
            memset(row + yhi * ow, 0,
                   (size_t)((g->oh - yhi) * ow) * sizeof *row);
        }
    }
}

/* The adjoint for one plane: x = b + the sum of col[(ky, kx), oy OW + ox]
 * over the positions that read x[oy s - p + ky, ox s - p + kx]. */
static void raise_plane(const dng__conv_geom *restrict g,
                        const float *restrict col, int64_t ld, float b,
                        float *restrict x)
{
    int64_t ow = g->ow, hw = g->h * g->w, s = g->stride;
    for (int64_t q = 0; q < hw; q++)
        x[q] = b;
    for (int ky = 0; ky < g->kh; ky++) {
        int64_t ylo, yhi;
        valid_range(g->h, g->oh, g->stride, (int64_t)ky - g->pad, &ylo,
                    &yhi);
        for (int kx = 0; kx < g->kw; kx++) {
            int64_t off = (int64_t)kx - g->pad, lo, hi;
            const float *row = col + (ky * g->kw + kx) * ld;
            valid_range(g->w, ow, g->stride, off, &lo, &hi);
            for (int64_t oy = ylo; oy < yhi; oy++) {
                const float *src = row + oy * ow;
                float *dst = x + (oy * s - g->pad + ky) * g->w;
                if (s == 1)
                    for (int64_t ox = lo; ox < hi; ox++)
                        dst[ox + off] += src[ox];
                else
                    for (int64_t ox = lo; ox < hi; ox++)
                        dst[ox * s + off] += src[ox];
            }
        }
    }
}

/* Both walk the (channel, image) planes channel by channel, so that col
 * is read or written along its rows; the planes are disjoint, so sharing
 * them among threads changes no result. */
void dng__conv_lower(const dng__conv_geom *g, const float *img, int64_t m,
                     float *col, int threads)
{
    int64_t p = g->oh * g->ow, ld = m * p, hw = g->h * g->w;
    int64_t kk = (int64_t)g->kh * g->kw, planes = g->c * m;
    int lt = loop_threads(threads, planes, planes * kk * p);
    PARALLEL_FOR
    for (int64_t t = 0; t < planes; t++) {
        int64_t c = t / m, i = t % m;
        lower_plane(g, img + (i * g->c + c) * hw, col + c * kk * ld + i * p,
                    ld);
    }
}

void dng__conv_raise(const dng__conv_geom *g, const float *col, int64_t m,
                     const float *bias, float *img, int threads)
{
    int64_t p = g->oh * g->ow, ld = m * p, hw = g->h * g->w;
    int64_t kk = (int64_t)g->kh * g->kw, planes = g->c * m;
    int lt = loop_threads(threads, planes, planes * kk * p);
    PARALLEL_FOR
    for (int64_t t = 0; t < planes; t++) {
        int64_t c = t / m, i = t % m;
        raise_plane(g, col + c * kk * ld + i * p, ld, bias ? bias[c] : 0.0f,
                    img + (i * g->c + c) * hw);
    }
}

/* mat[r, i p + q] = src[i, r, q] */
void dng__conv_gather(const float *src, int64_t m, int64_t rows, int64_t p,
                      float *mat, int threads)
{
    int64_t ld = m * p;
    int lt = loop_threads(threads, m, rows * ld);
    PARALLEL_FOR
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++)
            memcpy(mat + r * ld + i * p, src + (i * rows + r) * p,
                   (size_t)p * sizeof(float));
}

/* dst[i, r, q] = mat[r, i p + q] (+ bias[r]) */
void dng__conv_scatter(const float *mat, int64_t m, int64_t rows, int64_t p,
                       const float *bias, float *dst, int threads)
{
    int64_t ld = m * p;
    int lt = loop_threads(threads, m, rows * ld);
    PARALLEL_FOR
    for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++) {
            const float *s = mat + r * ld + i * p;
            float *d = dst + (i * rows + r) * p;
            const float b = bias ? bias[r] : 0.0f;
            for (int64_t q = 0; q < p; q++)
                d[q] = s[q] + b;
        }
}

/* ---- the layer --------------------------------------------------------- */

typedef struct conv_priv {
    float *col;          /* [K, g P]: the columns of a group of g samples */
    size_t col_cap;
    float *mat;          /* [out, g P]: a group's GEMM output, or its dy */
    size_t mat_cap;
    float *ones;         /* g P ones: db = dy 1 as a matrix-vector product */
    size_t ones_cap;
    const float *col_of; /* the input whose columns col holds, or NULL */
    int64_t col_n;       /* and its batch size */
} conv_priv;

/* The sizes of one layer. K = C kh kw is the length of a column, P = OH OW
 * the number of output positions. */
typedef struct geom {
    dng__conv_geom in;   /* the input seen by im2col */
    int64_t out, k, p;
} geom;

static geom get_geom(const dng_layer *l)
{
    geom g;
    g.in.c = l->iargs[ARG_IN];
    g.in.h = l->in_shape[1];
    g.in.w = l->in_shape[2];
    g.in.oh = l->out_shape[1];
    g.in.ow = l->out_shape[2];
    g.in.kh = (int)l->iargs[ARG_KH];
    g.in.kw = (int)l->iargs[ARG_KW];
    g.in.stride = (int)l->iargs[ARG_STRIDE];
    g.in.pad = (int)l->iargs[ARG_PAD];
    g.out = l->iargs[ARG_OUT];
    g.k = g.in.c * g.in.kh * g.in.kw;
    g.p = g.in.oh * g.in.ow;
    return g;
}

static int64_t group_size(const geom *g, int64_t n)
{
    return dng__conv_group(g->k > g->out ? g->k : g->out, g->p, n);
}

static dng_status conv_infer(dng_layer *l, int ndim, const int64_t *in)
{
    int64_t cin = l->iargs[ARG_IN], out = l->iargs[ARG_OUT], oh, ow, t;
    int kh = (int)l->iargs[ARG_KH], kw = (int)l->iargs[ARG_KW];
    int stride = (int)l->iargs[ARG_STRIDE], pad = (int)l->iargs[ARG_PAD];
    int64_t k = cin * kh * kw;
    if (ndim != 3 || in[0] != cin || in[1] + 2 * (int64_t)pad < kh ||
        in[2] + 2 * (int64_t)pad < kw)
        return dng__error(DNG_ERR_SHAPE, "conv2d expects [%" PRId64 ", H, "
                          "W] with H + 2*pad >= kh and W + 2*pad >= kw "
                          "(pad = %d, kh = %d, kw = %d)", cin, pad, kh, kw);
    oh = dng__conv_out(in[1], kh, stride, pad);
    ow = dng__conv_out(in[2], kw, stride, pad);
    /* A sample's workspaces hold K x P and out x P floats. */
    if (dng__mul_overflow_i64(oh, ow, &t) ||
        dng__mul_overflow_i64(t, out > k ? out : k, &t) ||
        (uint64_t)t > SIZE_MAX / sizeof(float) / 4)
        return dng__error(DNG_ERR_SHAPE, "conv2d: the output [%" PRId64
                          ", %" PRId64 ", %" PRId64 "] is too large", out,
                          oh, ow);
    l->in_ndim = 3;
    memcpy(l->in_shape, in, 3 * sizeof *in);
    l->out_ndim = 3;
    l->out_shape[0] = out;
    l->out_shape[1] = oh;
    l->out_shape[2] = ow;
    return DNG_OK;
}

static dng_status conv_reserve(dng_layer *l, int64_t n)
{
    conv_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t gs = group_size(&g, n);
    size_t ones = pv->ones_cap;
    dng_status s;
    /* A reallocated column buffer no longer holds anything. */
    pv->col_of = NULL;
    s = dng__buf_reserve(&pv->col, &pv->col_cap, (size_t)(g.k * gs * g.p));
    if (s == DNG_OK && gs > 1)
        s = dng__buf_reserve(&pv->mat, &pv->mat_cap,
                             (size_t)(g.out * gs * g.p));
    if (s == DNG_OK)
        s = dng__buf_reserve(&pv->ones, &pv->ones_cap, (size_t)(gs * g.p));
    if (s != DNG_OK)
        return dng__error_prefix(s, "conv2d workspace");
    if (pv->ones_cap != ones)
        for (size_t i = 0; i < pv->ones_cap; i++)
            pv->ones[i] = 1.0f;
    return DNG_OK;
}

/* Workspaces are sized by the reserve hook; this allocates only when a
 * caller (a wrapping layer, say) skipped it. */
static dng_status ensure_reserved(dng_layer *l, const geom *g, int64_t n)
{
    const conv_priv *pv = l->priv;
    int64_t gs = group_size(g, n);
    if ((size_t)(g->k * gs * g->p) <= pv->col_cap &&
        (size_t)(gs * g->p) <= pv->ones_cap &&
        (gs == 1 || (size_t)(g->out * gs * g->p) <= pv->mat_cap))
        return DNG_OK;
    return conv_reserve(l, n);
}

static dng_status conv_forward(dng_layer *l, const dng_tensor *x,
                               dng_tensor *y)
{
    conv_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t n = x->shape[0], gs = group_size(&g, n);
    int64_t xs = g.in.c * g.in.h * g.in.w, ys = g.out * g.p;
    const float *w = l->param[0]->data, *b = l->param[1]->data;
    int nt = dng__threads();
    dng_status s = ensure_reserved(l, &g, n);
    if (s != DNG_OK)
        return s;
    for (int64_t s0 = 0; s0 < n; s0 += gs) {
        int64_t m = n - s0 < gs ? n - s0 : gs, ld = m * g.p;
        int gt = dng__conv_threads(g.out * g.k * ld);
        float *ys0 = y->data + s0 * ys;
        dng__conv_lower(&g.in, x->data + s0 * xs, m, pv->col, nt);
        if (m == 1) {
            /* y_s = W col_s + b, in place */
            dng__sgemm(false, false, g.out, g.p, g.k, 1.0f, w, g.k, pv->col,
                       g.p, 0.0f, ys0, g.p, gt);
            dng__add_channel_bias(ys0, b, g.out, g.p);
            continue;
        }
        /* [out, m P] = W [col_0 ... col_m-1], then y_i = block i + b */
        dng__sgemm(false, false, g.out, ld, g.k, 1.0f, w, g.k, pv->col, ld,
                   0.0f, pv->mat, ld, gt);
        dng__conv_scatter(pv->mat, m, g.out, g.p, b, ys0, nt);
    }
    /* Backward reuses the columns when the whole batch was one group. */
    pv->col_of = gs >= n ? x->data : NULL;
    pv->col_n = n;
    return DNG_OK;
}

static dng_status conv_backward(dng_layer *l, const dng_tensor *x,
                                const dng_tensor *y, const dng_tensor *dy,
                                dng_tensor *dx)
{
    conv_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t n = x->shape[0], gs = group_size(&g, n);
    int64_t xs = g.in.c * g.in.h * g.in.w, ys = g.out * g.p;
    const float *w = l->param[0]->data;
    bool pgrad = !l->skip_param_grad;
    bool cached = pv->col_of == x->data && pv->col_n == n && gs >= n;
    int nt = dng__threads();
    dng_status s = ensure_reserved(l, &g, n);
    if (s != DNG_OK)
        return s;
    if (dx) /* dcol overwrites the cached columns */
        pv->col_of = NULL;
    for (int64_t s0 = 0; s0 < n; s0 += gs) {
        int64_t m = n - s0 < gs ? n - s0 : gs, ld = m * g.p;
        int gt = dng__conv_threads(g.out * g.k * ld);
        const float *dyb = dy->data + s0 * ys;
        if (m > 1) {
            /* The group's dy in the layout of its GEMM output. */
            dng__conv_gather(dyb, m, g.out, g.p, pv->mat, nt);
            dyb = pv->mat;
        }
        if (pgrad) {
            if (!cached)
                dng__conv_lower(&g.in, x->data + s0 * xs, m, pv->col, nt);
            /* dW += dy col^T and db += dy 1 over the group */
            dng__sgemm(false, true, g.out, g.k, ld, 1.0f, dyb, ld, pv->col,
                       ld, 1.0f, l->grad[0]->data, g.k, gt);
            dng__sgemm(false, false, g.out, 1, ld, 1.0f, dyb, ld, pv->ones,
                       1, 1.0f, l->grad[1]->data, 1, 1);
        }
        if (dx) {
            /* dcol = W^T dy, then dx_i = col2im(dcol_i) */
            dng__sgemm(true, false, g.k, ld, g.out, 1.0f, w, g.k, dyb, ld,
                       0.0f, pv->col, ld, gt);
            dng__conv_raise(&g.in, pv->col, m, NULL, dx->data + s0 * xs,
                            nt);
        }
    }
    return DNG_OK;
}

static void conv_init(dng_layer *l, dng_init scheme, dng_rng *rng)
{
    /* PyTorch's fans for a weight [out, in, kh, kw]. */
    int64_t rf = l->iargs[ARG_KH] * l->iargs[ARG_KW];
    int64_t fan_in = l->iargs[ARG_IN] * rf, fan_out = l->iargs[ARG_OUT] * rf;
    dng__init_weight(l->param[0], scheme, fan_in, fan_out, rng);
    dng__init_bias(l->param[1], scheme, fan_in, rng);
}

static void conv_destroy(dng_layer *l)
{
    conv_priv *pv = l->priv;
    if (!pv)
        return;
    dng__free(pv->col);
    dng__free(pv->mat);
    dng__free(pv->ones);
    dng__free(pv);
    l->priv = NULL;
}

static const dng__layer_ops conv_ops = {
    .name = "conv2d",
    .kind = DNG__LAYER_CONV2D,
    .infer = conv_infer,
    .reserve = conv_reserve,
    .forward = conv_forward,
    .backward = conv_backward,
    .init = conv_init,
    .destroy = conv_destroy,
};

DNG_API dng_layer *dng_conv2d(int64_t in_ch, int64_t out_ch, int kh, int kw,
                              int stride, int pad)
{
    int64_t args[6] = {in_ch, out_ch, kh, kw, stride, pad};
    int64_t wshape[4] = {out_ch, in_ch, kh, kw};
    dng_layer *l;
    if (in_ch < 1 || in_ch > MAX_CHANNELS || out_ch < 1 ||
        out_ch > MAX_CHANNELS) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d: in_ch = %" PRId64
                   " and out_ch = %" PRId64 " must be in 1..%" PRId64,
                   in_ch, out_ch, MAX_CHANNELS);
        return NULL;
    }
    if (kh < 1 || kh > MAX_KERNEL || kw < 1 || kw > MAX_KERNEL) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d: kh = %d and kw = "
                   "%d must be in 1..%d", kh, kw, MAX_KERNEL);
        return NULL;
    }
    if (stride < 1 || stride > MAX_STRIDE) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d: stride = %d is "
                   "outside 1..%d", stride, MAX_STRIDE);
        return NULL;
    }
    if (pad < 0 || pad >= kh || pad >= kw) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_conv2d: pad = %d must be "
                   "at least 0 and less than kh = %d and kw = %d", pad, kh,
                   kw);
        return NULL;
    }
    l = dng__layer_new(&conv_ops, "dng_conv2d", 6, args, 0, NULL);
    if (!l)
        return NULL;
    l->priv = dng__calloc(1, sizeof(conv_priv), "dng_conv2d");
    if (!l->priv || dng__layer_add_param(l, "weight", 4, wshape) != DNG_OK ||
        dng__layer_add_param(l, "bias", 1, &out_ch) != DNG_OK) {
        dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_conv2d");
        dng__layer_free(l);
        return NULL;
    }
    return l;
}
