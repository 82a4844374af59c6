/* conv2d.c: 2-D convolution on [N, C, H, W] with a square stride and zero
 * padding, W [out, in, kh, kw] and b [out] as in PyTorch, lowered to GEMM
 * through im2col. Also the batched lowering that conv2d_transpose.c
 * shares. */
#include <inttypes.h>
#include <string.h>

#include "layer-impl.h"

#if defined(_OPENMP)
#include <omp.h>
#define CONV_PRAGMA(x) _Pragma(#x)
#define THREAD_NUM() omp_get_thread_num()
#else
#define CONV_PRAGMA(x)
#define THREAD_NUM() 0
#endif

/* Loops over samples (or channels) whose iterations touch disjoint
 * memory: sharing them among lt threads changes no result. */
#define PARALLEL_FOR                                                         \
    CONV_PRAGMA(omp parallel for num_threads(lt) if (lt > 1)                 \
                schedule(static))

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

/* col[(c, ky, kx), i P + q] = im2col(img_i)[(c, ky, kx), q] */
void dng__conv_lower(const dng__conv_geom *g, const float *img, int64_t m,
                     float *col, float *scratch, int threads)
{
    int64_t k = g->c * g->kh * g->kw, p = g->oh * g->ow, ld = m * p;
    int64_t chw = g->c * g->h * g->w, kk = (int64_t)g->kh * g->kw;
    int lt;
    if (m == 1) {
        /* One image: its channels lower independently into their own
         * kh kw rows. */
        lt = loop_threads(threads, g->c, k * p);
        PARALLEL_FOR
        for (int64_t c = 0; c < g->c; c++)
            dng__im2col(img + c * g->h * g->w, 1, g->h, g->w, g->kh, g->kw,
                        g->stride, g->pad, g->oh, g->ow, col + c * kk * p);
        return;
    }
    lt = loop_threads(threads, m, k * ld);
    PARALLEL_FOR
    for (int64_t i = 0; i < m; i++) {
        float *one = scratch + (int64_t)THREAD_NUM() * k * p;
        dng__im2col(img + i * chw, g->c, g->h, g->w, g->kh, g->kw,
                    g->stride, g->pad, g->oh, g->ow, one);
        for (int64_t r = 0; r < k; r++)
            memcpy(col + r * ld + i * p, one + r * p,
                   (size_t)p * sizeof(float));
    }
}

/* img_i = col2im(col[:, i P .. i P + P - 1]) + bias */
void dng__conv_raise(const dng__conv_geom *g, const float *col, int64_t m,
                     const float *bias, float *img, float *scratch,
                     int threads)
{
    int64_t k = g->c * g->kh * g->kw, p = g->oh * g->ow, ld = m * p;
    int64_t hw = g->h * g->w, kk = (int64_t)g->kh * g->kw;
    int lt;
    if (m == 1) {
        lt = loop_threads(threads, g->c, k * p);
        PARALLEL_FOR
        for (int64_t c = 0; c < g->c; c++) {
            float *plane = img + c * hw;
            /* col2im accumulates */
            memset(plane, 0, (size_t)hw * sizeof *plane);
            dng__col2im(col + c * kk * p, 1, g->h, g->w, g->kh, g->kw,
                        g->stride, g->pad, g->oh, g->ow, plane);
            if (bias)
                dng__add_channel_bias(plane, bias + c, 1, hw);
        }
        return;
    }
    lt = loop_threads(threads, m, k * ld);
    PARALLEL_FOR
    for (int64_t i = 0; i < m; i++) {
        float *one = scratch + (int64_t)THREAD_NUM() * k * p;
        float *im = img + i * g->c * hw;
        for (int64_t r = 0; r < k; r++)
            memcpy(one + r * p, col + r * ld + i * p,
                   (size_t)p * sizeof(float));
        memset(im, 0, (size_t)(g->c * hw) * sizeof *im);
        dng__col2im(one, g->c, g->h, g->w, g->kh, g->kw, g->stride, g->pad,
                    g->oh, g->ow, im);
        if (bias)
            dng__add_channel_bias(im, bias, g->c, hw);
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
    float *scratch;      /* slots x [K, P]: one sample's columns a thread */
    size_t scratch_cap;
    int slots;
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
    int slots = dng__threads();
    dng_status s;
    /* A reallocated column buffer no longer holds anything. */
    pv->col_of = NULL;
    s = dng__buf_reserve(&pv->col, &pv->col_cap, (size_t)(g.k * gs * g.p));
    if (s == DNG_OK && gs > 1)
        s = dng__buf_reserve(&pv->mat, &pv->mat_cap,
                             (size_t)(g.out * gs * g.p));
    if (s == DNG_OK && gs > 1 && slots > pv->slots) {
        s = dng__buf_reserve(&pv->scratch, &pv->scratch_cap,
                             (size_t)(slots * g.k * g.p));
        if (s == DNG_OK)
            pv->slots = slots;
    }
    if (s != DNG_OK)
        return dng__error_prefix(s, "conv2d workspace");
    return DNG_OK;
}

/* Workspaces are sized by the reserve hook; this allocates only when a
 * caller (a wrapping layer, say) skipped it. Returns the threads the
 * sample loops may use. */
static dng_status ensure_reserved(dng_layer *l, const geom *g, int64_t n,
                                  int *loop_threads_out)
{
    conv_priv *pv = l->priv;
    int64_t gs = group_size(g, n);
    int nt = dng__threads();
    if ((size_t)(g->k * gs * g->p) > pv->col_cap ||
        (gs > 1 && ((size_t)(g->out * gs * g->p) > pv->mat_cap ||
                    pv->slots < 1 ||
                    (size_t)(pv->slots * g->k * g->p) > pv->scratch_cap))) {
        dng_status s = conv_reserve(l, n);
        if (s != DNG_OK)
            return s;
    }
    *loop_threads_out = gs > 1 && pv->slots < nt ? pv->slots : nt;
    return DNG_OK;
}

static dng_status conv_forward(dng_layer *l, const dng_tensor *x,
                               dng_tensor *y)
{
    conv_priv *pv = l->priv;
    geom g = get_geom(l);
    int64_t n = x->shape[0], gs = group_size(&g, n);
    int64_t xs = g.in.c * g.in.h * g.in.w, ys = g.out * g.p;
    const float *w = l->param[0]->data, *b = l->param[1]->data;
    int lt, gt;
    dng_status s = ensure_reserved(l, &g, n, &lt);
    if (s != DNG_OK)
        return s;
    for (int64_t s0 = 0; s0 < n; s0 += gs) {
        int64_t m = n - s0 < gs ? n - s0 : gs, ld = m * g.p;
        float *ys0 = y->data + s0 * ys;
        dng__conv_lower(&g.in, x->data + s0 * xs, m, pv->col, pv->scratch,
                        lt);
        gt = dng__conv_threads(g.out * g.k * ld);
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
        dng__conv_scatter(pv->mat, m, g.out, g.p, b, ys0, lt);
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
    float *db = l->grad[1]->data;
    bool pgrad = !l->skip_param_grad;
    bool cached = pv->col_of == x->data && pv->col_n == n && gs >= n;
    int lt, gt;
    dng_status s = ensure_reserved(l, &g, n, &lt);
    if (s != DNG_OK)
        return s;
    if (dx) /* dcol overwrites the cached columns */
        pv->col_of = NULL;
    for (int64_t s0 = 0; s0 < n; s0 += gs) {
        int64_t m = n - s0 < gs ? n - s0 : gs, ld = m * g.p;
        const float *dyb = dy->data + s0 * ys;
        gt = dng__conv_threads(g.out * g.k * ld);
        if (m > 1) {
            /* The group's dy in the layout of its GEMM output. */
            dng__conv_gather(dyb, m, g.out, g.p, pv->mat, lt);
            dyb = pv->mat;
        }
        if (pgrad) {
            if (!cached)
                dng__conv_lower(&g.in, x->data + s0 * xs, m, pv->col,
                                pv->scratch, lt);
            /* dW += dy col^T over the group */
            dng__sgemm(false, true, g.out, g.k, ld, 1.0f, dyb, ld, pv->col,
                       ld, 1.0f, l->grad[0]->data, g.k, gt);
            /* db += row sums of dy; rows are independent */
            {
                int rt = g.out * ld >= COPY_MIN_WORK ? lt : 1;
                CONV_PRAGMA(omp parallel for num_threads(rt) if (rt > 1))
                for (int64_t o = 0; o < g.out; o++)
                    dng__row_sums(dyb + o * ld, 1, ld, ld, db + o, true);
            }
        }
        if (dx) {
            /* dcol = W^T dy, then dx_i = col2im(dcol_i) */
            dng__sgemm(true, false, g.k, ld, g.out, 1.0f, w, g.k, dyb, ld,
                       0.0f, pv->col, ld, gt);
            dng__conv_raise(&g.in, pv->col, m, NULL, dx->data + s0 * xs,
                            pv->scratch, lt);
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
    dng__free(pv->scratch);
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
