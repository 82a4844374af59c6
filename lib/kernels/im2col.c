/* im2col.c: lowering of 2-D convolution to GEMM, and its adjoint. */
#include <string.h>

#include "kernels.h"

/* (in + 2 pad - k) / stride + 1, or 0 when the kernel does not fit */
int64_t dng__conv_out(int64_t in, int k, int stride, int pad)
{
    int64_t span = in + 2 * (int64_t)pad - k;
    if (span < 0 || stride < 1)
        return 0;
    return span / stride + 1;
}

/* The output columns ox whose input column ox*s - p + kx lies in [0, w):
 * [*lo, *hi). Computed once per kernel column so the inner loops carry no
 * bounds checks. */
static void valid_range(int64_t w, int64_t ow, int stride, int pad, int kx,
                        int64_t *lo, int64_t *hi)
{
    int64_t off = (int64_t)kx - pad; /* ix = ox * stride + off */
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = (w - off <= 0) ? 0 : (w - off + stride - 1) / stride;
    if (b > ow)
        b = ow;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

/* col[(c, ky, kx), (oy, ox)] = x[c, oy*s - p + ky, ox*s - p + kx] or 0 */
void dng__im2col(const float *x, int64_t c, int64_t h, int64_t w, int kh,
                 int kw, int stride, int pad, int64_t oh, int64_t ow,
                 float *col)
{
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xc = x + ch * h * w;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                float *row = col + ((ch * kh + ky) * kw + kx) * oh * ow;
                int64_t lo, hi, off = (int64_t)kx - pad;
                valid_range(w, ow, stride, pad, kx, &lo, &hi);
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * stride - pad + ky;
                    float *dst = row + oy * ow;
                    if (iy < 0 || iy >= h) {
                        memset(dst, 0, (size_t)ow * sizeof *dst);
                        continue;
                    }
                    /* Indices stay inside the row: the pointer is never
                     * moved before its start when off < 0. */
                    const float *src = xc + iy * w;
                    for (int64_t ox = 0; ox < lo; ox++)
                        dst[ox] = 0.0f;
                    if (stride == 1)
                        memcpy(dst + lo, src + lo + off,
                               (size_t)(hi - lo) * sizeof *dst);
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] = src[ox * stride + off];
                    for (int64_t ox = hi; ox < ow; ox++)
                        dst[ox] = 0.0f;
                }
            }
        }
    }
}

/* x[c, oy*s - p + ky, ox*s - p + kx] += col[(c, ky, kx), (oy, ox)] */
void dng__col2im(const float *col, int64_t c, int64_t h, int64_t w, int kh,
                 int kw, int stride, int pad, int64_t oh, int64_t ow,
                 float *x)
{
    for (int64_t ch = 0; ch < c; ch++) {
        float *xc = x + ch * h * w;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                const float *row = col + ((ch * kh + ky) * kw + kx) * oh * ow;
                int64_t lo, hi, off = (int64_t)kx - pad;
                valid_range(w, ow, stride, pad, kx, &lo, &hi);
                for (int64_t oy = 0; oy < oh; oy++) {
                    int64_t iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h)
                        continue;
                    const float *src = row + oy * ow;
                    float *dst = xc + iy * w;
                    if (stride == 1)
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox + off] += src[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox * stride + off] += src[ox];
                }
            }
        }
    }
}
