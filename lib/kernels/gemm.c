/* gemm.c: single-precision GEMM through BLIS's typed API. */
#include <blis.h>

#include "kernels.h"

/* C = alpha op(A) op(B) + beta C, all row-major: row stride ld, column
 * stride 1. BLIS takes general strides, so transposes cost no copy.
 *
 * Results must not depend on the thread count (dnngen.h promises it, and
 * a training run must replay bit for bit on another machine). BLIS's
 * conventional path splits only the m and n loops between threads, so
 * each element is summed in the same order whatever the count. Its
 * small-matrix ("sup") path does not keep that promise when B is
 * transposed (threaded, it picks other dot-product kernels) or when
 * alpha is not 1 (it then applies alpha at another step): the last bits
 * change. So a single row or column of C goes to gemv, which BLIS never
 * threads, and those two cases bypass the sup path. The layers call with
 * alpha = 1, and for a transposed B the conventional path measured no
 * slower single-threaded anyway. */
void dng__sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                float alpha, const float *a, int64_t lda, const float *b,
                int64_t ldb, float beta, float *c, int64_t ldc, int nthreads)
{
    rntm_t rntm;
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {
        /* Nothing to multiply: C = beta C, with beta 0 clearing NaNs. */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    bli_rntm_init(&rntm);
    /* Below about 2^21 multiply-adds a second thread costs more in
     * start-up and barrier waits than it saves (measured on the DCGAN and
     * MLP layers); on a busy machine spinning threads are far worse. The
     * choice never changes results: see above. */
    if ((double)m * (double)n * (double)k < 2097152.0)
        nthreads = 1;
    bli_rntm_set_num_threads(nthreads > 0 ? nthreads : 1, &rntm);
    if (n == 1) {
        /* C[:, 0] = alpha op(A) op(B)[:, 0] + beta C[:, 0]. op(A) is the
         * m x k view of A stored m x k (or k x m when trans_a). */
        bli_sgemv_ex(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                     BLIS_NO_CONJUGATE, (dim_t)(trans_a ? k : m),
                     (dim_t)(trans_a ? m : k), &alpha, (float *)a,
                     (inc_t)lda, 1, (float *)b, (inc_t)(trans_b ? 1 : ldb),
                     &beta, c, (inc_t)ldc, NULL, &rntm);
        return;
    }
    if (m == 1) {
        /* C[0, :]^T = alpha op(B)^T op(A)[0, :]^T + beta C[0, :]^T, where
         * op(B)^T is B as stored (n x k) when trans_b, else B^T. */
        bli_sgemv_ex(trans_b ? BLIS_NO_TRANSPOSE : BLIS_TRANSPOSE,
                     BLIS_NO_CONJUGATE, (dim_t)(trans_b ? n : k),
                     (dim_t)(trans_b ? k : n), &alpha, (float *)b,
                     (inc_t)ldb, 1, (float *)a, (inc_t)(trans_a ? lda : 1),
                     &beta, c, 1, NULL, &rntm);
        return;
    }
    if (trans_b || alpha != 1.0f)
        bli_rntm_disable_l3_sup(&rntm);
    /* op(A) is m x k. A stored row-major with ld lda: element (i, j) of A
     * is at i * lda + j. With trans_a, BLIS transposes the m x k view of
     * the k x m stored matrix, whose strides are still (lda, 1). */
    bli_sgemm_ex(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 (dim_t)m, (dim_t)n, (dim_t)k, &alpha, (float *)a,
                 (inc_t)lda, 1, (float *)b, (inc_t)ldb, 1, &beta, c,
                 (inc_t)ldc, 1, NULL, &rntm);
}
