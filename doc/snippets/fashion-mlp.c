/* fashion-mlp.c: train a multi-layer perceptron on Fashion-MNIST with
 * dng_fit, evaluate it, save it and load it back (tutorial, part 2).
 *
 *   fashion-mlp [DATA_DIR [TRAIN_IMAGES [EPOCHS [THREADS]]]]
 *
 * TRAIN_IMAGES 0 uses all 60,000; THREADS 0 uses every processor. */
#include <stdio.h>
#include <stdlib.h>

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

static const char *const class_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

/* Load an images/labels pair of gzipped IDX files from dir. */
static dng_dataset *load(const char *dir, const char *stem)
{
    char images[1024], labels[1024];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, stem);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, stem);
    return check_ptr(dng_dataset_load_idx(images, labels), "loading data");
}

/* Called by dng_fit after every epoch; returning non-zero stops training. */
static int on_epoch(const dng_fit_progress *p, void *user)
{
    (void)user;
    printf("epoch %d/%d  train loss %.4f  valid loss %.4f  "
           "valid accuracy %.4f  (%.1f s)\n", p->epoch, p->epochs,
           p->train_loss, p->valid_loss, p->valid_accuracy, p->seconds);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int64_t limit = argc > 2 ? atoll(argv[2]) : 0;
    int epochs = argc > 3 ? atoi(argv[3]) : 10;
    check(dng_set_num_threads(argc > 4 ? atoi(argv[4]) : 0), "threads");

    /* Images become [N, 1, 28, 28] floats in [0, 1], labels [N] class
     * indices stored as floats. */
    dng_dataset *all = load(dir, "train");
    dng_dataset *test = load(dir, "t10k");
    dng_dataset *train, *valid, *rest;
    dng_rng *rng = check_ptr(dng_rng_create(1), "dng_rng_create");
    if (limit > 0 && limit < dng_dataset_size(all)) {
        /* Keep the first `limit` images: split the others off. */
        double drop = 1.0 - (double)limit / (double)dng_dataset_size(all);
        check(dng_dataset_split(all, drop, NULL, &train, &rest), "limit");
        dng_dataset_destroy(all);
        dng_dataset_destroy(rest);
        all = train;
    }
    /* Hold out a shuffled 10% for validation. */
    check(dng_dataset_split(all, 0.1, rng, &train, &valid), "split");
    dng_dataset_destroy(all);

    const int64_t image[3] = {1, 28, 28};
    dng_net *net = check_ptr(dng_net_create(3, image), "dng_net_create");
    check(dng_net_add(net, dng_flatten()), "layer 0");
    check(dng_net_add(net, dng_dense(784, 256)), "layer 1");
    check(dng_net_add(net, dng_activation(DNG_ACT_RELU, 0)), "layer 2");
    check(dng_net_add(net, dng_dropout(0.2f)), "layer 3");
    check(dng_net_add(net, dng_dense(256, 10)), "layer 4");
    check(dng_net_init(net, DNG_INIT_HE_NORMAL, rng), "dng_net_init");

    dng_optim *opt = check_ptr(dng_adam(1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f),
                               "dng_adam");
    dng_fit_options fo;
    dng_fit_options_default(&fo); /* also sets fo.size */
    fo.epochs = epochs;
    fo.batch_size = 64;
    fo.seed = 1;     /* shuffling and dropout masks */
    fo.patience = 3; /* stop after 3 epochs without a better valid loss */
    check(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, train, valid, &fo,
                  on_epoch, NULL), "dng_fit");

    float loss, accuracy;
    check(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, test, 500, &loss,
                       &accuracy), "dng_evaluate");
    printf("test loss %.4f  test accuracy %.4f\n", loss, accuracy);

    /* Classify the first test image. */
    const int64_t one[4] = {1, 1, 28, 28}, label_shape[1] = {1};
    dng_tensor *x = check_ptr(dng_tensor_create(4, one), "x");
    dng_tensor *label = check_ptr(dng_tensor_create(1, label_shape), "y");
    dng_tensor *logits; /* borrowed from net */
    check(dng_dataset_batch(test, 0, 1, x, label), "dng_dataset_batch");
    check(dng_net_set_training(net, 0), "dng_net_set_training");
    check(dng_net_forward(net, x, &logits), "dng_net_forward");
    const float *z = dng_tensor_data(logits);
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (z[k] > z[best])
            best = k;
    printf("first test image: predicted %s, labelled %s\n",
           class_names[best], class_names[(int)dng_tensor_data(label)[0]]);

    /* One file holds the architecture and the weights. */
    check(dng_net_save(net, "fashion-mlp.dngm"), "dng_net_save");
    dng_net *loaded = check_ptr(dng_net_load("fashion-mlp.dngm"),
                                "dng_net_load");
    float accuracy2;
    check(dng_evaluate(loaded, DNG_LOSS_CROSS_ENTROPY, test, 500, NULL,
                       &accuracy2), "dng_evaluate");
    printf("reloaded test accuracy %.4f\n", accuracy2);

    dng_net_destroy(loaded);
    dng_tensor_destroy(label);
    dng_tensor_destroy(x);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_rng_destroy(rng);
    dng_dataset_destroy(test);
    dng_dataset_destroy(valid);
    dng_dataset_destroy(train);
    return 0;
}
