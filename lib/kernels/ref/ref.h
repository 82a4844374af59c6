/* ref.h: naive reference kernels, the test oracle for lib/kernels.
 * Deliberately simple loops in double precision; not part of the
 * shared library. */
#ifndef DNG_KERNELS_REF_H
#define DNG_KERNELS_REF_H

#include <stdbool.h>
#include <stdint.h>

void dng_ref_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n,
                   int64_t k, float alpha, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc);
void dng_ref_act_forward(int kind, float param, const float *x, float *y,
                         int64_t n);
/* derivative f'(x) elementwise */
void dng_ref_act_deriv(int kind, float param, const float *x, float *d,
                       int64_t n);
void dng_ref_softmax(const float *x, float *y, int64_t rows, int64_t cols);
/* Direct convolution of one image: y[oc, oy, ox] = sum w[oc, ic, ky, kx]
 * x[ic, oy*s - p + ky, ox*s - p + kx]. */
void dng_ref_conv2d(const float *x, int64_t c, int64_t h, int64_t w,
                    const float *wt, int64_t oc, int kh, int kw, int stride,
                    int pad, float *y);
void dng_ref_im2col(const float *x, int64_t c, int64_t h, int64_t w, int kh,
                    int kw, int stride, int pad, float *col);
void dng_ref_col2im(const float *col, int64_t c, int64_t h, int64_t w,
                    int kh, int kw, int stride, int pad, float *x);

#endif
