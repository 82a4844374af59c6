/* fuzz-npy.c: .npy files through both readers, dng_tensor_load_npy and
 * the memory-mapped dng_dataset_open_npy, which must agree: the same
 * files accepted (the mapped one also needs 2 or more dimensions) and,
 * for those, the same floats bit for bit. */
#include "fuzz-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dng_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    dng_tensor *t;
    dng_dataset *ds;
    dng_clear_error();
    t = dng_tensor_load_npy(path);
    if (!t)
        fuzz_expect_message("dng_tensor_load_npy");
    dng_clear_error();
    ds = dng_dataset_open_npy(path, NULL);
    if (!ds)
        fuzz_expect_message("dng_dataset_open_npy");
    if (t && dng_tensor_ndim(t) >= 2) {
        dng_tensor *all;
        int64_t shape[DNG_MAX_DIMS];
        FUZZ_ASSERT(ds != NULL, "load_npy accepts what open_npy refuses: "
                    "%s", dng_last_error());
        dng_tensor_shape(t, shape);
        all = dng_tensor_create(dng_tensor_ndim(t), shape);
        FUZZ_ASSERT(all != NULL, "%s", dng_last_error());
        FUZZ_ASSERT(dng_dataset_batch(ds, 0, shape[0], all, NULL) == DNG_OK,
                    "%s", dng_last_error());
        FUZZ_ASSERT(memcmp(dng_tensor_data(all), dng_tensor_data(t),
                           (size_t)dng_tensor_numel(t) * 4) == 0,
                    "open_npy and load_npy read different floats");
        dng_tensor_destroy(all);
    } else {
        FUZZ_ASSERT(ds == NULL, "open_npy accepts what load_npy refuses");
    }
    dng_dataset_destroy(ds);
    dng_tensor_destroy(t);
    return 0;
}
