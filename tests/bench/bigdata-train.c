/* bigdata-train.c: train an MLP with dng_fit on a memory-mapped .npy
 * dataset (dng_dataset_open_npy) and report throughput and peak resident
 * memory against the file's size. tests/bench/bigdata.sh makes the data
 * and runs it; it uses the public API only.
 *
 * Build, from the source root:
 *   cc -O2 -Iinclude -I<builddir>/include tests/bench/bigdata-train.c \
 *      -L<builddir>/lib -ldnngen -Wl,-rpath,<builddir>/lib -o bigdata-train
 * Usage: bigdata-train X.npy Y.npy [max_rows [batch [threads]]]
 *   max_rows: train one epoch on that many rows drawn at random (a view
 *   made by dng_dataset_split, nothing copied); 0 (the default) trains on
 *   every row. x is [N, features], y [N] class indices 0..9.
 * Prints key=value lines; exits 1 when peak RSS reaches 20% of the
 * x file's size. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "dnngen.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int fail(const char *what)
{
    fprintf(stderr, "bigdata-train: %s: %s\n", what, dng_last_error());
    return 2;
}

int main(int argc, char **argv)
{
    int64_t max_rows, batch, features, n;
    int threads, nd;
    int64_t shape[DNG_MAX_DIMS];
    struct stat st;
    dng_dataset *all, *train = NULL, *rest = NULL, *eval_set = NULL,
                *skip = NULL;
    dng_net *net;
    dng_optim *opt;
    dng_fit_options o;
    dng_rng *rng = dng_rng_create(1);
    double t0, t_fit, t_eval, file_mb;
    float loss, acc;
    long rss;
    if (argc < 3) {
        fprintf(stderr, "usage: %s X.npy Y.npy [max_rows [batch "
                "[threads]]]\n", argv[0]);
        return 2;
    }
    max_rows = argc > 3 ? strtoll(argv[3], NULL, 10) : 0;
    batch = argc > 4 ? strtoll(argv[4], NULL, 10) : 256;
    threads = argc > 5 ? atoi(argv[5]) : 1;
    if (dng_set_num_threads(threads) != DNG_OK)
        return fail("dng_set_num_threads");
    if (stat(argv[1], &st) != 0) {
        perror(argv[1]);
        return 2;
    }
    file_mb = (double)st.st_size / 1048576.0;

    t0 = now();
    if (!(all = dng_dataset_open_npy(argv[1], argv[2])))
        return fail("dng_dataset_open_npy");
    n = dng_dataset_size(all);
    dng_dataset_sample_shape(all, &nd, shape);
    if (nd != 1)
        return fail("x must be [N, features]");
    features = shape[0];
    printf("open_seconds=%.3f\nrows=%" PRId64 "\nfeatures=%" PRId64
           "\nfile_mb=%.1f\n", now() - t0, n, features, file_mb);

    /* Views, not copies: a random subset to train on when asked, and
     * 10000 random rows to evaluate on. */
    train = all;
    if (max_rows > 0 && max_rows < n) {
        if (dng_dataset_split(all, (double)max_rows / (double)n, rng, &rest,
                              &train) != DNG_OK)
            return fail("dng_dataset_split");
    }
    if (n > 20000) {
        if (dng_dataset_split(all, 10000.0 / (double)n, rng, &skip,
                              &eval_set) != DNG_OK)
            return fail("dng_dataset_split");
    } else {
        eval_set = all;
    }

    net = dng_net_create(1, &features);
    if (!net || dng_net_add(net, dng_dense(features, 64)) != DNG_OK ||
        dng_net_add(net, dng_activation(DNG_ACT_RELU, 0)) != DNG_OK ||
        dng_net_add(net, dng_dense(64, 10)) != DNG_OK)
        return fail("building the MLP");
    opt = dng_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0);
    dng_fit_options_default(&o);
    o.epochs = 1;
    o.batch_size = batch;
    o.seed = 1;

    t0 = now();
    if (dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, train, NULL, &o, NULL,
                NULL) != DNG_OK)
        return fail("dng_fit");
    t_fit = now() - t0;
    t0 = now();
    if (dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, eval_set, 1024, &loss,
                     &acc) != DNG_OK)
        return fail("dng_evaluate");
    t_eval = now() - t0;
    rss = maxrss_kb();
    printf("train_rows=%" PRId64 "\nbatch=%" PRId64 "\nthreads=%d\n"
           "fit_seconds=%.2f\nrows_per_second=%.0f\nMB_per_second=%.1f\n"
           "eval_rows=%" PRId64 "\neval_seconds=%.2f\neval_loss=%.4f\n"
           "eval_accuracy=%.4f\npeak_rss_mb=%.1f\nrss_percent_of_file=%.2f\n",
           dng_dataset_size(train), batch, threads, t_fit,
           (double)dng_dataset_size(train) / t_fit,
           (double)dng_dataset_size(train) * (double)features * 4.0 /
               1048576.0 / t_fit,
           dng_dataset_size(eval_set), t_eval, (double)loss, (double)acc,
           (double)rss / 1024.0,
           100.0 * ((double)rss / 1024.0) / file_mb);
    if (train != all)
        dng_dataset_destroy(train);
    if (eval_set != all)
        dng_dataset_destroy(eval_set);
    dng_dataset_destroy(rest);
    dng_dataset_destroy(skip);
    dng_dataset_destroy(all);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_rng_destroy(rng);
    if ((double)rss / 1024.0 >= 0.2 * file_mb) {
        printf("result=FAIL (peak RSS is not below 20%% of the file)\n");
        return 1;
    }
    printf("result=PASS\n");
    return 0;
}
