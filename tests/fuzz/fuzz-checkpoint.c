/* fuzz-checkpoint.c: GAN checkpoints (dng_gan_load_checkpoint) into the
 * trainer tests/data/make-corpus.py and tests/test-bigdata.c build: G [4]
 * -> dense(4, 6) -> tanh, D [6] -> dense(6, 1), Adam for both. The CRC is
 * repaired so that mutations reach the parser. A refused checkpoint must
 * leave the trainer exactly as it was. */
#include "fuzz-util.h"

static dng_net *g, *d;
static dng_optim *go, *dop;
static dng_gan *gan;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int64_t lat = 4, feat = 6;
    (void)argc;
    (void)argv;
    dng_set_num_threads(1);
    g = dng_net_create(1, &lat);
    d = dng_net_create(1, &feat);
    dng_net_add(g, dng_dense(4, 6));
    dng_net_add(g, dng_activation(DNG_ACT_TANH, 0));
    dng_net_add(d, dng_dense(6, 1));
    go = dng_adam(2e-4f, 0.5f, 0.999f, 1e-8f, 0);
    dop = dng_adam(2e-4f, 0.5f, 0.999f, 1e-8f, 0);
    gan = dng_gan_create(g, d, go, dop);
    if (!gan) {
        fprintf(stderr, "%s\n", dng_last_error());
        abort();
    }
    return 0;
}

/* The generator's and discriminator's weights, concatenated. */
static size_t snapshot(float *out, size_t cap)
{
    size_t n = 0;
    dng_net *nets[2] = {g, d};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < dng_net_num_params(nets[k]); i++) {
            dng_tensor *t = dng_net_param(nets[k], i);
            size_t m = (size_t)dng_tensor_numel(t);
            FUZZ_ASSERT(n + m <= cap, "snapshot too small");
            memcpy(out + n, dng_tensor_data(t), m * sizeof(float));
            n += m;
        }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = fuzz_fix_crc(data, size);
    float before[64], after[64];
    size_t n = snapshot(before, 64);
    int64_t steps = dng_gan_steps(gan);
    dng_status s;
    dng_clear_error();
    s = dng_gan_load_checkpoint(gan, fuzz_file(b, size));
    if (s != DNG_OK) {
        FUZZ_ASSERT(s == DNG_ERR_FORMAT || s == DNG_ERR_IO,
                    "status %d: %s", s, dng_last_error());
        fuzz_expect_message("dng_gan_load_checkpoint");
        snapshot(after, 64);
        FUZZ_ASSERT(memcmp(before, after, n * sizeof(float)) == 0 &&
                        dng_gan_steps(gan) == steps,
                    "a refused checkpoint changed the trainer");
    }
    free(b);
    return 0;
}
