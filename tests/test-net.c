/* test-net.c: the sequential network through the public API: call order,
 * shapes, ownership, parameter access, initialisation and buffers. */
#include "testutil.h"

static dng_net *mlp3(void)
{
    int64_t in = 3;
    dng_net *n = dng_net_create(1, &in);
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(dng_net_add(n, dng_dense(3, 5)), DNG_OK);
    ck_assert_int_eq(dng_net_add(n, dng_activation(DNG_ACT_TANH, 0)), DNG_OK);
    ck_assert_int_eq(dng_net_add(n, dng_dense(5, 2)), DNG_OK);
    return n;
}

static dng_tensor *batch(int64_t n, int64_t d, unsigned seed)
{
    int64_t s[2] = {n, d};
    dng_tensor *t = dng_tensor_create(2, s);
    dng_test_fill(dng_tensor_data(t), n * d, seed, -1, 1);
    return t;
}

START_TEST(test_call_order)
{
    dng_net *n = mlp3();
    dng_tensor *x = batch(4, 3, 1), *dy = batch(4, 2, 2), *bad = batch(4, 3, 3);
    dng_tensor *y, *dx;
    /* backward before any forward */
    ck_assert_int_eq(dng_net_backward(n, dy, &dx), DNG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_net_forward"));
    ck_assert_int_eq(dng_net_forward(n, x, &y), DNG_OK);
    /* dy of the wrong shape */
    ck_assert_int_eq(dng_net_backward(n, bad, &dx), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[4, 3]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[4, 2]"));
    ck_assert_int_eq(dng_net_backward(n, dy, NULL), DNG_OK);
    ck_assert_int_eq(dng_net_backward(n, dy, &dx), DNG_OK);
    ck_assert_int_eq(dng_tensor_dim(dx, 1), 3);
    /* adding a layer invalidates the last forward */
    ck_assert_int_eq(dng_net_add(n, dng_activation(DNG_ACT_RELU, 0)), DNG_OK);
    ck_assert_int_eq(dng_net_backward(n, dy, &dx), DNG_ERR_STATE);
    /* a forward with the wrong sample shape names both shapes */
    dng_tensor_reshape(bad, 2, (int64_t[]){6, 2});
    ck_assert_int_eq(dng_net_forward(n, bad, &y), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[6, 2]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[3]"));
    ck_assert_int_eq(dng_net_forward(NULL, x, &y), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_net_forward(n, NULL, &y), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_net_forward(n, x, NULL), DNG_ERR_INVALID_ARGUMENT);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_tensor_destroy(bad);
    dng_net_destroy(n);
}
END_TEST

START_TEST(test_add_errors)
{
    int64_t in = 4, img[3] = {1, 8, 8};
    dng_net *a = dng_net_create(1, &in), *b = dng_net_create(1, &in);
    dng_net *c = dng_net_create(3, img);
    dng_layer *shared = dng_dense(4, 2);
    dng_tensor *x = batch(2, 4, 4), *y;
    float before[2];
    ck_assert_int_eq(dng_net_add(a, dng_dense(4, 3)), DNG_OK);
    /* the second layer expects 5 features but gets 3 */
    ck_assert_int_eq(dng_net_add(a, dng_dense(5, 2)), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "layer 1"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[3]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[5]"));
    ck_assert_int_eq(dng_net_num_layers(a), 1);
    /* a conv layer on the wrong channel count, at index 0 */
    ck_assert_int_eq(dng_net_add(c, dng_conv2d(3, 4, 3, 3, 1, 1)),
                     DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "layer 0"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[1, 8, 8]"));
    /* a failed constructor: its message is kept */
    ck_assert_int_eq(dng_net_add(b, dng_dense(0, 2)),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_dense"));
    /* one layer, two networks: the second add fails and the first network
     * keeps working */
    ck_assert_int_eq(dng_net_add(b, shared), DNG_OK);
    ck_assert_int_eq(dng_net_forward(b, x, &y), DNG_OK);
    memcpy(before, dng_tensor_data(y), sizeof before);
    ck_assert_int_eq(dng_net_add(a, shared), DNG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "already belongs"));
    ck_assert_int_eq(dng_net_num_layers(a), 1);
    dng_layer_destroy(shared); /* owned by b: must not be freed */
    ck_assert_int_eq(dng_net_forward(b, x, &y), DNG_OK);
    ck_assert(memcmp(before, dng_tensor_data(y), sizeof before) == 0);
    ck_assert_int_eq(dng_net_add(NULL, dng_dense(4, 2)),
                     DNG_ERR_INVALID_ARGUMENT);
    dng_tensor_destroy(x);
    dng_net_destroy(a);
    dng_net_destroy(b);
    dng_net_destroy(c);
}
END_TEST

START_TEST(test_params_by_index_and_name)
{
    dng_net *n = mlp3();
    char buf[1024];
    ck_assert_int_eq(dng_net_num_params(n), 4);
    ck_assert_str_eq(dng_net_param_name(n, 0), "0.weight");
    ck_assert_str_eq(dng_net_param_name(n, 1), "0.bias");
    /* the activation counts as layer 1, as in nn.Sequential */
    ck_assert_str_eq(dng_net_param_name(n, 2), "2.weight");
    ck_assert_int_eq(dng_net_param_index(n, "2.bias"), 3);
    ck_assert_int_eq(dng_net_param_index(n, "1.weight"), -1);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "1.weight"));
    ck_assert_int_eq(dng_tensor_dim(dng_net_param(n, 0), 0), 5);
    ck_assert_int_eq(dng_tensor_dim(dng_net_param(n, 0), 1), 3);
    ck_assert_int_eq(dng_tensor_numel(dng_net_grad(n, 2)), 10);
    ck_assert_int_eq(dng_net_param_count(n), 3 * 5 + 5 + 5 * 2 + 2);
    ck_assert_ptr_null(dng_net_param(n, 4));
    ck_assert_ptr_null(dng_net_param(n, -1));
    ck_assert_ptr_null(dng_net_grad(NULL, 0));
    ck_assert_ptr_null(dng_net_param_name(n, 9));
    ck_assert_int_eq(dng_net_num_buffers(n), 0);
    ck_assert_int_eq(dng_net_summary(n, buf, sizeof buf), DNG_OK);
    ck_assert_ptr_nonnull(strstr(buf, "dense"));
    ck_assert_ptr_nonnull(strstr(buf, "[5]"));
    ck_assert_ptr_nonnull(strstr(buf, "32")); /* 3*5+5+5*2+2 */
    ck_assert_int_eq(dng_net_summary(n, buf, 16), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(strlen(buf), 15);
    {
        int nd;
        int64_t sh[DNG_MAX_DIMS];
        ck_assert_int_eq(dng_net_output_shape(n, &nd, sh), DNG_OK);
        ck_assert_int_eq(nd, 1);
        ck_assert_int_eq(sh[0], 2);
    }
    dng_net_destroy(n);
}
END_TEST

START_TEST(test_gradients_accumulate_and_zero)
{
    dng_net *n = mlp3();
    dng_tensor *x = batch(3, 3, 5), *dy = batch(3, 2, 6), *y;
    float once[15];
    ck_assert_int_eq(dng_net_forward(n, x, &y), DNG_OK);
    ck_assert_int_eq(dng_net_backward(n, dy, NULL), DNG_OK);
    memcpy(once, dng_tensor_data(dng_net_grad(n, 0)), sizeof once);
    ck_assert_int_eq(dng_net_backward(n, dy, NULL), DNG_OK);
    for (int i = 0; i < 15; i++)
        ck_assert_float_eq_tol(dng_tensor_data(dng_net_grad(n, 0))[i],
                               2 * once[i], 1e-6f);
    ck_assert_int_eq(dng_net_zero_grad(n), DNG_OK);
    for (int p = 0; p < 4; p++)
        for (int64_t i = 0; i < dng_tensor_numel(dng_net_grad(n, p)); i++)
            ck_assert(dng_tensor_data(dng_net_grad(n, p))[i] == 0.0f);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_net_destroy(n);
}
END_TEST

START_TEST(test_buffers_reused_across_batches)
{
    /* Once a batch size was seen, smaller and equal batches reuse the same
     * storage: the output pointer does not move. Values stay right. */
    dng_net *n = mlp3(), *ref = mlp3();
    dng_tensor *x8 = batch(8, 3, 7), *x4, *y, *yr;
    float *p8;
    ck_assert_int_eq(dng_net_forward(n, x8, &y), DNG_OK);
    p8 = dng_tensor_data(y);
    x4 = dng_tensor_from_data(2, (int64_t[]){4, 3}, dng_tensor_data(x8));
    ck_assert_int_eq(dng_net_forward(n, x4, &y), DNG_OK);
    ck_assert_ptr_eq(dng_tensor_data(y), p8);
    ck_assert_int_eq(dng_tensor_dim(y, 0), 4);
    ck_assert_int_eq(dng_net_forward(ref, x4, &yr), DNG_OK);
    ck_assert(memcmp(dng_tensor_data(y), dng_tensor_data(yr),
                     8 * sizeof(float)) == 0);
    ck_assert_int_eq(dng_net_forward(n, x8, &y), DNG_OK);
    ck_assert_ptr_eq(dng_tensor_data(y), p8);
    dng_tensor_destroy(x8);
    dng_tensor_destroy(x4);
    dng_net_destroy(n);
    dng_net_destroy(ref);
}
END_TEST

static double mean_of(const float *v, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i];
    return s / (double)n;
}

static double std_of(const float *v, int64_t n)
{
    double m = mean_of(v, n), s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (double)(n - 1));
}

START_TEST(test_init_schemes)
{
    int64_t in = 400;
    dng_net *n = dng_net_create(1, &in), *same = dng_net_create(1, &in);
    dng_rng *r = dng_rng_create(3), *r2 = dng_rng_create(3);
    dng_tensor *w;
    float *d;
    int64_t k;
    ck_assert_int_eq(dng_net_add(n, dng_dense(400, 300)), DNG_OK);
    ck_assert_int_eq(dng_net_add(same, dng_dense(400, 300)), DNG_OK);
    w = dng_net_param(n, 0);
    d = dng_tensor_data(w);
    k = dng_tensor_numel(w);
    /* the default, from a fixed seed: identical in two networks, within
     * PyTorch's bound 1/sqrt(fan_in) = 0.05 */
    ck_assert(memcmp(d, dng_tensor_data(dng_net_param(same, 0)),
                     (size_t)k * sizeof(float)) == 0);
    for (int64_t i = 0; i < k; i++)
        ck_assert(fabsf(d[i]) <= 0.05f);
    ck_assert(fabs(std_of(d, k) - 0.05 / sqrt(3.0)) < 0.002);
    /* Xavier uniform: bound sqrt(6 / 700) */
    ck_assert_int_eq(dng_net_init(n, DNG_INIT_XAVIER_UNIFORM, r), DNG_OK);
    for (int64_t i = 0; i < k; i++)
        ck_assert(fabsf(d[i]) <= sqrtf(6.0f / 700.0f));
    ck_assert(fabs(std_of(d, k) - sqrt(6.0 / 700.0) / sqrt(3.0)) < 0.002);
    ck_assert(dng_tensor_data(dng_net_param(n, 1))[0] == 0.0f);
    /* He normal: std sqrt(2 / 400) */
    ck_assert_int_eq(dng_net_init(n, DNG_INIT_HE_NORMAL, r), DNG_OK);
    ck_assert(fabs(std_of(d, k) - sqrt(2.0 / 400.0)) < 0.002);
    ck_assert(fabs(mean_of(d, k)) < 0.002);
    /* DCGAN's N(0, 0.02) */
    ck_assert_int_eq(dng_net_init(n, DNG_INIT_NORMAL_002, r), DNG_OK);
    ck_assert(fabs(std_of(d, k) - 0.02) < 0.0005);
    /* the same seed gives the same weights */
    ck_assert_int_eq(dng_net_init(same, DNG_INIT_NORMAL_002, r2), DNG_OK);
    ck_assert_int_eq(dng_net_init(same, DNG_INIT_HE_NORMAL, r2), DNG_OK);
    {
        dng_rng *r3 = dng_rng_create(3);
        dng_net_init(n, DNG_INIT_NORMAL_002, r3);
        dng_net_init(n, DNG_INIT_HE_NORMAL, r3);
        ck_assert(memcmp(d, dng_tensor_data(dng_net_param(same, 0)),
                         (size_t)k * sizeof(float)) == 0);
        dng_rng_destroy(r3);
    }
    ck_assert_int_eq(dng_net_init(n, (dng_init)42, r),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_net_init(n, DNG_INIT_HE_NORMAL, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    dng_rng_destroy(r);
    dng_rng_destroy(r2);
    dng_net_destroy(n);
    dng_net_destroy(same);
}
END_TEST

START_TEST(test_training_mode_and_copy)
{
    int64_t in = 64;
    dng_net *n = dng_net_create(1, &in), *m = dng_net_create(1, &in);
    dng_tensor *x = batch(2, 64, 8), *y;
    int zeros = 0;
    ck_assert_int_eq(dng_net_add(n, dng_dropout(0.5f)), DNG_OK);
    ck_assert_int_eq(dng_net_add(n, dng_dense(64, 64)), DNG_OK);
    ck_assert_int_eq(dng_net_add(m, dng_dropout(0.5f)), DNG_OK);
    ck_assert_int_eq(dng_net_add(m, dng_dense(64, 64)), DNG_OK);
    /* evaluation mode: dropout is the identity, so m with n's weights
     * gives n's outputs */
    ck_assert_int_eq(dng_net_copy_weights(m, n), DNG_OK);
    dng_net_set_training(n, 0);
    dng_net_set_training(m, 0);
    ck_assert_int_eq(dng_net_forward(n, x, &y), DNG_OK);
    {
        float a[128];
        dng_tensor *ym;
        memcpy(a, dng_tensor_data(y), sizeof a);
        ck_assert_int_eq(dng_net_forward(m, x, &ym), DNG_OK);
        ck_assert(memcmp(a, dng_tensor_data(ym), sizeof a) == 0);
    }
    /* training mode drops about half of the dense layer's inputs: check
     * through a net holding only the dropout layer */
    {
        dng_net *d = dng_net_create(1, &in);
        dng_net_add(d, dng_dropout(0.5f));
        ck_assert_int_eq(dng_net_forward(d, x, &y), DNG_OK);
        for (int i = 0; i < 128; i++)
            zeros += dng_tensor_data(y)[i] == 0.0f;
        ck_assert(zeros > 32 && zeros < 96);
        dng_net_destroy(d);
    }
    {
        int64_t other = 32;
        dng_net *o = dng_net_create(1, &other);
        dng_net_add(o, dng_dense(32, 64));
        ck_assert_int_eq(dng_net_copy_weights(o, n), DNG_ERR_SHAPE);
        dng_net_destroy(o);
    }
    dng_tensor_destroy(x);
    dng_net_destroy(n);
    dng_net_destroy(m);
}
END_TEST

START_TEST(test_batchnorm_buffers_named)
{
    int64_t img[3] = {2, 4, 4};
    dng_net *n = dng_net_create(3, img);
    ck_assert_int_eq(dng_net_add(n, dng_conv2d(2, 3, 3, 3, 1, 1)), DNG_OK);
    ck_assert_int_eq(dng_net_add(n, dng_batchnorm(3)), DNG_OK);
    ck_assert_int_eq(dng_net_num_buffers(n), 2);
    ck_assert_str_eq(dng_net_buffer_name(n, 0), "1.running_mean");
    ck_assert_str_eq(dng_net_buffer_name(n, 1), "1.running_var");
    ck_assert(dng_tensor_data(dng_net_buffer(n, 1))[2] == 1.0f);
    ck_assert_ptr_null(dng_net_buffer(n, 2));
    ck_assert_str_eq(dng_net_param_name(n, 2), "1.weight");
    dng_net_destroy(n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_add_test(tc, test_call_order);
    tcase_add_test(tc, test_add_errors);
    tcase_add_test(tc, test_params_by_index_and_name);
    tcase_add_test(tc, test_gradients_accumulate_and_zero);
    tcase_add_test(tc, test_buffers_reused_across_batches);
    tcase_add_test(tc, test_init_schemes);
    tcase_add_test(tc, test_training_mode_and_copy);
    tcase_add_test(tc, test_batchnorm_buffers_named);
    suite_add_tcase(s, tc);
    return dng_test_run(s);
}
