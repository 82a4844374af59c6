/* testutil.h: helpers shared by the Check suites (header-only). */
#ifndef DNG_TESTUTIL_H
#define DNG_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnngen.h"

/* Run a suite with TAP output on stdout (meson reads it with
 * protocol: 'tap'). */
static inline int dng_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Deterministic uniform floats in [lo, hi) for test data (independent of
 * the library's generator, so tests do not test the RNG with itself). */
static inline void dng_test_fill(float *x, int64_t n, unsigned seed,
                                 float lo, float hi)
{
    uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

/* Largest |a - b| / (atol + rtol |b|) over n elements: <= 1 means close. */
static inline double dng_test_close_ratio(const float *a, const float *b,
                                          int64_t n, double atol,
                                          double rtol)
{
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs((double)a[i] - (double)b[i]) /
                   (atol + rtol * fabs((double)b[i]));
        if (!(r <= worst)) /* NaN propagates as a failure */
            worst = isnan(r) ? INFINITY : r;
    }
    return worst;
}

/* Loss used by gradient checks: L = sum_i y_i r_i with fixed r. */
static inline double dng_test_dot(const float *y, const float *r, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)y[i] * (double)r[i];
    return s;
}

/* Central difference of L = sum(y * r) with respect to *v, with the
 * dropout seed reset before each forward so masks repeat. */
static inline double dng_test_numeric(dng_net *net, dng_tensor *x,
                                      const dng_tensor *r, float *v,
                                      double eps)
{
    dng_tensor *y = NULL;
    float keep = *v;
    double lp, lm;
    *v = keep + (float)eps;
    dng_net_set_seed(net, 7);
    dng_net_forward(net, x, &y);
    lp = dng_test_dot(dng_tensor_data(y),
                      dng_tensor_data((dng_tensor *)r), dng_tensor_numel(y));
    *v = keep - (float)eps;
    dng_net_set_seed(net, 7);
    dng_net_forward(net, x, &y);
    lm = dng_test_dot(dng_tensor_data(y),
                      dng_tensor_data((dng_tensor *)r), dng_tensor_numel(y));
    *v = keep;
    return (lp - lm) / (2.0 * eps);
}

/* Compare an analytic gradient an[0..n) of the values v[0..n) with
 * central differences at up to `samples` evenly spread entries; keep the
 * worst closeness ratio and where it happened. */
static inline void dng_test_compare_fd(dng_net *net, dng_tensor *x,
                                       const dng_tensor *r, float *v,
                                       const float *an, int64_t n,
                                       const char *name, double eps,
                                       double atol, double rtol, int samples,
                                       double *worst, char *where,
                                       size_t where_len)
{
    int64_t stride = n > samples ? n / samples : 1;
    for (int64_t i = 0; i < n; i += stride) {
        double num = dng_test_numeric(net, x, r, &v[i], eps);
        double ratio = fabs(an[i] - num) / (atol + rtol * fabs(num));
        if (!(ratio <= *worst)) {
            *worst = isnan(ratio) ? INFINITY : ratio;
            snprintf(where, where_len, "%s[%lld]: analytic %g, numeric %g",
                     name, (long long)i, (double)an[i], num);
        }
    }
}

/* Check net's backward (input gradient and every parameter gradient)
 * against central finite differences of L = sum(y * r), perturbing up to
 * `samples` entries of x and of each parameter. The dropout seed is reset
 * before every forward so masks repeat. Returns the worst closeness ratio
 * (<= 1 passes) and names the worst entry in where[]. */
static inline double dng_test_gradcheck(dng_net *net, dng_tensor *x,
                                        double eps, double atol, double rtol,
                                        int samples, char *where,
                                        size_t where_len)
{
    dng_tensor *y = NULL, *dx = NULL, *r;
    int64_t shape[DNG_MAX_DIMS], n = dng_tensor_numel(x);
    double worst = 0.0;
    float *an;
    snprintf(where, where_len, "nothing checked");
    dng_net_set_seed(net, 7);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    dng_tensor_shape(y, shape);
    r = dng_tensor_create(dng_tensor_ndim(y), shape);
    dng_test_fill(dng_tensor_data(r), dng_tensor_numel(r), 99, -1.0f, 1.0f);
    ck_assert_int_eq(dng_net_zero_grad(net), DNG_OK);
    ck_assert_int_eq(dng_net_backward(net, r, &dx), DNG_OK);
    /* dx is borrowed and the checks below run forwards: keep a copy. */
    an = malloc(sizeof(float) * (size_t)n);
    memcpy(an, dng_tensor_data(dx), sizeof(float) * (size_t)n);
    dng_test_compare_fd(net, x, r, dng_tensor_data(x), an, n, "dx", eps,
                        atol, rtol, samples, &worst, where, where_len);
    free(an);
    for (int p = 0; p < dng_net_num_params(net); p++)
        dng_test_compare_fd(net, x, r, dng_tensor_data(dng_net_param(net, p)),
                            dng_tensor_data(dng_net_grad(net, p)),
                            dng_tensor_numel(dng_net_param(net, p)),
                            dng_net_param_name(net, p), eps, atol, rtol,
                            samples, &worst, where, where_len);
    dng_tensor_destroy(r);
    return worst;
}

#endif
