/* ref.c: naive reference kernels in double precision: the oracle the
 * optimised kernels are tested against. */
#include <math.h>
#include <string.h>

#include "dnngen.h"
#include "ref.h"

void dng_ref_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n,
                   int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++) {
                double av = trans_a ? a[p * lda + i] : a[i * lda + p];
                double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            double old = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * s + old);
        }
}

static double ref_act(int kind, double param, double x)
{
    switch (kind) {
    case DNG_ACT_RELU:
        return x > 0 ? x : 0;
    case DNG_ACT_LEAKY_RELU:
        return x > 0 ? x : param * x;
    case DNG_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-x));
    case DNG_ACT_TANH:
        return tanh(x);
    case DNG_ACT_GELU:
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    default:
        return x;
    }
}

void dng_ref_act_forward(int kind, float param, const float *x, float *y,
                         int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)ref_act(kind, param, x[i]);
}

/* Central differences in double of the double-precision reference:
 * an oracle that shares no formula with the kernels' derivatives. */
void dng_ref_act_deriv(int kind, float param, const float *x, float *d,
                       int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double h = 1e-6;
        double xi = x[i];
        if ((kind == DNG_ACT_RELU || kind == DNG_ACT_LEAKY_RELU) &&
            fabs(xi) < h)
            d[i] = (float)(xi > 0 ? 1.0 : (kind == DNG_ACT_RELU ? 0 : param));
        else
            d[i] = (float)((ref_act(kind, param, xi + h) -
                            ref_act(kind, param, xi - h)) / (2 * h));
    }
}

void dng_ref_softmax(const float *x, float *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++)
            s += exp((double)x[r * cols + j]);
        for (int64_t j = 0; j < cols; j++)
            y[r * cols + j] = (float)(exp((double)x[r * cols + j]) / s);
    }
}

void dng_ref_conv2d(const float *x, int64_t c, int64_t h, int64_t w,
                    const float *wt, int64_t oc, int kh, int kw, int stride,
                    int pad, float *y)
{
    int64_t oh = (h + 2 * pad - kh) / stride + 1;
    int64_t ow = (w + 2 * pad - kw) / stride + 1;
    for (int64_t o = 0; o < oc; o++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                double s = 0.0;
                for (int64_t i = 0; i < c; i++)
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int64_t iy = oy * stride - pad + ky;
                            int64_t ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            s += (double)wt[((o * c + i) * kh + ky) * kw + kx] *
                                 x[(i * h + iy) * w + ix];
                        }
                y[(o * oh + oy) * ow + ox] = (float)s;
            }
}

void dng_ref_im2col(const float *x, int64_t c, int64_t h, int64_t w, int kh,
                    int kw, int stride, int pad, float *col)
{
    int64_t oh = (h + 2 * pad - kh) / stride + 1;
    int64_t ow = (w + 2 * pad - kw) / stride + 1;
    for (int64_t i = 0; i < c; i++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++)
                for (int64_t oy = 0; oy < oh; oy++)
                    for (int64_t ox = 0; ox < ow; ox++) {
                        int64_t iy = oy * stride - pad + ky;
                        int64_t ix = ox * stride - pad + kx;
                        int64_t r = (i * kh + ky) * kw + kx;
                        col[r * oh * ow + oy * ow + ox] =
                            (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                ? 0.0f
                                : x[(i * h + iy) * w + ix];
                    }
}

void dng_ref_col2im(const float *col, int64_t c, int64_t h, int64_t w,
                    int kh, int kw, int stride, int pad, float *x)
{
    int64_t oh = (h + 2 * pad - kh) / stride + 1;
    int64_t ow = (w + 2 * pad - kw) / stride + 1;
    for (int64_t i = 0; i < c; i++)
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++)
                for (int64_t oy = 0; oy < oh; oy++)
                    for (int64_t ox = 0; ox < ow; ox++) {
                        int64_t iy = oy * stride - pad + ky;
                        int64_t ix = ox * stride - pad + kx;
                        int64_t r = (i * kh + ky) * kw + kx;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        x[(i * h + iy) * w + ix] +=
                            col[r * oh * ow + oy * ow + ox];
                    }
}
