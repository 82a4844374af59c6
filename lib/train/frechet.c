/* frechet.c: the Fréchet distance between two Gaussians fitted to feature
 * sets (the FID when the features come from an Inception network):
 *   d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2).
 * S_a S_b is not symmetric, but it is similar to the symmetric positive
 * semi-definite C = S_a^1/2 S_b S_a^1/2, whose eigenvalues it shares, so
 *   tr((S_a S_b)^1/2) = sum_i sqrt(lambda_i(C)).
 * Everything runs in double: the distance is a small difference of large
 * traces, and float covariances lose several of its digits. */
#include <blis.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "core-impl.h"

/* Rows centred per covariance GEMM: large enough for BLIS to run at full
 * speed, small enough that the double copy stays in cache-sized pieces
 * whatever N is. */
#define FD_BLOCK 512
/* QL iterations allowed per eigenvalue; 30 is the classic bound, more
 * costs nothing when convergence is normal. */
#define FD_MAX_ITER 100

/* C[m, n] = alpha op(A) op(B) + beta C in double, row-major, through
 * BLIS's typed API with the library's thread count. */
static void fd_dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                     double alpha, const double *a, int64_t lda,
                     const double *b, int64_t ldb, double beta, double *c,
                     int64_t ldc)
{
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(dng__threads(), &rntm);
    bli_dgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n,
                 (dim_t)k, &alpha, (double *)a, (inc_t)lda, 1, (double *)b,
                 (inc_t)ldb, 1, &beta, c, (inc_t)ldc, 1, NULL, &rntm);
}

/* mu = column means of x [n, d]; cov = (x - mu)^T (x - mu) / (n - 1),
 * centred in double (a one-pass sum of squares would cancel badly when
 * the mean is large next to the spread). blk has FD_BLOCK * d doubles. */
static void fd_moments(const float *x, int64_t n, int64_t d, double *mu,
                       double *cov, double *blk)
{
    memset(mu, 0, (size_t)d * sizeof *mu);
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * d;
        for (int64_t j = 0; j < d; j++)
            mu[j] += (double)row[j];
    }
    for (int64_t j = 0; j < d; j++)
        mu[j] /= (double)n;
    for (int64_t i0 = 0; i0 < n; i0 += FD_BLOCK) {
        int64_t rows = n - i0 < FD_BLOCK ? n - i0 : FD_BLOCK;
        for (int64_t i = 0; i < rows; i++) {
            const float *row = x + (i0 + i) * d;
            double *dst = blk + i * d;
            for (int64_t j = 0; j < d; j++)
                dst[j] = (double)row[j] - mu[j];
        }
        /* cov (+)= blk^T blk */
        fd_dgemm(true, false, d, d, rows, 1.0, blk, d, blk, d,
                 i0 == 0 ? 0.0 : 1.0, cov, d);
    }
    for (int64_t k = 0; k < d * d; k++)
        cov[k] /= (double)(n - 1);
}

/* Householder reduction of the symmetric matrix in v [n, n] to
 * tridiagonal form (EISPACK tred2, as in JAMA): on return d holds the
 * diagonal, e[1..n-1] the sub-diagonal and v the orthogonal transform V.
 * V is addressed column-major, as in the Fortran original, so that every
 * inner loop runs over contiguous memory; the symmetric input reads the
 * same either way, and V's columns come out as the rows of v. */
static void fd_tred2(double *v, double *d, double *e, int64_t n)
{
#define V(i, j) v[(j) * n + (i)]
    for (int64_t j = 0; j < n; j++)
        d[j] = V(n - 1, j);
    for (int64_t i = n - 1; i > 0; i--) {
        double scale = 0.0, h = 0.0;
        for (int64_t k = 0; k < i; k++)
            scale += fabs(d[k]);
        if (scale == 0.0) {
            e[i] = d[i - 1];
            for (int64_t j = 0; j < i; j++) {
                d[j] = V(i - 1, j);
                V(i, j) = 0.0;
                V(j, i) = 0.0;
            }
        } else {
            double f, g, hh;
            for (int64_t k = 0; k < i; k++) {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            f = d[i - 1];
            g = sqrt(h);
            if (f > 0)
                g = -g;
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for (int64_t j = 0; j < i; j++)
                e[j] = 0.0;
            for (int64_t j = 0; j < i; j++) {
                f = d[j];
                V(j, i) = f;
                g = e[j] + V(j, j) * f;
                for (int64_t k = j + 1; k <= i - 1; k++) {
                    g += V(k, j) * d[k];
                    e[k] += V(k, j) * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for (int64_t j = 0; j < i; j++) {
                e[j] /= h;
                f += e[j] * d[j];
            }
            hh = f / (h + h);
            for (int64_t j = 0; j < i; j++)
                e[j] -= hh * d[j];
            for (int64_t j = 0; j < i; j++) {
                f = d[j];
                g = e[j];
                for (int64_t k = j; k <= i - 1; k++)
                    V(k, j) -= f * e[k] + g * d[k];
                d[j] = V(i - 1, j);
                V(i, j) = 0.0;
            }
        }
        d[i] = h;
    }
    /* Accumulate the transformations. */
    for (int64_t i = 0; i < n - 1; i++) {
        double h;
        V(n - 1, i) = V(i, i);
        V(i, i) = 1.0;
        h = d[i + 1];
        if (h != 0.0) {
            for (int64_t k = 0; k <= i; k++)
                d[k] = V(k, i + 1) / h;
            for (int64_t j = 0; j <= i; j++) {
                double g = 0.0;
                for (int64_t k = 0; k <= i; k++)
                    g += V(k, i + 1) * V(k, j);
                for (int64_t k = 0; k <= i; k++)
                    V(k, j) -= g * d[k];
            }
        }
        for (int64_t k = 0; k <= i; k++)
            V(k, i + 1) = 0.0;
    }
    for (int64_t j = 0; j < n; j++) {
        d[j] = V(n - 1, j);
        V(n - 1, j) = 0.0;
    }
    V(n - 1, n - 1) = 1.0;
    e[0] = 0.0;
#undef V
}

/* Implicit QL on the tridiagonal (d, e) from fd_tred2 (EISPACK tql2): d
 * receives the eigenvalues. When z is not NULL it holds tred2's transform
 * (its columns as rows) and receives the eigenvectors as its rows, so
 * each rotation runs over contiguous memory. False when an eigenvalue
 * does not converge (only possible with non-finite input). */
static bool fd_tql2(double *d, double *e, double *z, int64_t n)
{
    double f = 0.0, tst1 = 0.0;
    const double eps = 0x1p-52;
    for (int64_t i = 1; i < n; i++)
        e[i - 1] = e[i];
    e[n - 1] = 0.0;
    for (int64_t l = 0; l < n; l++) {
        int64_t m = l;
        double t = fabs(d[l]) + fabs(e[l]);
        tst1 = t > tst1 ? t : tst1;
        while (m < n - 1 && fabs(e[m]) > eps * tst1)
            m++;
        if (m > l) {
            int iter = 0;
            do {
                double g = d[l], p, r, dl1, h, c = 1.0, c2 = 1.0, c3 = 1.0,
                       el1, s = 0.0, s2 = 0.0;
                if (++iter > FD_MAX_ITER)
                    return false;
                p = (d[l + 1] - g) / (2.0 * e[l]);
                r = hypot(p, 1.0);
                if (p < 0)
                    r = -r;
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                dl1 = d[l + 1];
                h = g - d[l];
                for (int64_t i = l + 2; i < n; i++)
                    d[i] -= h;
                f += h;
                p = d[m];
                el1 = e[l + 1];
                for (int64_t i = m - 1; i >= l; i--) {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if (z) {
                        /* Rotate eigenvector rows i and i + 1. */
                        double *zi = z + i * n, *zj = zi + n;
                        for (int64_t k = 0; k < n; k++) {
                            double zk = zj[k];
                            zj[k] = s * zi[k] + c * zk;
                            zi[k] = c * zi[k] - s * zk;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
            } while (fabs(e[l]) > eps * tst1);
        }
        d[l] += f;
        e[l] = 0.0;
    }
    return true;
}

/* Eigen-decomposition of the symmetric a [n, n]: eigenvalues into w and,
 * when vectors, eigenvectors as the rows of a (else a is destroyed). */
static bool fd_eigh(double *a, double *w, double *e, bool vectors,
                    int64_t n)
{
    fd_tred2(a, w, e, n);
    return fd_tql2(w, e, vectors ? a : NULL, n);
}

static dng_status fd_check(const dng_tensor *t, const char *name)
{
    char s[160];
    if (t->ndim != 2 || t->shape[0] < 2)
        return dng__error(DNG_ERR_SHAPE, "dng_frechet_distance: %s has shape "
                          "%s; expected [N, D] with N >= 2", name,
                          dng__shape_str(s, sizeof s, t->ndim, t->shape));
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->data[i]))
            return dng__error(DNG_ERR_NUMERIC, "dng_frechet_distance: %s "
                              "holds a non-finite value at row %" PRId64
                              ", column %" PRId64, name, i / t->shape[1],
                              i % t->shape[1]);
    return DNG_OK;
}

DNG_API dng_status dng_frechet_distance(const dng_tensor *a,
                                        const dng_tensor *b, double *out)
{
    int64_t d, dd;
    double *mem, *mu_a, *mu_b, *sa, *sb, *r, *t, *w, *e, *blk;
    double dist = 0.0, tr_sqrt = 0.0;
    size_t total;
    dng_status s;
    DNG__CHECK_NULL(a, "dng_frechet_distance");
    DNG__CHECK_NULL(b, "dng_frechet_distance");
    DNG__CHECK_NULL(out, "dng_frechet_distance");
    if ((s = fd_check(a, "a")) != DNG_OK || (s = fd_check(b, "b")) != DNG_OK)
        return s;
    d = a->shape[1];
    if (b->shape[1] != d)
        return dng__error(DNG_ERR_SHAPE, "dng_frechet_distance: a has %"
                          PRId64 " features per row, b has %" PRId64, d,
                          b->shape[1]);
    /* Matrices: S_a, S_b, R, T, each d x d; vectors mu_a, mu_b, w, e; the
     * centring block. */
    if (dng__mul_overflow_i64(d, d, &dd) || dd > INT64_MAX / 8 ||
        (uint64_t)dd > (SIZE_MAX / sizeof(double) - (uint64_t)d *
                        (4 + FD_BLOCK)) / 4)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_frechet_distance: "
                          "D = %" PRId64 " features is too many", d);
    total = 4 * (size_t)dd + (size_t)d * (4 + FD_BLOCK);
    mem = dng__malloc(total * sizeof(double), "dng_frechet_distance");
    if (!mem)
        return DNG_ERR_OUT_OF_MEMORY;
    sa = mem;
    sb = sa + dd;
    r = sb + dd;
    t = r + dd;
    mu_a = t + dd;
    mu_b = mu_a + d;
    w = mu_b + d;
    e = w + d;
    blk = e + d;

    fd_moments(a->data, a->shape[0], d, mu_a, sa, blk);
    fd_moments(b->data, b->shape[0], d, mu_b, sb, blk);
    for (int64_t j = 0; j < d; j++) {
        double diff = mu_a[j] - mu_b[j];
        dist += diff * diff + sa[j * d + j] + sb[j * d + j];
    }

    /* S_a^1/2 = Z^T diag(sqrt(max(0, l))) Z with the eigenvectors as the
     * rows of Z (which overwrites S_a: only its trace, summed above, is
     * needed again); scaling row i of Z by max(0, l_i)^1/4 gives W and
     * S_a^1/2 = W^T W. Tiny negative eigenvalues are rounding noise of a
     * PSD matrix. */
    if (!fd_eigh(sa, w, e, true, d)) {
        dng__free(mem);
        return dng__error(DNG_ERR_NUMERIC, "dng_frechet_distance: the "
                          "eigen-solver did not converge on S_a");
    }
    for (int64_t i = 0; i < d; i++) {
        double q = sqrt(sqrt(w[i] > 0.0 ? w[i] : 0.0));
        for (int64_t j = 0; j < d; j++)
            sa[i * d + j] *= q;
    }
    fd_dgemm(true, false, d, d, d, 1.0, sa, d, sa, d, 0.0, r, d);
    /* C = R S_b R, symmetrised against rounding. */
    fd_dgemm(false, false, d, d, d, 1.0, r, d, sb, d, 0.0, t, d);
    fd_dgemm(false, false, d, d, d, 1.0, t, d, r, d, 0.0, sa, d);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) {
            double m = 0.5 * (sa[i * d + j] + sa[j * d + i]);
            sa[i * d + j] = sa[j * d + i] = m;
        }
    if (!fd_eigh(sa, w, e, false, d)) {
        dng__free(mem);
        return dng__error(DNG_ERR_NUMERIC, "dng_frechet_distance: the "
                          "eigen-solver did not converge on S_a^1/2 S_b "
                          "S_a^1/2");
    }
    for (int64_t i = 0; i < d; i++)
        tr_sqrt += sqrt(w[i] > 0.0 ? w[i] : 0.0);
    dng__free(mem);
    dist -= 2.0 * tr_sqrt;
    if (!isfinite(dist))
        return dng__error(DNG_ERR_NUMERIC, "dng_frechet_distance: the "
                          "distance is not finite (features too large?)");
    /* The exact value is >= 0; a tiny negative one is rounding. */
    *out = dist > 0.0 ? dist : 0.0;
    return DNG_OK;
}
