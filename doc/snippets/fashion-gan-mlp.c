/* fashion-gan-mlp.c: a GAN of two multi-layer perceptrons trained on
 * Fashion-MNIST with dng_gan; writes a grid of samples and a checkpoint,
 * then restores the checkpoint into a fresh trainer (tutorial, part 3).
 *
 *   fashion-gan-mlp [DATA_DIR [TRAIN_IMAGES [EPOCHS [THREADS]]]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnngen.h>

#define LATENT 100

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

/* G: noise [100] -> image [1, 28, 28] in [-1, 1]. */
static dng_net *generator(void)
{
    const int64_t z[1] = {LATENT}, image[3] = {1, 28, 28};
    dng_net *g = check_ptr(dng_net_create(1, z), "generator");
    check(dng_net_add(g, dng_dense(LATENT, 256)), "G");
    check(dng_net_add(g, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "G");
    check(dng_net_add(g, dng_dense(256, 512)), "G");
    check(dng_net_add(g, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "G");
    check(dng_net_add(g, dng_dense(512, 784)), "G");
    check(dng_net_add(g, dng_activation(DNG_ACT_TANH, 0)), "G");
    check(dng_net_add(g, dng_reshape(3, image)), "G");
    return g;
}

/* D: image [1, 28, 28] -> one logit (no sigmoid: the loss applies it). */
static dng_net *discriminator(void)
{
    const int64_t image[3] = {1, 28, 28};
    dng_net *d = check_ptr(dng_net_create(3, image), "discriminator");
    check(dng_net_add(d, dng_flatten()), "D");
    check(dng_net_add(d, dng_dense(784, 512)), "D");
    check(dng_net_add(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "D");
    check(dng_net_add(d, dng_dense(512, 256)), "D");
    check(dng_net_add(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f)), "D");
    check(dng_net_add(d, dng_dense(256, 1)), "D");
    return d;
}

/* A trainer and the four objects it borrows, which must outlive it. */
typedef struct gan_parts {
    dng_net *g, *d;
    dng_optim *g_opt, *d_opt;
    dng_gan *gan;
} gan_parts;

static void gan_build(gan_parts *p)
{
    p->g = generator();
    p->d = discriminator();
    /* The DCGAN paper's Adam settings: lr 2e-4, beta1 0.5. */
    p->g_opt = check_ptr(dng_adam(2e-4f, 0.5f, 0.999f, 1e-8f, 0), "adam");
    p->d_opt = check_ptr(dng_adam(2e-4f, 0.5f, 0.999f, 1e-8f, 0), "adam");
    p->gan = check_ptr(dng_gan_create(p->g, p->d, p->g_opt, p->d_opt),
                       "dng_gan_create");
    check(dng_gan_set_loss(p->gan, DNG_GAN_LOSS_BCE), "loss");
    check(dng_gan_set_seed(p->gan, 1), "seed");
    check(dng_gan_set_report_interval(p->gan, 200), "report interval");
}

static void gan_free(gan_parts *p)
{
    dng_gan_destroy(p->gan); /* first: it borrows the others */
    dng_optim_destroy(p->g_opt);
    dng_optim_destroy(p->d_opt);
    dng_net_destroy(p->g);
    dng_net_destroy(p->d);
}

static int on_report(const dng_gan_progress *p, void *user)
{
    (void)user;
    printf("epoch %d  step %lld/%lld  d_loss %.3f  g_loss %.3f  "
           "D(real) %.3f  D(fake) %.3f\n", p->epoch, (long long)p->step,
           (long long)p->steps, p->stats.d_loss, p->stats.g_loss,
           p->stats.d_real, p->stats.d_fake);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int64_t limit = argc > 2 ? atoll(argv[2]) : 0;
    int epochs = argc > 3 ? atoi(argv[3]) : 10;
    check(dng_set_num_threads(argc > 4 ? atoi(argv[4]) : 0), "threads");

    /* Unlabelled images, rescaled from [0, 1] to tanh's [-1, 1] in place. */
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    dng_dataset *data = check_ptr(dng_dataset_load_idx(path, NULL), path);
    if (limit > 0 && limit < dng_dataset_size(data)) {
        dng_dataset *head, *rest;
        double drop = 1.0 - (double)limit / (double)dng_dataset_size(data);
        check(dng_dataset_split(data, drop, NULL, &head, &rest), "limit");
        dng_dataset_destroy(data);
        dng_dataset_destroy(rest);
        data = head;
    }
    dng_tensor *pixels = dng_dataset_x(data); /* borrowed */
    float *px = dng_tensor_data(pixels);
    for (int64_t i = 0; i < dng_tensor_numel(pixels); i++)
        px[i] = 2.0f * px[i] - 1.0f;

    gan_parts a;
    gan_build(&a);
    check(dng_gan_train(a.gan, data, epochs, 64, on_report, NULL),
          "dng_gan_train");

    /* 64 fixed latent vectors, drawn once, so that grids are comparable. */
    const int64_t z_shape[2] = {64, LATENT}, grid_shape[4] = {64, 1, 28, 28};
    dng_rng *rng = check_ptr(dng_rng_create(7), "dng_rng_create");
    dng_tensor *z = check_ptr(dng_tensor_create(2, z_shape), "z");
    dng_tensor *grid = check_ptr(dng_tensor_create(4, grid_shape), "grid");
    check(dng_tensor_fill_normal(z, rng, 0.0f, 1.0f), "z");
    check(dng_gan_generate(a.gan, z, grid), "dng_gan_generate");
    check(dng_write_image_grid(grid, 8, "fashion-gan-mlp.pgm"), "grid");
    printf("wrote fashion-gan-mlp.pgm\n");

    /* A checkpoint holds everything needed to resume: both networks, both
     * optimizers' state, the step count and the trainer's random state. */
    check(dng_gan_save_checkpoint(a.gan, "fashion-gan-mlp.ckpt"), "save");
    gan_parts b;
    gan_build(&b);
    check(dng_gan_load_checkpoint(b.gan, "fashion-gan-mlp.ckpt"), "load");
    dng_tensor *again = check_ptr(dng_tensor_create(4, grid_shape), "again");
    check(dng_gan_generate(b.gan, z, again), "dng_gan_generate");
    int same = memcmp(dng_tensor_data(grid), dng_tensor_data(again),
                      sizeof(float) * 64 * 784) == 0;
    printf("restored at step %lld, same samples: %s\n",
           (long long)dng_gan_steps(b.gan), same ? "yes" : "no");

    dng_tensor_destroy(again);
    dng_tensor_destroy(grid);
    dng_tensor_destroy(z);
    dng_rng_destroy(rng);
    gan_free(&b);
    gan_free(&a);
    dng_dataset_destroy(data);
    return same ? 0 : 1;
}
