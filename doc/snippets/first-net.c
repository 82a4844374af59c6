/* first-net.c: a first network, trained by hand on XOR (tutorial, part 1).
 * Build: cc first-net.c $(pkg-config --cflags --libs dnngen) */
#include <stdio.h>
#include <stdlib.h>

#include <dnngen.h>

/* The library never prints: on failure it returns a negative status and
 * keeps a message for this thread. */
static void check(dng_status s, const char *what)
{
    if (s != DNG_OK) {
        fprintf(stderr, "%s: %s (%s)\n", what, dng_last_error(),
                dng_status_string(s));
        exit(1);
    }
}

/* Constructors return NULL on failure, with the reason in dng_last_error. */
static void *check_ptr(void *p, const char *what)
{
    if (!p) {
        fprintf(stderr, "%s: %s\n", what, dng_last_error());
        exit(1);
    }
    return p;
}

int main(void)
{
    /* A network this small runs fastest on one thread: waking a second
     * one costs more than its share of the work. */
    check(dng_set_num_threads(1), "dng_set_num_threads");

    /* Four samples of two features, and one target each: XOR. */
    const float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    const float ys[4] = {0, 1, 1, 0};
    const int64_t x_shape[2] = {4, 2}, y_shape[2] = {4, 1};
    dng_tensor *x = check_ptr(dng_tensor_from_data(2, x_shape, xs), "x");
    dng_tensor *y = check_ptr(dng_tensor_from_data(2, y_shape, ys), "y");
    dng_tensor *grad = check_ptr(dng_tensor_create(2, y_shape), "grad");

    /* A sample is a vector of 2 features; the batch dimension comes first
     * in every tensor and is not part of the network's shape. */
    const int64_t sample[1] = {2};
    dng_net *net = check_ptr(dng_net_create(1, sample), "dng_net_create");
    check(dng_net_add(net, dng_dense(2, 8)), "layer 0");
    check(dng_net_add(net, dng_activation(DNG_ACT_TANH, 0)), "layer 1");
    check(dng_net_add(net, dng_dense(8, 1)), "layer 2");

    /* Same seed, same weights, same numbers on every run. */
    dng_rng *rng = check_ptr(dng_rng_create(42), "dng_rng_create");
    check(dng_net_init(net, DNG_INIT_XAVIER_UNIFORM, rng), "dng_net_init");
    char summary[1024];
    check(dng_net_summary(net, summary, sizeof summary), "dng_net_summary");
    printf("%s", summary);

    dng_optim *opt = check_ptr(dng_adam(0.05f, 0.9f, 0.999f, 1e-8f, 0.0f),
                               "dng_adam");
    for (int step = 1; step <= 300; step++) {
        dng_tensor *out; /* borrowed: the network owns it */
        float loss;
        check(dng_net_zero_grad(net), "dng_net_zero_grad");
        check(dng_net_forward(net, x, &out), "dng_net_forward");
        check(dng_loss(DNG_LOSS_BCE_WITH_LOGITS, out, y, &loss, grad),
              "dng_loss");
        check(dng_net_backward(net, grad, NULL), "dng_net_backward");
        check(dng_optim_step(opt, net), "dng_optim_step");
        if (step % 100 == 0)
            printf("step %d loss %.6f\n", step, loss);
    }

    dng_tensor *logits;
    check(dng_net_set_training(net, 0), "dng_net_set_training");
    check(dng_net_forward(net, x, &logits), "dng_net_forward");
    const float *p = dng_tensor_data(logits);
    printf("predictions %d %d %d %d\n", p[0] > 0, p[1] > 0, p[2] > 0,
           p[3] > 0);
    dng_optim_destroy(opt);
    dng_rng_destroy(rng);
    dng_net_destroy(net); /* frees its layers and the borrowed outputs */
    dng_tensor_destroy(grad);
    dng_tensor_destroy(y);
    dng_tensor_destroy(x);
    return 0;
}
