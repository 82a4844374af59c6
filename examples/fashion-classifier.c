/* fashion-classifier: train an MLP or a small CNN on Fashion-MNIST with
 * dng_fit and report the accuracy on the 10,000 test images.
 *
 *   fashion-classifier [--model mlp|cnn] [--epochs N] [--batch N]
 *                      [--lr F] [--seed N] [--threads N] [--limit N]
 *                      [--patience N] [--valid F] [--save FILE]
 *                      [--data DIR]
 *
 * Prints one line per epoch and, last, "test_accuracy=0.XXXX". */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnngen.h"

typedef struct options {
    const char *model, *data, *save;
    int epochs, threads, patience;
    int64_t batch, limit;
    float lr;
    double valid;
    uint64_t seed;
} options;

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  --model mlp|cnn   network (default mlp)\n"
            "  --epochs N        passes over the training set (default 15)\n"
            "  --batch N         samples per step (default 128)\n"
            "  --lr F            Adam's learning rate (default 1e-3), "
            "cosine-annealed\n"
            "  --seed N          seed of initialisation, split, shuffling "
            "and dropout\n"
            "                    (default 1)\n"
            "  --threads N       threads, 0 = all processors (default 0)\n"
            "  --limit N         use only the first N training images\n"
            "  --patience N      early stopping after N epochs without a "
            "better\n"
            "                    validation loss (default 0 = off)\n"
            "  --valid F         fraction held out for validation "
            "(default 0.1)\n"
            "  --save FILE       save the trained network (dng_net_save)\n"
            "  --data DIR        folder with the four .gz IDX files\n"
            "                    (default "
            "/usr/share/datasets/fashion-mnist)\n",
            argv0);
}

/* Parse an integer in [lo, hi]; 0 on success. */
static int parse_int(const char *s, long long lo, long long hi,
                     long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Returns 0, 1 for --help, or -1 with a message on a bad flag. */
static int parse_args(int argc, char **argv, options *o)
{
    o->model = "mlp";
    o->data = "/usr/share/datasets/fashion-mnist";
    o->save = NULL;
    o->epochs = 15;
    o->threads = 0;
    o->patience = 0;
    o->batch = 128;
    o->limit = 0;
    o->lr = 1e-3f;
    o->valid = 0.1;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        double f;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        if (!v) {
            fprintf(stderr, "%s: unknown option or missing value: %s\n",
                    argv[0], a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--model")) {
            if (strcmp(v, "mlp") && strcmp(v, "cnn")) {
                fprintf(stderr, "%s: --model must be mlp or cnn, not %s\n",
                        argv[0], v);
                return -1;
            }
            o->model = v;
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--save")) {
            o->save = v;
        } else if (!strcmp(a, "--epochs")) {
            if (parse_int(v, 1, 10000, &n))
                goto bad;
            o->epochs = (int)n;
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(v, 1, 60000, &n))
                goto bad;
            o->batch = n;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 0, 1024, &n))
                goto bad;
            o->threads = (int)n;
        } else if (!strcmp(a, "--patience")) {
            if (parse_int(v, 0, 10000, &n))
                goto bad;
            o->patience = (int)n;
        } else if (!strcmp(a, "--limit")) {
            if (parse_int(v, 10, 60000, &n))
                goto bad;
            o->limit = n;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(v, 0, INT64_MAX, &n))
                goto bad;
            o->seed = (uint64_t)n;
        } else if (!strcmp(a, "--lr")) {
            if (parse_float(v, 1e-8, 10.0, &f))
                goto bad;
            o->lr = (float)f;
        } else if (!strcmp(a, "--valid")) {
            if (parse_float(v, 0.001, 0.5, &f))
                goto bad;
            o->valid = f;
        } else {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "%s: bad value for %s: %s\n", argv[0], a, v);
        return -1;
    }
    return 0;
}

/* Report a failed call and its reason; returns 1 for main's exit code. */
static int fail(const char *what, dng_status s)
{
    fprintf(stderr, "fashion-classifier: %s failed (%s): %s\n", what,
            dng_status_string(s), dng_last_error());
    return 1;
}

/* The same for a constructor, which returns NULL instead of a status. */
static int fail_null(const char *what)
{
    fprintf(stderr, "fashion-classifier: %s failed: %s\n", what,
            dng_last_error());
    return 1;
}

#define ADD(net, layer)                                                      \
    do {                                                                     \
        dng_status s_ = dng_net_add(net, layer);                             \
        if (s_ != DNG_OK) {                                                  \
            fail("dng_net_add", s_);                                         \
            dng_net_destroy(net);                                            \
            return NULL;                                                     \
        }                                                                    \
    } while (0)

/* 784-512-256-10 with ReLU and dropout. */
static dng_net *build_mlp(void)
{
    int64_t in[3] = {1, 28, 28};
    dng_net *net = dng_net_create(3, in);
    if (!net)
        return NULL;
    ADD(net, dng_flatten());
    ADD(net, dng_dense(784, 512));
    ADD(net, dng_activation(DNG_ACT_RELU, 0));
    ADD(net, dng_dropout(0.2f));
    ADD(net, dng_dense(512, 256));
    ADD(net, dng_activation(DNG_ACT_RELU, 0));
    ADD(net, dng_dropout(0.2f));
    ADD(net, dng_dense(256, 10));
    return net;
}

/* Two blocks of 3x3 convolution, batch norm, ReLU and 2x2 max-pooling
 * (28 -> 14 -> 7), then a dense classifier with dropout. */
static dng_net *build_cnn(void)
{
    int64_t in[3] = {1, 28, 28};
    dng_net *net = dng_net_create(3, in);
    if (!net)
        return NULL;
    ADD(net, dng_conv2d(1, 32, 3, 3, 1, 1));
    ADD(net, dng_batchnorm(32));
    ADD(net, dng_activation(DNG_ACT_RELU, 0));
    ADD(net, dng_maxpool2d(2, 2));
    ADD(net, dng_conv2d(32, 64, 3, 3, 1, 1));
    ADD(net, dng_batchnorm(64));
    ADD(net, dng_activation(DNG_ACT_RELU, 0));
    ADD(net, dng_maxpool2d(2, 2));
    ADD(net, dng_flatten());
    ADD(net, dng_dropout(0.25f));
    ADD(net, dng_dense(64 * 7 * 7, 128));
    ADD(net, dng_activation(DNG_ACT_RELU, 0));
    ADD(net, dng_dropout(0.3f));
    ADD(net, dng_dense(128, 10));
    return net;
}

/* The first n samples of ds as a new dataset. */
static dng_dataset *head(const dng_dataset *ds, int64_t n)
{
    int64_t xs[4] = {n, 1, 28, 28};
    dng_tensor *x = dng_tensor_create(4, xs), *y = dng_tensor_create(1, xs);
    dng_dataset *out = NULL;
    if (x && y && dng_dataset_batch(ds, 0, n, x, y) == DNG_OK)
        out = dng_dataset_from_tensors(x, y);
    dng_tensor_destroy(x);
    dng_tensor_destroy(y);
    return out;
}

static int on_epoch(const dng_fit_progress *p, void *user)
{
    *(dng_fit_progress *)user = *p;
    printf("epoch %2d/%d train_loss=%.4f valid_loss=%.4f "
           "valid_accuracy=%.4f lr=%.2e seconds=%.1f\n",
           p->epoch, p->epochs, (double)p->train_loss,
           (double)p->valid_loss, (double)p->valid_accuracy, (double)p->lr,
           p->seconds);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    char ip[1024], lp[1024];
    dng_dataset *all = NULL, *test = NULL, *train = NULL, *valid = NULL;
    dng_net *net = NULL;
    dng_optim *opt = NULL;
    dng_rng *rng = NULL;
    dng_fit_options fo;
    dng_fit_progress last;
    dng_status s;
    float test_loss, test_acc;
    int rc = 1, pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        usage(pr > 0 ? stdout : stderr, argv[0]);
        return pr > 0 ? 0 : 2;
    }
    if ((s = dng_set_num_threads(o.threads)) != DNG_OK)
        return fail("dng_set_num_threads", s);

    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", o.data);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", o.data);
    if (!(all = dng_dataset_load_idx(ip, lp)))
        return fail_null("loading the training set");
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", o.data);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", o.data);
    if (!(test = dng_dataset_load_idx(ip, lp))) {
        fail_null("loading the test set");
        goto out;
    }
    if (o.limit && o.limit < dng_dataset_size(all)) {
        dng_dataset *h = head(all, o.limit);
        if (!h) {
            fail_null("taking the first --limit images");
            goto out;
        }
        dng_dataset_destroy(all);
        all = h;
    }
    rng = dng_rng_create(o.seed);
    if (!rng) {
        fail_null("dng_rng_create");
        goto out;
    }
    if ((s = dng_dataset_split(all, o.valid, rng, &train, &valid)) !=
        DNG_OK) {
        fail("dng_dataset_split", s);
        goto out;
    }

    net = strcmp(o.model, "cnn") == 0 ? build_cnn() : build_mlp();
    if (!net) {
        fail_null("building the network");
        goto out;
    }
    if ((s = dng_net_init(net, DNG_INIT_DEFAULT, rng)) != DNG_OK) {
        fail("dng_net_init", s);
        goto out;
    }
    /* Adam with the learning rate annealed along a cosine to 1% of its
     * start over the run: the late small steps are worth about half a
     * point of accuracy. */
    opt = dng_adam(o.lr, 0.9f, 0.999f, 1e-8f, 0.0f);
    if (!opt) {
        fail_null("dng_adam");
        goto out;
    }
    s = dng_optim_set_schedule(opt, DNG_SCHED_COSINE, o.epochs, 1.0f,
                               o.lr * 0.01f);
    if (s != DNG_OK) {
        fail("dng_optim_set_schedule", s);
        goto out;
    }
    printf("model=%s parameters=%" PRId64 " train=%" PRId64 " valid=%"
           PRId64 " test=%" PRId64 " threads=%d\n", o.model,
           dng_net_param_count(net), dng_dataset_size(train),
           dng_dataset_size(valid), dng_dataset_size(test),
           dng_get_num_threads());
    fflush(stdout);

    memset(&last, 0, sizeof last);
    dng_fit_options_default(&fo);
    fo.epochs = o.epochs;
    fo.batch_size = o.batch;
    fo.seed = o.seed;
    fo.patience = o.patience;
    s = dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, train, valid, &fo,
                on_epoch, &last);
    if (s != DNG_OK) {
        fail("dng_fit", s);
        goto out;
    }
    if (o.patience > 0)
        printf("best_epoch=%d (its weights are kept)%s\n", last.best_epoch,
               last.epoch < o.epochs ? ", stopped early" : "");
    s = dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, test, 500, &test_loss,
                     &test_acc);
    if (s != DNG_OK) {
        fail("dng_evaluate", s);
        goto out;
    }
    if (o.save && (s = dng_net_save(net, o.save)) != DNG_OK) {
        fail("dng_net_save", s);
        goto out;
    }
    printf("test_loss=%.4f\n", (double)test_loss);
    printf("test_accuracy=%.4f\n", (double)test_acc);
    rc = 0;
out:
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_rng_destroy(rng);
    dng_dataset_destroy(train);
    dng_dataset_destroy(valid);
    dng_dataset_destroy(test);
    dng_dataset_destroy(all);
    return rc;
}
