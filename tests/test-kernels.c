/* test-kernels.c: the optimised kernels (lib/kernels) against the naive
 * double-precision oracle (lib/kernels/ref), finite differences and
 * closed forms; and the generator's known answers, which only the
 * internal Philox block function can reach. */
#include <float.h>
#include <stdint.h>

#include "testutil.h"

#include "core-impl.h"
#include "kernels.h"
#include "ref/ref.h"

/* ---- helpers ----------------------------------------------------------- */

/* Buffers carry 16 spare floats of NaN after the data, as the library's
 * own do (lib/core/mem.c): BLIS 0.9's small-matrix kernels load one float
 * past an operand's end (flame/blis#635). Were such a value ever used,
 * the NaN would show in the results. */
#define SLACK 16

static float *fbuf(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n + SLACK));
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < SLACK; i++)
        p[n + i] = NAN;
    return p;
}

static float *frand(int64_t n, unsigned seed, float lo, float hi)
{
    float *p = fbuf(n);
    dng_test_fill(p, n, seed, lo, hi);
    return p;
}

static void ffill(float *p, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
}

static bool same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- GEMM -------------------------------------------------------------- */

/* A sentinel written into the padding of every matrix: GEMM must neither
 * read it into a result (it would show as a huge error) nor overwrite it. */
#define PAD_SENTINEL 1.0e30f

/* One GEMM case: op(A) m x k, op(B) k x n, row strides `pad` floats longer
 * than the rows. Checks dng__sgemm with 1 and 2 threads against the
 * double-precision reference within the classical error bound
 * (k + 2) eps (|alpha| sum |a||b| + |beta c|), checks that both thread
 * counts agree bit for bit and that no padding entry was touched. With
 * beta = 0, C starts as NaN garbage, which must not leak into the result. */
static void gemm_case(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      float alpha, float beta, int64_t pad, unsigned seed)
{
    int64_t ar = ta ? k : m, ac = ta ? m : k, lda = ac + pad;
    int64_t br = tb ? n : k, bc = tb ? k : n, ldb = bc + pad;
    int64_t ldc = n + pad;
    float *a = fbuf(ar * lda), *b = fbuf(br * ldb), *c0 = fbuf(m * ldc);
    float *cref = fbuf(m * ldc), *c1 = fbuf(m * ldc), *c2 = fbuf(m * ldc);

    ffill(a, ar * lda, PAD_SENTINEL);
    ffill(b, br * ldb, PAD_SENTINEL);
    ffill(c0, m * ldc, PAD_SENTINEL);
    for (int64_t i = 0; i < ar; i++)
        dng_test_fill(a + i * lda, ac, seed * 7 + (unsigned)i, -1.0f, 1.0f);
    for (int64_t i = 0; i < br; i++)
        dng_test_fill(b + i * ldb, bc, seed * 11 + (unsigned)i, -1.0f, 1.0f);
    for (int64_t i = 0; i < m; i++) {
        if (beta == 0.0f)
            ffill(c0 + i * ldc, n, NAN);
        else
            dng_test_fill(c0 + i * ldc, n, seed * 13 + (unsigned)i, -1.0f,
                          1.0f);
    }
    memcpy(cref, c0, sizeof(float) * (size_t)(m * ldc));
    memcpy(c1, c0, sizeof(float) * (size_t)(m * ldc));
    memcpy(c2, c0, sizeof(float) * (size_t)(m * ldc));

    dng_ref_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cref, ldc);
    dng__sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c1, ldc, 1);
    dng__sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c2, ldc, 2);

    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0, bound;
            float got = c1[i * ldc + j], want = cref[i * ldc + j];
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += fabs(av * bv);
            }
            bound = (double)(k + 2) * FLT_EPSILON *
                        (fabs((double)alpha) * s +
                         (beta == 0.0f ? 0.0
                                       : fabs((double)beta *
                                              c0[i * ldc + j]))) +
                    1e-30;
            ck_assert_msg(fabs((double)got - want) <= bound,
                          "sgemm ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g "
                          "beta=%g pad=%lld: C[%lld,%lld] = %.9g, reference "
                          "%.9g (bound %.3g)", ta, tb, (long long)m,
                          (long long)n, (long long)k, (double)alpha,
                          (double)beta, (long long)pad, (long long)i,
                          (long long)j, (double)got, (double)want, bound);
            ck_assert_msg(same_bits(got, c2[i * ldc + j]),
                          "sgemm ta=%d tb=%d m=%lld n=%lld k=%lld alpha=%g "
                          "beta=%g pad=%lld: 1 and 2 threads differ at "
                          "[%lld,%lld]: %.9g vs %.9g", ta, tb, (long long)m,
                          (long long)n, (long long)k, (double)alpha,
                          (double)beta, (long long)pad,
                          (long long)i, (long long)j, (double)got,
                          (double)c2[i * ldc + j]);
        }
        for (int64_t j = n; j < ldc; j++)
            ck_assert_msg(c1[i * ldc + j] == PAD_SENTINEL &&
                              c2[i * ldc + j] == PAD_SENTINEL,
                          "sgemm wrote into the padding of C at [%lld,%lld]",
                          (long long)i, (long long)j);
    }
    free(a);
    free(b);
    free(c0);
    free(cref);
    free(c1);
    free(c2);
}

START_TEST(test_sgemm_awkward_sizes)
{
    static const int64_t sizes[] = {1, 3, 7, 33, 130};
    /* (alpha, beta) pairs, cycled so that every size and transpose
     * combination meets several of them. */
    static const float ab[][2] = {
        {1.0f, 0.0f}, {1.5f, -0.5f}, {-0.75f, 1.0f}, {0.0f, 2.0f},
        {2.0f, 0.0f}, {1.0f, 1.0f},
    };
    unsigned seed = 1;
    int which = 0;
    for (int t = 0; t < 4; t++)
        for (int im = 0; im < 5; im++)
            for (int in = 0; in < 5; in++)
                for (int ik = 0; ik < 5; ik++, seed++) {
                    const float *p = ab[which++ % 6];
                    gemm_case(t & 1, (t >> 1) & 1, sizes[im], sizes[in],
                              sizes[ik], p[0], p[1], (seed % 3) * 3, seed);
                }
}
END_TEST

START_TEST(test_sgemm_wide)
{
    /* 512 wide in n and k (several BLIS cache blocks and micro-panels),
     * then 512 tall in m. */
    for (int t = 0; t < 4; t++) {
        gemm_case(t & 1, (t >> 1) & 1, 65, 512, 512, 1.0f, 0.0f, 3, 500 + t);
        gemm_case(t & 1, (t >> 1) & 1, 512, 3, 130, -0.5f, 0.25f, 0,
                  600 + t);
    }
}
END_TEST

START_TEST(test_sgemm_threads_large)
{
    /* Products large enough that dng__sgemm really uses the second thread
     * (small ones stay on one), shaped for BLIS's small-matrix path: one
     * dimension short. 1 and 2 threads must agree bit for bit. */
    static const int64_t shapes[][3] = {
        {33, 300, 300}, {300, 7, 1000}, {1000, 40, 60}, {64, 784, 64},
    };
    static const float ab[][2] = {{1.0f, 0.0f}, {1.5f, -0.5f}};
    unsigned seed = 700;
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 4; t++, seed++)
            gemm_case(t & 1, (t >> 1) & 1, shapes[s][0], shapes[s][1],
                      shapes[s][2], ab[seed % 2][0], ab[seed % 2][1],
                      seed % 3 == 0 ? 4 : 0, seed);
}
END_TEST

START_TEST(test_sgemm_empty)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6};
    float c[4] = {NAN, NAN, NAN, NAN};
    float d[4] = {1, 2, 3, 4};
    /* k = 0: C = beta C, and beta = 0 clears NaN garbage. */
    dng__sgemm(false, false, 2, 2, 0, 1.0f, a, 1, b, 2, 0.0f, c, 2, 1);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(c[i] == 0.0f, "k = 0, beta = 0: C[%d] = %g", i,
                      (double)c[i]);
    dng__sgemm(false, false, 2, 2, 0, 1.0f, a, 1, b, 2, 3.0f, d, 2, 2);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(d[i] == 3.0f * (float)(i + 1), "k = 0, beta = 3: "
                      "C[%d] = %g", i, (double)d[i]);
    /* m = 0 or n = 0: nothing is touched. */
    dng__sgemm(false, false, 0, 2, 3, 1.0f, a, 3, b, 2, 0.0f, d, 2, 1);
    dng__sgemm(false, false, 2, 0, 3, 1.0f, a, 3, b, 2, 0.0f, d, 2, 1);
    for (int i = 0; i < 4; i++)
        ck_assert(d[i] == 3.0f * (float)(i + 1));
    /* A closed form: [1 2 3; 4 5 6] [1 2; 3 4; 5 6] = [22 28; 49 64]. */
    dng__sgemm(false, false, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2, 1);
    ck_assert(c[0] == 22.0f && c[1] == 28.0f && c[2] == 49.0f &&
              c[3] == 64.0f);
    /* and with both operands transposed: A^T B^T with A 3x2, B 2x3. */
    dng__sgemm(true, true, 2, 2, 3, 1.0f, a, 2, b, 3, 0.0f, c, 2, 2);
    /* A^T = [1 3 5; 2 4 6], B^T = [1 4; 2 5; 3 6] */
    ck_assert(c[0] == 22.0f && c[1] == 49.0f && c[2] == 28.0f &&
              c[3] == 64.0f);
}
END_TEST

/* ---- activations ------------------------------------------------------- */

/* Inputs near 0, around the kinks and at large |x|; then random ones. */
static int64_t act_inputs(float *x, int64_t cap)
{
    static const float special[] = {
        0.0f,   -0.0f,  1e-7f,   -1e-7f,  1e-4f,  -1e-4f, 0.25f,
        -0.25f, 0.5f,   -0.5f,   1.0f,    -1.0f,  3.0f,   -3.0f,
        5.0f,   -5.0f,  8.0f,    -8.0f,   15.0f,  -15.0f, 20.0f,
        -20.0f, 40.0f,  -40.0f,  88.0f,   -88.0f, 100.0f, -100.0f,
        1e3f,   -1e3f,  1e4f,    -1e4f,
    };
    int64_t n = (int64_t)(sizeof special / sizeof special[0]);
    memcpy(x, special, sizeof special);
    dng_test_fill(x + n, cap - n, 42, -6.0f, 6.0f);
    return cap;
}

static const char *act_name(int kind)
{
    static const char *names[] = {"relu", "leaky_relu", "sigmoid", "tanh",
                                  "softmax", "gelu", "identity"};
    return names[kind];
}

static void act_check(int kind, float param)
{
    enum { N = 300 };
    float x[N], y[N], yref[N], dy[N], dx[N], d[N], buf[N];
    int64_t n = act_inputs(x, N);
    dng_test_fill(dy, n, 7, -2.0f, 2.0f);

    dng__act_forward(kind, param, x, y, n);
    dng_ref_act_forward(kind, param, x, yref, n);
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)y[i] - yref[i]);
        ck_assert_msg(err <= 1e-6 + 1e-5 * fabs((double)yref[i]),
                      "%s(%g) forward: %.9g, reference %.9g",
                      act_name(kind), (double)x[i], (double)y[i],
                      (double)yref[i]);
    }

    /* dx = dy f'(x) against the reference's central differences; the
     * absolute term covers sigmoid/tanh saturating to exactly 1 in
     * float, where y (1 - y) is 0 and the true value is tiny. */
    dng__act_backward(kind, param, x, y, dy, dx, n);
    dng_ref_act_deriv(kind, param, x, d, n);
    for (int64_t i = 0; i < n; i++) {
        double want = (double)dy[i] * d[i];
        double err = fabs((double)dx[i] - want);
        ck_assert_msg(err <= 1e-6 + 1e-4 * fabs(want),
                      "%s'(%g) backward: dx %.9g, want dy %g * f' %.9g",
                      act_name(kind), (double)x[i], (double)dx[i],
                      (double)dy[i], (double)d[i]);
    }

    /* In place is allowed (y == x, dx == dy) and gives the same bits. */
    memcpy(buf, x, sizeof x);
    dng__act_forward(kind, param, buf, buf, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(same_bits(buf[i], y[i]), "%s forward in place "
                      "differs at x = %g", act_name(kind), (double)x[i]);
    memcpy(buf, dy, sizeof dy);
    dng__act_backward(kind, param, x, y, buf, buf, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(same_bits(buf[i], dx[i]), "%s backward in place "
                      "differs at x = %g", act_name(kind), (double)x[i]);
}

START_TEST(test_act_all_kinds)
{
    act_check(DNG_ACT_RELU, 0.0f);
    act_check(DNG_ACT_LEAKY_RELU, 0.2f);
    act_check(DNG_ACT_LEAKY_RELU, 0.01f);
    act_check(DNG_ACT_LEAKY_RELU, -0.5f);
    act_check(DNG_ACT_SIGMOID, 0.0f);
    act_check(DNG_ACT_TANH, 0.0f);
    act_check(DNG_ACT_GELU, 0.0f);
    act_check(DNG_ACT_IDENTITY, 0.0f);
}
END_TEST

START_TEST(test_act_closed_forms)
{
    /* Exact values the references cannot be trusted to round the same. */
    float x[6] = {0.0f, 2.0f, -2.0f, 1000.0f, -1000.0f, -0.0f}, y[6];
    dng__act_forward(DNG_ACT_SIGMOID, 0.0f, x, y, 6);
    ck_assert(y[0] == 0.5f && y[3] == 1.0f && y[4] == 0.0f);
    ck_assert(fabsf(y[1] + y[2] - 1.0f) <= 1e-7f); /* s(x) + s(-x) = 1 */
    dng__act_forward(DNG_ACT_TANH, 0.0f, x, y, 6);
    ck_assert(y[0] == 0.0f && y[3] == 1.0f && y[4] == -1.0f);
    ck_assert(y[1] == -y[2]);
    dng__act_forward(DNG_ACT_GELU, 0.0f, x, y, 6);
    ck_assert(y[0] == 0.0f && y[3] == 1000.0f && y[4] == 0.0f);
    /* GELU(x) - GELU(-x) = x */
    ck_assert(fabsf(y[1] - y[2] - 2.0f) <= 1e-6f);
    dng__act_forward(DNG_ACT_LEAKY_RELU, 0.1f, x, y, 6);
    ck_assert(y[1] == 2.0f && y[2] == -0.2f && y[4] == -100.0f);
    for (int i = 0; i < 6; i++)
        ck_assert(isfinite(y[i]));
}
END_TEST

/* ---- softmax ----------------------------------------------------------- */

/* Row-wise softmax in double with the max shift, for offsets the float
 * reference would overflow on. */
static void softmax_d(const float *x, double *y, int64_t cols)
{
    double mx = x[0], s = 0.0;
    for (int64_t j = 1; j < cols; j++)
        mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < cols; j++)
        s += (y[j] = exp((double)x[j] - mx));
    for (int64_t j = 0; j < cols; j++)
        y[j] /= s;
}

START_TEST(test_softmax_forward)
{
    static const int64_t colsv[] = {1, 2, 10, 257};
    static const float offsets[] = {0.0f, 80.0f, 100.0f, 1000.0f, -1000.0f,
                                    1e4f, -1e4f};
    const int64_t rows = 7;
    for (int ic = 0; ic < 4; ic++) {
        int64_t cols = colsv[ic], n = rows * cols;
        float *x = frand(n, 3 + (unsigned)ic, -5.0f, 5.0f);
        float *xs = fbuf(n), *y = fbuf(n), *yref = fbuf(n), *ls = fbuf(n);
        /* Row r is shifted by offsets[r]; the shifted values minus the
         * offset are exact (Sterbenz), so the reference on the unshifted
         * row is the exact target: softmax is shift-invariant. */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++) {
                float v = x[r * cols + j] + offsets[r];
                xs[r * cols + j] = v;
                x[r * cols + j] = v - offsets[r];
            }
        dng_ref_softmax(x, yref, rows, cols);
        dng__softmax_forward(xs, y, rows, cols);
        dng__log_softmax(xs, ls, rows, cols);
        for (int64_t r = 0; r < rows; r++) {
            double sum = 0.0, yd[257];
            softmax_d(x + r * cols, yd, cols);
            for (int64_t j = 0; j < cols; j++) {
                int64_t i = r * cols + j;
                ck_assert_msg(isfinite(y[i]) && isfinite(ls[i]),
                              "softmax offset %g: non-finite output",
                              (double)offsets[r]);
                ck_assert_msg(fabs((double)y[i] - yref[i]) <=
                                  1e-7 + 2e-6 * fabs((double)yref[i]),
                              "softmax cols %lld offset %g [%lld]: %.9g, "
                              "reference %.9g", (long long)cols,
                              (double)offsets[r], (long long)j, (double)y[i],
                              (double)yref[i]);
                /* log-softmax to an absolute 2e-6 even at offset 1e4,
                 * where one float ulp of the logits is 1e-3. */
                ck_assert_msg(fabs((double)ls[i] - log(yd[j])) <=
                                  2e-6 + 1e-6 * fabs(log(yd[j])),
                              "log_softmax cols %lld offset %g [%lld]: "
                              "%.9g, want %.9g", (long long)cols,
                              (double)offsets[r], (long long)j,
                              (double)ls[i], log(yd[j]));
                sum += y[i];
            }
            ck_assert_msg(fabs(sum - 1.0) <= 1e-5, "softmax row sums to "
                          "%.9g", sum);
        }
        free(x);
        free(xs);
        free(y);
        free(yref);
        free(ls);
    }
}
END_TEST

START_TEST(test_softmax_extremes)
{
    /* Logits far apart: exp underflows to 0 but nothing becomes NaN. */
    float x[4] = {0.0f, -1e30f, 1e30f, 3e38f}, y[4], l[4];
    dng__softmax_forward(x, y, 1, 4);
    dng__log_softmax(x, l, 1, 4);
    ck_assert(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.0f && y[3] == 1.0f);
    ck_assert(l[3] == 0.0f);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(isfinite(l[i]), "log_softmax[%d] = %g", i,
                      (double)l[i]);
    ck_assert(l[2] == 1e30f - 3e38f);
    /* one column: softmax 1, log-softmax 0 */
    dng__softmax_forward(x + 1, y, 1, 1);
    dng__log_softmax(x + 1, l, 1, 1);
    ck_assert(y[0] == 1.0f && l[0] == 0.0f);
}
END_TEST

START_TEST(test_softmax_backward)
{
    /* dx = J^T dy against central differences of the double softmax:
     * dx_i = sum_j dy_j dy_j/dx_i. */
    static const int64_t colsv[] = {1, 3, 17, 64};
    const int64_t rows = 3;
    for (int ic = 0; ic < 4; ic++) {
        int64_t cols = colsv[ic], n = rows * cols;
        float *x = frand(n, 20 + (unsigned)ic, -4.0f, 4.0f);
        float *dy = frand(n, 30 + (unsigned)ic, -1.0f, 1.0f);
        float *y = fbuf(n), *dx = fbuf(n), *xp = fbuf(cols);
        double yp[64], ym[64];
        dng__softmax_forward(x, y, rows, cols);
        dng__softmax_backward(y, dy, dx, rows, cols);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < cols; i++) {
                const double h = 1e-3;
                double num = 0.0;
                float keep = x[r * cols + i];
                memcpy(xp, x + r * cols, sizeof(float) * (size_t)cols);
                xp[i] = keep + (float)h;
                softmax_d(xp, yp, cols);
                xp[i] = keep - (float)h;
                softmax_d(xp, ym, cols);
                for (int64_t j = 0; j < cols; j++)
                    num += dy[r * cols + j] * (yp[j] - ym[j]);
                num /= (double)((keep + (float)h) - (keep - (float)h));
                ck_assert_msg(fabs(dx[r * cols + i] - num) <=
                                  1e-5 + 1e-3 * fabs(num),
                              "softmax backward cols %lld [%lld,%lld]: "
                              "%.9g, numeric %.9g", (long long)cols,
                              (long long)r, (long long)i,
                              (double)dx[r * cols + i], num);
            }
        free(x);
        free(dy);
        free(y);
        free(dx);
        free(xp);
    }
}
END_TEST

/* ---- im2col / col2im --------------------------------------------------- */

START_TEST(test_conv_out)
{
    ck_assert_int_eq(dng__conv_out(28, 5, 1, 0), 24);
    ck_assert_int_eq(dng__conv_out(28, 4, 2, 1), 14);
    ck_assert_int_eq(dng__conv_out(7, 3, 3, 2), 3);  /* (7+4-3)/3+1 */
    ck_assert_int_eq(dng__conv_out(1, 5, 1, 2), 1);
    ck_assert_int_eq(dng__conv_out(1, 5, 1, 1), 0);  /* does not fit */
    ck_assert_int_eq(dng__conv_out(5, 3, 0, 0), 0);  /* no stride */
    for (int64_t in = 1; in < 12; in++)
        for (int k = 1; k <= 5; k++)
            for (int s = 1; s <= 3; s++)
                for (int p = 0; p <= 2; p++) {
                    int64_t o = dng__conv_out(in, k, s, p), cnt = 0;
                    /* count the window starts that fit, by brute force */
                    for (int64_t st = -p; st + k <= in + p; st += s)
                        cnt++;
                    ck_assert_int_eq(o, cnt);
                }
}
END_TEST

START_TEST(test_im2col_col2im)
{
    static const int64_t hs[] = {1, 4, 5, 7}, ws[] = {1, 3, 6, 9};
    unsigned seed = 100;
    int cases = 0;
    for (int64_t c = 1; c <= 2; c++)
        for (int ih = 0; ih < 4; ih++)
            for (int iw = 0; iw < 4; iw++)
                for (int kh = 1; kh <= 5; kh++)
                    for (int kw = 1; kw <= 5; kw++)
                        for (int s = 1; s <= 3; s++)
                            for (int p = 0; p <= 2; p++, seed++) {
        int64_t h = hs[ih], w = ws[iw];
        int64_t oh = dng__conv_out(h, kh, s, p);
        int64_t ow = dng__conv_out(w, kw, s, p);
        int64_t nx = c * h * w, nc = c * kh * kw * oh * ow;
        float *x, *col, *colref, *cc, *xa, *xref;
        double lhs = 0.0, rhs = 0.0, mag = 0.0;
        if (oh == 0 || ow == 0)
            continue;
        cases++;
        x = frand(nx, seed, -1.0f, 1.0f);
        col = fbuf(nc);
        colref = fbuf(nc);
        /* NaN garbage: every entry, padded ones included, is written. */
        ffill(col, nc, NAN);
        dng__im2col(x, c, h, w, kh, kw, s, p, oh, ow, col);
        dng_ref_im2col(x, c, h, w, kh, kw, s, p, colref);
        for (int64_t i = 0; i < nc; i++)
            ck_assert_msg(same_bits(col[i], colref[i]),
                          "im2col c=%lld h=%lld w=%lld k=%dx%d s=%d p=%d: "
                          "col[%lld] = %g, reference %g", (long long)c,
                          (long long)h, (long long)w, kh, kw, s, p,
                          (long long)i, (double)col[i], (double)colref[i]);

        /* col2im accumulates into x: start both from the same values. */
        cc = frand(nc, seed + 5000, -1.0f, 1.0f);
        xa = frand(nx, seed + 9000, -1.0f, 1.0f);
        xref = fbuf(nx);
        memcpy(xref, xa, sizeof(float) * (size_t)nx);
        dng__col2im(cc, c, h, w, kh, kw, s, p, oh, ow, xa);
        dng_ref_col2im(cc, c, h, w, kh, kw, s, p, xref);
        ck_assert_msg(dng_test_close_ratio(xa, xref, nx, 1e-6, 1e-6) <= 1.0,
                      "col2im c=%lld h=%lld w=%lld k=%dx%d s=%d p=%d "
                      "differs from the reference", (long long)c,
                      (long long)h, (long long)w, kh, kw, s, p);

        /* Adjoint: <im2col(x), cc> == <x, col2im(cc)> (from zero). */
        memset(xa, 0, sizeof(float) * (size_t)nx);
        dng__col2im(cc, c, h, w, kh, kw, s, p, oh, ow, xa);
        for (int64_t i = 0; i < nc; i++) {
            lhs += (double)col[i] * cc[i];
            mag += fabs((double)col[i] * cc[i]);
        }
        for (int64_t i = 0; i < nx; i++)
            rhs += (double)x[i] * xa[i];
        ck_assert_msg(fabs(lhs - rhs) <= 1e-6 * (mag + 1.0),
                      "col2im is not the adjoint of im2col (c=%lld h=%lld "
                      "w=%lld k=%dx%d s=%d p=%d): %.9g vs %.9g",
                      (long long)c, (long long)h, (long long)w, kh, kw, s,
                      p, lhs, rhs);
        free(x);
        free(col);
        free(colref);
        free(cc);
        free(xa);
        free(xref);
    }
    ck_assert_int_gt(cases, 3000);
}
END_TEST

START_TEST(test_conv_via_im2col_gemm)
{
    /* The lowering the conv layer uses: W [oc, c*kh*kw] x col equals the
     * direct convolution. */
    const int64_t c = 3, h = 9, w = 7, oc = 4;
    const int kh = 3, kw = 2, s = 2, p = 1;
    int64_t oh = dng__conv_out(h, kh, s, p), ow = dng__conv_out(w, kw, s, p);
    int64_t kk = c * kh * kw;
    float *x = frand(c * h * w, 1, -1.0f, 1.0f);
    float *wt = frand(oc * kk, 2, -1.0f, 1.0f);
    float *col = fbuf(kk * oh * ow), *y = fbuf(oc * oh * ow);
    float *yref = fbuf(oc * oh * ow);
    dng__im2col(x, c, h, w, kh, kw, s, p, oh, ow, col);
    dng__sgemm(false, false, oc, oh * ow, kk, 1.0f, wt, kk, col, oh * ow,
               0.0f, y, oh * ow, 1);
    dng_ref_conv2d(x, c, h, w, wt, oc, kh, kw, s, p, yref);
    ck_assert(dng_test_close_ratio(y, yref, oc * oh * ow, 1e-5, 1e-5) <=
              1.0);
    free(x);
    free(wt);
    free(col);
    free(y);
    free(yref);
}
END_TEST

/* ---- bias, sums, elementwise helpers ----------------------------------- */

START_TEST(test_bias_and_sums)
{
    const int64_t rows = 13, cols = 37, ld = 41;
    float *y = frand(rows * ld, 1, -1.0f, 1.0f);
    float *y0 = fbuf(rows * ld), *b = frand(cols, 2, -1.0f, 1.0f);
    float out[64], acc[64];
    memcpy(y0, y, sizeof(float) * (size_t)(rows * ld));

    dng__add_row_bias(y, b, rows, cols, ld);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < ld; j++) {
            float want = j < cols ? y0[i * ld + j] + b[j] : y0[i * ld + j];
            ck_assert_msg(same_bits(y[i * ld + j], want),
                          "add_row_bias [%lld,%lld]", (long long)i,
                          (long long)j);
        }

    /* channel bias over 5 channels of a 7x3 plane */
    memcpy(y, y0, sizeof(float) * (size_t)(rows * ld));
    dng__add_channel_bias(y, b, 5, 21);
    for (int64_t i = 0; i < rows * ld; i++) {
        float want = i < 105 ? y0[i] + b[i / 21] : y0[i];
        ck_assert(same_bits(y[i], want));
    }

    /* column sums over the rows x cols block of a matrix with ld > cols */
    dng__col_sums(y0, rows, cols, ld, out, false);
    for (int64_t j = 0; j < cols; j++) {
        double s = 0.0;
        for (int64_t i = 0; i < rows; i++)
            s += y0[i * ld + j];
        ck_assert_msg(fabs(out[j] - s) <= 1e-5, "col_sums[%lld] %g vs %g",
                      (long long)j, (double)out[j], s);
        acc[j] = 10.0f;
    }
    dng__col_sums(y0, rows, cols, ld, acc, true);
    for (int64_t j = 0; j < cols; j++)
        ck_assert(fabsf(acc[j] - (10.0f + out[j])) <= 1e-5f);

    dng__row_sums(y0, rows, cols, ld, out, false);
    for (int64_t i = 0; i < rows; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < cols; j++)
            s += y0[i * ld + j];
        ck_assert_msg(fabs(out[i] - s) <= 1e-5, "row_sums[%lld] %g vs %g",
                      (long long)i, (double)out[i], s);
        acc[i] = -3.0f;
    }
    dng__row_sums(y0, rows, cols, ld, acc, true);
    for (int64_t i = 0; i < rows; i++)
        ck_assert(fabsf(acc[i] - (out[i] - 3.0f)) <= 1e-5f);
    free(y);
    free(y0);
    free(b);
}
END_TEST

START_TEST(test_row_sums_long)
{
    /* A long row of 0.1: float accumulation would drift by ~1e-3
     * relative; the kernel sums in double. */
    const int64_t n = 1 << 22;
    float *x = fbuf(n), s;
    ffill(x, n, 0.1f);
    dng__row_sums(x, 1, n, n, &s, false);
    ck_assert_msg(fabs(s - (double)n * 0.1f) <= 1e-6 * n * 0.1,
                  "row sum %.9g, want %.9g", (double)s, (double)n * 0.1f);
    free(x);
}
END_TEST

START_TEST(test_axpy_scale_sumsq)
{
    const int64_t n = 1001;
    float *x = frand(n, 1, -2.0f, 2.0f), *y = frand(n, 2, -2.0f, 2.0f);
    float *y0 = fbuf(n);
    double ss = 0.0;
    memcpy(y0, y, sizeof(float) * (size_t)n);
    dng__axpy(n, -0.75f, x, y);
    for (int64_t i = 0; i < n; i++)
        ck_assert(fabsf(y[i] - (y0[i] - 0.75f * x[i])) <= 1e-6f);
    memcpy(y, y0, sizeof(float) * (size_t)n);
    dng__scale(n, 3.0f, y);
    for (int64_t i = 0; i < n; i++)
        ck_assert(same_bits(y[i], 3.0f * y0[i]));
    dng__scale(n, 0.0f, y);
    for (int64_t i = 0; i < n; i++)
        ck_assert(y[i] == 0.0f);
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    ck_assert(fabs(dng__sumsq(x, n) - ss) <= 1e-12 * ss);
    ck_assert(dng__sumsq(x, 0) == 0.0);
    /* squares beyond float range are fine in double */
    x[0] = 3e38f;
    x[1] = -3e38f;
    ck_assert(isfinite(dng__sumsq(x, 2)));
    ck_assert(fabs(dng__sumsq(x, 2) - 1.8e77) <= 1e-6 * 1.8e77);
    /* n = 0 leaves everything alone */
    dng__axpy(0, 1.0f, x, y);
    dng__scale(0, 2.0f, x);
    ck_assert(x[0] == 3e38f && y[0] == 0.0f);
    free(x);
    free(y);
    free(y0);
}
END_TEST

START_TEST(test_all_finite)
{
    enum { N = 67 };
    float x[N];
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    dng_test_fill(x, N, 5, -1e30f, 1e30f);
    x[3] = FLT_MAX;
    x[4] = -FLT_MAX;
    x[5] = FLT_MIN / 4.0f; /* subnormal */
    x[6] = -0.0f;
    ck_assert(dng__all_finite(x, N));
    ck_assert(dng__all_finite(x, 0));
    for (int b = 0; b < 4; b++) {
        const int64_t where[] = {0, 1, 31, N - 1};
        for (int w = 0; w < 4; w++) {
            float keep = x[where[w]];
            x[where[w]] = bad[b];
            ck_assert_msg(!dng__all_finite(x, N), "value %d at %lld not "
                          "caught", b, (long long)where[w]);
            /* and not looked at past n */
            ck_assert(dng__all_finite(x, where[w]));
            x[where[w]] = keep;
        }
    }
}
END_TEST

/* ---- Philox ------------------------------------------------------------ */

START_TEST(test_philox_kat)
{
    /* Random123 kat_vectors: philox4x32_10, counter 0, key 0. */
    uint32_t out[4];
    dng__philox4x32(0, 0, out);
    ck_assert_uint_eq(out[0], 0x6627e8d5u);
    ck_assert_uint_eq(out[1], 0xe169c58du);
    ck_assert_uint_eq(out[2], 0xbc57ac4cu);
    ck_assert_uint_eq(out[3], 0x9b00dbd8u);
}
END_TEST

START_TEST(test_rng_follows_philox)
{
    /* The public stream is the block function's output, in order: four
     * words per counter, uniforms from the top 24 bits. */
    dng_rng *rng = dng_rng_create(0);
    uint32_t blk[4];
    float u[8], nrm[2];
    ck_assert_int_eq(dng_rng_uniform(rng, u, 8, 0.0f, 1.0f), DNG_OK);
    for (int i = 0; i < 8; i++) {
        dng__philox4x32(0, (uint64_t)(i / 4), blk);
        ck_assert_msg(u[i] == (float)(blk[i % 4] >> 8) / 16777216.0f,
                      "uniform %d = %.9g does not follow the block", i,
                      (double)u[i]);
    }
    ck_assert(u[0] == (float)(0x6627e8d5u >> 8) / 16777216.0f);
    dng_rng_destroy(rng);

    /* Normals: Box-Muller on the first two uniforms (u1 -> 1 - u1). */
    rng = dng_rng_create(0);
    ck_assert_int_eq(dng_rng_normal(rng, nrm, 2, 0.0f, 1.0f), DNG_OK);
    {
        double u1 = 1.0 - (double)((0x6627e8d5u >> 8) / 16777216.0f);
        double u2 = (double)((0xe169c58du >> 8) / 16777216.0f);
        double r = sqrt(-2.0 * log(u1));
        ck_assert(fabs(nrm[0] - r * cos(2.0 * M_PI * u2)) <= 1e-6);
        ck_assert(fabs(nrm[1] - r * sin(2.0 * M_PI * u2)) <= 1e-6);
    }
    dng_rng_destroy(rng);

    /* The seed is the key: its low and high words both matter. */
    {
        uint32_t a[4], b[4], c[4];
        dng__philox4x32(1, 0, a);
        dng__philox4x32(UINT64_C(1) << 32, 0, b);
        dng__philox4x32(0, UINT64_C(1) << 32, c);
        ck_assert(memcmp(a, b, sizeof a) != 0);
        ck_assert(a[0] != 0x6627e8d5u && b[0] != 0x6627e8d5u &&
                  c[0] != 0x6627e8d5u);
    }
}
END_TEST

START_TEST(test_rng_below)
{
    dng_rng *rng = dng_rng_create(3);
    int64_t counts[7] = {0};
    const int64_t draws = 70000;
    double chi2 = 0.0;
    for (int64_t i = 0; i < draws; i++) {
        uint64_t v = dng__rng_below(rng, 7);
        ck_assert_uint_lt(v, 7);
        counts[v]++;
    }
    for (int i = 0; i < 7; i++) {
        double e = (double)draws / 7.0, d = (double)counts[i] - e;
        chi2 += d * d / e;
    }
    /* 6 degrees of freedom: P(chi2 > 22.5) < 0.001 */
    ck_assert_msg(chi2 < 22.5, "chi-square %g over 7 bins", chi2);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(dng__rng_below(rng, 1), 0);
    /* a bound above 2^32 reaches high values */
    {
        uint64_t mx = 0, n = UINT64_C(1) << 40;
        for (int i = 0; i < 1000; i++) {
            uint64_t v = dng__rng_below(rng, n);
            ck_assert(v < n);
            mx = v > mx ? v : mx;
        }
        ck_assert(mx > (n / 4) * 3);
    }
    dng_rng_destroy(rng);
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sgemm_awkward_sizes);
    tcase_add_test(tc, test_sgemm_wide);
    tcase_add_test(tc, test_sgemm_threads_large);
    tcase_add_test(tc, test_sgemm_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("activations");
    tcase_add_test(tc, test_act_all_kinds);
    tcase_add_test(tc, test_act_closed_forms);
    tcase_add_test(tc, test_softmax_forward);
    tcase_add_test(tc, test_softmax_extremes);
    tcase_add_test(tc, test_softmax_backward);
    suite_add_tcase(s, tc);

    tc = tcase_create("im2col");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conv_out);
    tcase_add_test(tc, test_im2col_col2im);
    tcase_add_test(tc, test_conv_via_im2col_gemm);
    suite_add_tcase(s, tc);

    tc = tcase_create("elementwise");
    tcase_add_test(tc, test_bias_and_sums);
    tcase_add_test(tc, test_row_sums_long);
    tcase_add_test(tc, test_axpy_scale_sumsq);
    tcase_add_test(tc, test_all_finite);
    suite_add_tcase(s, tc);

    tc = tcase_create("philox");
    tcase_add_test(tc, test_philox_kat);
    tcase_add_test(tc, test_rng_follows_philox);
    tcase_add_test(tc, test_rng_below);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dng_test_run(kernels_suite());
}
