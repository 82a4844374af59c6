/* bench-conv.c: time forward and backward (with dx) of DCGAN-size
 * convolution layers through the public API, batch 64, to compare with
 * PyTorch's nn.Conv2d / nn.ConvTranspose2d under the same thread count.
 * Prints the median and the fastest of the repetitions: on a shared
 * machine the fastest is the better estimate of the code's own cost.
 *
 * Build (it is not part of the test suites), from the source root:
 *   cc -O2 -Iinclude -I<builddir>/include tests/bench/bench-conv.c \
 *      -L<builddir>/lib -ldnngen -o bench-conv
 * Usage: bench-conv [threads [reps [case]]], case 0..5 to run only one.
 *
 * The PyTorch side, timed the same way (set the thread variables before
 * importing torch):
 *   os.environ["OMP_NUM_THREADS"] = "1"; import torch
 *   torch.set_num_threads(1)
 *   m = torch.nn.Conv2d(64, 128, 4, 2, 1)  # or ConvTranspose2d(...)
 *   x = torch.randn(64, 64, 14, 14, requires_grad=True)
 *   y = m(x); y.backward(torch.ones_like(y))  # time each call */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dnngen.h"

/* DNG_BENCH_CPU=1 times with the process's CPU clock instead of the wall
 * clock: with one thread that ignores time lost to other processes. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct bench_case {
    const char *name;
    int transpose;
    int64_t in, out, h;
    int k, stride, pad;
} bench_case;

static int run(const bench_case *bc, int64_t batch, int reps, int threads)
{
    int64_t shape[3] = {bc->in, bc->h, bc->h}, xshape[4];
    dng_net *net = dng_net_create(3, shape);
    dng_tensor *x, *y = NULL, *dx = NULL, *dy;
    dng_rng *rng = dng_rng_create(1);
    double tf, tb, mf, mb, *ft = calloc((size_t)reps, sizeof *ft),
                   *bt = calloc((size_t)reps, sizeof *bt);
    int64_t oshape[DNG_MAX_DIMS + 1];
    int ond;
    if (!net || !rng ||
        dng_net_add(net, bc->transpose
                             ? dng_conv2d_transpose(bc->in, bc->out, bc->k,
                                                    bc->k, bc->stride,
                                                    bc->pad)
                             : dng_conv2d(bc->in, bc->out, bc->k, bc->k,
                                          bc->stride, bc->pad)) != DNG_OK) {
        fprintf(stderr, "%s: %s\n", bc->name, dng_last_error());
        return 1;
    }
    xshape[0] = batch;
    xshape[1] = bc->in;
    xshape[2] = xshape[3] = bc->h;
    x = dng_tensor_create(4, xshape);
    dng_tensor_fill_normal(x, rng, 0.0f, 1.0f);
    dng_net_output_shape(net, &ond, oshape + 1);
    oshape[0] = batch;
    dy = dng_tensor_create(ond + 1, oshape);
    dng_tensor_fill(dy, 1.0f);
    for (int r = -3; r < reps; r++) {
        double t0 = now(), t1, t2;
        if (dng_net_forward(net, x, &y) != DNG_OK) {
            fprintf(stderr, "%s: %s\n", bc->name, dng_last_error());
            return 1;
        }
        t1 = now();
        if (dng_net_backward(net, dy, &dx) != DNG_OK) {
            fprintf(stderr, "%s: %s\n", bc->name, dng_last_error());
            return 1;
        }
        t2 = now();
        if (r >= 0) {
            ft[r] = t1 - t0;
            bt[r] = t2 - t1;
        }
    }
    tf = median(ft, reps) * 1e3;
    tb = median(bt, reps) * 1e3;
    mf = ft[0] * 1e3; /* sorted by median() */
    mb = bt[0] * 1e3;
    free(ft);
    free(bt);
    printf("threads=%d %-16s median fwd %7.3f bwd %7.3f total %7.3f ms | "
           "fastest fwd %7.3f bwd %7.3f total %7.3f ms\n", threads,
           bc->name, tf, tb, tf + tb, mf, mb, mf + mb);
    dng_tensor_destroy(x);
    dng_tensor_destroy(dy);
    dng_rng_destroy(rng);
    dng_net_destroy(net);
    return 0;
}

int main(int argc, char **argv)
{
    static const bench_case cases[] = {
        {"conv 1->64 28", 0, 1, 64, 28, 4, 2, 1},
        {"convT 128->64 7", 1, 128, 64, 7, 4, 2, 1},
        {"conv 64->128 14", 0, 64, 128, 14, 4, 2, 1},
        {"convT 64->1 14", 1, 64, 1, 14, 4, 2, 1},
        /* the Fashion-MNIST classifier example's convolutions */
        {"conv 1->32 28 k3", 0, 1, 32, 28, 3, 1, 1},
        {"conv 32->64 14 k3", 0, 32, 64, 14, 3, 1, 1},
    };
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    int reps = argc > 2 ? atoi(argv[2]) : 30;
    int only = argc > 3 ? atoi(argv[3]) : -1;
    if (getenv("DNG_BENCH_CPU") && atoi(getenv("DNG_BENCH_CPU")))
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    if (dng_set_num_threads(threads) != DNG_OK) {
        fprintf(stderr, "%s\n", dng_last_error());
        return 1;
    }
    if (reps < 1)
        reps = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if ((only < 0 || (size_t)only == i) &&
            run(&cases[i], 64, reps, threads) != 0)
            return 1;
    return 0;
}
