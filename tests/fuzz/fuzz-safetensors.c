/* fuzz-safetensors.c: dng_net_load_safetensors's parser (through the
 * in-memory entry point) into the network tests/data/make-corpus.py and
 * tests/test-bigdata.c use: [6] -> dense(6, 5) -> batchnorm(5) -> relu ->
 * spectral_norm(dense(5, 3)). A refused file must leave the network
 * exactly as it was; an accepted one must have given every tensor the
 * bytes its entry names. */
#include "fuzz-util.h"

#include "io-impl.h"

static dng_net *net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int64_t in = 6;
    (void)argc;
    (void)argv;
    dng_set_num_threads(1);
    net = dng_net_create(1, &in);
    dng_net_add(net, dng_dense(6, 5));
    dng_net_add(net, dng_batchnorm(5));
    dng_net_add(net, dng_activation(DNG_ACT_RELU, 0));
    dng_net_add(net, dng_spectral_norm(dng_dense(5, 3)));
    return 0;
}

static size_t snapshot(float *out, size_t cap)
{
    size_t n = 0;
    int np = dng_net_num_params(net), nb = dng_net_num_buffers(net);
    for (int i = 0; i < np + nb; i++) {
        dng_tensor *t = i < np ? dng_net_param(net, i)
                               : dng_net_buffer(net, i - np);
        size_t m = (size_t)dng_tensor_numel(t);
        FUZZ_ASSERT(n + m <= cap, "snapshot too small");
        memcpy(out + n, dng_tensor_data(t), m * sizeof(float));
        n += m;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    float before[256], after[256];
    size_t n = snapshot(before, 256);
    dng_status s;
    dng_clear_error();
    s = dng__net_load_safetensors_bytes(net, data, size, "fuzz");
    snapshot(after, 256);
    if (s != DNG_OK) {
        FUZZ_ASSERT(s == DNG_ERR_FORMAT, "status %d: %s", s,
                    dng_last_error());
        fuzz_expect_message("dng_net_load_safetensors");
        FUZZ_ASSERT(memcmp(before, after, n * sizeof(float)) == 0,
                    "a refused file changed the network");
    }
    return 0;
}
