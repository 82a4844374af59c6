/* test-io.c: .npy files, model files (round trips, corruption, atomic
 * replacement, a committed version-1 fixture), image grids and the
 * Fréchet distance. Internal suite: it reaches the byte buffers, CRC-32
 * and format constants to forge files.
 *
 * Run `test-io --write-model-fixture DIR` to regenerate
 * DIR/model-v1.dngm; it prints the outputs to paste into
 * fixture_expected[] below. Do that only when the format version
 * changes (and then keep the old fixture too). */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

#include "modelfile-impl.h"

#if defined(__has_include)
#if __has_include(<png.h>)
#include <png.h>
#define TEST_HAVE_PNG 1
#endif
#endif

static char tmpdir[256];

/* ---- helpers ----------------------------------------------------------- */

static const char *tmp_path(const char *name)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 1024, "%s/%s", tmpdir, name);
    return p;
}

static const char *data_path(const char *name)
{
    static char buf[4][1024];
    static int k;
    char *p = buf[k++ % 4];
    const char *dir = getenv("DNG_TEST_DATA");
    snprintf(p, 1024, "%s/%s", dir ? dir : "tests/data", name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    if (len)
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file, malloc'd; *len its size. */
static uint8_t *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static bool has_text(const char *needle)
{
    return strstr(dng_last_error(), needle) != NULL;
}

#define ck_assert_error(needle)                                              \
    ck_assert_msg(has_text(needle), "expected \"%s\" in: %s", needle,       \
                  dng_last_error())

/* Count files in tmpdir whose name contains part (leftover temp files). */
static int count_files_with(const char *part)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, part))
            n++;
    closedir(d);
    return n;
}

static void add_ok(dng_net *net, dng_layer *l)
{
    ck_assert_msg(dng_net_add(net, l) == DNG_OK, "dng_net_add: %s",
                  dng_last_error());
}

static dng_tensor *rand_tensor(int ndim, const int64_t *shape, unsigned seed,
                               float lo, float hi)
{
    dng_tensor *t = dng_tensor_create(ndim, shape);
    ck_assert_ptr_nonnull(t);
    dng_test_fill(dng_tensor_data(t), dng_tensor_numel(t), seed, lo, hi);
    return t;
}

/* ---- .npy -------------------------------------------------------------- */

/* Write a .npy file from a preamble version, a header text (padding and
 * the newline are added here) and raw data bytes. */
static void write_npy(const char *path, int major, const char *dict,
                      const void *data, size_t data_len)
{
    uint8_t buf[4096];
    size_t hl = strlen(dict) + 1, off = 0, pre = major == 1 ? 10 : 12;
    hl += (64 - (pre + hl) % 64) % 64;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    off = 8;
    buf[off++] = (uint8_t)hl;
    buf[off++] = (uint8_t)(hl >> 8);
    if (major != 1) {
        buf[off++] = (uint8_t)(hl >> 16);
        buf[off++] = (uint8_t)(hl >> 24);
    }
    memset(buf + off, ' ', hl);
    memcpy(buf + off, dict, strlen(dict));
    off += hl;
    buf[off - 1] = '\n';
    ck_assert_uint_le(off + data_len, sizeof buf);
    if (data_len)
        memcpy(buf + off, data, data_len);
    write_bytes(path, buf, off + data_len);
}

START_TEST(npy_round_trip)
{
    static const int64_t shapes[][DNG_MAX_DIMS] = {
        {7}, {3, 5}, {2, 3, 4}, {1, 2, 1, 3, 1, 2, 1, 2}};
    static const int ndims[] = {1, 2, 3, 8};
    static const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 3, 1, "
        "2, 1, 2), }"};
    for (int c = 0; c < 4; c++) {
        const char *path = tmp_path("round.npy");
        dng_tensor *t = rand_tensor(ndims[c], shapes[c], 10 + (unsigned)c,
                                    -100.0f, 100.0f), *u;
        int64_t got[DNG_MAX_DIMS], n = dng_tensor_numel(t);
        size_t len, hl;
        uint8_t *bytes;
        dng_tensor_data(t)[0] = -0.0f;
        ck_assert_int_eq(dng_tensor_save_npy(t, path), DNG_OK);
        /* The exact bytes NumPy 1.24 writes for such an array. */
        bytes = read_bytes(path, &len);
        ck_assert_mem_eq(bytes, "\x93NUMPY\x01\x00", 8);
        hl = (size_t)bytes[8] | (size_t)bytes[9] << 8;
        ck_assert_uint_eq((10 + hl) % 64, 0);
        ck_assert_uint_eq(len, 10 + hl + 4 * (size_t)n);
        ck_assert_mem_eq(bytes + 10, dicts[c], strlen(dicts[c]));
        for (size_t i = 10 + strlen(dicts[c]); i < 9 + hl; i++)
            ck_assert_int_eq(bytes[i], ' ');
        ck_assert_int_eq(bytes[9 + hl], '\n');
        ck_assert_mem_eq(bytes + 10 + hl, dng_tensor_data(t),
                         4 * (size_t)n);
        free(bytes);
        u = dng_tensor_load_npy(path);
        ck_assert_msg(u != NULL, "%s", dng_last_error());
        ck_assert_int_eq(dng_tensor_ndim(u), ndims[c]);
        dng_tensor_shape(u, got);
        ck_assert_mem_eq(got, shapes[c], sizeof(int64_t) * (size_t)ndims[c]);
        ck_assert_mem_eq(dng_tensor_data(u), dng_tensor_data(t),
                         4 * (size_t)n);
        dng_tensor_destroy(t);
        dng_tensor_destroy(u);
    }
    ck_assert_int_eq(count_files_with(".tmp-"), 0);
    ck_assert_int_eq(dng_tensor_save_npy(NULL, tmp_path("x.npy")),
                     DNG_ERR_INVALID_ARGUMENT);
    {
        int64_t one = 1;
        dng_tensor *t = dng_tensor_create(1, &one);
        ck_assert_int_eq(dng_tensor_save_npy(t, NULL),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(dng_tensor_save_npy(t, tmp_path("no/such/x.npy")),
                         DNG_ERR_IO);
        dng_tensor_destroy(t);
    }
}
END_TEST

/* Files written by NumPy itself (tests/data/make-npy-fixtures.py). */
START_TEST(npy_numpy_fixtures)
{
    dng_tensor *t;
    int64_t shape[DNG_MAX_DIMS];
    static const float one_d[5] = {1.5f, -2.25f, 0.0f, 1e-3f, 65504.0f};
    static const float v2[4] = {1.0f, 2.0f, 3.0f, 4.0f};

    t = dng_tensor_load_npy(data_path("npy-f32-3d.npy"));
    ck_assert_msg(t != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_tensor_ndim(t), 3);
    dng_tensor_shape(t, shape);
    ck_assert_int_eq(shape[0], 2);
    ck_assert_int_eq(shape[1], 3);
    ck_assert_int_eq(shape[2], 4);
    for (int i = 0; i < 24; i++)
        ck_assert_float_eq(dng_tensor_data(t)[i], (float)i * 0.5f - 3.0f);
    /* Saved again, it is the very file NumPy wrote. */
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "npy-f32-1d.npy" : "npy-f32-3d.npy";
        dng_tensor *u = k ? dng_tensor_load_npy(data_path(name)) : t;
        uint8_t *mine, *theirs;
        size_t l1, l2;
        ck_assert_ptr_nonnull(u);
        ck_assert_int_eq(dng_tensor_save_npy(u, tmp_path(name)), DNG_OK);
        mine = read_bytes(tmp_path(name), &l1);
        theirs = read_bytes(data_path(name), &l2);
        ck_assert_uint_eq(l1, l2);
        ck_assert_mem_eq(mine, theirs, l1);
        free(mine);
        free(theirs);
        if (k)
            dng_tensor_destroy(u);
    }
    dng_tensor_destroy(t);

    t = dng_tensor_load_npy(data_path("npy-f32-1d.npy"));
    ck_assert_msg(t != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_tensor_ndim(t), 1);
    ck_assert_int_eq(dng_tensor_dim(t, 0), 5);
    ck_assert_mem_eq(dng_tensor_data(t), one_d, sizeof one_d);
    dng_tensor_destroy(t);

    t = dng_tensor_load_npy(data_path("npy-f32-v2.npy"));
    ck_assert_msg(t != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_tensor_ndim(t), 2);
    ck_assert_mem_eq(dng_tensor_data(t), v2, sizeof v2);
    dng_tensor_destroy(t);

    ck_assert_ptr_null(dng_tensor_load_npy(data_path("npy-f64.npy")));
    ck_assert_error("'<f8'");
    ck_assert_error("npy-f64.npy");
    ck_assert_ptr_null(dng_tensor_load_npy(data_path("npy-fortran.npy")));
    ck_assert_error("Fortran");
}
END_TEST

/* Headers NumPy's parser (a Python literal) accepts. */
START_TEST(npy_header_variants)
{
    static const struct {
        const char *dict;
        int ndim;
        int64_t shape[3];
    } ok[] = {
        {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 2,
         {2, 3}},
        {"{ \"descr\" : \"<f4\" , \"fortran_order\":False,'shape':(6,) , }",
         1, {6}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3,)}", 3,
         {1, 2, 3}},
        {"{'descr':'<f4','fortran_order':False,'shape':[3, 2]}", 2, {3, 2}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6L,), }", 1,
         {6}},
        /* A 0-d array: one scalar, loaded as a 1-element 1-D tensor. */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 1, {1}},
    };
    float data[6] = {1, 2, 3, 4, 5, 6};
    for (size_t c = 0; c < sizeof ok / sizeof ok[0]; c++) {
        const char *path = tmp_path("variant.npy");
        int64_t n = 1, shape[DNG_MAX_DIMS];
        dng_tensor *t;
        for (int i = 0; i < ok[c].ndim; i++)
            n *= ok[c].shape[i];
        write_npy(path, c % 2 ? 1 : 3, ok[c].dict, data, 4 * (size_t)n);
        t = dng_tensor_load_npy(path);
        ck_assert_msg(t != NULL, "case %zu: %s", c, dng_last_error());
        ck_assert_int_eq(dng_tensor_ndim(t), ok[c].ndim);
        dng_tensor_shape(t, shape);
        ck_assert_mem_eq(shape, ok[c].shape,
                         sizeof(int64_t) * (size_t)ok[c].ndim);
        ck_assert_mem_eq(dng_tensor_data(t), data, 4 * (size_t)n);
        dng_tensor_destroy(t);
    }
}
END_TEST

START_TEST(npy_bad_files)
{
    static const struct {
        const char *dict;
        size_t data_len;
        const char *why;
    } bad[] = {
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16,
         "'<f8'"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8,
         "'<i4'"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
         "'>f4'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", 2,
         "'|u1'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
         8, "structured"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8,
         "Fortran"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8,
         "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8,
         "unexpected bytes"},
        /* Far more data than the file holds: refused before allocating. */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,"
         " 4096), }", 8, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': "
         "(4294967296, 4294967296, 4294967296), }", 8, "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': "
         "(99999999999999999999,), }", 8, "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", 0,
         "empty"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, "
         "1, 1, 1, 1), }", 4, "more than 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8,
         "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }", 8,
         "well-formed"},
        {"{'descr': '<f4', 'fortran_order': False}", 8, "missing"},
        {"{'descr': '<f4', 'shape': (2,)}", 8, "missing"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, "
         "'shape': (2,)}", 8, "twice"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", 8,
         "neither True nor False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
         "'extra': 1}", 8, "unknown key"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8,
         "expected ','"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8,
         "after the closing"},
        {"['descr', '<f4']", 8, "'{'"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
         "expected ':'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8,
         "expected ','"},
        {"", 8, "'{'"},
    };
    float data[4] = {0};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        const char *path = tmp_path("bad.npy");
        write_npy(path, 1, bad[c].dict, data, bad[c].data_len);
        dng_clear_error();
        ck_assert_msg(dng_tensor_load_npy(path) == NULL, "case %zu loaded",
                      c);
        ck_assert_msg(has_text(bad[c].why), "case %zu: expected \"%s\" in: "
                      "%s", c, bad[c].why, dng_last_error());
    }
    /* Preamble damage. */
    {
        const char *path = tmp_path("pre.npy");
        uint8_t b[64];
        write_bytes(path, "\x93NUMPX\x01\x00", 8);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("magic");
        write_bytes(path, "\x93NUMPY\x04\x00\x10\x00", 10);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("version 4.0");
        write_bytes(path, "\x93NUM", 4);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("truncated");
        /* A header length beyond the file. */
        memcpy(b, "\x93NUMPY\x01\x00\xff\x00{}", 12);
        write_bytes(path, b, 12);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("truncated in the header");
        /* A huge header length (version 2.0). */
        memcpy(b, "\x93NUMPY\x02\x00\x00\x00\x00\x7f", 12);
        write_bytes(path, b, 12);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("header length");
        /* No newline at the end of the header. */
        memcpy(b, "\x93NUMPY\x01\x00\x02\x00{}", 12);
        write_bytes(path, b, 12);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("newline");
        /* A NUL inside the header. */
        memcpy(b, "\x93NUMPY\x01\x00\x03\x00{\0\n", 13);
        write_bytes(path, b, 13);
        ck_assert_ptr_null(dng_tensor_load_npy(path));
        ck_assert_error("NUL");
    }
    ck_assert_ptr_null(dng_tensor_load_npy(tmp_path("missing.npy")));
    ck_assert_error("cannot open");
    ck_assert_ptr_null(dng_tensor_load_npy(tmpdir));
    ck_assert_error("not a regular file");
    ck_assert_ptr_null(dng_tensor_load_npy(NULL));
    ck_assert_error("path is NULL");
}
END_TEST

/* ---- model files ------------------------------------------------------- */

/* Every layer kind, spectral norm around each kind it can wrap:
 * [1, 8, 8] -> [2, 4]. */
static dng_net *build_all_kinds(void)
{
    int64_t in[3] = {1, 8, 8}, rs[2] = {2, 4};
    dng_net *net = dng_net_create(3, in);
    ck_assert_ptr_nonnull(net);
    add_ok(net, dng_conv2d(1, 4, 3, 3, 1, 1));                  /* 4x8x8 */
    add_ok(net, dng_batchnorm(4));
    add_ok(net, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f));
    add_ok(net, dng_spectral_norm(dng_conv2d(4, 4, 3, 3, 2, 1))); /* 4x4x4 */
    add_ok(net, dng_conv2d_transpose(4, 2, 4, 4, 2, 1));        /* 2x8x8 */
    add_ok(net, dng_spectral_norm(dng_conv2d_transpose(2, 2, 3, 3, 1, 1)));
    add_ok(net, dng_maxpool2d(2, 2));                           /* 2x4x4 */
    add_ok(net, dng_avgpool2d(2, 1));                           /* 2x3x3 */
    add_ok(net, dng_flatten());                                 /* 18 */
    add_ok(net, dng_dense(18, 16));
    add_ok(net, dng_layernorm(16));
    add_ok(net, dng_dropout(0.25f));
    add_ok(net, dng_spectral_norm(dng_dense(16, 8)));
    add_ok(net, dng_activation(DNG_ACT_TANH, 0.0f));
    add_ok(net, dng_reshape(2, rs));                            /* 2x4 */
    add_ok(net, dng_activation(DNG_ACT_SOFTMAX, 0.0f));
    return net;
}

/* Give every parameter non-default values and every buffer a history:
 * perturb the parameters, then run training forwards (running
 * statistics, power iterations). */
static void season(dng_net *net)
{
    int64_t xs[4] = {4, 1, 8, 8};
    dng_tensor *x = rand_tensor(4, xs, 3, -1.0f, 1.0f), *y;
    for (int i = 0; i < dng_net_num_params(net); i++) {
        dng_tensor *p = dng_net_param(net, i);
        int64_t n = dng_tensor_numel(p);
        float *noise = malloc(sizeof(float) * (size_t)n);
        dng_test_fill(noise, n, 100 + (unsigned)i, -0.1f, 0.1f);
        for (int64_t k = 0; k < n; k++)
            dng_tensor_data(p)[k] += noise[k];
        free(noise);
    }
    dng_net_set_seed(net, 11);
    dng_net_set_training(net, 1);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(dng_net_forward(net, x, &y) == DNG_OK, "%s",
                      dng_last_error());
    dng_tensor_destroy(x);
}

static void expect_same_state(dng_net *a, dng_net *b)
{
    ck_assert_int_eq(dng_net_num_params(a), dng_net_num_params(b));
    ck_assert_int_eq(dng_net_num_buffers(a), dng_net_num_buffers(b));
    for (int i = 0; i < dng_net_num_params(a); i++) {
        dng_tensor *p = dng_net_param(a, i), *q = dng_net_param(b, i);
        int64_t sp[DNG_MAX_DIMS], sq[DNG_MAX_DIMS];
        ck_assert_str_eq(dng_net_param_name(a, i), dng_net_param_name(b, i));
        ck_assert_int_eq(dng_tensor_ndim(p), dng_tensor_ndim(q));
        dng_tensor_shape(p, sp);
        dng_tensor_shape(q, sq);
        ck_assert_mem_eq(sp, sq, sizeof(int64_t) * (size_t)dng_tensor_ndim(p));
        ck_assert_mem_eq(dng_tensor_data(p), dng_tensor_data(q),
                         4 * (size_t)dng_tensor_numel(p));
    }
    for (int i = 0; i < dng_net_num_buffers(a); i++) {
        dng_tensor *p = dng_net_buffer(a, i), *q = dng_net_buffer(b, i);
        ck_assert_str_eq(dng_net_buffer_name(a, i),
                         dng_net_buffer_name(b, i));
        ck_assert_int_eq(dng_tensor_numel(p), dng_tensor_numel(q));
        ck_assert_mem_eq(dng_tensor_data(p), dng_tensor_data(q),
                         4 * (size_t)dng_tensor_numel(p));
    }
}

/* Outputs of a and b on the same batch, bit for bit, in both modes. */
static void expect_same_outputs(dng_net *a, dng_net *b)
{
    int64_t xs[4] = {5, 1, 8, 8};
    dng_tensor *x = rand_tensor(4, xs, 21, -1.5f, 1.5f), *ya, *yb;
    float *copy;
    int64_t n;
    for (int training = 0; training <= 1; training++) {
        dng_net_set_training(a, training);
        dng_net_set_training(b, training);
        dng_net_set_seed(a, 77);
        dng_net_set_seed(b, 77);
        ck_assert_int_eq(dng_net_forward(a, x, &ya), DNG_OK);
        n = dng_tensor_numel(ya);
        copy = malloc(sizeof(float) * (size_t)n);
        memcpy(copy, dng_tensor_data(ya), sizeof(float) * (size_t)n);
        ck_assert_int_eq(dng_net_forward(b, x, &yb), DNG_OK);
        ck_assert_int_eq(dng_tensor_numel(yb), n);
        ck_assert_msg(memcmp(copy, dng_tensor_data(yb),
                             sizeof(float) * (size_t)n) == 0,
                      "outputs differ (training = %d)", training);
        free(copy);
    }
    /* The training forwards moved the state identically. */
    expect_same_state(a, b);
    dng_tensor_destroy(x);
}

START_TEST(model_round_trip_every_kind)
{
    dng_net *net = build_all_kinds(), *back;
    const char *path = tmp_path("all.dngm"), *again = tmp_path("again.dngm");
    char s1[4096], s2[4096];
    uint8_t *b1, *b2;
    size_t l1, l2;
    bool seen[13] = {false};
    season(net);
    /* The network really holds every kind. */
    for (int i = 0; i < net->nlayers; i++) {
        seen[net->layers[i]->ops->kind] = true;
        if (net->layers[i]->inner)
            seen[net->layers[i]->inner->ops->kind] = true;
    }
    for (int k = DNG__LAYER_DENSE; k <= DNG__LAYER_SPECTRAL_NORM; k++)
        ck_assert_msg(seen[k], "layer kind %d is missing from the test", k);
    ck_assert_int_eq(dng_net_save(net, path), DNG_OK);
    back = dng_net_load(path);
    ck_assert_msg(back != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_net_summary(net, s1, sizeof s1), DNG_OK);
    ck_assert_int_eq(dng_net_summary(back, s2, sizeof s2), DNG_OK);
    ck_assert_str_eq(s1, s2);
    expect_same_state(net, back);
    /* Saving the loaded network gives the same bytes. */
    ck_assert_int_eq(dng_net_save(back, again), DNG_OK);
    b1 = read_bytes(path, &l1);
    b2 = read_bytes(again, &l2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(b1, b2, l1);
    free(b1);
    free(b2);
    expect_same_outputs(net, back);
    /* Gradients also agree (backward uses what forward cached). */
    {
        int64_t ds[3] = {5, 2, 4};
        dng_tensor *dy = rand_tensor(3, ds, 31, -1.0f, 1.0f), *dxa, *dxb;
        float *keep;
        dng_net_zero_grad(net);
        dng_net_zero_grad(back);
        ck_assert_int_eq(dng_net_backward(net, dy, &dxa), DNG_OK);
        keep = malloc(4 * (size_t)dng_tensor_numel(dxa));
        memcpy(keep, dng_tensor_data(dxa), 4 * (size_t)dng_tensor_numel(dxa));
        ck_assert_int_eq(dng_net_backward(back, dy, &dxb), DNG_OK);
        ck_assert_mem_eq(keep, dng_tensor_data(dxb),
                         4 * (size_t)dng_tensor_numel(dxb));
        for (int i = 0; i < dng_net_num_params(net); i++)
            ck_assert_mem_eq(dng_tensor_data(dng_net_grad(net, i)),
                             dng_tensor_data(dng_net_grad(back, i)),
                             4 * (size_t)dng_tensor_numel(
                                     dng_net_grad(net, i)));
        free(keep);
        dng_tensor_destroy(dy);
    }
    dng_net_destroy(back);
    dng_net_destroy(net);
    ck_assert_int_eq(count_files_with(".tmp-"), 0);
}
END_TEST

/* The internal serialisation used by the GAN checkpoint. */
START_TEST(model_serialize_internal)
{
    dng_net *net = build_all_kinds(), *copy, *other;
    dng__wbuf w = {0}, st = {0};
    dng__rbuf r;
    season(net);
    ck_assert_int_eq(dng__net_serialize(&w, net), DNG_OK);
    dng__w_u32(&w, 0xdeadbeef); /* a caller's data after the network */
    r = (dng__rbuf){.data = w.data, .len = w.len};
    copy = dng__net_deserialize(&r, "test");
    ck_assert_msg(copy != NULL, "%s", dng_last_error());
    ck_assert_uint_eq(dng__r_left(&r), 4);
    expect_same_state(net, copy);

    /* State alone: validate-only changes nothing; apply copies. */
    other = build_all_kinds();
    ck_assert_int_eq(dng__net_write_state(&st, net), DNG_OK);
    r = (dng__rbuf){.data = st.data, .len = st.len};
    ck_assert_int_eq(dng__net_read_state(&r, other, false, "test"), DNG_OK);
    ck_assert_uint_eq(dng__r_left(&r), 0);
    ck_assert_msg(memcmp(dng_tensor_data(dng_net_param(other, 0)),
                         dng_tensor_data(dng_net_param(net, 0)), 4 * 36) != 0,
                  "validation changed the network");
    r = (dng__rbuf){.data = st.data, .len = st.len};
    ck_assert_int_eq(dng__net_read_state(&r, other, true, "test"), DNG_OK);
    ck_assert_uint_eq(dng__r_left(&r), 0);
    expect_same_state(net, other);
    /* A truncated state changes nothing, even with apply. */
    {
        float before = dng_tensor_data(dng_net_param(other, 0))[0];
        dng_tensor_data(dng_net_param(net, 0))[0] += 1.0f;
        dng__wbuf_free(&st);
        st = (dng__wbuf){0};
        dng__net_write_state(&st, net);
        r = (dng__rbuf){.data = st.data, .len = st.len - 1};
        ck_assert_int_eq(dng__net_read_state(&r, other, true, "test"),
                         DNG_ERR_FORMAT);
        ck_assert_error("test: ");
        ck_assert_float_eq(dng_tensor_data(dng_net_param(other, 0))[0],
                           before);
    }
    /* Another architecture is refused by name or shape. */
    {
        int64_t in = 4;
        dng_net *small = dng_net_create(1, &in);
        add_ok(small, dng_dense(4, 2));
        r = (dng__rbuf){.data = st.data, .len = st.len};
        ck_assert_int_eq(dng__net_read_state(&r, small, true, "test"),
                         DNG_ERR_FORMAT);
        ck_assert_error("parameters");
        dng_net_destroy(small);
    }
    dng__wbuf_free(&st);
    dng__wbuf_free(&w);
    dng_net_destroy(copy);
    dng_net_destroy(other);
    dng_net_destroy(net);
}
END_TEST

/* A small model for the corruption tests: [4] -> dense(4, 3) -> relu ->
 * batchnorm(3). Byte offsets below follow doc/file-format.md. */
static dng_net *small_net(void)
{
    int64_t in = 4;
    dng_net *net = dng_net_create(1, &in);
    add_ok(net, dng_dense(4, 3));
    add_ok(net, dng_activation(DNG_ACT_RELU, 0.0f));
    add_ok(net, dng_batchnorm(3));
    return net;
}

/* File offsets in the small model's file. */
enum {
    OFF_VERSION = 8,
    OFF_FLAGS = 12,
    OFF_IN_NDIM = 16,
    OFF_IN_SHAPE = 20,
    OFF_NLAYERS = 28,
    OFF_L0_KIND = 32,
    OFF_L0_NIARGS = 36,
    OFF_L0_IN = 40,
    OFF_L0_OUT = 48,
    OFF_L0_NFARGS = 56,
    OFF_L0_INNER = 60,
    OFF_L1_KIND = 61,
};

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void fix_crc(uint8_t *b, size_t len)
{
    put_u32(b + len - 4, dng__crc32(0, b, len - 4));
}

/* Parse bytes as a model file (in memory, as dng_net_load does after
 * reading; the file system is far slower than the parser): must fail with
 * a message containing why (when not NULL). */
static void expect_model_fail(const uint8_t *b, size_t len, const char *why)
{
    dng_net *net;
    dng_clear_error();
    net = dng__net_from_bytes(b, len, "bad.dngm");
    ck_assert_msg(net == NULL, "a bad file loaded (expected %s)",
                  why ? why : "failure");
    ck_assert_msg(dng_last_error()[0] != '\0', "no message");
    if (why)
        ck_assert_error(why);
}

/* Find the byte offset of a state entry's name in a model file. */
static size_t find_name(const uint8_t *b, size_t len, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 4; i + k <= len; i++)
        if (memcmp(b + i, name, k) == 0 && get_u32(b + i - 4) == k)
            return i - 4;
    ck_abort_msg("%s not found", name);
    return 0;
}

START_TEST(model_layout_matches_spec)
{
    dng_net *net = small_net();
    const char *path = tmp_path("small.dngm");
    uint8_t *b;
    size_t len, off;
    ck_assert_int_eq(dng_net_save(net, path), DNG_OK);
    b = read_bytes(path, &len);
    ck_assert_mem_eq(b, "DNGMODEL", 8);
    ck_assert_uint_eq(get_u32(b + OFF_VERSION), 1);
    ck_assert_uint_eq(get_u32(b + OFF_FLAGS), 0);
    ck_assert_uint_eq(get_u32(b + OFF_IN_NDIM), 1);
    ck_assert_uint_eq(get_u32(b + OFF_IN_SHAPE), 4);
    ck_assert_uint_eq(get_u32(b + OFF_NLAYERS), 3);
    ck_assert_uint_eq(get_u32(b + OFF_L0_KIND), DNG__LAYER_DENSE);
    ck_assert_uint_eq(get_u32(b + OFF_L0_NIARGS), 2);
    ck_assert_uint_eq(get_u32(b + OFF_L0_IN), 4);
    ck_assert_uint_eq(get_u32(b + OFF_L0_OUT), 3);
    ck_assert_uint_eq(get_u32(b + OFF_L0_NFARGS), 0);
    ck_assert_uint_eq(b[OFF_L0_INNER], 0);
    ck_assert_uint_eq(get_u32(b + OFF_L1_KIND), DNG__LAYER_ACTIVATION);
    /* The first state entry: "0.weight", 2-D [3, 4], then its floats. */
    off = find_name(b, len, "0.weight");
    ck_assert_uint_eq(get_u32(b + off - 4), 4); /* parameter count */
    ck_assert_uint_eq(get_u32(b + off + 12), 2);
    ck_assert_uint_eq(get_u32(b + off + 16), 3);
    ck_assert_uint_eq(get_u32(b + off + 24), 4);
    ck_assert_mem_eq(b + off + 32, dng_tensor_data(dng_net_param(net, 0)),
                     4 * 12);
    /* The CRC is zlib's: the standard check value, and zlib agrees. */
    ck_assert_uint_eq(dng__crc32(0, "123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(get_u32(b + len - 4), dng__crc32(0, b, len - 4));
    ck_assert_uint_eq(get_u32(b + len - 4),
                      crc32(0L, b, (uInt)(len - 4)));
    free(b);
    dng_net_destroy(net);
}
END_TEST

START_TEST(model_corrupt_files)
{
    dng_net *net = small_net();
    const char *path = tmp_path("small.dngm");
    uint8_t *orig, *b;
    size_t len, off;
    ck_assert_int_eq(dng_net_save(net, path), DNG_OK);
    orig = read_bytes(path, &len);
    b = malloc(len + 64);
    /* The good file loads, from the file and from memory. */
    {
        dng_net *ok = dng_net_load(path);
        ck_assert_msg(ok != NULL, "%s", dng_last_error());
        dng_net_destroy(ok);
        ok = dng__net_from_bytes(orig, len, "small.dngm");
        ck_assert_msg(ok != NULL, "%s", dng_last_error());
        dng_net_destroy(ok);
    }
    /* Through the file system too, for a few kinds of damage. */
    write_bytes(path, orig, len / 2);
    ck_assert_ptr_null(dng_net_load(path));
    ck_assert_error("corrupt or truncated");
    ck_assert_error(path);
    write_bytes(path, orig, 10);
    ck_assert_ptr_null(dng_net_load(path));
    ck_assert_error("wrong magic");
    /* Truncated at every length. */
    for (size_t n = 0; n < len; n++)
        expect_model_fail(orig, n, NULL);
    /* Every single-bit flip is caught (by the CRC or the magic). */
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, orig, len);
            b[i] ^= (uint8_t)(1u << bit);
            expect_model_fail(b, len, NULL);
        }
    /* Magic, version and CRC. */
    memcpy(b, orig, len);
    b[3] = 'X';
    fix_crc(b, len);
    expect_model_fail(b, len, "wrong magic");
    memcpy(b, orig, len);
    put_u32(b + OFF_VERSION, 2);
    fix_crc(b, len);
    expect_model_fail(b, len, "format version 2");
    put_u32(b + OFF_VERSION, 0);
    fix_crc(b, len);
    expect_model_fail(b, len, "format version 0");
    memcpy(b, orig, len);
    b[len - 1] ^= 0x40;
    expect_model_fail(b, len, "CRC-32");
    /* Each of the following recomputes the CRC, so the parser itself
     * must catch the damage. */
    memcpy(b, orig, len);
    put_u32(b + OFF_FLAGS, 1);
    fix_crc(b, len);
    expect_model_fail(b, len, "flags");
    memcpy(b, orig, len);
    put_u32(b + OFF_IN_NDIM, 8);
    fix_crc(b, len);
    expect_model_fail(b, len, "dimensions");
    memcpy(b, orig, len);
    put_u64(b + OFF_IN_SHAPE, (uint64_t)-4);
    fix_crc(b, len);
    expect_model_fail(b, len, "input shape");
    memcpy(b, orig, len);
    put_u64(b + OFF_IN_SHAPE, 5);
    fix_crc(b, len);
    expect_model_fail(b, len, "does not fit");
    memcpy(b, orig, len);
    put_u32(b + OFF_NLAYERS, 0xffffffffu);
    fix_crc(b, len);
    expect_model_fail(b, len, "layers cannot fit");
    memcpy(b, orig, len);
    put_u32(b + OFF_NLAYERS, 2);
    fix_crc(b, len);
    expect_model_fail(b, len, NULL);
    memcpy(b, orig, len);
    put_u32(b + OFF_L0_KIND, 99);
    fix_crc(b, len);
    expect_model_fail(b, len, "unknown layer kind 99");
    memcpy(b, orig, len);
    put_u32(b + OFF_L0_NIARGS, 200);
    fix_crc(b, len);
    expect_model_fail(b, len, "integer arguments");
    memcpy(b, orig, len);
    b[OFF_L0_INNER] = 2;
    fix_crc(b, len);
    expect_model_fail(b, len, "inner-layer flag");
    memcpy(b, orig, len);
    put_u32(b + OFF_L1_KIND, DNG__LAYER_DROPOUT);
    fix_crc(b, len);
    expect_model_fail(b, len, "dropout");
    /* A huge dense layer whose weights the file does not hold: refused
     * before its constructor allocates 4 TB. */
    memcpy(b, orig, len);
    put_u64(b + OFF_L0_IN, UINT64_C(1) << 20);
    put_u64(b + OFF_L0_OUT, UINT64_C(1) << 20);
    fix_crc(b, len);
    expect_model_fail(b, len, "weights but the file stores");
    /* Oversized dimensions in the state. */
    off = find_name(orig, len, "0.weight");
    memcpy(b, orig, len);
    put_u64(b + off + 16, UINT64_C(1) << 40);
    fix_crc(b, len);
    expect_model_fail(b, len, "data bytes");
    memcpy(b, orig, len);
    put_u64(b + off + 16, (uint64_t)INT64_MAX);
    put_u64(b + off + 24, (uint64_t)INT64_MAX);
    fix_crc(b, len);
    expect_model_fail(b, len, "invalid shape");
    memcpy(b, orig, len);
    put_u32(b + off + 12, 9);
    fix_crc(b, len);
    expect_model_fail(b, len, "dimensions");
    memcpy(b, orig, len);
    put_u32(b + off, 0x7fffffff); /* name length */
    fix_crc(b, len);
    expect_model_fail(b, len, "name");
    memcpy(b, orig, len);
    b[off + 4] = '9'; /* "9.weight" */
    fix_crc(b, len);
    expect_model_fail(b, len, "\"9.weight\" in the file");
    memcpy(b, orig, len);
    put_u64(b + off + 16, 4); /* [4, 3]: wrong shape, data still fits */
    put_u64(b + off + 24, 3);
    fix_crc(b, len);
    expect_model_fail(b, len, "shape [4, 3] in the file");
    memcpy(b, orig, len);
    put_u32(b + off - 4, 3); /* parameter count */
    fix_crc(b, len);
    expect_model_fail(b, len, NULL);
    /* Bytes after the network. */
    memcpy(b, orig, len - 4);
    memcpy(b + len - 4, "\0\0\0\0", 4);
    fix_crc(b, len + 4);
    expect_model_fail(b, len + 4, "unexpected bytes");
    free(b);
    free(orig);
    ck_assert_ptr_null(dng_net_load(tmp_path("none.dngm")));
    ck_assert_error("cannot open");
    ck_assert_ptr_null(dng_net_load(NULL));
    ck_assert_int_eq(dng_net_save(NULL, path), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_net_save(net, NULL), DNG_ERR_INVALID_ARGUMENT);
    dng_net_destroy(net);
}
END_TEST

/* Forge layer records by hand: nesting and argument checks. */
static void put_layer(dng__wbuf *w, uint32_t kind, int ni,
                      const int64_t *iargs, int nf, const float *fargs,
                      int inner)
{
    dng__w_u32(w, kind);
    dng__w_u32(w, (uint32_t)ni);
    for (int i = 0; i < ni; i++)
        dng__w_i64(w, iargs[i]);
    dng__w_u32(w, (uint32_t)nf);
    for (int i = 0; i < nf; i++)
        dng__w_f32(w, fargs[i]);
    dng__w_u8(w, (uint8_t)inner);
}

/* Wrap an architecture (after flags and input [4]) plus an empty state
 * into a file and expect loading to fail with why. */
static void expect_arch_fail(dng__wbuf *arch, uint32_t nlayers,
                             const char *why)
{
    dng__wbuf w = {0};
    dng__w_bytes(&w, "DNGMODEL", 8);
    dng__w_u32(&w, 1);
    dng__w_u32(&w, 0);
    dng__w_u32(&w, 1);
    dng__w_i64(&w, 4);
    dng__w_u32(&w, nlayers);
    dng__w_bytes(&w, arch->data, arch->len);
    dng__w_u32(&w, 0); /* parameters */
    dng__w_u32(&w, 0); /* buffers */
    dng__w_u32(&w, 0); /* CRC placeholder */
    ck_assert(!w.failed);
    fix_crc(w.data, w.len);
    expect_model_fail(w.data, w.len, why);
    dng__wbuf_free(&w);
    dng__wbuf_free(arch);
    *arch = (dng__wbuf){0};
}

START_TEST(model_forged_architectures)
{
    dng__wbuf a = {0};
    int64_t dense[2] = {4, 4}, pool[2] = {(int64_t)1 << 33 | 2, 2};
    int64_t rs[3] = {3, 2, 2}, act = 99;
    float nan = NAN, p = 0.5f;
    /* Spectral norm inside spectral norm. */
    put_layer(&a, DNG__LAYER_SPECTRAL_NORM, 0, NULL, 0, NULL, 1);
    put_layer(&a, DNG__LAYER_SPECTRAL_NORM, 0, NULL, 0, NULL, 1);
    put_layer(&a, DNG__LAYER_DENSE, 2, dense, 0, NULL, 0);
    expect_arch_fail(&a, 1, "nested");
    /* Spectral norm around a layer without weights. */
    put_layer(&a, DNG__LAYER_SPECTRAL_NORM, 0, NULL, 0, NULL, 1);
    put_layer(&a, DNG__LAYER_FLATTEN, 0, NULL, 0, NULL, 0);
    expect_arch_fail(&a, 1, "only dense");
    /* Spectral norm without its inner record. */
    put_layer(&a, DNG__LAYER_SPECTRAL_NORM, 0, NULL, 0, NULL, 0);
    expect_arch_fail(&a, 1, "without an inner layer");
    /* A flatten layer claiming an inner layer. */
    put_layer(&a, DNG__LAYER_FLATTEN, 0, NULL, 0, NULL, 1);
    put_layer(&a, DNG__LAYER_FLATTEN, 0, NULL, 0, NULL, 0);
    expect_arch_fail(&a, 1, "cannot wrap");
    /* Arguments outside an int, and counts that do not match. */
    put_layer(&a, DNG__LAYER_MAXPOOL2D, 2, pool, 0, NULL, 0);
    expect_arch_fail(&a, 1, "does not fit an int");
    put_layer(&a, DNG__LAYER_DENSE, 1, dense, 0, NULL, 0);
    expect_arch_fail(&a, 1, "expected 2 and 0");
    put_layer(&a, DNG__LAYER_RESHAPE, 3, rs, 0, NULL, 0);
    expect_arch_fail(&a, 1, "announces 3 dimensions");
    put_layer(&a, DNG__LAYER_ACTIVATION, 1, &act, 1, &p, 0);
    expect_arch_fail(&a, 1, "unknown kind 99");
    put_layer(&a, DNG__LAYER_DROPOUT, 0, NULL, 1, &nan, 0);
    expect_arch_fail(&a, 1, "outside [0, 1)");
    /* A valid dense layer whose state is missing from the file. */
    put_layer(&a, DNG__LAYER_DENSE, 2, dense, 0, NULL, 0);
    expect_arch_fail(&a, 1, "weights but the file stores");
    /* Fewer records than announced. */
    put_layer(&a, DNG__LAYER_FLATTEN, 0, NULL, 0, NULL, 0);
    expect_arch_fail(&a, 3, NULL);
    /* And the well-formed empty network does load (the forger is right). */
    {
        const char *path = tmp_path("empty.dngm");
        dng__wbuf w = {0};
        dng_net *net;
        dng__w_bytes(&w, "DNGMODEL", 8);
        dng__w_u32(&w, 1);
        dng__w_u32(&w, 0);
        dng__w_u32(&w, 1);
        dng__w_i64(&w, 4);
        dng__w_u32(&w, 1);
        put_layer(&w, DNG__LAYER_FLATTEN, 0, NULL, 0, NULL, 0);
        dng__w_u32(&w, 0);
        dng__w_u32(&w, 0);
        dng__w_u32(&w, 0);
        fix_crc(w.data, w.len);
        write_bytes(path, w.data, w.len);
        net = dng_net_load(path);
        ck_assert_msg(net != NULL, "%s", dng_last_error());
        ck_assert_int_eq(dng_net_num_layers(net), 1);
        dng_net_destroy(net);
        dng__wbuf_free(&w);
    }
}
END_TEST

/* Random damage with a valid CRC: the parser must never crash; what it
 * accepts must be a usable network. A cheap stand-in for the fuzzer. */
START_TEST(model_random_damage)
{
    dng_net *net = build_all_kinds();
    const char *path = tmp_path("fuzz.dngm");
    uint8_t *orig, *b;
    size_t len;
    uint64_t s = 0x1234567;
    int loaded = 0;
    ck_assert_int_eq(dng_net_save(net, path), DNG_OK);
    dng_net_destroy(net);
    orig = read_bytes(path, &len);
    b = malloc(len);
    for (int it = 0; it < 3000; it++) {
        size_t n = len;
        dng_net *got;
        int edits;
        memcpy(b, orig, len);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        edits = 1 + (int)((s >> 33) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at;
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            /* Mostly the head of the file, where the structure is. */
            at = 12 + (size_t)((s >> 20) % (it % 2 ? 400 : len - 16));
            b[at] = (uint8_t)(s >> 50);
        }
        if (it % 7 == 0)
            n = 16 + (size_t)((s >> 10) % (len - 16));
        fix_crc(b, n);
        got = dng__net_from_bytes(b, n, "fuzz.dngm");
        if (got) {
            /* What loads must run: one forward on a small input. */
            int64_t sh[DNG_MAX_DIMS], numel = 1;
            dng_tensor *x = NULL, *y;
            loaded++;
            sh[0] = 1;
            for (int i = 0; i < got->in_ndim; i++) {
                sh[i + 1] = got->in_shape[i];
                numel *= sh[i + 1] < 4096 ? sh[i + 1] : 4096;
            }
            if (numel < 4096)
                x = dng_tensor_create(got->in_ndim + 1, sh);
            if (x) {
                dng_net_set_training(got, 0);
                dng_net_forward(got, x, &y);
            }
            dng_tensor_destroy(x);
            dng_net_destroy(got);
        } else {
            ck_assert(dng_last_error()[0] != '\0');
        }
    }
    free(b);
    free(orig);
    /* Some damage lands in weights only and must still load. */
    ck_assert_int_gt(loaded, 0);
}
END_TEST

START_TEST(model_atomic_replace)
{
    dng_net *a = small_net(), *b = small_net(), *got;
    const char *path = tmp_path("atomic.dngm");
    uint8_t *before, *after;
    size_t lb, la;
    char longname[300];
    dng_tensor_data(dng_net_param(b, 0))[0] = 42.0f;
    /* A successful save replaces the file. */
    ck_assert_int_eq(dng_net_save(a, path), DNG_OK);
    ck_assert_int_eq(dng_net_save(b, path), DNG_OK);
    got = dng_net_load(path);
    ck_assert_ptr_nonnull(got);
    ck_assert_float_eq(dng_tensor_data(dng_net_param(got, 0))[0], 42.0f);
    dng_net_destroy(got);
    before = read_bytes(path, &lb);
    /* A save into a missing directory fails cleanly. */
    ck_assert_int_eq(dng_net_save(a, tmp_path("no/such/dir/x.dngm")),
                     DNG_ERR_IO);
    ck_assert_error("no/such/dir");
    /* A failed save leaves the previous file as it was: here the
     * temporary name is too long to create, while the target exists. */
    memset(longname, 'm', 250);
    longname[250] = '\0';
    {
        const char *lp = tmp_path(longname);
        write_bytes(lp, before, lb);
        ck_assert_int_eq(dng_net_save(a, lp), DNG_ERR_IO);
        ck_assert_error("temporary");
        after = read_bytes(lp, &la);
        ck_assert_uint_eq(la, lb);
        ck_assert_mem_eq(after, before, lb);
        free(after);
        unlink(lp);
    }
    /* Here the rename fails (the target is a non-empty directory) after
     * the temporary file was written: it must be removed. */
    {
        const char *dp = tmp_path("target.dngm");
        ck_assert_int_eq(mkdir(dp, 0755), 0);
        write_bytes(tmp_path("target.dngm/keep"), "k", 1);
        ck_assert_int_eq(dng_net_save(a, dp), DNG_ERR_IO);
        ck_assert_error("rename");
        after = read_bytes(tmp_path("target.dngm/keep"), &la);
        ck_assert_uint_eq(la, 1);
        free(after);
    }
    ck_assert_int_eq(count_files_with(".tmp-"), 0);
    after = read_bytes(path, &la);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(after, before, lb);
    free(after);
    free(before);
    dng_net_destroy(a);
    dng_net_destroy(b);
}
END_TEST

/* ---- the committed version-1 fixture ----------------------------------- */

#define FIXTURE_BATCH 2

/* Eval-mode outputs of tests/data/model-v1.dngm on fixture_input(), as
 * printed by --write-model-fixture when the file was made. */
static const float fixture_expected[FIXTURE_BATCH * 8] = {
    0.121065058f, 0.106058232f, 0.0980902836f, 0.167059109f,
    0.19853875f, 0.0573008917f, 0.0455945507f, 0.206293136f,
    0.118838437f, 0.113330834f, 0.0722669661f, 0.177029327f,
    0.205287978f, 0.0546370521f, 0.0481949821f, 0.21041441f,
};

static dng_tensor *fixture_input(void)
{
    int64_t xs[4] = {FIXTURE_BATCH, 1, 8, 8};
    return rand_tensor(4, xs, 2024, -1.0f, 1.0f);
}

START_TEST(model_v1_fixture_loads)
{
    const char *path = data_path("model-v1.dngm");
    dng_net *net = dng_net_load(path);
    dng_tensor *x = fixture_input(), *y;
    ck_assert_msg(net != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_net_num_layers(net), 16);
    dng_net_set_training(net, 0);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    ck_assert_int_eq(dng_tensor_numel(y), FIXTURE_BATCH * 8);
    ck_assert_double_le(dng_test_close_ratio(dng_tensor_data(y),
                                             fixture_expected,
                                             FIXTURE_BATCH * 8, 1e-6, 1e-5),
                        1.0);
    /* While version 1 is the current format, saving the loaded network
     * reproduces the fixture byte for byte. */
    if (DNG__MODEL_VERSION == 1) {
        const char *again = tmp_path("fixture-again.dngm");
        uint8_t *b1, *b2;
        size_t l1, l2;
        ck_assert_int_eq(dng_net_save(net, again), DNG_OK);
        b1 = read_bytes(path, &l1);
        b2 = read_bytes(again, &l2);
        ck_assert_uint_eq(l1, l2);
        ck_assert_mem_eq(b1, b2, l1);
        free(b1);
        free(b2);
    }
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

static const char *fixture_dir;

/* Not part of the suite: run by --write-model-fixture (the helpers use
 * Check's assertions, so it runs as a test of its own). */
START_TEST(write_model_fixture)
{
    char path[1024];
    dng_net *net = build_all_kinds();
    dng_tensor *x = fixture_input(), *y;
    season(net);
    snprintf(path, sizeof path, "%s/model-v1.dngm", fixture_dir);
    ck_assert_msg(dng_net_save(net, path) == DNG_OK, "%s", dng_last_error());
    dng_net_set_training(net, 0);
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    printf("static const float fixture_expected[FIXTURE_BATCH * 8] = {\n");
    for (int i = 0; i < FIXTURE_BATCH * 8; i++)
        printf("%s%.9gf,%s", i % 4 ? " " : "    ",
               (double)dng_tensor_data(y)[i], i % 4 == 3 ? "\n" : "");
    printf("};\n");
    dng_tensor_destroy(x);
    dng_net_destroy(net);
}
END_TEST

/* ---- image grids ------------------------------------------------------- */

/* The value -> byte map, written independently of the library. */
static uint8_t expect_px(float v)
{
    double d = ((double)v + 1.0) * 127.5;
    if (d < 0)
        d = 0;
    if (d > 255)
        d = 255;
    return (uint8_t)floor(d + 0.5);
}

START_TEST(image_grid_pgm_bytes)
{
    /* Three 2x3 (H x W) grey images in two columns: a 2x2 grid of tiles,
     * the last one empty, 3 + 2 + 3 = 8 wide and 2 + 2 + 2 = 6 high. */
    static const float px[3 * 6] = {
        -1.0f, 1.0f, 0.0f, -0.5f, 0.5f, 2.0f,
        -3.0f, 0.25f, -0.25f, 0.999f, -0.999f, 0.0039f,
        0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    int64_t shape[4] = {3, 1, 2, 3};
    dng_tensor *t = dng_tensor_from_data(4, shape, px);
    const char *path = tmp_path("grid.pgm");
    uint8_t want[64 + 48], *got;
    size_t hl, len;
    hl = (size_t)snprintf((char *)want, 64, "P5\n8 6\n255\n");
    memset(want + hl, 0, 48);
    for (int i = 0; i < 3; i++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++) {
                int gy = (i / 2) * 4 + y, gx = (i % 2) * 5 + x;
                want[hl + (size_t)(gy * 8 + gx)] = expect_px(px[i * 6 + y * 3 + x]);
            }
    /* The map itself, spot-checked by hand. */
    ck_assert_int_eq(expect_px(-1.0f), 0);
    ck_assert_int_eq(expect_px(1.0f), 255);
    ck_assert_int_eq(expect_px(0.0f), 128);
    ck_assert_int_eq(expect_px(-0.5f), 64);
    ck_assert_int_eq(dng_write_image_grid(t, 2, path), DNG_OK);
    got = read_bytes(path, &len);
    ck_assert_uint_eq(len, hl + 48);
    ck_assert_mem_eq(got, want, len);
    free(got);
    /* More columns than images: one row of three. */
    ck_assert_int_eq(dng_write_image_grid(t, 10, path), DNG_OK);
    got = read_bytes(path, &len);
    ck_assert_mem_eq(got, "P5\n13 2\n255\n", 12);
    ck_assert_uint_eq(len, 12 + 26);
    ck_assert_int_eq(got[12 + 0], expect_px(-1.0f));
    ck_assert_int_eq(got[12 + 3], 0);          /* padding */
    ck_assert_int_eq(got[12 + 5], expect_px(-3.0f));
    ck_assert_int_eq(got[12 + 13 + 12], expect_px(0.6f));
    free(got);
    dng_tensor_destroy(t);
}
END_TEST

START_TEST(image_grid_ppm_bytes)
{
    /* Two 1x1 RGB images side by side: 1 + 2 + 1 = 4 wide, 1 high. */
    static const float px[6] = {-1.0f, 0.0f, 1.0f, 0.5f, -0.5f, 0.2f};
    int64_t shape[4] = {2, 3, 1, 1};
    dng_tensor *t = dng_tensor_from_data(4, shape, px);
    const char *path = tmp_path("grid.ppm");
    uint8_t *got;
    size_t len;
    ck_assert_int_eq(dng_write_image_grid(t, 2, path), DNG_OK);
    got = read_bytes(path, &len);
    ck_assert_uint_eq(len, 11 + 12);
    ck_assert_mem_eq(got, "P6\n4 1\n255\n", 11);
    ck_assert_int_eq(got[11], 0);
    ck_assert_int_eq(got[12], 128);
    ck_assert_int_eq(got[13], 255);
    for (int i = 14; i < 20; i++)
        ck_assert_int_eq(got[i], 0);
    ck_assert_int_eq(got[20], expect_px(0.5f));
    ck_assert_int_eq(got[21], expect_px(-0.5f));
    ck_assert_int_eq(got[22], expect_px(0.2f));
    free(got);
    /* Without a known suffix, the channel count picks the format. */
    ck_assert_int_eq(dng_write_image_grid(t, 1, tmp_path("grid.img")),
                     DNG_OK);
    got = read_bytes(tmp_path("grid.img"), &len);
    ck_assert_mem_eq(got, "P6\n1 4\n255\n", 11);
    free(got);
    dng_tensor_destroy(t);
}
END_TEST

START_TEST(image_grid_png_decodes)
{
    int64_t shape[4] = {5, 1, 7, 6}, shape3[4] = {4, 3, 5, 4};
    for (int color = 0; color <= 1; color++) {
        dng_tensor *t = rand_tensor(4, color ? shape3 : shape, 7 + color,
                                    -1.2f, 1.2f);
        const char *png_path = tmp_path(color ? "g3.png" : "g1.png");
        const char *pnm_path = tmp_path(color ? "g3.ppm" : "g1.pgm");
        dng_status s = dng_write_image_grid(t, 3, png_path);
#ifdef TEST_HAVE_PNG
        uint8_t *pnm, *pix;
        size_t len, hl;
        unsigned w, h;
        png_image img;
        ck_assert_msg(s == DNG_OK, "%s", dng_last_error());
        ck_assert_int_eq(dng_write_image_grid(t, 3, pnm_path), DNG_OK);
        pnm = read_bytes(pnm_path, &len);
        ck_assert_int_eq(sscanf((char *)pnm, "P%*d %u %u 255", &w, &h), 2);
        hl = len - (size_t)w * h * (color ? 3 : 1);
        memset(&img, 0, sizeof img);
        img.version = PNG_IMAGE_VERSION;
        ck_assert_msg(png_image_begin_read_from_file(&img, png_path),
                      "%s", img.message);
        ck_assert_uint_eq(img.width, w);
        ck_assert_uint_eq(img.height, h);
        ck_assert_uint_eq(img.format,
                          color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY);
        pix = malloc(PNG_IMAGE_SIZE(img));
        ck_assert(png_image_finish_read(&img, NULL, pix, 0, NULL));
        ck_assert_uint_eq(PNG_IMAGE_SIZE(img), len - hl);
        ck_assert_mem_eq(pix, pnm + hl, len - hl);
        free(pix);
        free(pnm);
#else
        (void)pnm_path;
        ck_assert_int_eq(s, DNG_ERR_UNSUPPORTED);
        ck_assert_error("libpng");
#endif
        dng_tensor_destroy(t);
    }
}
END_TEST

START_TEST(image_grid_errors)
{
    int64_t s4[4] = {2, 2, 3, 3}, s3[3] = {2, 3, 3}, ok[4] = {2, 1, 3, 3};
    dng_tensor *two = dng_tensor_create(4, s4), *flat = dng_tensor_create(3, s3);
    dng_tensor *t = dng_tensor_create(4, ok);
    const char *path = tmp_path("e.pgm");
    ck_assert_int_eq(dng_write_image_grid(NULL, 1, path),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_write_image_grid(t, 1, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_write_image_grid(t, 1, ""),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_write_image_grid(two, 1, path), DNG_ERR_SHAPE);
    ck_assert_error("C = 1 or 3");
    ck_assert_int_eq(dng_write_image_grid(flat, 1, path), DNG_ERR_SHAPE);
    ck_assert_int_eq(dng_write_image_grid(t, 0, path),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_error("cols");
    ck_assert_int_eq(dng_write_image_grid(t, 1, tmp_path("e.ppm")),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_error("RGB");
    ck_assert_int_eq(dng_write_image_grid(t, 1, tmp_path("no/dir.pgm")),
                     DNG_ERR_IO);
    dng_tensor_data(t)[4] = NAN;
    ck_assert_int_eq(dng_write_image_grid(t, 1, path), DNG_ERR_NUMERIC);
    ck_assert_error("index 4");
    {
        int64_t big[4] = {1, 1, 70000, 1};
        dng_tensor *tall = dng_tensor_create(4, big);
        ck_assert_int_eq(dng_write_image_grid(tall, 1, path),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert_error("exceeds");
        dng_tensor_destroy(tall);
    }
    dng_tensor_destroy(two);
    dng_tensor_destroy(flat);
    dng_tensor_destroy(t);
}
END_TEST

/* ---- Fréchet distance -------------------------------------------------- */

typedef long double ld;

/* Sample mean and covariance (N - 1) of x [n, d] in long double. */
static void ref_moments(const float *x, int64_t n, int d, ld *mu, ld *cov)
{
    for (int j = 0; j < d; j++) {
        mu[j] = 0;
        for (int64_t i = 0; i < n; i++)
            mu[j] += x[i * d + j];
        mu[j] /= n;
    }
    for (int j = 0; j < d; j++)
        for (int k = 0; k < d; k++) {
            ld s = 0;
            for (int64_t i = 0; i < n; i++)
                s += (x[i * d + j] - mu[j]) * (x[i * d + k] - mu[k]);
            cov[j * d + k] = s / (n - 1);
        }
}

/* Inverse of a [d, d] by Gauss-Jordan with partial pivoting. */
static void ref_inverse(const ld *a, ld *inv, int d)
{
    ld m[16 * 32];
    ck_assert_int_le(d, 16);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < 2 * d; j++)
            m[i * 2 * d + j] = j < d ? a[i * d + j] : (j - d == i);
    for (int c = 0; c < d; c++) {
        int p = c;
        for (int i = c + 1; i < d; i++)
            if (fabsl(m[i * 2 * d + c]) > fabsl(m[p * 2 * d + c]))
                p = i;
        for (int j = 0; j < 2 * d; j++) {
            ld t = m[c * 2 * d + j];
            m[c * 2 * d + j] = m[p * 2 * d + j];
            m[p * 2 * d + j] = t;
        }
        for (int i = 0; i < d; i++) {
            ld f;
            if (i == c)
                continue;
            f = m[i * 2 * d + c] / m[c * 2 * d + c];
            for (int j = 0; j < 2 * d; j++)
                m[i * 2 * d + j] -= f * m[c * 2 * d + j];
        }
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            inv[i * d + j] = m[i * 2 * d + d + j] / m[i * 2 * d + i];
}

/* tr((S_a S_b)^1/2) by the Denman-Beavers iteration in long double: no
 * eigen-decomposition, so an independent check of the library. */
static ld ref_trace_sqrt(const ld *sa, const ld *sb, int d)
{
    ld y[256], z[256], yi[256], zi[256], tr = 0;
    ck_assert_int_le(d, 16);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            ld s = 0;
            for (int k = 0; k < d; k++)
                s += sa[i * d + k] * sb[k * d + j];
            y[i * d + j] = s;
            z[i * d + j] = i == j;
        }
    for (int it = 0; it < 60; it++) {
        ref_inverse(y, yi, d);
        ref_inverse(z, zi, d);
        for (int k = 0; k < d * d; k++) {
            y[k] = (y[k] + zi[k]) / 2;
            z[k] = (z[k] + yi[k]) / 2;
        }
    }
    for (int i = 0; i < d; i++)
        tr += y[i * d + i];
    return tr;
}

static ld ref_frechet(const float *a, int64_t n, const float *b, int64_t m,
                      int d)
{
    ld mua[16], mub[16], sa[256], sb[256], dist = 0;
    ref_moments(a, n, d, mua, sa);
    ref_moments(b, m, d, mub, sb);
    for (int j = 0; j < d; j++)
        dist += (mua[j] - mub[j]) * (mua[j] - mub[j]) + sa[j * d + j] +
                sb[j * d + j];
    return dist - 2 * ref_trace_sqrt(sa, sb, d);
}

/* Gaussian samples x [n, d] with a chosen mean and a covariance mixing
 * the features through the lower-triangular l (row-major d x d). */
static dng_tensor *gaussian(int64_t n, int d, const float *mean,
                            const float *l, uint64_t seed)
{
    int64_t shape[2] = {n, d};
    dng_tensor *t = dng_tensor_create(2, shape);
    dng_rng *rng = dng_rng_create(seed);
    float *z = malloc(sizeof(float) * (size_t)d), *x = dng_tensor_data(t);
    for (int64_t i = 0; i < n; i++) {
        dng_rng_normal(rng, z, d, 0.0f, 1.0f);
        for (int j = 0; j < d; j++) {
            float s = mean[j];
            for (int k = 0; k <= j; k++)
                s += l[j * d + k] * z[k];
            x[i * d + j] = s;
        }
    }
    free(z);
    dng_rng_destroy(rng);
    return t;
}

START_TEST(frechet_self_is_zero)
{
    float mean[6] = {3, -2, 0.5f, 10, 0, 1}, l[36] = {0};
    dng_tensor *a;
    double fd, tr = 0;
    ld mu[6], cov[36];
    for (int j = 0; j < 6; j++)
        for (int k = 0; k <= j; k++)
            l[j * 6 + k] = j == k ? 1.0f + 0.3f * (float)j : 0.4f;
    a = gaussian(300, 6, mean, l, 1);
    ref_moments(dng_tensor_data(a), 300, 6, mu, cov);
    for (int j = 0; j < 6; j++)
        tr += (double)cov[j * 6 + j];
    ck_assert_int_eq(dng_frechet_distance(a, a, &fd), DNG_OK);
    ck_assert_double_ge(fd, 0.0);
    ck_assert_double_le(fd, 1e-6 * tr);
    dng_tensor_destroy(a);
    /* Also with many features (D = 64) and fewer samples than features,
     * where S_a is singular. */
    {
        float m64[64] = {0}, l64[64 * 64] = {0};
        for (int j = 0; j < 64; j++)
            l64[j * 64 + j] = 1.0f + (float)(j % 5);
        a = gaussian(40, 64, m64, l64, 2);
        ck_assert_int_eq(dng_frechet_distance(a, a, &fd), DNG_OK);
        ck_assert_double_le(fd, 1e-6 * 64 * 9);
        dng_tensor_destroy(a);
    }
}
END_TEST

/* Centre the columns of x [n, d] and make them exactly orthogonal (in
 * double, Gram-Schmidt), then give column j the standard deviation sd[j]
 * and mean mu[j]: the sample covariance is then diagonal. */
static void decorrelate(dng_tensor *t, const double *mu, const double *sd)
{
    int64_t n = dng_tensor_dim(t, 0);
    int d = (int)dng_tensor_dim(t, 1);
    float *x = dng_tensor_data(t);
    double *c = malloc(sizeof(double) * (size_t)(n * d));
    for (int j = 0; j < d; j++) {
        double m = 0, norm = 0;
        for (int64_t i = 0; i < n; i++)
            m += x[i * d + j];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++)
            c[i * d + j] = x[i * d + j] - m;
        for (int k = 0; k < j; k++) {
            double dot = 0;
            for (int64_t i = 0; i < n; i++)
                dot += c[i * d + j] * c[i * d + k];
            for (int64_t i = 0; i < n; i++)
                c[i * d + j] -= dot * c[i * d + k];
        }
        for (int64_t i = 0; i < n; i++)
            norm += c[i * d + j] * c[i * d + j];
        for (int64_t i = 0; i < n; i++)
            c[i * d + j] /= sqrt(norm);
    }
    /* Unit columns have sample variance 1 / (n - 1). */
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            x[i * d + j] = (float)(mu[j] + sd[j] * sqrt((double)(n - 1)) *
                                               c[i * d + j]);
    free(c);
}

START_TEST(frechet_diagonal_closed_form)
{
    float zero[5] = {0}, eye[25] = {0};
    double mua[5] = {0.5, -1, 2, 0, 3}, sda[5] = {1, 2, 0.5, 1.5, 0.1};
    double mub[5] = {0, -1, 1, 0.25, 3}, sdb[5] = {2, 2, 1, 0.5, 0.3};
    dng_tensor *a, *b;
    double fd, fd2, want = 0;
    ld ma[5], mb[5], ca[25], cb[25];
    for (int j = 0; j < 5; j++)
        eye[j * 5 + j] = 1.0f;
    a = gaussian(400, 5, zero, eye, 3);
    b = gaussian(250, 5, zero, eye, 4);
    decorrelate(a, mua, sda);
    decorrelate(b, mub, sdb);
    /* The closed form from the sample moments of the float data:
     * sum (mu_a - mu_b)^2 + sum (sqrt(s_a) - sqrt(s_b))^2. The
     * off-diagonal covariances left by rounding to float are ~1e-8 and
     * enter the distance squared. */
    ref_moments(dng_tensor_data(a), 400, 5, ma, ca);
    ref_moments(dng_tensor_data(b), 250, 5, mb, cb);
    for (int j = 0; j < 5; j++) {
        ld dm = ma[j] - mb[j];
        ld ds = sqrtl(ca[j * 5 + j]) - sqrtl(cb[j * 5 + j]);
        want += (double)(dm * dm + ds * ds);
        ck_assert_double_lt(fabs((double)ca[j * 5 + j] - sda[j] * sda[j]),
                            1e-5);
    }
    ck_assert_int_eq(dng_frechet_distance(a, b, &fd), DNG_OK);
    ck_assert_msg(fabs(fd - want) <= 1e-9 * want, "got %.15g, want %.15g",
                  fd, want);
    /* Symmetric in its arguments. */
    ck_assert_int_eq(dng_frechet_distance(b, a, &fd2), DNG_OK);
    ck_assert_double_le(fabs(fd - fd2), 1e-10 * want);
    /* Close to the population value too (a sanity check of the data). */
    {
        double pop = 0;
        for (int j = 0; j < 5; j++)
            pop += (mua[j] - mub[j]) * (mua[j] - mub[j]) +
                   (sda[j] - sdb[j]) * (sda[j] - sdb[j]);
        ck_assert_double_le(fabs(fd - pop), 1e-5 * pop);
    }
    dng_tensor_destroy(a);
    dng_tensor_destroy(b);
}
END_TEST

START_TEST(frechet_2x2_closed_form)
{
    float ma[2] = {1, -1}, mb[2] = {0.5f, 0}, la[4] = {1, 0, 0.8f, 0.6f},
          lb[4] = {2, 0, -0.5f, 0.3f};
    dng_tensor *a = gaussian(500, 2, ma, la, 5), *b = gaussian(300, 2, mb, lb,
                                                                6);
    ld mua[2], mub[2], sa[4], sb[4], t, det, want;
    double fd;
    ref_moments(dng_tensor_data(a), 500, 2, mua, sa);
    ref_moments(dng_tensor_data(b), 300, 2, mub, sb);
    /* For 2x2 PSD matrices, tr((S_a S_b)^1/2) = sqrt(tr(S_a S_b) +
     * 2 sqrt(det S_a det S_b)): the square roots of the two eigenvalues
     * l1, l2 satisfy (sqrt l1 + sqrt l2)^2 = l1 + l2 + 2 sqrt(l1 l2). */
    t = sa[0] * sb[0] + sa[1] * sb[2] + sa[2] * sb[1] + sa[3] * sb[3];
    det = (sa[0] * sa[3] - sa[1] * sa[2]) * (sb[0] * sb[3] - sb[1] * sb[2]);
    want = (mua[0] - mub[0]) * (mua[0] - mub[0]) +
           (mua[1] - mub[1]) * (mua[1] - mub[1]) + sa[0] + sa[3] + sb[0] +
           sb[3] - 2 * sqrtl(t + 2 * sqrtl(det));
    ck_assert_int_eq(dng_frechet_distance(a, b, &fd), DNG_OK);
    ck_assert_msg(fabs(fd - (double)want) <= 1e-10 * (double)want,
                  "got %.15g, want %.15Lg", fd, want);
    /* The Denman-Beavers reference agrees with the closed form. */
    ck_assert_double_le(fabs((double)(ref_frechet(dng_tensor_data(a), 500,
                                                  dng_tensor_data(b), 300,
                                                  2) -
                                      want)),
                        1e-12 * (double)want);
    dng_tensor_destroy(a);
    dng_tensor_destroy(b);
}
END_TEST

START_TEST(frechet_general_reference)
{
    enum { D = 9 };
    float ma[D], mb[D], la[D * D] = {0}, lb[D * D] = {0};
    dng_tensor *a, *b;
    double fd;
    ld want;
    for (int j = 0; j < D; j++) {
        ma[j] = 0.1f * (float)j;
        mb[j] = -0.05f * (float)(j * j % 7);
        for (int k = 0; k <= j; k++) {
            la[j * D + k] = j == k ? 1.0f : 0.3f * (float)((j + k) % 3) - 0.2f;
            lb[j * D + k] = j == k ? 0.5f + 0.2f * (float)j
                                   : 0.1f * (float)((j * k) % 4);
        }
    }
    a = gaussian(700, D, ma, la, 8);
    b = gaussian(900, D, mb, lb, 9);
    want = ref_frechet(dng_tensor_data(a), 700, dng_tensor_data(b), 900, D);
    ck_assert_int_eq(dng_frechet_distance(a, b, &fd), DNG_OK);
    ck_assert_msg(fabs(fd - (double)want) <= 1e-9 * (double)want,
                  "got %.15g, want %.15Lg", fd, want);
    dng_tensor_destroy(a);
    dng_tensor_destroy(b);
}
END_TEST

START_TEST(frechet_errors)
{
    int64_t s[2] = {4, 3}, s1[2] = {1, 3}, s4[2] = {4, 4}, v = 4;
    dng_tensor *a = rand_tensor(2, s, 1, -1, 1), *one = rand_tensor(2, s1, 2,
                                                                    -1, 1);
    dng_tensor *wide = rand_tensor(2, s4, 3, -1, 1), *vec = rand_tensor(1, &v,
                                                                        4, -1,
                                                                        1);
    double out = -1;
    ck_assert_int_eq(dng_frechet_distance(NULL, a, &out),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_frechet_distance(a, NULL, &out),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_frechet_distance(a, a, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_frechet_distance(a, one, &out), DNG_ERR_SHAPE);
    ck_assert_error("N >= 2");
    ck_assert_int_eq(dng_frechet_distance(vec, a, &out), DNG_ERR_SHAPE);
    ck_assert_int_eq(dng_frechet_distance(a, wide, &out), DNG_ERR_SHAPE);
    ck_assert_error("features");
    dng_tensor_data(a)[5] = INFINITY;
    ck_assert_int_eq(dng_frechet_distance(wide, wide, &out), DNG_OK);
    ck_assert_int_eq(dng_frechet_distance(a, a, &out), DNG_ERR_NUMERIC);
    ck_assert_error("row 1, column 2");
    dng_tensor_destroy(a);
    dng_tensor_destroy(one);
    dng_tensor_destroy(wide);
    dng_tensor_destroy(vec);
}
END_TEST

/* ---- main -------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *npy = tcase_create("npy");
    TCase *model = tcase_create("model");
    TCase *img = tcase_create("image");
    TCase *fd = tcase_create("frechet");
    tcase_add_test(npy, npy_round_trip);
    tcase_add_test(npy, npy_numpy_fixtures);
    tcase_add_test(npy, npy_header_variants);
    tcase_add_test(npy, npy_bad_files);
    tcase_add_test(model, model_round_trip_every_kind);
    tcase_add_test(model, model_serialize_internal);
    tcase_add_test(model, model_layout_matches_spec);
    tcase_add_test(model, model_corrupt_files);
    tcase_add_test(model, model_forged_architectures);
    tcase_add_test(model, model_random_damage);
    tcase_add_test(model, model_atomic_replace);
    tcase_add_test(model, model_v1_fixture_loads);
    tcase_add_test(img, image_grid_pgm_bytes);
    tcase_add_test(img, image_grid_ppm_bytes);
    tcase_add_test(img, image_grid_png_decodes);
    tcase_add_test(img, image_grid_errors);
    tcase_add_test(fd, frechet_self_is_zero);
    tcase_add_test(fd, frechet_diagonal_closed_form);
    tcase_add_test(fd, frechet_2x2_closed_form);
    tcase_add_test(fd, frechet_general_reference);
    tcase_add_test(fd, frechet_errors);
    tcase_set_timeout(model, 120);
    suite_add_tcase(s, npy);
    suite_add_tcase(s, model);
    suite_add_tcase(s, img);
    suite_add_tcase(s, fd);
    return s;
}

int main(int argc, char **argv)
{
    int rc;
    dng_set_num_threads(1);
    if (argc == 3 && strcmp(argv[1], "--write-model-fixture") == 0) {
        Suite *s = suite_create("fixture");
        TCase *tc = tcase_create("fixture");
        SRunner *sr;
        fixture_dir = argv[2];
        tcase_add_test(tc, write_model_fixture);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        rc = srunner_ntests_failed(sr);
        srunner_free(sr);
        return rc ? EXIT_FAILURE : EXIT_SUCCESS;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/dng-io-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    rc = dng_test_run(io_suite());
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
