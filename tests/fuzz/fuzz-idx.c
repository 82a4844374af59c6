/* fuzz-idx.c: IDX files through both readers, dng_dataset_load_idx and
 * the memory-mapped dng_dataset_open_idx, as images alone and as images
 * with the same file as labels. They must agree: the same files accepted
 * (except gzip streams, which only the in-memory reader takes) and, for
 * those, the same samples and labels bit for bit. */
#include "fuzz-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dng_set_num_threads(1);
    return 0;
}

static void compare(dng_dataset *mem, dng_dataset *map, bool labels)
{
    dng_tensor *x = dng_dataset_x(mem), *y = dng_dataset_y(mem);
    dng_tensor *mx, *my = NULL;
    int64_t shape[DNG_MAX_DIMS];
    FUZZ_ASSERT(dng_dataset_size(mem) == dng_dataset_size(map),
                "sizes differ");
    dng_tensor_shape(x, shape);
    mx = dng_tensor_create(dng_tensor_ndim(x), shape);
    if (labels) {
        dng_tensor_shape(y, shape);
        my = dng_tensor_create(dng_tensor_ndim(y), shape);
    }
    FUZZ_ASSERT(mx && (!labels || my), "%s", dng_last_error());
    FUZZ_ASSERT(dng_dataset_batch(map, 0, shape[0], mx, my) == DNG_OK, "%s",
                dng_last_error());
    FUZZ_ASSERT(memcmp(dng_tensor_data(mx), dng_tensor_data(x),
                       (size_t)dng_tensor_numel(x) * 4) == 0,
                "open_idx and load_idx read different samples");
    if (labels)
        FUZZ_ASSERT(memcmp(dng_tensor_data(my), dng_tensor_data(y),
                           (size_t)dng_tensor_numel(y) * 4) == 0,
                    "open_idx and load_idx read different labels");
    dng_tensor_destroy(mx);
    dng_tensor_destroy(my);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    for (int labels = 0; labels < 2; labels++) {
        dng_dataset *mem, *map;
        dng_clear_error();
        mem = dng_dataset_load_idx(path, labels ? path : NULL);
        if (!mem)
            fuzz_expect_message("dng_dataset_load_idx");
        dng_clear_error();
        map = dng_dataset_open_idx(path, labels ? path : NULL);
        if (!map)
            fuzz_expect_message("dng_dataset_open_idx");
        if (gz)
            FUZZ_ASSERT(map == NULL, "open_idx mapped a gzip stream");
        else
            FUZZ_ASSERT((mem == NULL) == (map == NULL), "load_idx %s, "
                        "open_idx %s: %s", mem ? "accepts" : "refuses",
                        map ? "accepts" : "refuses", dng_last_error());
        if (mem && map)
            compare(mem, map, labels);
        dng_dataset_destroy(mem);
        dng_dataset_destroy(map);
    }
    return 0;
}
