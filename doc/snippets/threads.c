/* threads.c: the thread count changes the speed, never the numbers; two
 * threads use two networks at once; error messages are per thread
 * (doc/threading.md). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnngen.h>

static void check(dng_status s, const char *what)
{
    if (s != DNG_OK) {
        fprintf(stderr, "%s: %s (%s)\n", what, dng_last_error(),
                dng_status_string(s));
        exit(1);
    }
}

static void *check_ptr(void *p, const char *what)
{
    if (!p) {
        fprintf(stderr, "%s: %s\n", what, dng_last_error());
        exit(1);
    }
    return p;
}

/* A small convolutional classifier, the same weights on every call. */
static dng_net *build(void)
{
    const int64_t image[3] = {1, 16, 16};
    dng_net *net = check_ptr(dng_net_create(3, image), "dng_net_create");
    check(dng_net_add(net, dng_conv2d(1, 8, 3, 3, 1, 1)), "conv");
    check(dng_net_add(net, dng_batchnorm(8)), "batchnorm");
    check(dng_net_add(net, dng_activation(DNG_ACT_RELU, 0)), "relu");
    check(dng_net_add(net, dng_maxpool2d(2, 2)), "pool");
    check(dng_net_add(net, dng_flatten()), "flatten");
    check(dng_net_add(net, dng_dense(8 * 8 * 8, 10)), "dense");
    return net;
}

/* The trained parameters of one run, all in one malloc'd array. */
typedef struct result {
    float *p;
    int64_t n;
} result;

/* Ten Adam steps on fixed random data. */
static result train(void)
{
    const int64_t xs[4] = {32, 1, 16, 16}, ys[1] = {32}, gs[2] = {32, 10};
    dng_rng *rng = check_ptr(dng_rng_create(5), "rng");
    dng_tensor *x = check_ptr(dng_tensor_create(4, xs), "x");
    dng_tensor *y = check_ptr(dng_tensor_create(1, ys), "y");
    dng_tensor *g = check_ptr(dng_tensor_create(2, gs), "grad");
    dng_net *net = build();
    dng_optim *opt = check_ptr(dng_adam(1e-2f, 0.9f, 0.999f, 1e-8f, 0),
                               "adam");
    check(dng_tensor_fill_normal(x, rng, 0.0f, 1.0f), "x");
    for (int i = 0; i < 32; i++)
        dng_tensor_data(y)[i] = (float)(i % 10);
    for (int step = 0; step < 10; step++) {
        dng_tensor *logits;
        check(dng_net_zero_grad(net), "zero_grad");
        check(dng_net_forward(net, x, &logits), "forward");
        check(dng_loss(DNG_LOSS_CROSS_ENTROPY, logits, y, NULL, g), "loss");
        check(dng_net_backward(net, g, NULL), "backward");
        check(dng_optim_step(opt, net), "step");
    }
    result r = {.n = dng_net_param_count(net)};
    int64_t k = 0;
    r.p = check_ptr(malloc((size_t)r.n * sizeof *r.p), "malloc");
    for (int i = 0; i < dng_net_num_params(net); i++) {
        dng_tensor *p = dng_net_param(net, i); /* borrowed */
        check(dng_tensor_copy_out(p, r.p + k, r.n - k), "copy_out");
        k += dng_tensor_numel(p);
    }
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_tensor_destroy(g);
    dng_tensor_destroy(y);
    dng_tensor_destroy(x);
    dng_rng_destroy(rng);
    return r;
}

static int same(result a, result b)
{
    return a.n == b.n && memcmp(a.p, b.p, (size_t)a.n * sizeof *a.p) == 0;
}

/* Each thread builds and trains its own network: handles are never shared
 * between threads, so no locking is needed. */
static void *worker(void *out)
{
    *(result *)out = train();
    return NULL;
}

/* A failure on this thread leaves the other threads' messages alone. */
static void *failing(void *arg)
{
    (void)arg;
    if (dng_tensor_create(0, NULL) == NULL)
        printf("worker thread: %s\n", dng_last_error());
    return NULL;
}

int main(void)
{
    check(dng_set_num_threads(1), "threads");
    result one = train();
    check(dng_set_num_threads(2), "threads");
    result two = train();
    printf("1 thread vs 2 threads: %s\n",
           same(one, two) ? "identical" : "different");

    /* Two networks trained at the same time by two threads, each of whose
     * calls uses one thread (the setting is process-wide). */
    check(dng_set_num_threads(1), "threads");
    result a, b;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, worker, &a);
    pthread_create(&tb, NULL, worker, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("two networks at once: %s\n",
           same(a, one) && same(b, one) ? "identical" : "different");

    /* Per-thread messages: this thread's message survives the other's. */
    dng_status s = dng_set_num_threads(-1);
    pthread_t tc;
    pthread_create(&tc, NULL, failing, NULL);
    pthread_join(tc, NULL);
    printf("main thread: %s (%s)\n", dng_last_error(),
           dng_status_string(s));
    free(b.p);
    free(a.p);
    free(two.p);
    free(one.p);
    return 0;
}
