/* test-loss.c: dng_loss against closed forms evaluated here in double,
 * its gradients against finite differences of its own value, stability
 * on large logits, and every error path. Public API only. */
#include "testutil.h"

#define N 6
#define C 5

static dng_tensor *make(int ndim, int64_t d0, int64_t d1, const float *v)
{
    int64_t shape[2] = {d0, d1};
    dng_tensor *t = v ? dng_tensor_from_data(ndim, shape, v)
                      : dng_tensor_create(ndim, shape);
    ck_assert_ptr_nonnull(t);
    return t;
}

static float loss_of(dng_loss_kind kind, dng_tensor *p, dng_tensor *t)
{
    float v = NAN;
    ck_assert_int_eq(dng_loss(kind, p, t, &v, NULL), DNG_OK);
    return v;
}

/* Central differences of the library's own loss value against its
 * analytic gradient, for every element of pred. */
static double fd_ratio(dng_loss_kind kind, dng_tensor *p, dng_tensor *t,
                       const float *grad, double eps, double atol,
                       double rtol)
{
    float *x = dng_tensor_data(p);
    int64_t n = dng_tensor_numel(p);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float keep = x[i];
        double lp, lm, num, r;
        x[i] = keep + (float)eps;
        lp = loss_of(kind, p, t);
        x[i] = keep - (float)eps;
        lm = loss_of(kind, p, t);
        x[i] = keep;
        num = (lp - lm) / ((double)(keep + (float)eps) -
                           (double)(keep - (float)eps));
        r = fabs((double)grad[i] - num) / (atol + rtol * fabs(num));
        if (!(r <= worst))
            worst = isnan(r) ? INFINITY : r;
    }
    return worst;
}

START_TEST(test_mse)
{
    float p[N * C], t[N * C], g[N * C], v;
    double ref = 0.0;
    dng_tensor *tp, *tt, *tg;
    dng_test_fill(p, N * C, 1, -2.0f, 2.0f);
    dng_test_fill(t, N * C, 2, -2.0f, 2.0f);
    tp = make(2, N, C, p);
    tt = make(2, N, C, t);
    tg = make(2, N, C, NULL);
    /* grad is written, not accumulated into */
    dng_tensor_fill(tg, 123.0f);
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, tp, tt, &v, tg), DNG_OK);
    for (int i = 0; i < N * C; i++) {
        double d = (double)p[i] - t[i];
        ref += d * d;
        g[i] = (float)(2.0 * d / (N * C));
    }
    ref /= N * C;
    ck_assert_double_le(fabs(v - ref), 1e-6 * ref);
    ck_assert_double_le(dng_test_close_ratio(dng_tensor_data(tg), g, N * C,
                                             1e-7, 1e-6), 1.0);
    ck_assert_double_le(fd_ratio(DNG_LOSS_MSE, tp, tt, dng_tensor_data(tg),
                                 1e-2, 2e-5, 1e-3), 1.0);
    dng_tensor_destroy(tp);
    dng_tensor_destroy(tt);
    dng_tensor_destroy(tg);
}
END_TEST

/* The textbook form -t log s - (1 - t) log(1 - s) in double: exact
 * enough for the moderate logits used here. */
static double bce_naive(double x, double t)
{
    double s = 1.0 / (1.0 + exp(-x));
    return -t * log(s) - (1.0 - t) * log(1.0 - s);
}

START_TEST(test_bce)
{
    float p[N * C], t[N * C], g[N * C], v;
    double ref = 0.0;
    dng_tensor *tp, *tt, *tg;
    dng_test_fill(p, N * C, 3, -4.0f, 4.0f);
    dng_test_fill(t, N * C, 4, 0.0f, 1.0f);
    t[0] = 0.0f;
    t[1] = 1.0f;
    tp = make(2, N, C, p);
    tt = make(2, N, C, t);
    tg = make(2, N, C, NULL);
    ck_assert_int_eq(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, tp, tt, &v, tg),
                     DNG_OK);
    for (int i = 0; i < N * C; i++) {
        ref += bce_naive(p[i], t[i]);
        g[i] = (float)((1.0 / (1.0 + exp(-(double)p[i])) - t[i]) / (N * C));
    }
    ref /= N * C;
    ck_assert_double_le(fabs(v - ref), 1e-6 * ref);
    ck_assert_double_le(dng_test_close_ratio(dng_tensor_data(tg), g, N * C,
                                             1e-8, 1e-5), 1.0);
    ck_assert_double_le(fd_ratio(DNG_LOSS_BCE_WITH_LOGITS, tp, tt,
                                 dng_tensor_data(tg), 1e-2, 2e-5, 1e-3),
                        1.0);
    dng_tensor_destroy(tp);
    dng_tensor_destroy(tt);
    dng_tensor_destroy(tg);
}
END_TEST

static void check_ce(int target_ndim)
{
    float p[N * C], lab[N], g[N * C], v;
    double ref = 0.0;
    dng_tensor *tp, *tt, *tg;
    dng_test_fill(p, N * C, 5, -3.0f, 3.0f);
    for (int i = 0; i < N; i++)
        lab[i] = (float)((i * 3) % C);
    tp = make(2, N, C, p);
    tt = make(target_ndim, N, 1, lab);
    tg = make(2, N, C, NULL);
    dng_tensor_fill(tg, -7.0f);
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, tp, tt, &v, tg),
                     DNG_OK);
    for (int i = 0; i < N; i++) {
        double z = 0.0;
        int y = (int)lab[i];
        for (int j = 0; j < C; j++)
            z += exp((double)p[i * C + j]);
        ref += log(z) - p[i * C + y];
        for (int j = 0; j < C; j++)
            g[i * C + j] = (float)((exp((double)p[i * C + j]) / z -
                                    (j == y)) / N);
    }
    ref /= N;
    ck_assert_double_le(fabs(v - ref), 1e-6 * ref);
    ck_assert_double_le(dng_test_close_ratio(dng_tensor_data(tg), g, N * C,
                                             1e-8, 1e-5), 1.0);
    ck_assert_double_le(fd_ratio(DNG_LOSS_CROSS_ENTROPY, tp, tt,
                                 dng_tensor_data(tg), 1e-2, 2e-5, 1e-3),
                        1.0);
    /* Rows of the gradient of a softmax cross-entropy sum to zero. */
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < C; j++)
            s += dng_tensor_data(tg)[i * C + j];
        ck_assert_double_le(fabs(s), 1e-7);
    }
    dng_tensor_destroy(tp);
    dng_tensor_destroy(tt);
    dng_tensor_destroy(tg);
}

START_TEST(test_cross_entropy)
{
    check_ce(1);
    check_ce(2);
}
END_TEST

START_TEST(test_hinge)
{
    float p[N * C], t[N * C], g[N * C], v;
    double ref = 0.0;
    dng_tensor *tp, *tt, *tg;
    dng_test_fill(p, N * C, 6, -2.0f, 2.0f);
    for (int i = 0; i < N * C; i++) {
        t[i] = i % 3 ? 1.0f : -1.0f;
        /* Keep every margin away from the kink at 1 - t p = 0, where the
         * finite difference would straddle two slopes. */
        if (fabs(1.0 - (double)t[i] * p[i]) < 0.05)
            p[i] += 0.2f;
    }
    tp = make(2, N, C, p);
    tt = make(2, N, C, t);
    tg = make(2, N, C, NULL);
    ck_assert_int_eq(dng_loss(DNG_LOSS_HINGE, tp, tt, &v, tg), DNG_OK);
    for (int i = 0; i < N * C; i++) {
        double m = 1.0 - (double)t[i] * p[i];
        ref += m > 0.0 ? m : 0.0;
        g[i] = m > 0.0 ? (float)(-t[i] / (double)(N * C)) : 0.0f;
    }
    ref /= N * C;
    ck_assert_double_le(fabs(v - ref), 1e-6 * ref);
    ck_assert_double_le(dng_test_close_ratio(dng_tensor_data(tg), g, N * C,
                                             1e-12, 1e-6), 1.0);
    ck_assert_double_le(fd_ratio(DNG_LOSS_HINGE, tp, tt, dng_tensor_data(tg),
                                 1e-2, 2e-5, 1e-3), 1.0);
    dng_tensor_destroy(tp);
    dng_tensor_destroy(tt);
    dng_tensor_destroy(tg);
}
END_TEST

START_TEST(test_column_against_vector)
{
    /* pred [N, 1] against labels [N] is meant elementwise (PyTorch would
     * broadcast it to [N, N]). */
    float p[N], t[N], v1, v2;
    dng_tensor *col, *vec, *tv, *g;
    dng_test_fill(p, N, 7, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        t[i] = (float)(i % 2);
    col = make(2, N, 1, p);
    vec = make(1, N, 1, p);
    tv = make(1, N, 1, t);
    g = make(2, N, 1, NULL);
    ck_assert_int_eq(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, col, tv, &v1, g),
                     DNG_OK);
    ck_assert_int_eq(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, vec, tv, &v2, NULL),
                     DNG_OK);
    ck_assert_float_eq(v1, v2);
    dng_tensor_destroy(col);
    dng_tensor_destroy(vec);
    dng_tensor_destroy(tv);
    dng_tensor_destroy(g);
}
END_TEST

START_TEST(test_large_logits)
{
    /* BCE: logits +-100 against 0/1 targets. The exact losses are
     * log1p(e^-100) ~ 3.7e-44 for the right sign and 100 + that for the
     * wrong one; the naive form would give inf or NaN. */
    float p[4] = {100.0f, -100.0f, 100.0f, -100.0f};
    float t[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    float lab[2] = {1.0f, 0.0f};
    float ce_p[6] = {100.0f, -100.0f, 0.0f, 100.0f, -100.0f, 0.0f};
    float v, *gd;
    dng_tensor *tp = make(1, 4, 1, p), *tt = make(1, 4, 1, t);
    dng_tensor *g = make(1, 4, 1, NULL), *cp, *cl, *cg;
    ck_assert_int_eq(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, tp, tt, &v, g),
                     DNG_OK);
    ck_assert_float_eq(v, 50.0f); /* (0 + 0 + 100 + 100) / 4 */
    gd = dng_tensor_data(g);
    ck_assert(isfinite(gd[0]) && fabsf(gd[0]) < 1e-30f);
    ck_assert(isfinite(gd[1]) && fabsf(gd[1]) < 1e-30f);
    ck_assert_float_eq(gd[2], 0.25f);
    ck_assert_float_eq(gd[3], -0.25f);
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, tp, tt, &v, NULL), DNG_OK);
    ck_assert_float_eq(v, (99.0f * 99 + 2 * 100.0f * 100 + 101.0f * 101) /
                              4);

    /* Cross-entropy: row 0 picks the -100 logit (loss 200 + log1p of
     * e^-100 and e^-200, i.e. 200 in float); row 1 picks the 100 one
     * (loss ~ e^-100). */
    cp = make(2, 2, 3, ce_p);
    cl = make(1, 2, 1, lab);
    cg = make(2, 2, 3, NULL);
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, cp, cl, &v, cg),
                     DNG_OK);
    ck_assert_float_eq(v, 100.0f);
    gd = dng_tensor_data(cg);
    ck_assert_float_eq(gd[0], 0.5f);  /* (1 - 0) / 2 */
    ck_assert_float_eq(gd[1], -0.5f); /* (~0 - 1) / 2 */
    ck_assert(fabsf(gd[2]) < 1e-30f);
    ck_assert(fabsf(gd[3]) < 1e-30f);
    for (int i = 0; i < 6; i++)
        ck_assert(isfinite(gd[i]));
    dng_tensor_destroy(tp);
    dng_tensor_destroy(tt);
    dng_tensor_destroy(g);
    dng_tensor_destroy(cp);
    dng_tensor_destroy(cl);
    dng_tensor_destroy(cg);
}
END_TEST

START_TEST(test_non_finite)
{
    const dng_loss_kind kinds[4] = {DNG_LOSS_MSE, DNG_LOSS_BCE_WITH_LOGITS,
                                    DNG_LOSS_CROSS_ENTROPY, DNG_LOSS_HINGE};
    const float bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 2; b++) {
            float p[N * C], t[N * C], v = 42.0f;
            dng_tensor *tp, *tt, *tg;
            dng_test_fill(p, N * C, 8, -1.0f, 1.0f);
            for (int i = 0; i < N * C; i++)
                t[i] = kinds[k] == DNG_LOSS_HINGE ? 1.0f
                       : kinds[k] == DNG_LOSS_CROSS_ENTROPY
                           ? (float)(i % C)
                           : 0.5f;
            p[7] = bad[b];
            tp = make(2, N, C, p);
            tt = kinds[k] == DNG_LOSS_CROSS_ENTROPY ? make(1, N, 1, t)
                                                    : make(2, N, C, t);
            tg = make(2, N, C, NULL);
            dng_clear_error();
            ck_assert_int_eq(dng_loss(kinds[k], tp, tt, &v, tg),
                             DNG_ERR_NUMERIC);
            ck_assert_float_eq(v, 42.0f); /* value is left alone */
            ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_loss"));
            dng_tensor_destroy(tp);
            dng_tensor_destroy(tt);
            dng_tensor_destroy(tg);
        }
    /* A NaN target is a numeric failure too, not a range error. */
    {
        float q[2] = {0.5f, 0.5f}, t[2] = {0.0f, NAN}, v;
        dng_tensor *tp = make(1, 2, 1, q), *tt = make(1, 2, 1, t);
        ck_assert_int_eq(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, tp, tt, &v,
                                  NULL), DNG_ERR_NUMERIC);
        ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, tp, tt, &v, NULL),
                         DNG_ERR_NUMERIC);
        dng_tensor_data(tt)[0] = 1.0f;
        ck_assert_int_eq(dng_loss(DNG_LOSS_HINGE, tp, tt, &v, NULL),
                         DNG_ERR_NUMERIC);
        dng_tensor_destroy(tp);
        dng_tensor_destroy(tt);
    }
}
END_TEST

START_TEST(test_bad_labels)
{
    const float bad[5] = {5.0f, -1.0f, 1.5f, NAN, 1e9f};
    const char *shown[5] = {"holds 5,", "holds -1,", "holds 1.5,",
                            "holds nan,", "holds 1e+09,"};
    float p[N * C];
    dng_test_fill(p, N * C, 9, -1.0f, 1.0f);
    for (int b = 0; b < 5; b++) {
        float lab[N] = {0, 1, 2, 3, 4, 0}, v = 42.0f;
        dng_tensor *tp = make(2, N, C, p), *tl, *tg = make(2, N, C, NULL);
        lab[3] = bad[b];
        tl = make(1, N, 1, lab);
        dng_tensor_fill(tg, 9.0f);
        ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, tp, tl, &v, tg),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "row 3"));
        ck_assert_msg(strstr(dng_last_error(), shown[b]) != NULL,
                      "message: %s", dng_last_error());
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "0..4"));
        /* Nothing was written. */
        ck_assert_float_eq(v, 42.0f);
        for (int i = 0; i < N * C; i++)
            ck_assert_float_eq(dng_tensor_data(tg)[i], 9.0f);
        dng_tensor_destroy(tp);
        dng_tensor_destroy(tl);
        dng_tensor_destroy(tg);
    }
    /* Targets of the elementwise losses out of their ranges. */
    {
        float q[3] = {0.1f, 0.2f, 0.3f}, t[3] = {0.0f, 1.5f, 1.0f}, v;
        float h[3] = {1.0f, -1.0f, 0.0f};
        dng_tensor *tp = make(1, 3, 1, q), *tt = make(1, 3, 1, t);
        dng_tensor *th = make(1, 3, 1, h);
        ck_assert_int_eq(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, tp, tt, &v,
                                  NULL), DNG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "target[1] = 1.5"));
        ck_assert_int_eq(dng_loss(DNG_LOSS_HINGE, tp, th, &v, NULL),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "target[2] = 0"));
        dng_tensor_destroy(tp);
        dng_tensor_destroy(tt);
        dng_tensor_destroy(th);
    }
}
END_TEST

START_TEST(test_shape_errors)
{
    float v;
    dng_tensor *a = make(2, 2, 3, NULL), *b = make(2, 3, 2, NULL);
    dng_tensor *c = make(1, 6, 1, NULL), *lab = make(1, 3, 1, NULL);
    dng_tensor *lab2 = make(2, 2, 2, NULL);
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, a, b, &v, NULL), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[2, 3]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[3, 2]"));
    ck_assert_int_eq(dng_loss(DNG_LOSS_HINGE, a, c, &v, NULL),
                     DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[6]"));
    /* grad must have pred's shape */
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, a, a, &v, b), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "grad"));
    /* cross-entropy: pred must be [N, C], target [N] or [N, 1] */
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, c, c, &v, NULL),
                     DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[N, C]"));
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, a, lab, &v, NULL),
                     DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[3]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[2, 3]"));
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, a, lab2, &v, NULL),
                     DNG_ERR_SHAPE);
    /* arguments */
    ck_assert_int_eq(dng_loss((dng_loss_kind)4, a, a, &v, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "kind 4"));
    ck_assert_int_eq(dng_loss((dng_loss_kind)-1, a, a, &v, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, NULL, a, &v, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "pred"));
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, a, NULL, &v, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "target"));
    /* value and grad are both optional */
    ck_assert_int_eq(dng_loss(DNG_LOSS_MSE, a, a, NULL, NULL), DNG_OK);
    dng_tensor_destroy(a);
    dng_tensor_destroy(b);
    dng_tensor_destroy(c);
    dng_tensor_destroy(lab);
    dng_tensor_destroy(lab2);
}
END_TEST

START_TEST(test_in_place_grad)
{
    /* grad may be pred itself: the result equals the separate one. */
    float p[N * C], lab[N];
    dng_tensor *tp, *tq, *tl, *tg;
    float v1, v2;
    dng_test_fill(p, N * C, 10, -3.0f, 3.0f);
    for (int i = 0; i < N; i++)
        lab[i] = (float)(i % C);
    tp = make(2, N, C, p);
    tq = make(2, N, C, p);
    tl = make(1, N, 1, lab);
    tg = make(2, N, C, NULL);
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, tp, tl, &v1, tg),
                     DNG_OK);
    ck_assert_int_eq(dng_loss(DNG_LOSS_CROSS_ENTROPY, tq, tl, &v2, tq),
                     DNG_OK);
    ck_assert_float_eq(v1, v2);
    ck_assert_int_eq(memcmp(dng_tensor_data(tg), dng_tensor_data(tq),
                            sizeof p), 0);
    dng_tensor_destroy(tp);
    dng_tensor_destroy(tq);
    dng_tensor_destroy(tl);
    dng_tensor_destroy(tg);
}
END_TEST

static Suite *loss_suite(void)
{
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_mse);
    tcase_add_test(tc, test_bce);
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_hinge);
    tcase_add_test(tc, test_column_against_vector);
    tcase_add_test(tc, test_large_logits);
    tcase_add_test(tc, test_non_finite);
    tcase_add_test(tc, test_bad_labels);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_in_place_grad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dng_test_run(loss_suite());
}
