/* test-layers-conv.c: conv2d, conv2d_transpose, maxpool2d and avgpool2d
 * through the public API, against direct double-precision loops written
 * here, central finite differences and values computed by PyTorch. */
#include <stdbool.h>
#include <stdint.h>

#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static float *fbuf(int64_t n)
{
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static double *dbuf(int64_t n)
{
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void to_float(const double *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

/* A network of one layer over samples [c, h, w]. */
static dng_net *one_layer(int64_t c, int64_t h, int64_t w, dng_layer *l)
{
    int64_t shape[3] = {c, h, w};
    dng_net *net = dng_net_create(3, shape);
    ck_assert_ptr_nonnull(net);
    ck_assert_msg(dng_net_add(net, l) == DNG_OK, "%s", dng_last_error());
    return net;
}

static dng_tensor *tensor4(int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t shape[4] = {n, c, h, w};
    dng_tensor *t = dng_tensor_create(4, shape);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* Fill every parameter of net with test data. */
static void fill_params(dng_net *net, unsigned seed)
{
    for (int i = 0; i < dng_net_num_params(net); i++) {
        dng_tensor *p = dng_net_param(net, i);
        dng_test_fill(dng_tensor_data(p), dng_tensor_numel(p), seed + 17 * i,
                      -0.5f, 0.5f);
    }
}

/* ---- direct references ------------------------------------------------- */

/* One convolution case; the transposed kind swaps the roles of x and y. */
typedef struct conv_case {
    int64_t n, c, h, w, out;
    int kh, kw, stride, pad;
} conv_case;

/* Direct convolution and its gradients in double:
 * y[i,o,oy,ox] = b[o] + sum_{c,ky,kx} W[o,c,ky,kx] x[i,c,oy*s-p+ky,ox*s-p+kx]
 * dx, dW, db for a given dy follow from the same sum. */
static void ref_conv(const conv_case *k, const float *x, const float *wt,
                     const float *b, const float *dy, int64_t oh, int64_t ow,
                     double *y, double *dx, double *dw, double *db)
{
    for (int64_t i = 0; i < k->n; i++)
        for (int64_t o = 0; o < k->out; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int64_t yi = ((i * k->out + o) * oh + oy) * ow + ox;
                    double acc = b[o], g = dy[yi];
                    for (int64_t c = 0; c < k->c; c++)
                        for (int ky = 0; ky < k->kh; ky++) {
                            int64_t iy = oy * k->stride - k->pad + ky;
                            if (iy < 0 || iy >= k->h)
                                continue;
                            for (int kx = 0; kx < k->kw; kx++) {
                                int64_t ix = ox * k->stride - k->pad + kx;
                                int64_t xi, wi;
                                if (ix < 0 || ix >= k->w)
                                    continue;
                                xi = ((i * k->c + c) * k->h + iy) * k->w + ix;
                                wi = ((o * k->c + c) * k->kh + ky) * k->kw +
                                     kx;
                                acc += (double)wt[wi] * x[xi];
                                dx[xi] += g * wt[wi];
                                dw[wi] += g * x[xi];
                            }
                        }
                    y[yi] = acc;
                    db[o] += g;
                }
}

/* Direct transposed convolution and its gradients in double, W [c, out,
 * kh, kw]: y[i,o,iy*s-p+ky,ix*s-p+kx] += W[c,o,ky,kx] x[i,c,iy,ix]. */
static void ref_convt(const conv_case *k, const float *x, const float *wt,
                      const float *b, const float *dy, int64_t oh,
                      int64_t ow, double *y, double *dx, double *dw,
                      double *db)
{
    for (int64_t i = 0; i < k->n; i++)
        for (int64_t o = 0; o < k->out; o++)
            for (int64_t q = 0; q < oh * ow; q++) {
                y[(i * k->out + o) * oh * ow + q] = b[o];
                db[o] += dy[(i * k->out + o) * oh * ow + q];
            }
    for (int64_t i = 0; i < k->n; i++)
        for (int64_t c = 0; c < k->c; c++)
            for (int64_t iy = 0; iy < k->h; iy++)
                for (int64_t ix = 0; ix < k->w; ix++) {
                    int64_t xi = ((i * k->c + c) * k->h + iy) * k->w + ix;
                    for (int64_t o = 0; o < k->out; o++)
                        for (int ky = 0; ky < k->kh; ky++) {
                            int64_t yy = iy * k->stride - k->pad + ky;
                            if (yy < 0 || yy >= oh)
                                continue;
                            for (int kx = 0; kx < k->kw; kx++) {
                                int64_t yx = ix * k->stride - k->pad + kx;
                                int64_t yi, wi;
                                if (yx < 0 || yx >= ow)
                                    continue;
                                yi = ((i * k->out + o) * oh + yy) * ow + yx;
                                wi = ((c * k->out + o) * k->kh + ky) * k->kw +
                                     kx;
                                y[yi] += (double)wt[wi] * x[xi];
                                dx[xi] += (double)dy[yi] * wt[wi];
                                dw[wi] += (double)dy[yi] * x[xi];
                            }
                        }
                }
}

/* Run forward and backward of a one-layer network on batch k->n and
 * compare y, dx, dW and db with the direct loops. Gradients are zeroed
 * first, so the comparison also shows that backward accumulates exactly
 * one batch's worth. */
static void check_conv_net(dng_net *net, const conv_case *k, bool transpose,
                           unsigned seed)
{
    dng_tensor *x = tensor4(k->n, k->c, k->h, k->w), *y = NULL, *dx = NULL;
    dng_tensor *dy;
    int64_t oshape[DNG_MAX_DIMS], ny, nx = dng_tensor_numel(x), nw, nb;
    int ond;
    double *ry, *rdx, *rdw, *rdb, r;
    float *f;
    const float *wt = dng_tensor_data(dng_net_param(net, 0));
    const float *b = dng_tensor_data(dng_net_param(net, 1));
    dng_test_fill(dng_tensor_data(x), nx, seed, -1.0f, 1.0f);
    ck_assert_int_eq(dng_net_output_shape(net, &ond, oshape), DNG_OK);
    ck_assert_int_eq(ond, 3);
    dy = tensor4(k->n, oshape[0], oshape[1], oshape[2]);
    ny = dng_tensor_numel(dy);
    dng_test_fill(dng_tensor_data(dy), ny, seed + 1, -1.0f, 1.0f);
    nw = dng_tensor_numel(dng_net_param(net, 0));
    nb = dng_tensor_numel(dng_net_param(net, 1));
    ry = dbuf(ny);
    rdx = dbuf(nx);
    rdw = dbuf(nw);
    rdb = dbuf(nb);
    f = fbuf(ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw));
    if (transpose)
        ref_convt(k, dng_tensor_data(x), wt, b, dng_tensor_data(dy),
                  oshape[1], oshape[2], ry, rdx, rdw, rdb);
    else
        ref_conv(k, dng_tensor_data(x), wt, b, dng_tensor_data(dy),
                 oshape[1], oshape[2], ry, rdx, rdw, rdb);

    ck_assert_int_eq(dng_net_zero_grad(net), DNG_OK);
    ck_assert_msg(dng_net_forward(net, x, &y) == DNG_OK, "%s",
                  dng_last_error());
    ck_assert_int_eq(dng_tensor_numel(y), ny);
    to_float(ry, f, ny);
    r = dng_test_close_ratio(dng_tensor_data(y), f, ny, 1e-5, 1e-5);
    ck_assert_msg(r <= 1.0, "y differs (ratio %g) for n=%lld c=%lld "
                  "h=%lld w=%lld out=%lld k=%dx%d s=%d p=%d", r,
                  (long long)k->n, (long long)k->c, (long long)k->h,
                  (long long)k->w, (long long)k->out, k->kh, k->kw,
                  k->stride, k->pad);
    ck_assert_msg(dng_net_backward(net, dy, &dx) == DNG_OK, "%s",
                  dng_last_error());
    to_float(rdx, f, nx);
    r = dng_test_close_ratio(dng_tensor_data(dx), f, nx, 1e-5, 1e-5);
    ck_assert_msg(r <= 1.0, "dx differs (ratio %g), case k=%dx%d s=%d p=%d",
                  r, k->kh, k->kw, k->stride, k->pad);
    /* dW sums over every sample and position: allow for float rounding
     * over that many terms. */
    to_float(rdw, f, nw);
    r = dng_test_close_ratio(dng_tensor_data(dng_net_grad(net, 0)), f, nw,
                             1e-4, 1e-4);
    ck_assert_msg(r <= 1.0, "dW differs (ratio %g), case k=%dx%d s=%d p=%d",
                  r, k->kh, k->kw, k->stride, k->pad);
    to_float(rdb, f, nb);
    r = dng_test_close_ratio(dng_tensor_data(dng_net_grad(net, 1)), f, nb,
                             1e-4, 1e-4);
    ck_assert_msg(r <= 1.0, "db differs (ratio %g), case k=%dx%d s=%d p=%d",
                  r, k->kh, k->kw, k->stride, k->pad);
    free(ry);
    free(rdx);
    free(rdw);
    free(rdb);
    free(f);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
}

static dng_net *conv_net(const conv_case *k, bool transpose)
{
    dng_layer *l = transpose ? dng_conv2d_transpose(k->c, k->out, k->kh,
                                                    k->kw, k->stride, k->pad)
                             : dng_conv2d(k->c, k->out, k->kh, k->kw,
                                          k->stride, k->pad);
    ck_assert_msg(l != NULL, "%s", dng_last_error());
    return one_layer(k->c, k->h, k->w, l);
}

/* Odd shapes: batch 1 and 3, H != W, strides 1 to 3, pads 0 to 2, kernels
 * 1 to 5 (also non-square). */
static const conv_case conv_cases[] = {
    {1, 1, 5, 7, 2, 1, 1, 1, 0},  {3, 2, 6, 5, 3, 3, 3, 1, 1},
    {3, 3, 7, 9, 4, 3, 2, 2, 1},  {1, 2, 9, 6, 2, 5, 5, 3, 2},
    {3, 4, 8, 11, 5, 4, 4, 2, 1}, {1, 3, 4, 4, 2, 5, 3, 1, 2},
    {3, 1, 10, 7, 3, 2, 5, 3, 0}, {2, 5, 6, 6, 1, 3, 3, 3, 2},
    {3, 2, 3, 13, 3, 3, 1, 2, 0}, {1, 1, 1, 1, 1, 1, 1, 1, 0},
    {3, 2, 2, 3, 2, 3, 3, 2, 1},
};

static const conv_case convt_cases[] = {
    {1, 1, 3, 4, 2, 1, 1, 1, 0},  {3, 2, 4, 3, 3, 3, 3, 2, 1},
    {3, 3, 5, 2, 2, 4, 4, 2, 1},  {1, 2, 3, 5, 2, 5, 3, 3, 2},
    {3, 4, 2, 3, 3, 2, 5, 1, 0},  {2, 2, 6, 7, 1, 3, 3, 3, 2},
    {3, 1, 1, 1, 2, 4, 4, 2, 1},  {1, 3, 7, 4, 4, 2, 2, 2, 0},
};

/* ---- forward and backward against the direct loops ------------------- */

START_TEST(test_conv_vs_direct)
{
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        dng_net *net = conv_net(&conv_cases[i], false);
        fill_params(net, 10 + (unsigned)i);
        check_conv_net(net, &conv_cases[i], false, 20 + (unsigned)i);
        dng_net_destroy(net);
    }
}
END_TEST

START_TEST(test_convt_vs_direct)
{
    for (size_t i = 0; i < sizeof convt_cases / sizeof convt_cases[0];
         i++) {
        dng_net *net = conv_net(&convt_cases[i], true);
        fill_params(net, 30 + (unsigned)i);
        check_conv_net(net, &convt_cases[i], true, 40 + (unsigned)i);
        dng_net_destroy(net);
    }
}
END_TEST

/* Batches too large for one GEMM are split into groups (and a last group
 * of one sample); the results must not change. */
START_TEST(test_conv_large_batch_groups)
{
    static const conv_case c = {8, 16, 64, 64, 4, 3, 3, 1, 1};
    static const conv_case t = {9, 4, 64, 64, 16, 4, 4, 2, 1};
    dng_net *net = conv_net(&c, false);
    fill_params(net, 50);
    check_conv_net(net, &c, false, 51);
    dng_net_destroy(net);
    net = conv_net(&t, true);
    fill_params(net, 52);
    check_conv_net(net, &t, true, 53);
    dng_net_destroy(net);
}
END_TEST

/* The workspaces are sized for the largest batch seen; smaller batches
 * afterwards, and the large one again, must all be right. */
START_TEST(test_conv_batch_4_2_4)
{
    static const int64_t batches[] = {4, 2, 4, 1, 3};
    conv_case c = {4, 3, 9, 7, 5, 3, 3, 2, 1};
    conv_case t = {4, 3, 4, 5, 2, 4, 4, 2, 1};
    dng_net *cn = conv_net(&c, false), *tn = conv_net(&t, true);
    fill_params(cn, 60);
    fill_params(tn, 61);
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        c.n = t.n = batches[i];
        check_conv_net(cn, &c, false, 62 + (unsigned)i);
        check_conv_net(tn, &t, true, 72 + (unsigned)i);
    }
    dng_net_destroy(cn);
    dng_net_destroy(tn);
}
END_TEST

/* ---- PyTorch ----------------------------------------------------------- */

/* Computed by torch 1.13 in double precision (nn.Conv2d(2, 2, 3, 2, 1) on
 * x [1, 2, 5, 4] and nn.ConvTranspose2d(2, 2, 3, 2, 1) on x [1, 2, 2, 3])
 * with x[i] = sin(0.37 i + 0.1), weight[i] = 0.5 cos(0.11 i), bias =
 * (-0.05, 0.05) and dy[i] = sin(0.23 i), all in flat row-major order. */
static const float torch_conv_y[12] = {
    0.87283259f, 1.98435f, 0.27760059f, -1.0911935f, -1.2006581f,
    -0.43136806f, -2.2040776f, -2.677134f, 1.4999573f, 2.9892979f,
    0.25589024f, -1.4258864f};

static const float torch_conv_dw[36] = {
    -0.30368266f, -0.64341854f, -0.63002038f, 0.019511664f,
    0.028406955f, 0.31048886f, -0.4123672f, -0.80715586f, -0.71246795f,
    -0.18389627f, -0.35708441f, -0.13703654f, 0.45842526f, 0.71828204f,
    0.78499135f, -0.14437585f, -0.25440284f, 0.042698835f, 0.25259546f,
    0.38802797f, 0.20770495f, 0.26403621f, 0.45298652f, 0.86308262f,
    0.067368483f, 0.023497589f, -0.11656118f, -0.080002467f,
    -0.21272077f, -0.3919938f, 0.67306378f, 1.2940362f, 1.2525407f,
    -0.14797574f, -0.3338257f, -0.37959634f};

static const float torch_convt_y[30] = {
    -0.27970084f, -0.23997253f, -0.0089394971f, 0.28917879f,
    0.25626448f, 0.18297916f, 0.77960216f, 0.55963912f, 1.4459075f,
    0.85378731f, 0.48001702f, 1.1443577f, 0.63203422f, 1.3546409f,
    0.69174131f, -0.29600186f, -0.44794757f, -0.12860966f,
    -0.093630121f, 0.06295652f, 0.092253703f, 0.4296153f, 0.35926473f,
    0.91098639f, 0.58441824f, 0.2527691f, 0.6227375f, 0.41513783f,
    0.88783068f, 0.52808688f};

static const float torch_convt_dw[36] = {
    1.8773133f, 2.6687791f, 1.88258f, 1.2916735f, 1.7908116f,
    0.99924971f, 1.1624913f, 1.1974325f, 0.53459647f, -1.7713039f,
    -2.5119844f, -1.7668866f, -1.0116511f, -1.2447058f, -0.55506498f,
    -1.0735969f, -1.0397196f, -0.47855807f, -1.426385f, -1.6229582f,
    -0.86908499f, -0.32928249f, -0.11428584f, 0.18900892f, 0.50704667f,
    1.1759742f, 1.1396253f, 1.3251622f, 1.449914f, 0.79505673f,
    -0.2433647f, -0.73611882f, -0.75294388f, -0.50166437f, -1.194246f,
    -1.0927749f};

static void fill_sin(float *p, int64_t n, double a, double b, double scale,
                     bool cosine)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(scale * (cosine ? cos(a * (double)i + b)
                                       : sin(a * (double)i + b)));
}

static void check_torch(bool transpose, int64_t h, int64_t w,
                        const float *ey, int64_t ny, const float *edw)
{
    dng_layer *l = transpose ? dng_conv2d_transpose(2, 2, 3, 3, 2, 1)
                             : dng_conv2d(2, 2, 3, 3, 2, 1);
    dng_net *net = one_layer(2, h, w, l);
    dng_tensor *x = tensor4(1, 2, h, w), *y = NULL, *dy;
    int64_t shape[DNG_MAX_DIMS];
    float *b = dng_tensor_data(dng_net_param(net, 1));
    double r;
    fill_sin(dng_tensor_data(x), dng_tensor_numel(x), 0.37, 0.1, 1.0, false);
    fill_sin(dng_tensor_data(dng_net_param(net, 0)), 36, 0.11, 0.0, 0.5,
             true);
    b[0] = -0.05f;
    b[1] = 0.05f;
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert_int_eq(dng_tensor_numel(y), ny);
    dng_tensor_shape(y, shape);
    r = dng_test_close_ratio(dng_tensor_data(y), ey, ny, 1e-5, 1e-5);
    ck_assert_msg(r <= 1.0, "%s y differs from PyTorch (ratio %g)",
                  transpose ? "conv2d_transpose" : "conv2d", r);
    dy = dng_tensor_create(4, shape);
    fill_sin(dng_tensor_data(dy), ny, 0.23, 0.0, 1.0, false);
    dng_net_zero_grad(net);
    ck_assert_int_eq(dng_net_backward(net, dy, NULL), DNG_OK);
    r = dng_test_close_ratio(dng_tensor_data(dng_net_grad(net, 0)), edw, 36,
                             1e-5, 1e-5);
    ck_assert_msg(r <= 1.0, "%s dW differs from PyTorch (ratio %g)",
                  transpose ? "conv2d_transpose" : "conv2d", r);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_net_destroy(net);
}

START_TEST(test_conv_vs_torch)
{
    check_torch(false, 5, 4, torch_conv_y, 12, torch_conv_dw);
    check_torch(true, 2, 3, torch_convt_y, 30, torch_convt_dw);
}
END_TEST

/* ---- pooling ----------------------------------------------------------- */

typedef struct pool_case {
    int64_t n, c, h, w;
    int k, stride;
} pool_case;

static const pool_case pool_cases[] = {
    {1, 1, 4, 4, 2, 2}, {3, 2, 7, 5, 3, 2}, {3, 3, 6, 9, 2, 1},
    {2, 2, 5, 8, 3, 3}, {1, 1, 3, 3, 3, 1}, {3, 2, 9, 7, 4, 3},
    {2, 1, 1, 6, 1, 2},
};

/* Direct pooling: y = max (first maximum wins) or mean of each window;
 * dx routes dy to the winner, or spreads dy / k^2 over the window. */
static void ref_pool(const pool_case *p, bool max, const float *x,
                     const float *dy, int64_t oh, int64_t ow, double *y,
                     double *dx)
{
    for (int64_t q = 0; q < p->n * p->c; q++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                const float *plane = x + q * p->h * p->w;
                int64_t yi = (q * oh + oy) * ow + ox, best = -1;
                double acc = 0.0;
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int64_t j = (oy * p->stride + ky) * p->w +
                                    ox * p->stride + kx;
                        if (best < 0 || plane[j] > plane[best])
                            best = j;
                        acc += plane[j];
                    }
                if (max) {
                    y[yi] = plane[best];
                    dx[q * p->h * p->w + best] += dy[yi];
                } else {
                    y[yi] = acc / (p->k * p->k);
                    for (int ky = 0; ky < p->k; ky++)
                        for (int kx = 0; kx < p->k; kx++)
                            dx[q * p->h * p->w +
                               (oy * p->stride + ky) * p->w +
                               ox * p->stride + kx] +=
                                (double)dy[yi] / (p->k * p->k);
                }
            }
}

static void check_pool(const pool_case *p, bool max, unsigned seed)
{
    dng_layer *l = max ? dng_maxpool2d(p->k, p->stride)
                       : dng_avgpool2d(p->k, p->stride);
    dng_net *net;
    dng_tensor *x = tensor4(p->n, p->c, p->h, p->w), *y = NULL, *dx = NULL;
    dng_tensor *dy;
    int64_t oh = (p->h - p->k) / p->stride + 1;
    int64_t ow = (p->w - p->k) / p->stride + 1, nx = dng_tensor_numel(x);
    int64_t ny = p->n * p->c * oh * ow;
    double *ry = dbuf(ny), *rdx = dbuf(nx), r;
    float *f = fbuf(nx > ny ? nx : ny);
    ck_assert_msg(l != NULL, "%s", dng_last_error());
    net = one_layer(p->c, p->h, p->w, l);
    ck_assert_int_eq(dng_net_num_params(net), 0);
    dng_test_fill(dng_tensor_data(x), nx, seed, -1.0f, 1.0f);
    dy = tensor4(p->n, p->c, oh, ow);
    dng_test_fill(dng_tensor_data(dy), ny, seed + 1, -1.0f, 1.0f);
    ref_pool(p, max, dng_tensor_data(x), dng_tensor_data(dy), oh, ow, ry,
             rdx);
    ck_assert_msg(dng_net_forward(net, x, &y) == DNG_OK, "%s",
                  dng_last_error());
    ck_assert_int_eq(dng_tensor_numel(y), ny);
    ck_assert_int_eq(dng_tensor_dim(y, 2), oh);
    ck_assert_int_eq(dng_tensor_dim(y, 3), ow);
    to_float(ry, f, ny);
    r = dng_test_close_ratio(dng_tensor_data(y), f, ny, 1e-6, 1e-6);
    ck_assert_msg(r <= 1.0, "%s y differs (ratio %g), k=%d s=%d",
                  max ? "max" : "avg", r, p->k, p->stride);
    ck_assert_int_eq(dng_net_backward(net, dy, &dx), DNG_OK);
    to_float(rdx, f, nx);
    r = dng_test_close_ratio(dng_tensor_data(dx), f, nx, 1e-6, 1e-5);
    ck_assert_msg(r <= 1.0, "%s dx differs (ratio %g), k=%d s=%d",
                  max ? "max" : "avg", r, p->k, p->stride);
    free(ry);
    free(rdx);
    free(f);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_net_destroy(net);
}

START_TEST(test_pool_vs_direct)
{
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        check_pool(&pool_cases[i], true, 80 + (unsigned)i);
        check_pool(&pool_cases[i], false, 90 + (unsigned)i);
    }
}
END_TEST

/* Equal values: PyTorch routes the gradient to the first maximum of each
 * window; a NaN in a window is the window's maximum. */
START_TEST(test_maxpool_ties_and_nan)
{
    dng_net *net = one_layer(1, 4, 4, dng_maxpool2d(2, 2));
    dng_tensor *x = tensor4(1, 1, 4, 4), *y = NULL, *dx = NULL, *dy;
    float *xd = dng_tensor_data(x), *yd;
    const float want_dx[16] = {1, 0, 1, 0, 0, 0, 0, 0,
                               1, 0, 1, 0, 0, 0, 0, 0};
    dy = tensor4(1, 1, 2, 2);
    dng_tensor_fill(dy, 1.0f);
    for (int i = 0; i < 16; i++)
        xd[i] = 0.25f;
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert_int_eq(dng_net_backward(net, dy, &dx), DNG_OK);
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(dng_tensor_data(dx)[i], want_dx[i]);
    xd[5] = NAN;   /* window (0, 0), after its first element */
    xd[15] = 9.0f; /* window (1, 1), its last element */
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    yd = dng_tensor_data(y);
    ck_assert(isnan(yd[0]));
    ck_assert_float_eq(yd[1], 0.25f);
    ck_assert_float_eq(yd[3], 9.0f);
    ck_assert_int_eq(dng_net_backward(net, dy, &dx), DNG_OK);
    ck_assert_float_eq(dng_tensor_data(dx)[5], 1.0f);
    ck_assert_float_eq(dng_tensor_data(dx)[0], 0.0f);
    ck_assert_float_eq(dng_tensor_data(dx)[15], 1.0f);
    ck_assert_float_eq(dng_tensor_data(dx)[10], 0.0f);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_net_destroy(net);
}
END_TEST

/* ---- finite differences ------------------------------------------------ */

/* Distinct values spaced 0.02 apart in a shuffled order, so that no
 * perturbation of 1e-3 changes which element of a window is largest. */
static void fill_distinct(float *x, int64_t n, unsigned seed)
{
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.02f * (float)(i - n / 2);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j;
        float t;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        j = (int64_t)(s % (uint64_t)(i + 1));
        t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

static void gradcheck(dng_net *net, int64_t n, int64_t c, int64_t h,
                      int64_t w, bool distinct, const char *what)
{
    dng_tensor *x = tensor4(n, c, h, w);
    char where[256];
    double r;
    if (distinct)
        fill_distinct(dng_tensor_data(x), dng_tensor_numel(x), 5);
    else
        dng_test_fill(dng_tensor_data(x), dng_tensor_numel(x), 5, -1.0f,
                      1.0f);
    for (int training = 1; training >= 0; training--) {
        ck_assert_int_eq(dng_net_set_training(net, training), DNG_OK);
        r = dng_test_gradcheck(net, x, 1e-3, 2e-3, 2e-3, 40, where,
                               sizeof where);
        ck_assert_msg(r <= 1.0, "%s (%s mode): ratio %g at %s", what,
                      training ? "training" : "evaluation", r, where);
    }
    dng_tensor_destroy(x);
}

START_TEST(test_gradcheck_conv)
{
    dng_net *net = one_layer(3, 7, 6, dng_conv2d(3, 4, 3, 2, 2, 1));
    gradcheck(net, 2, 3, 7, 6, false, "conv2d");
    dng_net_destroy(net);
    net = one_layer(2, 5, 5, dng_conv2d(2, 3, 5, 5, 1, 2));
    gradcheck(net, 3, 2, 5, 5, false, "conv2d k5 p2");
    dng_net_destroy(net);
}
END_TEST

START_TEST(test_gradcheck_convt)
{
    dng_net *net = one_layer(3, 4, 3,
                             dng_conv2d_transpose(3, 2, 4, 4, 2, 1));
    gradcheck(net, 2, 3, 4, 3, false, "conv2d_transpose");
    dng_net_destroy(net);
    net = one_layer(2, 3, 5, dng_conv2d_transpose(2, 3, 3, 2, 3, 1));
    gradcheck(net, 3, 2, 3, 5, false, "conv2d_transpose k3x2 s3");
    dng_net_destroy(net);
}
END_TEST

START_TEST(test_gradcheck_pool)
{
    dng_net *net = one_layer(2, 7, 6, dng_maxpool2d(3, 2));
    gradcheck(net, 2, 2, 7, 6, true, "maxpool2d");
    dng_net_destroy(net);
    net = one_layer(2, 7, 6, dng_avgpool2d(2, 1));
    gradcheck(net, 2, 2, 7, 6, false, "avgpool2d");
    dng_net_destroy(net);
}
END_TEST

/* A small DCGAN-like stack, so gradients flow through every kind. */
START_TEST(test_gradcheck_stack)
{
    int64_t shape[3] = {2, 4, 4};
    dng_net *net = dng_net_create(3, shape);
    ck_assert_int_eq(dng_net_add(net, dng_conv2d_transpose(2, 3, 4, 4, 2,
                                                           1)), DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_conv2d(3, 2, 3, 3, 1, 1)),
                     DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_avgpool2d(2, 2)), DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_conv2d(2, 2, 2, 2, 2, 0)),
                     DNG_OK);
    gradcheck(net, 2, 2, 4, 4, false, "stack");
    dng_net_destroy(net);
}
END_TEST

/* ---- shapes and arguments ---------------------------------------------- */

static void expect_add_error(dng_net *net, dng_layer *l, const char *part1,
                             const char *part2)
{
    const char *msg;
    ck_assert_int_eq(dng_net_add(net, l), DNG_ERR_SHAPE);
    msg = dng_last_error();
    ck_assert_msg(strstr(msg, part1) != NULL, "'%s' lacks '%s'", msg,
                  part1);
    ck_assert_msg(strstr(msg, part2) != NULL, "'%s' lacks '%s'", msg,
                  part2);
}

START_TEST(test_shape_errors)
{
    int64_t shape[3] = {3, 5, 6}, flat[1] = {12};
    dng_net *net = dng_net_create(3, shape);
    int64_t out[DNG_MAX_DIMS];
    int nd;
    expect_add_error(net, dng_conv2d(4, 8, 3, 3, 1, 1), "layer 0",
                     "conv2d expects [4, H, W]");
    /* 5 + 2*1 < 9: the kernel does not fit */
    expect_add_error(net, dng_conv2d(3, 8, 9, 3, 1, 1), "layer 0",
                     "H + 2*pad >= kh");
    expect_add_error(net, dng_conv2d_transpose(2, 8, 3, 3, 1, 1),
                     "layer 0", "conv2d_transpose expects [2, H, W]");
    expect_add_error(net, dng_maxpool2d(6, 1), "layer 0",
                     "maxpool2d expects [C, H, W] with H >= k");
    expect_add_error(net, dng_avgpool2d(7, 1), "layer 0", "avgpool2d");
    ck_assert_int_eq(dng_net_add(net, dng_conv2d(3, 8, 3, 3, 2, 1)),
                     DNG_OK);
    ck_assert_int_eq(dng_net_output_shape(net, &nd, out), DNG_OK);
    ck_assert_int_eq(nd, 3);
    ck_assert_int_eq(out[0], 8);
    ck_assert_int_eq(out[1], 3);
    ck_assert_int_eq(out[2], 3);
    ck_assert_int_eq(dng_net_param_count(net), 8 * 3 * 9 + 8);
    ck_assert_str_eq(dng_net_param_name(net, 0), "0.weight");
    ck_assert_str_eq(dng_net_param_name(net, 1), "0.bias");
    expect_add_error(net, dng_conv2d(3, 8, 3, 3, 1, 1), "layer 1",
                     "conv2d expects [3, H, W]");
    /* A 1 x 1 input to a k4 s2 p2 transposed convolution: (1 - 1) * 2 + 4
     * = 4 is not above 2*2. */
    ck_assert_int_eq(dng_net_add(net, dng_maxpool2d(3, 1)), DNG_OK);
    expect_add_error(net, dng_conv2d_transpose(8, 2, 4, 4, 2, 2),
                     "layer 2", "(H - 1)*stride + kh > 2*pad");
    ck_assert_int_eq(dng_net_add(net, dng_conv2d_transpose(8, 2, 4, 4, 2,
                                                           1)), DNG_OK);
    ck_assert_int_eq(dng_net_output_shape(net, &nd, out), DNG_OK);
    ck_assert_int_eq(out[0], 2);
    ck_assert_int_eq(out[1], 2);
    ck_assert_int_eq(out[2], 2);
    dng_net_destroy(net);
    /* Per-sample shapes of another rank are refused. */
    net = dng_net_create(1, flat);
    expect_add_error(net, dng_conv2d(1, 1, 1, 1, 1, 0), "layer 0",
                     "conv2d expects [1, H, W]");
    expect_add_error(net, dng_maxpool2d(1, 1), "layer 0", "maxpool2d");
    dng_net_destroy(net);
}
END_TEST

static void expect_ctor_error(dng_layer *l, const char *part)
{
    ck_assert_ptr_null(l);
    ck_assert_msg(strstr(dng_last_error(), part) != NULL, "'%s' lacks '%s'",
                  dng_last_error(), part);
}

START_TEST(test_ctor_errors)
{
    int64_t shape[3] = {1, 4, 4};
    dng_net *net;
    expect_ctor_error(dng_conv2d(0, 1, 3, 3, 1, 1), "in_ch = 0");
    expect_ctor_error(dng_conv2d(1, -2, 3, 3, 1, 1), "out_ch = -2");
    expect_ctor_error(dng_conv2d(1, 1, 0, 3, 1, 0), "kh = 0");
    expect_ctor_error(dng_conv2d(1, 1, 3, 5000, 1, 0), "kw = 5000");
    expect_ctor_error(dng_conv2d(1, 1, 3, 3, 0, 1), "stride = 0");
    expect_ctor_error(dng_conv2d(1, 1, 3, 3, 1, 3), "pad = 3");
    expect_ctor_error(dng_conv2d(1, 1, 3, 3, 1, -1), "pad = -1");
    expect_ctor_error(dng_conv2d(1, 1, 1, 3, 1, 1), "pad = 1");
    expect_ctor_error(dng_conv2d(INT64_C(1) << 40, 1, 3, 3, 1, 1), "in_ch");
    expect_ctor_error(dng_conv2d_transpose(-1, 1, 3, 3, 1, 1), "in_ch = -1");
    expect_ctor_error(dng_conv2d_transpose(1, 0, 3, 3, 1, 1), "out_ch = 0");
    expect_ctor_error(dng_conv2d_transpose(1, 1, 3, 3, -2, 1),
                      "stride = -2");
    expect_ctor_error(dng_conv2d_transpose(1, 1, 4, 4, 2, 4), "pad = 4");
    expect_ctor_error(dng_maxpool2d(0, 1), "k = 0");
    expect_ctor_error(dng_maxpool2d(2, 0), "stride = 0");
    expect_ctor_error(dng_avgpool2d(-3, 1), "k = -3");
    expect_ctor_error(dng_avgpool2d(2, 99999), "stride = 99999");
    /* The network passes a constructor's message on. */
    net = dng_net_create(3, shape);
    ck_assert_int_eq(dng_net_add(net, dng_conv2d(1, 1, 3, 3, 9, 5)),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "pad = 5"));
    ck_assert_int_eq(dng_net_num_layers(net), 0);
    dng_net_destroy(net);
}
END_TEST

/* ---- initialisation and reproducibility --------------------------------- */

static void check_uniform_bound(const dng_tensor *t, double bound)
{
    const float *d = dng_tensor_data((dng_tensor *)t);
    double mx = 0.0;
    for (int64_t i = 0; i < dng_tensor_numel(t); i++)
        mx = fmax(mx, fabs(d[i]));
    ck_assert_msg(mx <= bound, "max |w| %g above 1/sqrt(fan_in) = %g", mx,
                  bound);
    /* Enough draws come close to the bound. */
    if (dng_tensor_numel(t) >= 64)
        ck_assert_msg(mx > 0.8 * bound, "max |w| %g far below %g", mx,
                      bound);
}

START_TEST(test_init)
{
    int64_t shape[3] = {6, 8, 8};
    dng_net *net = dng_net_create(3, shape), *net2 = dng_net_create(3, shape);
    dng_rng *rng;
    double s = 0.0, ss = 0.0;
    int64_t n;
    const float *d;
    for (int k = 0; k < 2; k++) {
        dng_net *m = k ? net2 : net;
        ck_assert_int_eq(dng_net_add(m, dng_conv2d(6, 10, 3, 3, 1, 1)),
                         DNG_OK);
        ck_assert_int_eq(dng_net_add(m, dng_conv2d_transpose(10, 5, 4, 4, 2,
                                                             1)), DNG_OK);
    }
    /* PyTorch's defaults: U(+-1/sqrt(fan_in)) for weight and bias, with
     * fan_in = in kh kw for conv2d and out kh kw (weight.size(1) kh kw)
     * for the transposed layer. */
    check_uniform_bound(dng_net_param(net, 0), 1.0 / sqrt(6 * 9));
    check_uniform_bound(dng_net_param(net, 1), 1.0 / sqrt(6 * 9));
    check_uniform_bound(dng_net_param(net, 2), 1.0 / sqrt(5 * 16));
    check_uniform_bound(dng_net_param(net, 3), 1.0 / sqrt(5 * 16));
    /* The same architecture gets the same weights. */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(memcmp(dng_tensor_data(dng_net_param(net, i)),
                                dng_tensor_data(dng_net_param(net2, i)),
                                sizeof(float) * (size_t)dng_tensor_numel(
                                    dng_net_param(net, i))), 0);
    /* DCGAN's N(0, 0.02^2) weights and zero biases. */
    rng = dng_rng_create(3);
    ck_assert_int_eq(dng_net_init(net, DNG_INIT_NORMAL_002, rng), DNG_OK);
    d = dng_tensor_data(dng_net_param(net, 2));
    n = dng_tensor_numel(dng_net_param(net, 2));
    for (int64_t i = 0; i < n; i++) {
        s += d[i];
        ss += (double)d[i] * d[i];
    }
    ck_assert_msg(fabs(sqrt(ss / n - (s / n) * (s / n)) - 0.02) < 0.002,
                  "std %g", sqrt(ss / n));
    ck_assert_msg(fabs(s / n) < 0.002, "mean %g", s / n);
    for (int i = 1; i < 4; i += 2)
        for (int64_t j = 0; j < dng_tensor_numel(dng_net_param(net, i)); j++)
            ck_assert_float_eq(dng_tensor_data(dng_net_param(net, i))[j],
                               0.0f);
    dng_rng_destroy(rng);
    dng_net_destroy(net);
    dng_net_destroy(net2);
}
END_TEST

/* The same inputs give the same bits, with one thread or two. */
START_TEST(test_thread_independent)
{
    int64_t shape[3] = {8, 14, 14};
    dng_net *net = dng_net_create(3, shape);
    dng_tensor *x = tensor4(16, 8, 14, 14), *y = NULL, *dx = NULL, *dy;
    float *ref[3];
    int64_t n[3];
    int saved = dng_get_num_threads();
    ck_assert_int_eq(dng_net_add(net, dng_conv2d(8, 16, 4, 4, 2, 1)),
                     DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_maxpool2d(2, 1)), DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_conv2d_transpose(16, 4, 4, 4, 2,
                                                           1)), DNG_OK);
    dng_test_fill(dng_tensor_data(x), dng_tensor_numel(x), 3, -1.0f, 1.0f);
    dy = tensor4(16, 4, 12, 12);
    dng_test_fill(dng_tensor_data(dy), dng_tensor_numel(dy), 4, -1.0f, 1.0f);
    for (int t = 1; t <= 2; t++) {
        ck_assert_int_eq(dng_set_num_threads(t), DNG_OK);
        dng_net_zero_grad(net);
        ck_assert_msg(dng_net_forward(net, x, &y) == DNG_OK, "%s",
                      dng_last_error());
        ck_assert_msg(dng_net_backward(net, dy, &dx) == DNG_OK, "%s",
                      dng_last_error());
        {
            const dng_tensor *outs[3] = {y, dx, dng_net_grad(net, 0)};
            for (int k = 0; k < 3; k++) {
                const float *d = dng_tensor_data((dng_tensor *)outs[k]);
                if (t == 1) {
                    n[k] = dng_tensor_numel(outs[k]);
                    ref[k] = fbuf(n[k]);
                    memcpy(ref[k], d, sizeof(float) * (size_t)n[k]);
                } else {
                    ck_assert_msg(memcmp(ref[k], d,
                                         sizeof(float) * (size_t)n[k]) == 0,
                                  "output %d depends on the thread count",
                                  k);
                    free(ref[k]);
                }
            }
        }
    }
    dng_set_num_threads(saved);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_net_destroy(net);
}
END_TEST

static Suite *conv_suite(void)
{
    Suite *s = suite_create("layers-conv");
    TCase *tc = tcase_create("conv");
    tcase_add_test(tc, test_conv_vs_direct);
    tcase_add_test(tc, test_convt_vs_direct);
    tcase_add_test(tc, test_conv_large_batch_groups);
    tcase_add_test(tc, test_conv_batch_4_2_4);
    tcase_add_test(tc, test_conv_vs_torch);
    tcase_add_test(tc, test_pool_vs_direct);
    tcase_add_test(tc, test_maxpool_ties_and_nan);
    tcase_add_test(tc, test_gradcheck_conv);
    tcase_add_test(tc, test_gradcheck_convt);
    tcase_add_test(tc, test_gradcheck_pool);
    tcase_add_test(tc, test_gradcheck_stack);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_ctor_errors);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_thread_independent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dng_test_run(conv_suite());
}
