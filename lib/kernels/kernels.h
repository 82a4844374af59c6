/* kernels.h: pure numeric kernels on raw floats. No handles, no
 * allocation, no error strings: callers validate arguments. All matrices
 * are row-major with explicit leading dimensions. */
#ifndef DNG_KERNELS_H
#define DNG_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* ---- GEMM ------------------------------------------------------------ */

/* C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
 * A is M x K (K x M when trans_a), B is K x N (N x K when trans_b); lda,
 * ldb, ldc are row strides. BLIS typed API, nthreads passed per call. */
void dng__sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                float alpha, const float *a, int64_t lda, const float *b,
                int64_t ldb, float beta, float *c, int64_t ldc,
                int nthreads);

/* ---- reductions and bias ------------------------------------------- */

/* y[i, j] += b[j] for a rows x cols matrix with row stride ld. */
void dng__add_row_bias(float *y, const float *b, int64_t rows, int64_t cols,
                       int64_t ld);
/* y[c, i] += b[c] for a channels x plane block (NCHW per sample). */
void dng__add_channel_bias(float *y, const float *b, int64_t channels,
                           int64_t plane);
/* out[j] (+)= sum_i x[i, j] (column sums); accumulate when acc. */
void dng__col_sums(const float *x, int64_t rows, int64_t cols, int64_t ld,
                   float *out, bool acc);
/* out[i] (+)= sum_j x[i, j] (row sums); accumulate when acc. */
void dng__row_sums(const float *x, int64_t rows, int64_t cols, int64_t ld,
                   float *out, bool acc);

/* ---- activations ---------------------------------------------------- */

/* Elementwise y = f(x) and dx = dy * f'(x) (given x and y = f(x)) for
 * n elements; kind is a dng_act value other than softmax. In-place
 * (y == x, dx == dy) is allowed. */
void dng__act_forward(int kind, float param, const float *x, float *y,
                      int64_t n);
void dng__act_backward(int kind, float param, const float *x, const float *y,
                       const float *dy, float *dx, int64_t n);

/* Row-wise softmax over rows x cols and its backward:
 * dx = y * (dy - sum_j dy_j y_j). */
void dng__softmax_forward(const float *x, float *y, int64_t rows,
                          int64_t cols);
void dng__softmax_backward(const float *y, const float *dy, float *dx,
                           int64_t rows, int64_t cols);
/* Row-wise log-softmax (for cross-entropy). */
void dng__log_softmax(const float *x, float *y, int64_t rows, int64_t cols);

/* ---- convolution lowering ------------------------------------------- */

/* Output size of a convolution: (in + 2 pad - k) / stride + 1. */
int64_t dng__conv_out(int64_t in, int k, int stride, int pad);

/* im2col for one image: x [C, H, W] -> col [C*kh*kw, OH*OW]; padded
 * positions give 0. */
void dng__im2col(const float *x, int64_t c, int64_t h, int64_t w, int kh,
                 int kw, int stride, int pad, int64_t oh, int64_t ow,
                 float *col);
/* col2im for one image: x [C, H, W] += scatter of col [C*kh*kw, OH*OW]
 * (the adjoint of im2col). x is accumulated into, not cleared. */
void dng__col2im(const float *col, int64_t c, int64_t h, int64_t w, int kh,
                 int kw, int stride, int pad, int64_t oh, int64_t ow,
                 float *x);

/* ---- elementwise helpers -------------------------------------------- */

/* y += alpha * x */
void dng__axpy(int64_t n, float alpha, const float *x, float *y);
/* x *= alpha */
void dng__scale(int64_t n, float alpha, float *x);
/* sum of squares in double */
double dng__sumsq(const float *x, int64_t n);
/* true when every element is finite */
bool dng__all_finite(const float *x, int64_t n);

#endif
