/* fashion-gan: train a GAN on Fashion-MNIST with libdnngen and write a grid
 * of generated garments.
 *
 *   fashion-gan --model dcgan --steps 3000 --out samples.png
 *
 * Run with --help for every option. Uses the public API only. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dnngen.h>

#define LATENT 100
#define GRID 64

typedef struct options {
    const char *model;
    const char *data;
    const char *out;
    const char *save;
    const char *resume;
    const char *dump_path;
    const char *score_path;
    const char *classifier;
    const char *loss;
    int64_t dump_n;
    int64_t steps;
    int64_t batch;
    int64_t report;
    int64_t sample_every;
    int64_t limit;
    uint64_t seed;
    float lr;
    float ema;
    float smooth;
    int threads;
    int eval;
    int quiet;
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: fashion-gan [options]\n"
        "Train a GAN on Fashion-MNIST and write a grid of generated images.\n"
        "\n"
        "  --model mlp|dcgan     architecture (default dcgan)\n"
        "  --steps N             train until N discriminator steps "
        "(default 3000)\n"
        "  --batch N             batch size (default 64)\n"
        "  --lr X                Adam learning rate (default 2e-4)\n"
        "  --loss bce|hinge|lsgan|wgan  adversarial loss (default bce)\n"
        "  --ema X               sample from an EMA of G's weights "
        "(decay X, default off)\n"
        "  --smooth X            one-sided label smoothing: real label X "
        "(default 1)\n"
        "  --seed N              random seed (default 1)\n"
        "  --threads N           threads (default: all cores)\n"
        "  --data DIR            Fashion-MNIST folder (default "
        "/usr/share/datasets/fashion-mnist)\n"
        "  --limit N             use only the first N training images\n"
        "  --out FILE            sample grid, .png/.pgm (default "
        "samples.png)\n"
        "  --sample-every N      rewrite the grid every N steps "
        "(default 500)\n"
        "  --report N            progress line every N steps (default 100)\n"
        "  --save FILE           write a checkpoint at the end\n"
        "  --resume FILE         continue from a checkpoint\n"
        "  --dump-samples N FILE write N samples as float32 .npy "
        "[N,1,28,28]\n"
        "  --eval                print fid=X (Frechet distance of classifier "
        "features, 10000 samples vs the test set)\n"
        "  --score FILE.npy      print fid=X for samples in FILE (no "
        "training)\n"
        "  --classifier FILE     feature extractor cache (default "
        "fashion-features.dngm; trained once if missing)\n"
        "  --quiet               no progress lines\n");
}

static int parse_i64(const char *s, int64_t lo, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo)
        return -1;
    *out = v;
    return 0;
}

static int parse_f(const char *s, float *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v))
        return -1;
    *out = (float)v;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.model = "dcgan",
                   .data = "/usr/share/datasets/fashion-mnist",
                   .out = "samples.png",
                   .classifier = "fashion-features.dngm",
                   .loss = "bce",
                   .steps = 3000,
                   .batch = 64,
                   .report = 100,
                   .sample_every = 500,
                   .seed = 1,
                   .lr = 2e-4f,
                   .smooth = 1.0f};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--eval")) {
            o->eval = 1;
            continue;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "fashion-gan: %s needs a value (see --help)\n",
                    a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--steps"))
            bad = parse_i64(v, 0, &o->steps);
        else if (!strcmp(a, "--batch"))
            bad = parse_i64(v, 2, &o->batch);
        else if (!strcmp(a, "--lr"))
            bad = parse_f(v, &o->lr) || !(o->lr > 0);
        else if (!strcmp(a, "--loss"))
            o->loss = v;
        else if (!strcmp(a, "--ema"))
            bad = parse_f(v, &o->ema);
        else if (!strcmp(a, "--smooth"))
            bad = parse_f(v, &o->smooth);
        else if (!strcmp(a, "--seed"))
            bad = parse_i64(v, 0, &n) || ((o->seed = (uint64_t)n), 0);
        else if (!strcmp(a, "--threads"))
            bad = parse_i64(v, 1, &n) || n > 1024 || ((o->threads = (int)n), 0);
        else if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--limit"))
            bad = parse_i64(v, 1, &o->limit);
        else if (!strcmp(a, "--out"))
            o->out = v;
        else if (!strcmp(a, "--sample-every"))
            bad = parse_i64(v, 1, &o->sample_every);
        else if (!strcmp(a, "--report"))
            bad = parse_i64(v, 1, &o->report);
        else if (!strcmp(a, "--save"))
            o->save = v;
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--classifier"))
            o->classifier = v;
        else if (!strcmp(a, "--score"))
            o->score_path = v;
        else if (!strcmp(a, "--dump-samples")) {
            if (i + 1 >= argc || parse_i64(v, 1, &o->dump_n)) {
                fprintf(stderr, "fashion-gan: --dump-samples takes N FILE\n");
                return -1;
            }
            o->dump_path = argv[++i];
        } else {
            fprintf(stderr, "fashion-gan: unknown option %s (see --help)\n",
                    a);
            return -1;
        }
        if (bad) {
            fprintf(stderr, "fashion-gan: bad value '%s' for %s\n", v, a);
            return -1;
        }
    }
    if (strcmp(o->model, "mlp") && strcmp(o->model, "dcgan")) {
        fprintf(stderr, "fashion-gan: --model must be mlp or dcgan\n");
        return -1;
    }
    return 0;
}

/* Report a failed call and exit: the library never prints by itself. */
static void check(dng_status s, const char *what)
{
    if (s != DNG_OK) {
        fprintf(stderr, "fashion-gan: %s: %s (%s)\n", what,
                dng_last_error(), dng_status_string(s));
        exit(1);
    }
}

static void *check_ptr(void *p, const char *what)
{
    if (!p) {
        fprintf(stderr, "fashion-gan: %s: %s\n", what, dng_last_error());
        exit(1);
    }
    return p;
}

static dng_net *build_generator(const char *model)
{
    int64_t z[1] = {LATENT};
    int64_t img[3] = {1, 28, 28};
    dng_net *g = check_ptr(dng_net_create(1, z), "generator");
    if (!strcmp(model, "mlp")) {
        check(dng_net_add(g, dng_dense(LATENT, 256)), "G");
        check(dng_net_add(g, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "G");
        check(dng_net_add(g, dng_dense(256, 512)), "G");
        check(dng_net_add(g, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "G");
        check(dng_net_add(g, dng_dense(512, 784)), "G");
        check(dng_net_add(g, dng_activation(DNG_ACT_TANH, 0)), "G");
        check(dng_net_add(g, dng_reshape(3, img)), "G");
    } else {
        int64_t fm[3] = {128, 7, 7};
        check(dng_net_add(g, dng_dense(LATENT, 128 * 7 * 7)), "G");
        check(dng_net_add(g, dng_reshape(3, fm)), "G");
        check(dng_net_add(g, dng_batchnorm(128)), "G");
        check(dng_net_add(g, dng_activation(DNG_ACT_RELU, 0)), "G");
        check(dng_net_add(g, dng_conv2d_transpose(128, 64, 4, 4, 2, 1)), "G");
        check(dng_net_add(g, dng_batchnorm(64)), "G");
        check(dng_net_add(g, dng_activation(DNG_ACT_RELU, 0)), "G");
        check(dng_net_add(g, dng_conv2d_transpose(64, 1, 4, 4, 2, 1)), "G");
        check(dng_net_add(g, dng_activation(DNG_ACT_TANH, 0)), "G");
    }
    return g;
}

static dng_net *build_discriminator(const char *model)
{
    int64_t img[3] = {1, 28, 28};
    dng_net *d = check_ptr(dng_net_create(3, img), "discriminator");
    if (!strcmp(model, "mlp")) {
        check(dng_net_add(d, dng_flatten()), "D");
        check(dng_net_add(d, dng_dense(784, 512)), "D");
        check(dng_net_add(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "D");
        check(dng_net_add(d, dng_dense(512, 256)), "D");
        check(dng_net_add(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "D");
        check(dng_net_add(d, dng_dense(256, 1)), "D");
    } else {
        check(dng_net_add(d, dng_conv2d(1, 64, 4, 4, 2, 1)), "D");
        check(dng_net_add(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "D");
        check(dng_net_add(d, dng_conv2d(64, 128, 4, 4, 2, 1)), "D");
        check(dng_net_add(d, dng_batchnorm(128)), "D");
        check(dng_net_add(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "D");
        check(dng_net_add(d, dng_flatten()), "D");
        check(dng_net_add(d, dng_dense(128 * 7 * 7, 1)), "D");
    }
    return d;
}

/* Load IDX images scaled to [-1, 1] (the generator's Tanh range). */
static dng_dataset *load_images(const char *dir, const char *stem,
                                int with_labels, int64_t limit)
{
    char img[1024], lab[1024];
    dng_dataset *ds;
    dng_tensor *x;
    float *p;
    int64_t n;
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, stem);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, stem);
    ds = dng_dataset_load_idx(img, with_labels ? lab : NULL);
    if (!ds) {
        fprintf(stderr, "fashion-gan: %s\n(install the data with "
                "`apt-get install dataset-fashion-mnist` or pass --data)\n",
                dng_last_error());
        exit(1);
    }
    if (limit > 0 && limit < dng_dataset_size(ds)) {
        dng_dataset *tr = NULL, *va = NULL;
        double frac = 1.0 - (double)limit / (double)dng_dataset_size(ds);
        check(dng_dataset_split(ds, frac, NULL, &tr, &va), "--limit");
        dng_dataset_destroy(ds);
        dng_dataset_destroy(va);
        ds = tr;
    }
    x = dng_dataset_x(ds);
    p = dng_tensor_data(x);
    n = dng_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        p[i] = 2.0f * p[i] - 1.0f;
    return ds;
}

/* ---- Frechet distance on classifier features -------------------------- */

/* The feature extractor: a small MLP classifier trained by the library
 * itself; its 128-wide penultimate layer gives the features. */
static dng_net *classifier_arch(int features_only)
{
    int64_t img[3] = {1, 28, 28};
    dng_net *c = check_ptr(dng_net_create(3, img), "classifier");
    check(dng_net_add(c, dng_flatten()), "C");
    check(dng_net_add(c, dng_dense(784, 256)), "C");
    check(dng_net_add(c, dng_activation(DNG_ACT_RELU, 0)), "C");
    check(dng_net_add(c, dng_dense(256, 128)), "C");
    check(dng_net_add(c, dng_activation(DNG_ACT_RELU, 0)), "C");
    if (!features_only)
        check(dng_net_add(c, dng_dense(128, 10)), "C");
    return c;
}

static dng_net *feature_extractor(const options *o)
{
    dng_net *full = dng_net_load(o->classifier);
    dng_net *feat;
    if (!full) {
        dng_dataset *train = load_images(o->data, "train", 1, 0);
        dng_optim *opt = check_ptr(dng_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0),
                                   "adam");
        dng_fit_options fo;
        float acc = 0;
        dng_dataset *test = load_images(o->data, "t10k", 1, 0);
        fprintf(stderr, "fashion-gan: training the feature classifier once "
                "(cached in %s)\n", o->classifier);
        full = classifier_arch(0);
        dng_fit_options_default(&fo);
        fo.epochs = 5;
        fo.batch_size = 128;
        fo.seed = 7;
        check(dng_fit(full, opt, DNG_LOSS_CROSS_ENTROPY, train, NULL, &fo,
                      NULL, NULL), "training the classifier");
        check(dng_evaluate(full, DNG_LOSS_CROSS_ENTROPY, test, 500, NULL,
                           &acc), "evaluating the classifier");
        fprintf(stderr, "fashion-gan: feature classifier test accuracy "
                "%.4f\n", acc);
        check(dng_net_save(full, o->classifier), "saving the classifier");
        dng_optim_destroy(opt);
        dng_dataset_destroy(train);
        dng_dataset_destroy(test);
    }
    /* The first five layers, weights copied by name. */
    feat = classifier_arch(1);
    for (int i = 0; i < dng_net_num_params(feat); i++) {
        int j = dng_net_param_index(full, dng_net_param_name(feat, i));
        if (j < 0) {
            fprintf(stderr, "fashion-gan: %s is not the expected classifier "
                    "(delete it to retrain)\n", o->classifier);
            exit(1);
        }
        check(dng_tensor_copy_in(dng_net_param(feat, i),
                                 dng_tensor_data(dng_net_param(full, j)),
                                 dng_tensor_numel(dng_net_param(feat, i))),
              "copying classifier weights");
    }
    dng_net_destroy(full);
    check(dng_net_set_training(feat, 0), "classifier");
    return feat;
}

/* features [N, 128] of images [N, 1, 28, 28] in [-1, 1] */
static dng_tensor *features(dng_net *feat, const float *images, int64_t n)
{
    int64_t fs[2] = {n, 128};
    dng_tensor *out = check_ptr(dng_tensor_create(2, fs), "features");
    for (int64_t i = 0; i < n; i += 500) {
        int64_t k = n - i < 500 ? n - i : 500;
        int64_t shape[4] = {k, 1, 28, 28};
        dng_tensor *x = check_ptr(
            dng_tensor_wrap(4, shape, (float *)images + i * 784), "wrap");
        dng_tensor *y;
        check(dng_net_forward(feat, x, &y), "features");
        memcpy(dng_tensor_data(out) + i * 128, dng_tensor_data(y),
               (size_t)(k * 128) * sizeof(float));
        dng_tensor_destroy(x);
    }
    return out;
}

static double fid_of(const options *o, const float *samples, int64_t n)
{
    dng_net *feat = feature_extractor(o);
    dng_dataset *test = load_images(o->data, "t10k", 0, 0);
    dng_tensor *fr = features(feat, dng_tensor_data(dng_dataset_x(test)),
                              dng_dataset_size(test));
    dng_tensor *fg = features(feat, samples, n);
    double fid;
    check(dng_frechet_distance(fr, fg, &fid), "Frechet distance");
    dng_tensor_destroy(fr);
    dng_tensor_destroy(fg);
    dng_dataset_destroy(test);
    dng_net_destroy(feat);
    return fid;
}

/* ---- training ---------------------------------------------------------- */

static void fmt_eta(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The data order is a pure function of (seed, epoch), so a resumed run
 * sees exactly the batches an uninterrupted one would. */
static void epoch_order(uint64_t seed, int64_t epoch, int64_t *perm,
                        int64_t n)
{
    dng_rng *r = check_ptr(dng_rng_create(seed * 1000003u + (uint64_t)epoch),
                           "rng");
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        float u;
        int64_t j, t;
        dng_rng_uniform(r, &u, 1, 0.0f, 1.0f);
        j = (int64_t)((double)u * (double)(i + 1));
        if (j > i)
            j = i;
        t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    dng_rng_destroy(r);
}

static void write_grid(dng_gan *gan, const dng_tensor *fixed_z,
                       dng_tensor *grid, const char *path)
{
    check(dng_gan_generate(gan, fixed_z, grid), "sampling");
    check(dng_write_image_grid(grid, 8, path), "writing the sample grid");
}

static dng_gan_loss loss_kind(const char *s)
{
    if (!strcmp(s, "bce"))
        return DNG_GAN_LOSS_BCE;
    if (!strcmp(s, "hinge"))
        return DNG_GAN_LOSS_HINGE;
    if (!strcmp(s, "lsgan"))
        return DNG_GAN_LOSS_LSGAN;
    if (!strcmp(s, "wgan"))
        return DNG_GAN_LOSS_WASSERSTEIN;
    fprintf(stderr, "fashion-gan: --loss must be bce, hinge, lsgan or "
            "wgan\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options o;
    dng_net *g, *d;
    dng_optim *g_opt, *d_opt;
    dng_gan *gan;
    dng_dataset *train = NULL;
    dng_tensor *x, *fixed_z, *grid;
    int64_t n = 0, *perm = NULL, step, start, epoch = -1;
    int64_t xs[4], zs[2] = {GRID, LATENT}, gs[4] = {GRID, 1, 28, 28};
    dng_rng *zr;
    double t0, tlast;
    dng_gan_stats acc = {.size = sizeof acc};
    int64_t since = 0;

    if (parse_args(argc, argv, &o) != 0)
        return 2;
    if (dng_version() != DNG_VERSION) {
        fprintf(stderr, "fashion-gan: built for libdnngen %s but loaded "
                "%s\n", DNG_VERSION_STRING, dng_version_string());
        return 1;
    }
    if (o.threads)
        check(dng_set_num_threads(o.threads), "--threads");

    if (o.score_path) {
        dng_tensor *s = check_ptr(dng_tensor_load_npy(o.score_path),
                                  "--score");
        if (dng_tensor_ndim(s) != 4 || dng_tensor_dim(s, 1) != 1 ||
            dng_tensor_dim(s, 2) != 28 || dng_tensor_dim(s, 3) != 28) {
            fprintf(stderr, "fashion-gan: %s must hold [N,1,28,28] "
                    "samples\n", o.score_path);
            return 1;
        }
        printf("fid=%.4f\n", fid_of(&o, dng_tensor_data(s),
                                    dng_tensor_dim(s, 0)));
        dng_tensor_destroy(s);
        return 0;
    }

    g = build_generator(o.model);
    d = build_discriminator(o.model);
    if (!strcmp(o.model, "dcgan")) {
        /* DCGAN's initialisation: N(0, 0.02) weights, N(1, 0.02) BN. */
        dng_rng *ir = check_ptr(dng_rng_create(o.seed), "rng");
        check(dng_net_init(g, DNG_INIT_NORMAL_002, ir), "init G");
        check(dng_net_init(d, DNG_INIT_NORMAL_002, ir), "init D");
        dng_rng_destroy(ir);
    } else {
        dng_rng *ir = check_ptr(dng_rng_create(o.seed), "rng");
        check(dng_net_init(g, DNG_INIT_DEFAULT, ir), "init G");
        check(dng_net_init(d, DNG_INIT_DEFAULT, ir), "init D");
        dng_rng_destroy(ir);
    }
    g_opt = check_ptr(dng_adam(o.lr, 0.5f, 0.999f, 1e-8f, 0), "adam");
    d_opt = check_ptr(dng_adam(o.lr, 0.5f, 0.999f, 1e-8f, 0), "adam");
    gan = check_ptr(dng_gan_create(g, d, g_opt, d_opt), "dng_gan_create");
    check(dng_gan_set_loss(gan, loss_kind(o.loss)), "--loss");
    check(dng_gan_set_label_smoothing(gan, o.smooth), "--smooth");
    check(dng_gan_set_seed(gan, o.seed), "--seed");
    if (o.ema > 0)
        check(dng_gan_set_ema(gan, o.ema), "--ema");
    if (o.resume)
        check(dng_gan_load_checkpoint(gan, o.resume), "--resume");

    /* 64 fixed latent vectors: the grid shows the same z over time. */
    zr = check_ptr(dng_rng_create(o.seed + 424242u), "rng");
    fixed_z = check_ptr(dng_tensor_create(2, zs), "z");
    grid = check_ptr(dng_tensor_create(4, gs), "grid");
    check(dng_tensor_fill_normal(fixed_z, zr, 0.0f, 1.0f), "z");

    start = dng_gan_steps(gan);
    if (start < o.steps) {
        train = load_images(o.data, "train", 0, o.limit);
        n = dng_dataset_size(train);
        if (o.batch > n) {
            fprintf(stderr, "fashion-gan: --batch %" PRId64 " exceeds the "
                    "%" PRId64 " training images\n", o.batch, n);
            return 2;
        }
        perm = check_ptr(calloc((size_t)n, sizeof *perm), "perm");
        xs[0] = o.batch;
        xs[1] = 1;
        xs[2] = 28;
        xs[3] = 28;
        x = check_ptr(dng_tensor_create(4, xs), "batch");
        if (!o.quiet)
            printf("fashion-gan: model %s, loss %s, %" PRId64 " images, "
                   "batch %" PRId64 ", steps %" PRId64 "..%" PRId64
                   ", %d threads\n", o.model, o.loss, n, o.batch, start,
                   o.steps, dng_get_num_threads());
        fflush(stdout);
        t0 = tlast = now();
        const float *all = dng_tensor_data(dng_dataset_x(train));
        int64_t per_epoch = n / o.batch;
        for (step = start; step < o.steps; step++) {
            int64_t e = step / per_epoch, b = step % per_epoch;
            dng_gan_stats st = {.size = sizeof st};
            if (e != epoch) {
                epoch_order(o.seed, e, perm, n);
                epoch = e;
            }
            for (int64_t i = 0; i < o.batch; i++)
                memcpy(dng_tensor_data(x) + i * 784,
                       all + perm[b * o.batch + i] * 784,
                       784 * sizeof(float));
            check(dng_gan_step(gan, x, NULL, &st), "training step");
            acc.d_loss += st.d_loss;
            acc.g_loss += st.g_loss;
            acc.d_real += st.d_real;
            acc.d_fake += st.d_fake;
            since++;
            if (!o.quiet && ((step + 1) % o.report == 0 ||
                             step + 1 == o.steps)) {
                double t = now(), rate = (double)(step + 1 - start) /
                                         (t - t0 > 1e-9 ? t - t0 : 1e-9);
                char eta[32];
                fmt_eta((double)(o.steps - step - 1) / rate, eta,
                        sizeof eta);
                printf("step %6" PRId64 "/%" PRId64 "  d_loss %.4f  "
                       "g_loss %.4f  D(real) %.3f  D(fake) %.3f  "
                       "%.1f steps/s  ETA %s\n", step + 1, o.steps,
                       acc.d_loss / since, acc.g_loss / since,
                       acc.d_real / since, acc.d_fake / since, rate, eta);
                fflush(stdout);
                memset(&acc, 0, sizeof acc);
                acc.size = sizeof acc;
                since = 0;
                tlast = t;
            }
            if ((step + 1) % o.sample_every == 0 && o.out)
                write_grid(gan, fixed_z, grid, o.out);
        }
        (void)tlast;
        dng_tensor_destroy(x);
    }
    if (o.out) {
        write_grid(gan, fixed_z, grid, o.out);
        if (!o.quiet)
            printf("wrote %s\n", o.out);
    }
    if (o.save) {
        check(dng_gan_save_checkpoint(gan, o.save), "--save");
        if (!o.quiet)
            printf("saved checkpoint %s at step %" PRId64 "\n", o.save,
                   dng_gan_steps(gan));
    }
    if (o.dump_path || o.eval) {
        int64_t ns = o.dump_path ? o.dump_n : 10000;
        int64_t ss[4] = {ns, 1, 28, 28};
        dng_tensor *samples = check_ptr(dng_tensor_create(4, ss), "samples");
        dng_rng *sr = check_ptr(dng_rng_create(o.seed + 777u), "rng");
        check(dng_gan_sample(gan, ns, sr, samples), "sampling");
        if (o.dump_path) {
            check(dng_tensor_save_npy(samples, o.dump_path),
                  "--dump-samples");
            if (!o.quiet)
                printf("wrote %" PRId64 " samples to %s\n", ns, o.dump_path);
        }
        if (o.eval) {
            if (ns != 10000) {
                int64_t s2[4] = {10000, 1, 28, 28};
                dng_tensor_destroy(samples);
                samples = check_ptr(dng_tensor_create(4, s2), "samples");
                check(dng_gan_sample(gan, 10000, sr, samples), "sampling");
            }
            printf("fid=%.4f\n", fid_of(&o, dng_tensor_data(samples),
                                        10000));
        }
        dng_rng_destroy(sr);
        dng_tensor_destroy(samples);
    }
    free(perm);
    dng_rng_destroy(zr);
    dng_tensor_destroy(fixed_z);
    dng_tensor_destroy(grid);
    dng_dataset_destroy(train);
    dng_gan_destroy(gan);
    dng_optim_destroy(g_opt);
    dng_optim_destroy(d_opt);
    dng_net_destroy(g);
    dng_net_destroy(d);
    return 0;
}
