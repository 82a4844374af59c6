/* gemm.c: single-precision GEMM through BLIS's typed API. */
#include <blis.h>

#include "kernels.h"

/* C = alpha op(A) op(B) + beta C, all row-major: row stride ld, column
 * stride 1. BLIS takes general strides, so transposes cost no copy. */
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
    bli_rntm_set_num_threads(nthreads > 0 ? nthreads : 1, &rntm);
    /* op(A) is m x k. A stored row-major with ld lda: element (i, j) of A
     * is at i * lda + j. With trans_a, BLIS transposes the m x k view of
     * the k x m stored matrix, whose strides are still (lda, 1). */
    bli_sgemm_ex(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 (dim_t)m, (dim_t)n, (dim_t)k, &alpha, (float *)a,
                 (inc_t)lda, 1, (float *)b, (inc_t)ldb, 1, &beta, c,
                 (inc_t)ldc, 1, NULL, &rntm);
}
