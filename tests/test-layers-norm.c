/* test-layers-norm.c: batch norm, layer norm, dropout, reshape/flatten
 * and spectral norm through the public API, against closed forms
 * computed here in double precision and central finite differences. */
#include <stdint.h>

#include "testutil.h"

#define BN_EPS 1e-5

/* ---- helpers ----------------------------------------------------------- */

/* A network of one layer over samples of `shape`. */
static dng_net *net1(int ndim, const int64_t *shape, dng_layer *layer)
{
    dng_net *net = dng_net_create(ndim, shape);
    ck_assert_ptr_nonnull(net);
    ck_assert_msg(dng_net_add(net, layer) == DNG_OK, "dng_net_add: %s",
                  dng_last_error());
    return net;
}

/* A tensor [n, sample...] of uniform values in [lo, hi). */
static dng_tensor *rand_batch(int64_t n, int ndim, const int64_t *sample,
                              unsigned seed, float lo, float hi)
{
    int64_t shape[DNG_MAX_DIMS];
    dng_tensor *t;
    shape[0] = n;
    memcpy(shape + 1, sample, sizeof(int64_t) * (size_t)ndim);
    t = dng_tensor_create(ndim + 1, shape);
    ck_assert_ptr_nonnull(t);
    dng_test_fill(dng_tensor_data(t), dng_tensor_numel(t), seed, lo, hi);
    return t;
}

static float *fdata(dng_net *net, int param)
{
    return dng_tensor_data(dng_net_param(net, param));
}

static float *bdata(dng_net *net, int buffer)
{
    return dng_tensor_data(dng_net_buffer(net, buffer));
}

/* Run dng_test_gradcheck and fail with its report when the worst ratio
 * exceeds 1. */
static void gradcheck(dng_net *net, dng_tensor *x, double eps, double atol,
                      double rtol, const char *what)
{
    char where[256];
    double worst = dng_test_gradcheck(net, x, eps, atol, rtol, 64, where,
                                      sizeof where);
    ck_assert_msg(worst <= 1.0, "%s: gradient check ratio %g at %s", what,
                  worst, where);
    ck_assert_msg(strcmp(where, "nothing checked") != 0, "%s: nothing "
                  "checked", what);
}

/* ---- batch norm -------------------------------------------------------- */

/* Closed-form batch statistics of x [n, C, P]: mean and biased variance
 * per channel. */
static void bn_ref_stats(const float *x, int64_t n, int64_t C, int64_t P,
                         double *mean, double *var)
{
    for (int64_t c = 0; c < C; c++) {
        double s = 0.0, q = 0.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < P; p++)
                s += x[(i * C + c) * P + p];
        mean[c] = s / (double)(n * P);
        for (int64_t i = 0; i < n; i++)
            for (int64_t p = 0; p < P; p++) {
                double d = x[(i * C + c) * P + p] - mean[c];
                q += d * d;
            }
        var[c] = q / (double)(n * P);
    }
}

/* y = (x - mean) / sqrt(var + eps) * g + b, compared with `y`. */
static void bn_check_output(const float *x, const float *y, int64_t n,
                            int64_t C, int64_t P, const double *mean,
                            const double *var, const float *g,
                            const float *b)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = 0; p < P; p++) {
                int64_t k = (i * C + c) * P + p;
                double want = (x[k] - mean[c]) / sqrt(var[c] + BN_EPS) *
                              g[c] + b[c];
                ck_assert_msg(fabs(y[k] - want) <= 1e-5 + 1e-5 * fabs(want),
                              "y[%lld] = %.8g, want %.8g", (long long)k,
                              (double)y[k], want);
            }
}

static void bn_forward_case(int ndim, const int64_t *sample, int64_t n)
{
    const int64_t C = sample[0];
    int64_t P = 1;
    dng_net *net = net1(ndim, sample, dng_batchnorm(C));
    dng_tensor *x, *y = NULL;
    double mean[16], var[16];
    float *g = fdata(net, 0), *b = fdata(net, 1);
    for (int i = 1; i < ndim; i++)
        P *= sample[i];
    /* Non-trivial affine parameters and an offset input, so that a
     * one-pass variance or a missing affine term would show. */
    for (int64_t c = 0; c < C; c++) {
        g[c] = 0.5f + 0.25f * (float)c;
        b[c] = -0.3f + 0.1f * (float)c;
    }
    x = rand_batch(n, ndim, sample, 11, 2.0f, 5.0f);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    bn_ref_stats(dng_tensor_data(x), n, C, P, mean, var);
    bn_check_output(dng_tensor_data(x), dng_tensor_data(y), n, C, P, mean,
                    var, g, b);
    /* The normalised output has zero mean and unit (biased) variance per
     * channel before the affine map: check through g = 1, b = 0. */
    for (int64_t c = 0; c < C; c++) {
        g[c] = 1.0f;
        b[c] = 0.0f;
    }
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    {
        double ym[16], yv[16];
        bn_ref_stats(dng_tensor_data(y), n, C, P, ym, yv);
        for (int64_t c = 0; c < C; c++) {
            ck_assert(fabs(ym[c]) < 1e-5);
            ck_assert(fabs(yv[c] - var[c] / (var[c] + BN_EPS)) < 1e-4);
        }
    }
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}

START_TEST(bn_forward_values)
{
    int64_t s4[3] = {3, 2, 5}, s2[1] = {4};
    bn_forward_case(3, s4, 4);
    bn_forward_case(1, s2, 6);
}
END_TEST

START_TEST(bn_running_stats)
{
    const int64_t C = 3, P = 4, n = 5, steps = 4;
    int64_t sample[3] = {3, 2, 2};
    dng_net *net = net1(3, sample, dng_batchnorm(C));
    double rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1}, mean[3], var[3];
    dng_tensor *x = NULL, *y = NULL;
    float keep_m[3], keep_v[3];
    ck_assert_int_eq(dng_net_num_buffers(net), 2);
    ck_assert_str_eq(dng_net_buffer_name(net, 0), "0.running_mean");
    ck_assert_str_eq(dng_net_buffer_name(net, 1), "0.running_var");
    ck_assert_str_eq(dng_net_param_name(net, 0), "0.weight");
    ck_assert_str_eq(dng_net_param_name(net, 1), "0.bias");
    for (int k = 0; k < steps; k++) {
        x = rand_batch(n, 3, sample, 100 + (unsigned)k, -1.0f + (float)k,
                       3.0f + 2.0f * (float)k);
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
        bn_ref_stats(dng_tensor_data(x), n, C, P, mean, var);
        /* momentum 0.1, unbiased variance m / (m - 1) */
        for (int c = 0; c < C; c++) {
            double m = (double)(n * P);
            rm[c] = 0.9 * rm[c] + 0.1 * mean[c];
            rv[c] = 0.9 * rv[c] + 0.1 * var[c] * m / (m - 1.0);
        }
        dng_tensor_destroy(x);
    }
    for (int c = 0; c < C; c++) {
        ck_assert_msg(fabs(bdata(net, 0)[c] - rm[c]) < 1e-5,
                      "running_mean[%d] = %g, want %g", c,
                      (double)bdata(net, 0)[c], rm[c]);
        ck_assert_msg(fabs(bdata(net, 1)[c] - rv[c]) < 1e-5 * (1 + rv[c]),
                      "running_var[%d] = %g, want %g", c,
                      (double)bdata(net, 1)[c], rv[c]);
        keep_m[c] = bdata(net, 0)[c];
        keep_v[c] = bdata(net, 1)[c];
    }
    /* Evaluation mode normalises with the running statistics and leaves
     * them untouched. */
    ck_assert_int_eq(dng_net_set_training(net, 0), DNG_OK);
    x = rand_batch(2, 3, sample, 7, -2.0f, 2.0f);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    bn_check_output(dng_tensor_data(x), dng_tensor_data(y), 2, C, P, rm, rv,
                    fdata(net, 0), fdata(net, 1));
    for (int c = 0; c < C; c++) {
        ck_assert(bdata(net, 0)[c] == keep_m[c]);
        ck_assert(bdata(net, 1)[c] == keep_v[c]);
    }
    /* A batch of one works in evaluation mode... */
    {
        dng_tensor *x1 = rand_batch(1, 1, (int64_t[]){3}, 3, 0.0f, 1.0f);
        dng_net *flat = net1(1, (int64_t[]){3}, dng_batchnorm(3));
        ck_assert_int_eq(dng_net_set_training(flat, 0), DNG_OK);
        ck_assert_int_eq(dng_net_forward(flat, x1, &y), DNG_OK);
        /* ...and is refused in training mode: no variance to estimate. */
        ck_assert_int_eq(dng_net_set_training(flat, 1), DNG_OK);
        ck_assert_int_eq(dng_net_forward(flat, x1, &y), DNG_ERR_SHAPE);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "batchnorm"));
        dng_tensor_destroy(x1);
        dng_net_destroy(flat);
    }
    /* dng_net_init resets the running statistics. */
    {
        dng_rng *rng = dng_rng_create(1);
        ck_assert_int_eq(dng_net_init(net, DNG_INIT_XAVIER_UNIFORM, rng),
                         DNG_OK);
        for (int c = 0; c < C; c++) {
            ck_assert(bdata(net, 0)[c] == 0.0f);
            ck_assert(bdata(net, 1)[c] == 1.0f);
            ck_assert(fdata(net, 0)[c] == 1.0f);
            ck_assert(fdata(net, 1)[c] == 0.0f);
        }
        dng_rng_destroy(rng);
    }
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

START_TEST(bn_init_normal_002)
{
    const int64_t C = 4096;
    dng_net *net = net1(1, &C, dng_batchnorm(C));
    dng_rng *rng = dng_rng_create(5);
    double s = 0.0, q = 0.0;
    float *g = fdata(net, 0);
    ck_assert_int_eq(dng_net_init(net, DNG_INIT_NORMAL_002, rng), DNG_OK);
    for (int64_t c = 0; c < C; c++)
        s += g[c];
    s /= (double)C;
    for (int64_t c = 0; c < C; c++)
        q += (g[c] - s) * (g[c] - s);
    q = sqrt(q / (double)(C - 1));
    /* N(1, 0.02^2): the mean's standard error is 0.02 / 64 = 3e-4. */
    ck_assert_msg(fabs(s - 1.0) < 0.0015, "mean %g", s);
    ck_assert_msg(fabs(q - 0.02) < 0.002, "std %g", q);
    for (int64_t c = 0; c < C; c++)
        ck_assert(fdata(net, 1)[c] == 0.0f);
    dng_rng_destroy(rng);
    dng_net_destroy(net);
}
END_TEST

static void bn_grad_case(int ndim, const int64_t *sample, int64_t n,
                         int training)
{
    dng_net *net = net1(ndim, sample, dng_batchnorm(sample[0]));
    dng_tensor *x = rand_batch(n, ndim, sample, 21, -1.5f, 2.5f), *y;
    float *g = fdata(net, 0), *b = fdata(net, 1);
    for (int64_t c = 0; c < sample[0]; c++) {
        g[c] = 0.7f + 0.3f * (float)c;
        b[c] = 0.2f * (float)c;
    }
    /* Non-trivial running statistics for the evaluation-mode check. */
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert_int_eq(dng_net_set_training(net, training), DNG_OK);
    if (training) {
        /* Every forward of the check updates the running statistics,
         * which the training-mode output does not depend on. */
        gradcheck(net, x, 1e-2, 2e-3, 2e-2, "batchnorm (training)");
    } else {
        gradcheck(net, x, 1e-2, 1e-3, 1e-2, "batchnorm (evaluation)");
    }
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}

START_TEST(bn_gradients)
{
    int64_t s3[3] = {3, 3, 2}, s1[1] = {5};
    bn_grad_case(3, s3, 4, 1);
    bn_grad_case(3, s3, 4, 0);
    bn_grad_case(1, s1, 6, 1);
    bn_grad_case(1, s1, 6, 0);
}
END_TEST

START_TEST(bn_errors)
{
    int64_t s[3] = {4, 2, 2};
    dng_net *net = dng_net_create(3, s);
    ck_assert_ptr_null(dng_batchnorm(0));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "channels"));
    ck_assert_ptr_null(dng_batchnorm(-3));
    ck_assert_int_eq(dng_net_add(net, dng_batchnorm(3)), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "C = 3"));
    ck_assert_int_eq(dng_net_num_layers(net), 0);
    dng_net_destroy(net);
}
END_TEST

/* ---- layer norm -------------------------------------------------------- */

START_TEST(ln_forward_values)
{
    const int64_t F = 7;
    int64_t sample[2] = {3, 7};
    const int64_t n = 4, rows = n * 3;
    dng_net *net = net1(2, sample, dng_layernorm(F));
    dng_tensor *x = rand_batch(n, 2, sample, 31, 1.0f, 9.0f), *y = NULL;
    float *g = fdata(net, 0), *b = fdata(net, 1);
    const float *xd, *yd;
    ck_assert_str_eq(dng_net_param_name(net, 0), "0.weight");
    ck_assert_str_eq(dng_net_param_name(net, 1), "0.bias");
    ck_assert(g[0] == 1.0f && b[0] == 0.0f);
    for (int64_t j = 0; j < F; j++) {
        g[j] = 1.5f - 0.2f * (float)j;
        b[j] = 0.05f * (float)j - 0.1f;
    }
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    xd = dng_tensor_data(x);
    yd = dng_tensor_data(y);
    for (int64_t r = 0; r < rows; r++) {
        double m = 0.0, v = 0.0;
        for (int64_t j = 0; j < F; j++)
            m += xd[r * F + j];
        m /= (double)F;
        for (int64_t j = 0; j < F; j++)
            v += (xd[r * F + j] - m) * (xd[r * F + j] - m);
        v /= (double)F;
        for (int64_t j = 0; j < F; j++) {
            double want = (xd[r * F + j] - m) / sqrt(v + BN_EPS) * g[j] +
                          b[j];
            ck_assert_msg(fabs(yd[r * F + j] - want) <= 1e-5 + 1e-5 *
                          fabs(want), "y[%lld] = %.8g, want %.8g",
                          (long long)(r * F + j), (double)yd[r * F + j],
                          want);
        }
    }
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

START_TEST(ln_gradients)
{
    int64_t s2[2] = {2, 6}, s1[1] = {9};
    for (int training = 1; training >= 0; training--) {
        dng_net *net = net1(2, s2, dng_layernorm(6));
        dng_tensor *x = rand_batch(3, 2, s2, 41, -2.0f, 2.0f);
        float *g = fdata(net, 0), *b = fdata(net, 1);
        for (int j = 0; j < 6; j++) {
            g[j] = 0.5f + 0.2f * (float)j;
            b[j] = 0.1f * (float)j;
        }
        ck_assert_int_eq(dng_net_set_training(net, training), DNG_OK);
        gradcheck(net, x, 1e-2, 1e-3, 1e-2, "layernorm [2, 6]");
        dng_tensor_destroy(x);
        dng_net_destroy(net);
        net = net1(1, s1, dng_layernorm(9));
        x = rand_batch(4, 1, s1, 42, 0.0f, 3.0f);
        ck_assert_int_eq(dng_net_set_training(net, training), DNG_OK);
        gradcheck(net, x, 1e-2, 1e-3, 1e-2, "layernorm [9]");
        dng_tensor_destroy(x);
        dng_net_destroy(net);
    }
}
END_TEST

START_TEST(ln_errors)
{
    int64_t s[2] = {3, 5};
    dng_net *net = dng_net_create(2, s);
    ck_assert_ptr_null(dng_layernorm(0));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "features"));
    ck_assert_int_eq(dng_net_add(net, dng_layernorm(3)), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "last dimension is 3"));
    ck_assert_int_eq(dng_net_add(net, dng_layernorm(5)), DNG_OK);
    dng_net_destroy(net);
}
END_TEST

/* ---- dropout ----------------------------------------------------------- */

START_TEST(dropout_statistics)
{
    const int64_t F = 1000, n = 100; /* 100k elements */
    const float p = 0.3f;
    dng_net *net = net1(1, &F, dng_dropout(p));
    dng_tensor *x = rand_batch(n, 1, &F, 51, 0.5f, 1.5f), *y = NULL;
    const float *xd = dng_tensor_data(x);
    float *first = malloc(sizeof(float) * (size_t)(n * F));
    int64_t zeros = 0, diff = 0;
    ck_assert_int_eq(dng_net_set_seed(net, 123), DNG_OK);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    for (int64_t i = 0; i < n * F; i++) {
        float v = dng_tensor_data(y)[i];
        if (v == 0.0f) {
            zeros++;
        } else {
            /* Survivors are scaled by 1 / (1 - p). */
            double want = xd[i] / (1.0 - (double)p);
            ck_assert_msg(fabs(v - want) <= 1e-6 * want, "y[%lld] = %g, "
                          "want %g", (long long)i, (double)v, want);
        }
    }
    /* Binomial(1e5, 0.3): standard deviation of the fraction 0.00145. */
    ck_assert_msg(fabs((double)zeros / (double)(n * F) - p) < 0.0075,
                  "fraction of zeros %g", (double)zeros / (double)(n * F));
    memcpy(first, dng_tensor_data(y), sizeof(float) * (size_t)(n * F));
    /* Same seed, same mask; another seed, another mask. */
    ck_assert_int_eq(dng_net_set_seed(net, 123), DNG_OK);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert(memcmp(first, dng_tensor_data(y),
                     sizeof(float) * (size_t)(n * F)) == 0);
    ck_assert_int_eq(dng_net_set_seed(net, 124), DNG_OK);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    for (int64_t i = 0; i < n * F; i++)
        diff += (first[i] == 0.0f) != (dng_tensor_data(y)[i] == 0.0f);
    /* Independent masks disagree on 2 p (1 - p) = 42% of entries. */
    ck_assert_msg(diff > 40000 && diff < 44000, "masks differ in %lld",
                  (long long)diff);
    /* Backward: dx = dy * mask, from the last forward's mask. */
    {
        dng_tensor *dy = rand_batch(n, 1, &F, 52, -1.0f, 1.0f), *dx = NULL;
        const float *yd = dng_tensor_data(y), *gd = dng_tensor_data(dy);
        ck_assert_int_eq(dng_net_backward(net, dy, &dx), DNG_OK);
        for (int64_t i = 0; i < n * F; i++) {
            double want = yd[i] == 0.0f ? 0.0 : gd[i] / (1.0 - (double)p);
            ck_assert(fabs(dng_tensor_data(dx)[i] - want) <= 1e-6);
        }
        dng_tensor_destroy(dy);
    }
    /* Evaluation mode is the identity. */
    ck_assert_int_eq(dng_net_set_training(net, 0), DNG_OK);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert(memcmp(xd, dng_tensor_data(y),
                     sizeof(float) * (size_t)(n * F)) == 0);
    free(first);
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

START_TEST(dropout_p0_and_gradients)
{
    int64_t s[2] = {3, 4};
    dng_net *net = net1(2, s, dng_dropout(0.0f));
    dng_tensor *x = rand_batch(5, 2, s, 61, -1.0f, 1.0f), *y = NULL;
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert(memcmp(dng_tensor_data(x), dng_tensor_data(y),
                     sizeof(float) * 60) == 0);
    dng_net_destroy(net);
    for (int training = 1; training >= 0; training--) {
        net = net1(2, s, dng_dropout(0.5f));
        ck_assert_int_eq(dng_net_set_training(net, training), DNG_OK);
        gradcheck(net, x, 1e-2, 1e-4, 1e-3, "dropout");
        dng_net_destroy(net);
    }
    dng_tensor_destroy(x);
}
END_TEST

START_TEST(dropout_errors)
{
    ck_assert_ptr_null(dng_dropout(1.0f));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "p = 1"));
    ck_assert_ptr_null(dng_dropout(-0.1f));
    ck_assert_ptr_null(dng_dropout(NAN));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_dropout"));
}
END_TEST

/* ---- reshape and flatten ----------------------------------------------- */

START_TEST(reshape_values)
{
    int64_t in[1] = {24}, to[3] = {2, -1, 4}, out[DNG_MAX_DIMS];
    int nd;
    dng_net *net = net1(1, in, dng_reshape(3, to));
    dng_tensor *x = rand_batch(3, 1, in, 71, -1.0f, 1.0f), *y = NULL, *dx;
    ck_assert_int_eq(dng_net_output_shape(net, &nd, out), DNG_OK);
    ck_assert_int_eq(nd, 3);
    ck_assert(out[0] == 2 && out[1] == 3 && out[2] == 4);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert_int_eq(dng_tensor_ndim(y), 4);
    ck_assert(dng_tensor_dim(y, 0) == 3 && dng_tensor_dim(y, 2) == 3);
    ck_assert(memcmp(dng_tensor_data(x), dng_tensor_data(y),
                     sizeof(float) * 72) == 0);
    /* Flatten back: the round trip is the identity, and backward through
     * both is the identity too. */
    ck_assert_int_eq(dng_net_add(net, dng_flatten()), DNG_OK);
    ck_assert_int_eq(dng_net_output_shape(net, &nd, out), DNG_OK);
    ck_assert(nd == 1 && out[0] == 24);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert(memcmp(dng_tensor_data(x), dng_tensor_data(y),
                     sizeof(float) * 72) == 0);
    {
        dng_tensor *dy = rand_batch(3, 1, in, 72, -1.0f, 1.0f);
        ck_assert_int_eq(dng_net_backward(net, dy, &dx), DNG_OK);
        ck_assert_int_eq(dng_tensor_ndim(dx), 2);
        ck_assert(memcmp(dng_tensor_data(dy), dng_tensor_data(dx),
                         sizeof(float) * 72) == 0);
        dng_tensor_destroy(dy);
    }
    gradcheck(net, x, 1e-2, 1e-4, 1e-3, "reshape + flatten");
    dng_net_destroy(net);
    dng_tensor_destroy(x);
}
END_TEST

START_TEST(reshape_errors)
{
    int64_t in[3] = {2, 3, 4}, bad[2] = {5, 5}, two[2] = {-1, -1};
    int64_t zero[2] = {0, 24}, div[2] = {-1, 5};
    dng_net *net = dng_net_create(3, in);
    ck_assert_int_eq(dng_net_add(net, dng_reshape(2, bad)), DNG_ERR_SHAPE);
    ck_assert_msg(strstr(dng_last_error(), "needs 25 elements") &&
                  strstr(dng_last_error(), "has 24"), "%s",
                  dng_last_error());
    ck_assert_int_eq(dng_net_add(net, dng_reshape(2, div)), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "a multiple of 5"));
    ck_assert_ptr_null(dng_reshape(2, two));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "more than one -1"));
    ck_assert_ptr_null(dng_reshape(2, zero));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "shape[0] = 0"));
    ck_assert_ptr_null(dng_reshape(0, bad));
    ck_assert_ptr_null(dng_reshape(DNG_MAX_DIMS, bad));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "ndim"));
    ck_assert_ptr_null(dng_reshape(2, NULL));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "shape is NULL"));
    ck_assert_int_eq(dng_net_num_layers(net), 0);
    /* A 7-D per-sample shape is the largest allowed. */
    {
        int64_t seven[7] = {2, 1, 3, 1, 1, 4, 1};
        ck_assert_int_eq(dng_net_add(net, dng_reshape(7, seven)), DNG_OK);
    }
    dng_net_destroy(net);
}
END_TEST

/* ---- spectral norm ----------------------------------------------------- */

/* Largest singular value of a [h, w] matrix in double: power iteration on
 * A^T A from a fixed start until the estimate settles. */
static double ref_sigma(const double *a, int64_t h, int64_t w)
{
    double *v = calloc((size_t)w, sizeof *v);
    double *t = calloc((size_t)h, sizeof *t);
    double sigma = 0.0;
    for (int64_t j = 0; j < w; j++)
        v[j] = 1.0 + 0.01 * (double)j;
    for (int it = 0; it < 100000; it++) {
        double nv = 0.0, prev = sigma;
        for (int64_t o = 0; o < h; o++) { /* t = A v */
            t[o] = 0.0;
            for (int64_t j = 0; j < w; j++)
                t[o] += a[o * w + j] * v[j];
        }
        for (int64_t j = 0; j < w; j++) { /* v = A^T t */
            v[j] = 0.0;
            for (int64_t o = 0; o < h; o++)
                v[j] += a[o * w + j] * t[o];
            nv += v[j] * v[j];
        }
        nv = sqrt(nv);
        for (int64_t j = 0; j < w; j++)
            v[j] /= nv;
        sigma = sqrt(nv); /* |A^T A v| = sigma^2 for the unit top v */
        if (it > 10 && fabs(sigma - prev) < 1e-14 * sigma)
            break;
    }
    free(v);
    free(t);
    return sigma;
}

/* W_mat of a weight: dim 0 first ([d0, rest]) or dim 1 first. */
static double *weight_mat(const float *wt, int64_t d0, int64_t d1,
                          int64_t kk, int dim1)
{
    double *m = malloc(sizeof(double) * (size_t)(d0 * d1 * kk));
    for (int64_t i = 0; i < d0; i++)
        for (int64_t o = 0; o < d1; o++)
            for (int64_t r = 0; r < kk; r++) {
                double v = wt[(i * d1 + o) * kk + r];
                if (dim1) /* row o, column i kk + r */
                    m[o * d0 * kk + i * kk + r] = v;
                else
                    m[i * d1 * kk + o * kk + r] = v;
            }
    return m;
}

START_TEST(sn_diagonal)
{
    /* W = [[3, 0, 0, 0], [0, -2, 0, 0], [0, 0, 1, 0]]: sigma = 3. */
    int64_t in = 4, id[2] = {4, 4};
    dng_net *net = net1(1, &in, dng_spectral_norm(dng_dense(4, 3)));
    dng_tensor *x = dng_tensor_create(2, id), *y = NULL;
    float *w, *u, *v;
    ck_assert_int_eq(dng_net_num_params(net), 2);
    ck_assert_str_eq(dng_net_param_name(net, 0), "0.weight_orig");
    ck_assert_str_eq(dng_net_param_name(net, 1), "0.bias");
    ck_assert_int_eq(dng_net_num_buffers(net), 2);
    ck_assert_str_eq(dng_net_buffer_name(net, 0), "0.weight_u");
    ck_assert_str_eq(dng_net_buffer_name(net, 1), "0.weight_v");
    ck_assert_int_eq(dng_tensor_numel(dng_net_buffer(net, 0)), 3);
    ck_assert_int_eq(dng_tensor_numel(dng_net_buffer(net, 1)), 4);
    ck_assert_int_eq(dng_net_param_count(net), 15);
    w = fdata(net, 0);
    memset(w, 0, sizeof(float) * 12);
    w[0] = 3.0f;
    w[5] = -2.0f;
    w[10] = 1.0f;
    for (int o = 0; o < 3; o++)
        fdata(net, 1)[o] = 0.5f * (float)o;
    for (int i = 0; i < 4; i++)
        dng_tensor_data(x)[i * 4 + i] = 1.0f;
    /* Power iteration converges like (2/3)^2 per step. */
    for (int k = 0; k < 60; k++)
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    u = bdata(net, 0);
    v = bdata(net, 1);
    ck_assert(fabs(fabs(u[0]) - 1.0) < 1e-6 && fabs(u[1]) < 1e-6);
    ck_assert(fabs(fabs(v[0]) - 1.0) < 1e-6 && fabs(v[3]) < 1e-6);
    /* y = I (W / 3)^T + b, so y[i, o] = W[o, i] / 3 + b[o]. */
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 3; o++) {
            double want = w[o * 4 + i] / 3.0 + 0.5 * o;
            ck_assert_msg(fabs(dng_tensor_data(y)[i * 3 + o] - want) < 1e-6,
                          "y[%d, %d] = %g, want %g", i, o,
                          (double)dng_tensor_data(y)[i * 3 + o], want);
        }
    /* weight_orig itself is left as it was. */
    ck_assert(w[0] == 3.0f && w[5] == -2.0f && w[1] == 0.0f);
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

START_TEST(sn_one_iteration)
{
    /* One training forward is exactly one power iteration from the stored
     * u: v = normalize(W^T u), u = normalize(W v), as PyTorch; evaluation
     * forwards leave u and v alone. */
    int64_t in = 5;
    dng_net *net = net1(1, &in, dng_spectral_norm(dng_dense(5, 3)));
    dng_tensor *x = rand_batch(2, 1, &in, 81, -1.0f, 1.0f), *y = NULL;
    const float *w = fdata(net, 0);
    float *u = bdata(net, 0), *v = bdata(net, 1);
    double u0[3], v1[5], t[3], nv = 0.0, nt = 0.0, sigma = 0.0;
    float keep_u[3], keep_v[5];
    /* init drew unit vectors */
    ck_assert(fabs(u[0] * u[0] + u[1] * u[1] + u[2] * u[2] - 1.0) < 1e-6);
    for (int o = 0; o < 3; o++)
        u0[o] = u[o];
    for (int j = 0; j < 5; j++) {
        v1[j] = 0.0;
        for (int o = 0; o < 3; o++)
            v1[j] += w[o * 5 + j] * u0[o];
        nv += v1[j] * v1[j];
    }
    for (int j = 0; j < 5; j++)
        v1[j] /= sqrt(nv);
    for (int o = 0; o < 3; o++) {
        t[o] = 0.0;
        for (int j = 0; j < 5; j++)
            t[o] += w[o * 5 + j] * v1[j];
        nt += t[o] * t[o];
    }
    for (int o = 0; o < 3; o++)
        sigma += t[o] / sqrt(nt) * t[o];
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    for (int j = 0; j < 5; j++)
        ck_assert(fabs(v[j] - v1[j]) < 1e-6);
    for (int o = 0; o < 3; o++)
        ck_assert(fabs(u[o] - t[o] / sqrt(nt)) < 1e-6);
    /* y = x (W / sigma)^T + b */
    for (int i = 0; i < 2; i++)
        for (int o = 0; o < 3; o++) {
            double want = fdata(net, 1)[o];
            for (int j = 0; j < 5; j++)
                want += dng_tensor_data(x)[i * 5 + j] * w[o * 5 + j] / sigma;
            ck_assert(fabs(dng_tensor_data(y)[i * 3 + o] - want) < 1e-5);
        }
    memcpy(keep_u, u, sizeof keep_u);
    memcpy(keep_v, v, sizeof keep_v);
    ck_assert_int_eq(dng_net_set_training(net, 0), DNG_OK);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert(memcmp(keep_u, u, sizeof keep_u) == 0);
    ck_assert(memcmp(keep_v, v, sizeof keep_v) == 0);
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

/* Wrap `inner` and a twin `plain` layer of the same kind; after many
 * training forwards the wrapped output must equal the twin's with weight
 * W / sigma_true, sigma_true taken from W_mat in the given layout. */
static void sn_converge_case(dng_layer *inner, dng_layer *plain, int ndim,
                             const int64_t *sample, int64_t d0, int64_t d1,
                             int64_t kk, int dim1, const char *what)
{
    dng_net *net = net1(ndim, sample, dng_spectral_norm(inner));
    dng_net *ref = net1(ndim, sample, plain);
    dng_tensor *x = rand_batch(2, ndim, sample, 91, -1.0f, 1.0f);
    dng_tensor *y = NULL, *yr = NULL;
    const int64_t numel = d0 * d1 * kk;
    float *w = fdata(net, 0);
    double *m, *mw, sigma, wrong;
    dng_rng *rng = dng_rng_create(17);
    ck_assert_int_eq(dng_net_init(net, DNG_INIT_XAVIER_UNIFORM, rng),
                     DNG_OK);
    /* Scale row 0 of W_mat so that the top singular value stands apart
     * and the power iteration converges quickly. In the other layout the
     * scaled entries spread over several rows and give another sigma. */
    for (int64_t i = 0; i < d0; i++)
        for (int64_t o = 0; o < d1; o++)
            for (int64_t r = 0; r < kk; r++)
                if (dim1 ? o == 0 : i == 0)
                    w[(i * d1 + o) * kk + r] *= 3.0f;
    m = weight_mat(w, d0, d1, kk, dim1);
    mw = weight_mat(w, d0, d1, kk, !dim1);
    sigma = dim1 ? ref_sigma(m, d1, d0 * kk) : ref_sigma(m, d0, d1 * kk);
    wrong = dim1 ? ref_sigma(mw, d0, d1 * kk) : ref_sigma(mw, d1, d0 * kk);
    for (int k = 0; k < 300; k++)
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    /* The estimate u^T W v from the stored vectors. */
    {
        const float *u = bdata(net, 0), *v = bdata(net, 1);
        int64_t h = dim1 ? d1 : d0, wd = numel / h;
        double est = 0.0;
        ck_assert_int_eq(dng_tensor_numel(dng_net_buffer(net, 0)), h);
        for (int64_t o = 0; o < h; o++)
            for (int64_t j = 0; j < wd; j++)
                est += u[o] * m[o * wd + j] * v[j];
        ck_assert_msg(fabs(est - sigma) < 1e-4 * sigma, "%s: sigma %g, "
                      "want %g", what, est, sigma);
    }
    for (int64_t i = 0; i < numel; i++)
        fdata(ref, 0)[i] = (float)(w[i] / sigma);
    memcpy(fdata(ref, 1), fdata(net, 1),
           sizeof(float) * (size_t)dng_tensor_numel(dng_net_param(net, 1)));
    ck_assert_int_eq(dng_net_forward(ref, x, &yr), DNG_OK);
    ck_assert_msg(dng_test_close_ratio(dng_tensor_data(y),
                                       dng_tensor_data(yr),
                                       dng_tensor_numel(y), 1e-5,
                                       1e-4) <= 1.0,
                  "%s: output differs from W / sigma", what);
    /* For convolutions the layout matters: the other permutation has
     * another sigma, so this test would catch a wrong one. (For dense
     * the other layout is the transpose, with the same sigma.) */
    if (kk > 1)
        ck_assert_msg(fabs(wrong - sigma) > 0.05 * sigma, "%s: both "
                      "layouts give sigma %g", what, sigma);
    /* With u, v fixed (evaluation mode) the backward is exact. */
    ck_assert_int_eq(dng_net_set_training(net, 0), DNG_OK);
    gradcheck(net, x, 1e-3, 1e-3, 1e-2, what);
    free(m);
    free(mw);
    dng_rng_destroy(rng);
    dng_tensor_destroy(x);
    dng_net_destroy(net);
    dng_net_destroy(ref);
}

START_TEST(sn_dense)
{
    int64_t in = 6;
    sn_converge_case(dng_dense(6, 5), dng_dense(6, 5), 1, &in, 5, 6, 1, 0,
                     "spectral_norm(dense)");
}
END_TEST

START_TEST(sn_conv2d)
{
    int64_t s[3] = {2, 5, 5};
    sn_converge_case(dng_conv2d(2, 3, 3, 3, 1, 1),
                     dng_conv2d(2, 3, 3, 3, 1, 1), 3, s, 3, 2, 9, 0,
                     "spectral_norm(conv2d)");
}
END_TEST

START_TEST(sn_conv2d_transpose)
{
    int64_t s[3] = {3, 3, 3};
    sn_converge_case(dng_conv2d_transpose(3, 2, 3, 3, 2, 1),
                     dng_conv2d_transpose(3, 2, 3, 3, 2, 1), 3, s, 3, 2, 9,
                     1, "spectral_norm(conv2d_transpose)");
}
END_TEST

START_TEST(sn_gradients_training)
{
    /* Once u and v have converged, the training-mode gradient (u, v held
     * constant) matches finite differences too: the power iteration's
     * own dependence on W is second order at the fixed point. */
    int64_t in = 4;
    dng_net *net = net1(1, &in, dng_spectral_norm(dng_dense(4, 3)));
    dng_tensor *x = rand_batch(3, 1, &in, 95, -1.0f, 1.0f), *y = NULL;
    float *w = fdata(net, 0);
    w[0] += 1.0f; /* a dominant singular value */
    for (int k = 0; k < 100; k++)
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    gradcheck(net, x, 1e-3, 2e-3, 2e-2, "spectral_norm (training)");
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

START_TEST(sn_thread_count)
{
    /* The same numbers whatever the thread count: a weight large enough
     * for the power iteration to use every thread, and the batch-norm
     * statistics after it. */
    int64_t in = 1024;
    float *y1 = malloc(sizeof(float) * 2 * 1024);
    float u1[1024];
    for (int threads = 1; threads <= 2; threads++) {
        dng_net *net = net1(1, &in, dng_spectral_norm(dng_dense(1024,
                                                                1024)));
        dng_tensor *x = rand_batch(2, 1, &in, 97, -1.0f, 1.0f), *y = NULL;
        ck_assert_int_eq(dng_net_add(net, dng_batchnorm(1024)), DNG_OK);
        ck_assert_int_eq(dng_set_num_threads(threads), DNG_OK);
        for (int k = 0; k < 3; k++)
            ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
        if (threads == 1) {
            memcpy(y1, dng_tensor_data(y), sizeof(float) * 2048);
            memcpy(u1, bdata(net, 0), sizeof u1);
        } else {
            ck_assert(memcmp(y1, dng_tensor_data(y),
                             sizeof(float) * 2048) == 0);
            ck_assert(memcmp(u1, bdata(net, 0), sizeof u1) == 0);
        }
        dng_tensor_destroy(x);
        dng_net_destroy(net);
    }
    ck_assert_int_eq(dng_set_num_threads(1), DNG_OK);
    free(y1);
}
END_TEST

START_TEST(sn_errors)
{
    int64_t in = 4;
    dng_net *net = net1(1, &in, dng_dense(4, 4));
    dng_layer *owned;
    ck_assert_ptr_null(dng_spectral_norm(NULL));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "inner is NULL"));
    /* A failed constructor's message is kept. */
    ck_assert_ptr_null(dng_spectral_norm(dng_dense(0, 3)));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_dense"));
    /* Other kinds are refused (and freed: ASan/valgrind would see a
     * leak otherwise). */
    ck_assert_ptr_null(dng_spectral_norm(dng_batchnorm(4)));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "batchnorm"));
    ck_assert_ptr_null(dng_spectral_norm(dng_flatten()));
    ck_assert_ptr_null(
        dng_spectral_norm(dng_spectral_norm(dng_dense(2, 2))));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "spectral_norm"));
    /* A layer a network owns cannot be wrapped (nor freed). */
    owned = dng_dense(4, 4);
    ck_assert_int_eq(dng_net_add(net, owned), DNG_OK);
    ck_assert_ptr_null(dng_spectral_norm(owned));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "belongs to a network"));
    /* The shape check runs through the inner layer. */
    ck_assert_int_eq(dng_net_add(net, dng_spectral_norm(dng_dense(5, 2))),
                     DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dense expects [5]"));
    ck_assert_int_eq(dng_net_add(net, dng_spectral_norm(dng_dense(4, 2))),
                     DNG_OK);
    /* An all-zero weight has no direction to normalise. */
    {
        dng_tensor *x = rand_batch(2, 1, &in, 5, -1.0f, 1.0f), *y = NULL;
        int wi = dng_net_param_index(net, "2.weight_orig");
        ck_assert_int_ge(wi, 0);
        memset(fdata(net, wi), 0, sizeof(float) * 8);
        ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_ERR_NUMERIC);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "singular value"));
        dng_tensor_destroy(x);
    }
    /* A standalone wrapper is freed with its inner layer. */
    dng_layer_destroy(dng_spectral_norm(dng_conv2d(1, 2, 3, 3, 1, 0)));
    dng_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layers-norm");
    TCase *bn = tcase_create("batchnorm");
    TCase *ln = tcase_create("layernorm");
    TCase *dr = tcase_create("dropout");
    TCase *rs = tcase_create("reshape");
    TCase *sn = tcase_create("spectral_norm");
    /* The layers' numbers do not depend on the thread count (checked by
     * sn_thread_count); one thread keeps the many tiny GEMMs of the
     * gradient checks fast on a busy machine. */
    dng_set_num_threads(1);
    tcase_add_test(bn, bn_forward_values);
    tcase_add_test(bn, bn_running_stats);
    tcase_add_test(bn, bn_init_normal_002);
    tcase_add_test(bn, bn_gradients);
    tcase_add_test(bn, bn_errors);
    tcase_add_test(ln, ln_forward_values);
    tcase_add_test(ln, ln_gradients);
    tcase_add_test(ln, ln_errors);
    tcase_add_test(dr, dropout_statistics);
    tcase_add_test(dr, dropout_p0_and_gradients);
    tcase_add_test(dr, dropout_errors);
    tcase_add_test(rs, reshape_values);
    tcase_add_test(rs, reshape_errors);
    tcase_add_test(sn, sn_diagonal);
    tcase_add_test(sn, sn_one_iteration);
    tcase_add_test(sn, sn_dense);
    tcase_add_test(sn, sn_conv2d);
    tcase_add_test(sn, sn_conv2d_transpose);
    tcase_add_test(sn, sn_gradients_training);
    tcase_add_test(sn, sn_thread_count);
    tcase_add_test(sn, sn_errors);
    suite_add_tcase(s, bn);
    suite_add_tcase(s, ln);
    suite_add_tcase(s, dr);
    suite_add_tcase(s, rs);
    suite_add_tcase(s, sn);
    return dng_test_run(s);
}
