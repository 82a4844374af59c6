/* fuzz-model.c: model files (dng_net_load's parser, through the
 * in-memory entry point dng__net_from_bytes). The CRC is repaired so that
 * mutations reach the parser. A file that loads must be canonical: saving
 * the network gives back exactly the input's bytes. */
#include "fuzz-util.h"

#include "modelfile-impl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dng_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = fuzz_fix_crc(data, size);
    dng_net *net;
    dng_clear_error();
    net = dng__net_from_bytes(b, size, "fuzz.dngm");
    if (!net) {
        fuzz_expect_message("dng_net_load");
    } else {
        dng__wbuf w = {0};
        char summary[4096];
        dng__w_u32(&w, 0);
        FUZZ_ASSERT(dng__net_serialize(&w, net) == DNG_OK, "%s",
                    dng_last_error());
        /* magic (8) + version (4) + payload + crc (4) */
        FUZZ_ASSERT(w.len + 16 == size && memcmp(w.data, b + 12, w.len) == 0,
                    "a loaded model does not save back to its own bytes "
                    "(%zu vs %zu payload bytes)", w.len, size - 16);
        dng__wbuf_free(&w);
        dng_net_summary(net, summary, sizeof summary);
        dng_net_destroy(net);
    }
    free(b);
    return 0;
}
