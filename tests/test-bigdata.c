/* test-bigdata.c: safetensors interchange, memory-mapped datasets (IDX and
 * .npy) with training on them under a resident-memory bound, and the
 * bad-file corpus (tests/data/corpus, made by tests/data/make-corpus.py)
 * run through every loader. Internal suite: it reaches the dataset's
 * internals to check views and uses the in-memory safetensors entry
 * point. */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

#include "dataset-impl.h"
#include "io-impl.h"

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

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    if (len)
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static uint8_t *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
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

#define EXPECT_ERR(call, status, text)                                       \
    do {                                                                     \
        dng_clear_error();                                                   \
        ck_assert_int_eq((call), (status));                                  \
        ck_assert_msg(has_text(text), "message \"%s\" lacks \"%s\"",        \
                      dng_last_error(), text);                               \
    } while (0)

static void add_ok(dng_net *net, dng_layer *l)
{
    ck_assert_msg(l != NULL, "constructor failed: %s", dng_last_error());
    ck_assert_int_eq(dng_net_add(net, l), DNG_OK);
}

/* Give every parameter and buffer distinct values (variances positive). */
static void season(dng_net *net, unsigned seed)
{
    for (int i = 0; i < dng_net_num_params(net); i++) {
        dng_tensor *t = dng_net_param(net, i);
        dng_test_fill(dng_tensor_data(t), dng_tensor_numel(t), seed + i,
                      -0.5f, 0.5f);
    }
    for (int i = 0; i < dng_net_num_buffers(net); i++) {
        dng_tensor *t = dng_net_buffer(net, i);
        dng_test_fill(dng_tensor_data(t), dng_tensor_numel(t),
                      seed + 100 + i, 0.5f, 1.5f);
    }
}

static void expect_same_state(dng_net *a, dng_net *b)
{
    ck_assert_int_eq(dng_net_num_params(a), dng_net_num_params(b));
    ck_assert_int_eq(dng_net_num_buffers(a), dng_net_num_buffers(b));
    for (int i = 0; i < dng_net_num_params(a) + dng_net_num_buffers(a);
         i++) {
        int np = dng_net_num_params(a);
        dng_tensor *x = i < np ? dng_net_param(a, i)
                               : dng_net_buffer(a, i - np);
        dng_tensor *y = i < np ? dng_net_param(b, i)
                               : dng_net_buffer(b, i - np);
        ck_assert_int_eq(dng_tensor_numel(x), dng_tensor_numel(y));
        ck_assert_msg(memcmp(dng_tensor_data(x), dng_tensor_data(y),
                             (size_t)dng_tensor_numel(x) * 4) == 0,
                      "tensor %d differs", i);
    }
}

/* Every layer kind with state, with the names PyTorch would give:
 * 0 conv, 1 batchnorm, 2 leaky relu, 3 conv-transpose, 4 spectral-norm
 * conv, 5 flatten, 6 layernorm, 7 spectral-norm dense, 8 dense. */
static dng_net *st_net(void)
{
    int64_t in[3] = {1, 6, 6};
    dng_net *net = dng_net_create(3, in);
    ck_assert_ptr_nonnull(net);
    add_ok(net, dng_conv2d(1, 2, 3, 3, 1, 1));
    add_ok(net, dng_batchnorm(2));
    add_ok(net, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f));
    add_ok(net, dng_conv2d_transpose(2, 2, 4, 4, 2, 1));
    add_ok(net, dng_spectral_norm(dng_conv2d(2, 1, 3, 3, 2, 1)));
    add_ok(net, dng_flatten());
    add_ok(net, dng_layernorm(36));
    add_ok(net, dng_spectral_norm(dng_dense(36, 4)));
    add_ok(net, dng_dense(4, 3));
    return net;
}

/* torch.nn.Sequential(...).state_dict() order for st_net() (without the
 * batch norm's num_batches_tracked). */
static const char *const st_order[] = {
    "0.weight",      "0.bias",        "1.weight",        "1.bias",
    "1.running_mean", "1.running_var", "3.weight",       "3.bias",
    "4.bias",        "4.weight_orig", "4.weight_u",      "4.weight_v",
    "6.weight",      "6.bias",        "7.bias",          "7.weight_orig",
    "7.weight_u",    "7.weight_v",    "8.weight",        "8.bias",
};

static dng_tensor *find_tensor(dng_net *net, const char *name)
{
    for (int i = 0; i < dng_net_num_params(net); i++)
        if (strcmp(dng_net_param_name(net, i), name) == 0)
            return dng_net_param(net, i);
    for (int i = 0; i < dng_net_num_buffers(net); i++)
        if (strcmp(dng_net_buffer_name(net, i), name) == 0)
            return dng_net_buffer(net, i);
    return NULL;
}

/* ---- safetensors: round trip and layout -------------------------------- */

START_TEST(st_round_trip)
{
    dng_net *a = st_net(), *b = st_net();
    int64_t xs[4] = {3, 1, 6, 6};
    dng_tensor *x = dng_tensor_create(4, xs), *ya, *yb;
    float out_a[9];
    season(a, 11);
    season(b, 77);
    ck_assert_int_eq(dng_net_save_safetensors(a, tmp_path("a.st")), DNG_OK);
    ck_assert_int_eq(dng_net_load_safetensors(b, tmp_path("a.st")), DNG_OK);
    expect_same_state(a, b);
    dng_test_fill(dng_tensor_data(x), dng_tensor_numel(x), 5, -1, 1);
    dng_net_set_training(a, 0);
    dng_net_set_training(b, 0);
    ck_assert_int_eq(dng_net_forward(a, x, &ya), DNG_OK);
    ck_assert_int_eq(dng_tensor_copy_out(ya, out_a, 9), DNG_OK);
    ck_assert_int_eq(dng_net_forward(b, x, &yb), DNG_OK);
    ck_assert(memcmp(out_a, dng_tensor_data(yb), sizeof out_a) == 0);
    /* Saving the loaded network gives the same bytes back. */
    ck_assert_int_eq(dng_net_save_safetensors(b, tmp_path("b.st")), DNG_OK);
    {
        size_t la, lb;
        uint8_t *fa = read_bytes(tmp_path("a.st"), &la);
        uint8_t *fb = read_bytes(tmp_path("b.st"), &lb);
        ck_assert_uint_eq(la, lb);
        ck_assert(memcmp(fa, fb, la) == 0);
        free(fa);
        free(fb);
    }
    dng_tensor_destroy(x);
    dng_net_destroy(a);
    dng_net_destroy(b);
}
END_TEST

/* The bytes follow the format: u64 length, a JSON header padded to 8,
 * entries in state_dict order with contiguous offsets, the data. */
START_TEST(st_layout)
{
    dng_net *net = st_net();
    size_t len, pos = 0;
    uint8_t *f;
    uint64_t hlen = 0, at = 0;
    char *head;
    season(net, 3);
    ck_assert_int_eq(dng_net_save_safetensors(net, tmp_path("l.st")),
                     DNG_OK);
    f = read_bytes(tmp_path("l.st"), &len);
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)f[i] << (8 * i);
    ck_assert_uint_eq((8 + hlen) % 8, 0);
    ck_assert_uint_le(8 + hlen, len);
    head = calloc(hlen + 1, 1);
    memcpy(head, f + 8, hlen);
    ck_assert_int_eq(head[0], '{');
    ck_assert_ptr_nonnull(strstr(head, "\"__metadata__\":{\"format\":\"pt\""));
    for (size_t i = 0; i < sizeof st_order / sizeof *st_order; i++) {
        char key[64], *p;
        unsigned long long b, e;
        dng_tensor *t = find_tensor(net, st_order[i]);
        ck_assert_ptr_nonnull(t);
        snprintf(key, sizeof key, "\"%s\":{\"dtype\":\"F32\"", st_order[i]);
        p = strstr(head, key);
        ck_assert_msg(p != NULL, "%s missing", key);
        ck_assert_msg((size_t)(p - head) > pos, "%s out of order",
                      st_order[i]);
        pos = (size_t)(p - head);
        p = strstr(p, "\"data_offsets\":[");
        ck_assert_int_eq(sscanf(p, "\"data_offsets\":[%llu,%llu]", &b, &e),
                         2);
        ck_assert_uint_eq(b, at);
        ck_assert_uint_eq(e - b, (uint64_t)dng_tensor_numel(t) * 4);
        ck_assert(memcmp(f + 8 + hlen + b, dng_tensor_data(t), e - b) == 0);
        at = e;
    }
    ck_assert_uint_eq(8 + hlen + at, len);
    /* Only the padding follows the closing brace. */
    {
        char *close = strrchr(head, '}');
        for (char *q = close + 1; q < head + hlen; q++)
            ck_assert_int_eq(*q, ' ');
    }
    free(head);
    free(f);
    dng_net_destroy(net);
}
END_TEST

/* ---- safetensors: hand-written headers --------------------------------- */

/* dense(3, 2) then batchnorm(2): six F32 tensors, 64 data bytes. */
static dng_net *small_net(void)
{
    int64_t in = 3;
    dng_net *net = dng_net_create(1, &in);
    add_ok(net, dng_dense(3, 2));
    add_ok(net, dng_batchnorm(2));
    return net;
}

#define E_W "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3]," \
            "\"data_offsets\":[0,24]}"
#define E_B "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[2]," \
            "\"data_offsets\":[24,32]}"
#define E_BW "\"1.weight\":{\"dtype\":\"F32\",\"shape\":[2]," \
             "\"data_offsets\":[32,40]}"
#define E_BB "\"1.bias\":{\"dtype\":\"F32\",\"shape\":[2]," \
             "\"data_offsets\":[40,48]}"
#define E_RM "\"1.running_mean\":{\"dtype\":\"F32\",\"shape\":[2]," \
             "\"data_offsets\":[48,56]}"
#define E_RV "\"1.running_var\":{\"dtype\":\"F32\",\"shape\":[2]," \
             "\"data_offsets\":[56,64]}"
#define E_ALL E_W "," E_B "," E_BW "," E_BB "," E_RM "," E_RV

/* Load header json over data floats 1, 2, ..., with the u64 length
 * hlen (or the real length when hlen is 0) and nbytes data bytes. */
static dng_status st_try(dng_net *net, const char *json, size_t nbytes,
                         uint64_t hlen)
{
    size_t jl = strlen(json), len = 8 + jl + nbytes;
    uint8_t *b = calloc(len, 1);
    dng_status s;
    if (!hlen)
        hlen = jl;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + 8, json, jl);
    for (size_t i = 0; i + 4 <= nbytes; i += 4) {
        float v = (float)(i / 4 + 1);
        memcpy(b + 8 + jl + i, &v, 4);
    }
    write_bytes(tmp_path("t.st"), b, len);
    dng_clear_error();
    s = dng_net_load_safetensors(net, tmp_path("t.st"));
    /* The in-memory entry point agrees with the file one. */
    ck_assert_int_eq(dng__net_load_safetensors_bytes(net, b, len, "m"), s);
    free(b);
    return s;
}

START_TEST(st_accepts)
{
    dng_net *net = small_net();
    dng_tensor *w, *rv;
    ck_assert_int_eq(st_try(net, "{" E_ALL "}", 64, 0), DNG_OK);
    w = dng_net_param(net, 0);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(dng_tensor_data(w)[i], (float)(i + 1));
    rv = dng_net_buffer(net, 1);
    ck_assert_float_eq(dng_tensor_data(rv)[0], 15.0f);
    ck_assert_float_eq(dng_tensor_data(rv)[1], 16.0f);
    /* Order, white space, escapes and metadata do not matter; PyTorch's
     * batch-norm counter is taken and ignored. */
    ck_assert_int_eq(st_try(net, " {\n \"__metadata__\" : {\"format\":"
                            "\"pt\", \"note\": \"\\u00e9\\ud83d\\ude00\"},"
                            E_RV "," E_RM ",\"1.num_batches_tracked\":{"
                            "\"dtype\":\"I64\",\"shape\":[],"
                            "\"data_offsets\":[64,72]},"
                            "\"0.w\\u0065ight\":{\"dtype\":\"F32\","
                            "\"shape\":[2,3],\"data_offsets\":[0,24]},"
                            E_B "," E_BW "," E_BB "}   ", 72, 0),
                     DNG_OK);
    ck_assert_float_eq(dng_tensor_data(w)[5], 6.0f);
    dng_net_destroy(net);
}
END_TEST

START_TEST(st_rejects)
{
    static const struct {
        const char *json;
        size_t nbytes;
        const char *why;
    } cases[] = {
        /* names */
        {"{" E_W "," E_B "," E_BW "," E_BB "," E_RM "}", 56,
         "lacks \"1.running_var\""},
        {"{" E_ALL ",\"9.weight\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[64,68]}}", 68, "unknown tensors \"9.weight\""},
        {"{" E_ALL ",\"1.num_batches_tracked\":{\"dtype\":\"F32\","
         "\"shape\":[],\"data_offsets\":[64,68]}}", 68,
         "\"1.num_batches_tracked\""},
        {"{" E_ALL ",\"0.num_batches_tracked\":{\"dtype\":\"I64\","
         "\"shape\":[],\"data_offsets\":[64,72]}}", 72,
         "\"0.num_batches_tracked\""},
        {"{" E_ALL "," E_B "}", 64, "\"0.bias\" twice"},
        /* dtypes, shapes and offsets */
        {"{" E_W ",\"0.bias\":{\"dtype\":\"F64\",\"shape\":[2],"
         "\"data_offsets\":[24,40]}," E_BW "," E_BB "," E_RM "," E_RV "}",
         64, "overlap"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],"
         "\"data_offsets\":[0,24]}," E_B "," E_BW "," E_BB "," E_RM "," E_RV
         "}", 64, "has shape [3, 2] in the file but [2, 3]"},
        {"{\"0.weight\":{\"dtype\":\"F16\",\"shape\":[2,3],"
         "\"data_offsets\":[0,12]},\"0.bias\":{\"dtype\":\"F32\",\"shape\":"
         "[2],\"data_offsets\":[12,20]}}", 20, "dtype F16"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
         "\"data_offsets\":[0,20]}}", 20, "6 elements of F32 but 20"},
        {"{" E_ALL "}", 68, "data bytes [64, 68) belong to no tensor"},
        {"{" E_ALL "}", 60, "claims bytes [56, 64) of a 60-byte"},
        {"{" E_W ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[20,28]}," E_BW "," E_BB "," E_RM "," E_RV "}",
         64, "overlap"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
         "\"data_offsets\":[24,0]}}", 24, "claims bytes [24, 0)"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,-3],"
         "\"data_offsets\":[0,24]}}", 24, "non-negative integers"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
         "\"data_offsets\":[0,24.0]}}", 24, "non-negative integers"},
        {"{\"0.weight\":{\"dtype\":\"Q4\",\"shape\":[2,3],"
         "\"data_offsets\":[0,24]}}", 24, "unknown dtype \"Q4\""},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
         "\"data_offsets\":[0,24],\"extra\":1}}", 24, "members other"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", 0,
         "lacks \"data_offsets\""},
        {"{\"0.weight\":[1,2]}", 0, "is not an object"},
        {"{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,"
         "4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
         "overflows"},
        /* the JSON itself */
        {"[" E_W "]", 24, "not a JSON object"},
        {"{" E_ALL "} x", 64, "text after"},
        {"{" E_ALL, 64, "expected ','"},
        {"{\"__metadata__\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}", 0,
         "nested too deeply"},
        {"{\"__metadata__\":{\"a\":1}}", 0, "is not a string"},
        {"{\"__metadata__\":[]}", 0, "not an object"},
        {"{\"0.bias\\ud800\":1}", 0, "surrogate"},
        {"{\"0.bias\\udc00\":1}", 0, "lone low surrogate"},
        {"{\"a\\u0000\":1}", 0, "\\u0000"},
        {"{\"a\\x\":1}", 0, "unknown escape"},
        {"{\"a\":01}", 0, "leading zero"},
        {"{\"a\":1.}", 0, "malformed fraction"},
        {"{\"a\":tru}", 0, "unknown literal"},
        {"{\"a\":\"b\nc\"}", 0, "control character"},
        {"{\"a\xff\":1}", 0, "not UTF-8"},
        {"{\"a\xc0\xaf\":1}", 0, "not UTF-8"},
        {"{\"a\":1,\"a\":2}", 0, "\"a\" twice"},
        {"", 0, "not a JSON object"},
    };
    dng_net *net = small_net();
    float before[64];
    int64_t at = 0;
    for (int i = 0; i < dng_net_num_params(net) + dng_net_num_buffers(net);
         i++) {
        int np = dng_net_num_params(net);
        dng_tensor *t = i < np ? dng_net_param(net, i)
                               : dng_net_buffer(net, i - np);
        memcpy(before + at, dng_tensor_data(t),
               (size_t)dng_tensor_numel(t) * 4);
        at += dng_tensor_numel(t);
    }
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dng_status s = st_try(net, cases[i].json, cases[i].nbytes, 0);
        ck_assert_msg(s == DNG_ERR_FORMAT, "case %zu: status %d (%s)", i, s,
                      dng_last_error());
        ck_assert_msg(has_text(cases[i].why), "case %zu: \"%s\" lacks "
                      "\"%s\"", i, dng_last_error(), cases[i].why);
    }
    /* Lengths: past the file, past the 100 MB bound, too short. */
    ck_assert_int_eq(st_try(net, "{" E_ALL "}", 64, 100000), DNG_ERR_FORMAT);
    ck_assert(has_text("exceeds the"));
    ck_assert_int_eq(st_try(net, "{" E_ALL "}", 64, 200000000ull),
                     DNG_ERR_FORMAT);
    ck_assert(has_text("exceeds 100000000 bytes"));
    write_bytes(tmp_path("short.st"), "\x02\0\0", 3);
    EXPECT_ERR(dng_net_load_safetensors(net, tmp_path("short.st")),
               DNG_ERR_FORMAT, "too short");
    EXPECT_ERR(dng_net_load_safetensors(net, tmp_path("none.st")),
               DNG_ERR_IO, "none.st");
    EXPECT_ERR(dng_net_load_safetensors(NULL, tmp_path("t.st")),
               DNG_ERR_INVALID_ARGUMENT, "net is NULL");
    EXPECT_ERR(dng_net_load_safetensors(net, NULL),
               DNG_ERR_INVALID_ARGUMENT, "path is NULL");
    EXPECT_ERR(dng_net_save_safetensors(NULL, tmp_path("t.st")),
               DNG_ERR_INVALID_ARGUMENT, "net is NULL");
    EXPECT_ERR(dng_net_save_safetensors(net, tmp_path("no/dir/t.st")),
               DNG_ERR_IO, "no/dir/t.st");
    /* Nothing changed through all of that. */
    at = 0;
    for (int i = 0; i < dng_net_num_params(net) + dng_net_num_buffers(net);
         i++) {
        int np = dng_net_num_params(net);
        dng_tensor *t = i < np ? dng_net_param(net, i)
                               : dng_net_buffer(net, i - np);
        ck_assert(memcmp(before + at, dng_tensor_data(t),
                         (size_t)dng_tensor_numel(t) * 4) == 0);
        at += dng_tensor_numel(t);
    }
    dng_net_destroy(net);
}
END_TEST

/* ---- memory-mapped .npy ------------------------------------------------ */

#define NPY_N 301
#define NPY_D 7

/* x [NPY_N, NPY_D] with x[i][0] = i (so rows can be identified) and y [N]
 * with y[i] = i % 5, saved as .npy; returns malloc'd copies. */
static void make_npy_pair(float **xo, float **yo)
{
    int64_t xs[2] = {NPY_N, NPY_D}, ys = NPY_N;
    dng_tensor *x = dng_tensor_create(2, xs), *y = dng_tensor_create(1, &ys);
    float *xd = dng_tensor_data(x), *yd = dng_tensor_data(y);
    dng_test_fill(xd, NPY_N * NPY_D, 9, -2, 2);
    for (int i = 0; i < NPY_N; i++) {
        xd[i * NPY_D] = (float)i;
        yd[i] = (float)(i % 5);
    }
    ck_assert_int_eq(dng_tensor_save_npy(x, tmp_path("x.npy")), DNG_OK);
    ck_assert_int_eq(dng_tensor_save_npy(y, tmp_path("y.npy")), DNG_OK);
    *xo = malloc(sizeof(float) * NPY_N * NPY_D);
    *yo = malloc(sizeof(float) * NPY_N);
    memcpy(*xo, xd, sizeof(float) * NPY_N * NPY_D);
    memcpy(*yo, yd, sizeof(float) * NPY_N);
    dng_tensor_destroy(x);
    dng_tensor_destroy(y);
}

/* Read the whole dataset as one batch into fresh arrays. */
static void read_all(const dng_dataset *ds, float *x, float *y)
{
    int nd;
    int64_t s[DNG_MAX_DIMS + 1], n = dng_dataset_size(ds), ys = n;
    dng_tensor *xt, *yt = NULL;
    ck_assert_int_eq(dng_dataset_sample_shape(ds, &nd, s + 1), DNG_OK);
    s[0] = n;
    xt = dng_tensor_wrap(nd + 1, s, x);
    if (y)
        yt = dng_tensor_wrap(1, &ys, y);
    ck_assert_int_eq(dng_dataset_batch(ds, 0, n, xt, yt), DNG_OK);
    dng_tensor_destroy(xt);
    dng_tensor_destroy(yt);
}

START_TEST(npy_open_reads)
{
    float *x, *y, got[NPY_D * 10], gy[10];
    int64_t s[2] = {10, NPY_D}, ys = 10, shape[DNG_MAX_DIMS];
    dng_tensor *bx = dng_tensor_wrap(2, s, got), *by = dng_tensor_wrap(1, &ys,
                                                                       gy);
    dng_dataset *ds;
    int nd;
    make_npy_pair(&x, &y);
    ds = dng_dataset_open_npy(tmp_path("x.npy"), tmp_path("y.npy"));
    ck_assert_msg(ds != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_dataset_size(ds), NPY_N);
    ck_assert_int_eq(dng_dataset_has_labels(ds), 1);
    ck_assert_int_eq(dng_dataset_sample_shape(ds, &nd, shape), DNG_OK);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(shape[0], NPY_D);
    /* Batches anywhere in the file, the last one included. */
    for (int64_t start = 0; start + 10 <= NPY_N; start += 97) {
        ck_assert_int_eq(dng_dataset_batch(ds, start, 10, bx, by), DNG_OK);
        ck_assert(memcmp(got, x + start * NPY_D, sizeof got) == 0);
        ck_assert(memcmp(gy, y + start, sizeof gy) == 0);
    }
    ck_assert_int_eq(dng_dataset_batch(ds, NPY_N - 10, 10, bx, NULL),
                     DNG_OK);
    ck_assert(memcmp(got, x + (NPY_N - 10) * NPY_D, sizeof got) == 0);
    EXPECT_ERR(dng_dataset_batch(ds, NPY_N - 9, 10, bx, by) != DNG_OK, 1,
               "outside");
    /* Not held in memory: no tensors to borrow. */
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_x(ds));
    ck_assert(has_text("not held in memory"));
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_y(ds));
    ck_assert(has_text("not held in memory"));
    dng_dataset_destroy(ds);
    /* Unlabelled. */
    ds = dng_dataset_open_npy(tmp_path("x.npy"), NULL);
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(dng_dataset_has_labels(ds), 0);
    EXPECT_ERR(dng_dataset_batch(ds, 0, 10, bx, by),
               DNG_ERR_INVALID_ARGUMENT, "no labels");
    dng_dataset_destroy(ds);
    dng_tensor_destroy(bx);
    dng_tensor_destroy(by);
    free(x);
    free(y);
}
END_TEST

START_TEST(npy_open_shuffle_split)
{
    float *x, *y, *gx = malloc(sizeof(float) * NPY_N * NPY_D),
                  *gy = malloc(sizeof(float) * NPY_N);
    dng_dataset *ds, *tr, *va;
    dng_rng *rng = dng_rng_create(42);
    int seen[NPY_N] = {0}, moved = 0;
    make_npy_pair(&x, &y);
    ds = dng_dataset_open_npy(tmp_path("x.npy"), tmp_path("y.npy"));
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(dng_dataset_shuffle(ds, rng), DNG_OK);
    read_all(ds, gx, gy);
    /* A permutation of the rows, each with its own label. */
    for (int i = 0; i < NPY_N; i++) {
        int r = (int)gx[i * NPY_D];
        ck_assert_int_ge(r, 0);
        ck_assert_int_lt(r, NPY_N);
        ck_assert_int_eq(seen[r]++, 0);
        ck_assert(memcmp(gx + i * NPY_D, x + r * NPY_D,
                         sizeof(float) * NPY_D) == 0);
        ck_assert_float_eq(gy[i], y[r]);
        moved += r != i;
    }
    ck_assert_int_gt(moved, NPY_N / 2);
    /* The same shuffle as an in-memory dataset under the same stream. */
    {
        int64_t xs[2] = {NPY_N, NPY_D}, ys = NPY_N;
        dng_tensor *xt = dng_tensor_wrap(2, xs, x);
        dng_tensor *yt = dng_tensor_wrap(1, &ys, y);
        dng_dataset *mem = dng_dataset_from_tensors(xt, yt);
        dng_rng *r2 = dng_rng_create(42);
        float *mx = malloc(sizeof(float) * NPY_N * NPY_D);
        ck_assert_int_eq(dng_dataset_shuffle(mem, r2), DNG_OK);
        read_all(mem, mx, NULL);
        ck_assert(memcmp(mx, gx, sizeof(float) * NPY_N * NPY_D) == 0);
        free(mx);
        dng_rng_destroy(r2);
        dng_dataset_destroy(mem);
        dng_tensor_destroy(xt);
        dng_tensor_destroy(yt);
    }
    /* Split of the shuffled set: views, disjoint and complete, that
     * outlive their parent and read the right rows. */
    ck_assert_int_eq(dng_dataset_split(ds, 0.25, rng, &tr, &va), DNG_OK);
    ck_assert_int_eq(dng_dataset_size(tr) + dng_dataset_size(va), NPY_N);
    ck_assert_int_eq(dng_dataset_size(va), 75);
    ck_assert_ptr_null(tr->x);
    ck_assert_ptr_eq(tr->ops, ds->ops);
    dng_dataset_destroy(ds);
    memset(seen, 0, sizeof seen);
    for (int part = 0; part < 2; part++) {
        dng_dataset *v = part ? va : tr;
        int64_t n = dng_dataset_size(v);
        read_all(v, gx, gy);
        for (int64_t i = 0; i < n; i++) {
            int r = (int)gx[i * NPY_D];
            ck_assert_int_eq(seen[r]++, 0);
            ck_assert(memcmp(gx + i * NPY_D, x + r * NPY_D,
                             sizeof(float) * NPY_D) == 0);
            ck_assert_float_eq(gy[i], y[r]);
        }
    }
    for (int i = 0; i < NPY_N; i++)
        ck_assert_int_eq(seen[i], 1);
    /* A view can be shuffled and split again. */
    {
        dng_dataset *a, *b;
        ck_assert_int_eq(dng_dataset_shuffle(va, rng), DNG_OK);
        ck_assert_int_eq(dng_dataset_split(va, 0.5, NULL, &a, &b), DNG_OK);
        ck_assert_int_eq(dng_dataset_size(a) + dng_dataset_size(b), 75);
        dng_dataset_destroy(va);
        dng_dataset_destroy(tr);
        read_all(b, gx, gy);
        for (int64_t i = 0; i < dng_dataset_size(b); i++)
            ck_assert_float_eq(gy[i], y[(int)gx[i * NPY_D]]);
        dng_dataset_destroy(a);
        dng_dataset_destroy(b);
    }
    dng_rng_destroy(rng);
    free(x);
    free(y);
    free(gx);
    free(gy);
}
END_TEST

/* A small classifier for NPY_D features and 5 classes. */
static dng_net *mlp(int64_t in, int64_t hidden, int64_t classes)
{
    dng_net *net = dng_net_create(1, &in);
    add_ok(net, dng_dense(in, hidden));
    add_ok(net, dng_activation(DNG_ACT_RELU, 0));
    add_ok(net, dng_dense(hidden, classes));
    return net;
}

/* dng_fit and dng_evaluate on the mapped file give bit for bit what they
 * give on the same data in memory. */
START_TEST(npy_open_fit_equals_memory)
{
    float *x, *y, loss[2], acc[2];
    dng_net *nets[2];
    make_npy_pair(&x, &y);
    for (int k = 0; k < 2; k++) {
        dng_dataset *ds, *tr, *va;
        dng_optim *opt = dng_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0);
        dng_fit_options o;
        dng_rng *rng = dng_rng_create(3);
        if (k == 0) {
            ds = dng_dataset_open_npy(tmp_path("x.npy"), tmp_path("y.npy"));
        } else {
            dng_tensor *xt = dng_tensor_load_npy(tmp_path("x.npy"));
            dng_tensor *yt = dng_tensor_load_npy(tmp_path("y.npy"));
            ds = dng_dataset_from_tensors(xt, yt);
            dng_tensor_destroy(xt);
            dng_tensor_destroy(yt);
        }
        ck_assert_ptr_nonnull(ds);
        ck_assert_int_eq(dng_dataset_split(ds, 0.2, rng, &tr, &va), DNG_OK);
        nets[k] = mlp(NPY_D, 16, 5);
        dng_fit_options_default(&o);
        o.epochs = 2;
        o.batch_size = 32;
        o.seed = 17;
        ck_assert_int_eq(dng_fit(nets[k], opt, DNG_LOSS_CROSS_ENTROPY, tr,
                                 va, &o, NULL, NULL), DNG_OK);
        ck_assert_int_eq(dng_evaluate(nets[k], DNG_LOSS_CROSS_ENTROPY, va,
                                      50, &loss[k], &acc[k]), DNG_OK);
        ck_assert(isfinite(loss[k]));
        dng_dataset_destroy(tr);
        dng_dataset_destroy(va);
        dng_dataset_destroy(ds);
        dng_optim_destroy(opt);
        dng_rng_destroy(rng);
    }
    expect_same_state(nets[0], nets[1]);
    ck_assert_float_eq(loss[0], loss[1]);
    ck_assert_float_eq(acc[0], acc[1]);
    dng_net_destroy(nets[0]);
    dng_net_destroy(nets[1]);
    free(x);
    free(y);
}
END_TEST

/* dng_gan_train reads a mapped dataset through dng_dataset_batch and
 * ends where the in-memory run ends. */
START_TEST(npy_open_gan_train)
{
    float *x, *y;
    dng_net *gens[2];
    make_npy_pair(&x, &y);
    for (int k = 0; k < 2; k++) {
        int64_t lat = 3, feat = NPY_D;
        dng_net *g = dng_net_create(1, &lat), *d = dng_net_create(1, &feat);
        dng_optim *go = dng_adam(1e-3f, 0.5f, 0.999f, 1e-8f, 0);
        dng_optim *dop = dng_adam(1e-3f, 0.5f, 0.999f, 1e-8f, 0);
        dng_dataset *ds;
        dng_gan *gan;
        add_ok(g, dng_dense(3, NPY_D));
        add_ok(d, dng_dense(NPY_D, 8));
        add_ok(d, dng_activation(DNG_ACT_LEAKY_RELU, 0.2f));
        add_ok(d, dng_dense(8, 1));
        if (k == 0) {
            ds = dng_dataset_open_npy(tmp_path("x.npy"), NULL);
        } else {
            dng_tensor *xt = dng_tensor_load_npy(tmp_path("x.npy"));
            ds = dng_dataset_from_tensors(xt, NULL);
            dng_tensor_destroy(xt);
        }
        ck_assert_ptr_nonnull(ds);
        gan = dng_gan_create(g, d, go, dop);
        ck_assert_ptr_nonnull(gan);
        ck_assert_int_eq(dng_gan_set_seed(gan, 5), DNG_OK);
        ck_assert_int_eq(dng_gan_train(gan, ds, 1, 20, NULL, NULL), DNG_OK);
        ck_assert_int_eq(dng_gan_steps(gan), NPY_N / 20);
        gens[k] = g;
        dng_gan_destroy(gan);
        dng_net_destroy(d);
        dng_optim_destroy(go);
        dng_optim_destroy(dop);
        dng_dataset_destroy(ds);
    }
    expect_same_state(gens[0], gens[1]);
    dng_net_destroy(gens[0]);
    dng_net_destroy(gens[1]);
    free(x);
    free(y);
}
END_TEST

/* A .npy header by hand (format 1.0, padded to 64 bytes). */
static size_t npy_header(char *buf, int ndim, const int64_t *shape,
                         const char *descr)
{
    char dict[256];
    int off = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': "
                       "False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        off += snprintf(dict + off, sizeof dict - (size_t)off, "%lld,%s",
                        (long long)shape[i], i + 1 < ndim ? " " : "");
    off += snprintf(dict + off, sizeof dict - (size_t)off, "), }");
    while ((10 + off + 1) % 64)
        dict[off++] = ' ';
    dict[off++] = '\n';
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(off & 0xff);
    buf[9] = (char)(off >> 8);
    memcpy(buf + 10, dict, (size_t)off);
    return 10 + (size_t)off;
}

START_TEST(npy_open_rejects)
{
    char head[512];
    int64_t s2[2] = {4, 3}, s1 = 4;
    float data[13] = {0};
    size_t h;
    static const char zip[] = "PK\x03\x04zipzipzip";
    /* Truncated, too long, 1-D samples, mismatched counts, other dtype. */
    h = npy_header(head, 2, s2, "<f4");
    memcpy(head + h, data, 44);
    write_bytes(tmp_path("short.npy"), head, h + 44);
    EXPECT_ERR(dng_dataset_open_npy(tmp_path("short.npy"), NULL) != NULL, 0,
               "truncated");
    memcpy(head + h, data, 52);
    write_bytes(tmp_path("long.npy"), head, h + 52);
    EXPECT_ERR(dng_dataset_open_npy(tmp_path("long.npy"), NULL) != NULL, 0,
               "unexpected bytes after the data");
    h = npy_header(head, 1, &s1, "<f4");
    memcpy(head + h, data, 16);
    write_bytes(tmp_path("vec.npy"), head, h + 16);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("vec.npy"), NULL));
    ck_assert(has_text("at least 2 dimensions"));
    h = npy_header(head, 2, s2, "<f4");
    memcpy(head + h, data, 48);
    write_bytes(tmp_path("x43.npy"), head, h + 48);
    s1 = 5;
    h = npy_header(head, 1, &s1, "<f4");
    memcpy(head + h, data, 20);
    write_bytes(tmp_path("y5.npy"), head, h + 20);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("x43.npy"),
                                            tmp_path("y5.npy")));
    ck_assert(has_text("differ in their number of samples"));
    h = npy_header(head, 2, s2, "<f8");
    write_bytes(tmp_path("f8.npy"), head, h);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("f8.npy"), NULL));
    ck_assert(has_text("'<f8' is not supported"));
    /* Compressed files are refused with advice. */
    {
        gzFile f = gzopen(tmp_path("x.npy.gz"), "wb");
        h = npy_header(head, 2, s2, "<f4");
        gzwrite(f, head, (unsigned)h);
        gzwrite(f, data, 48);
        gzclose(f);
    }
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("x.npy.gz"), NULL));
    ck_assert_int_eq(1, has_text("gzip-compressed") && has_text("gunzip"));
    write_bytes(tmp_path("a.npz"), zip, 12);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("a.npz"), NULL));
    ck_assert(has_text("zip archive"));
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("missing.npy"), NULL));
    ck_assert(has_text("cannot open"));
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(NULL, NULL));
    ck_assert(has_text("x_path is NULL"));
    write_bytes(tmp_path("empty.npy"), "", 0);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmp_path("empty.npy"), NULL));
    ck_assert(has_text("is empty"));
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_npy(tmpdir, NULL));
    ck_assert(has_text("not a regular file"));
}
END_TEST

/* ---- memory-mapped IDX ------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file of type t with the given dims; elements from fill(). */
static void write_idx(const char *path, int type, int ndim,
                      const uint32_t *dims, unsigned seed)
{
    size_t count = 1, es = type == 0x08 ? 1 : 4, len;
    uint8_t *b;
    for (int i = 0; i < ndim; i++)
        count *= dims[i];
    len = 4 + 4 * (size_t)ndim + count * es;
    b = calloc(len, 1);
    b[2] = (uint8_t)type;
    b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        put_be32(b + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < count; i++) {
        uint8_t *e = b + 4 + 4 * ndim + i * es;
        if (es == 1) {
            e[0] = (uint8_t)((i * 37 + seed) % 256);
        } else {
            float v = (float)i * 0.25f - (float)seed;
            uint32_t u;
            memcpy(&u, &v, 4);
            put_be32(e, u);
        }
    }
    write_bytes(path, b, len);
    free(b);
}

/* open_idx and load_idx agree on shapes and every value. */
static void expect_idx_same(const char *images, const char *labels)
{
    dng_dataset *m = dng_dataset_open_idx(images, labels);
    dng_dataset *l = dng_dataset_load_idx(images, labels);
    int nm, nl;
    int64_t sm[DNG_MAX_DIMS], sl[DNG_MAX_DIMS];
    dng_tensor *lx, *ly;
    float *gx, *gy = NULL;
    ck_assert_msg(m != NULL, "%s", dng_last_error());
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(dng_dataset_size(m), dng_dataset_size(l));
    ck_assert_int_eq(dng_dataset_sample_shape(m, &nm, sm), DNG_OK);
    ck_assert_int_eq(dng_dataset_sample_shape(l, &nl, sl), DNG_OK);
    ck_assert_int_eq(nm, nl);
    ck_assert(memcmp(sm, sl, (size_t)nm * sizeof *sm) == 0);
    ck_assert_int_eq(dng_dataset_has_labels(m), dng_dataset_has_labels(l));
    lx = dng_dataset_x(l);
    ly = dng_dataset_y(l);
    gx = malloc(sizeof(float) * (size_t)dng_tensor_numel(lx));
    if (ly) {
        ck_assert_int_eq(m->y_ndim, l->y_ndim);
        gy = malloc(sizeof(float) * (size_t)dng_tensor_numel(ly));
    }
    read_all(m, gx, ly && m->y_ndim == 0 ? gy : NULL);
    ck_assert(memcmp(gx, dng_tensor_data(lx),
                     sizeof(float) * (size_t)dng_tensor_numel(lx)) == 0);
    if (ly && m->y_ndim == 0)
        ck_assert(memcmp(gy, dng_tensor_data(ly),
                         sizeof(float) * (size_t)dng_tensor_numel(ly)) == 0);
    free(gx);
    free(gy);
    dng_dataset_destroy(m);
    dng_dataset_destroy(l);
}

START_TEST(idx_open_reads)
{
    uint32_t img[3] = {23, 4, 3}, lab[1] = {23}, flat[2] = {23, 5},
             one[1] = {23};
    write_idx(tmp_path("img"), 0x08, 3, img, 1);
    write_idx(tmp_path("lab"), 0x08, 1, lab, 2);
    write_idx(tmp_path("fimg"), 0x0D, 2, flat, 3);
    write_idx(tmp_path("vec"), 0x08, 1, one, 4);
    expect_idx_same(tmp_path("img"), tmp_path("lab"));
    expect_idx_same(tmp_path("img"), NULL);
    expect_idx_same(tmp_path("fimg"), tmp_path("lab"));
    expect_idx_same(tmp_path("vec"), NULL);
    {
        /* Intensities are scaled to [0, 1]: byte 37 i + 1 of the file. */
        dng_dataset *ds = dng_dataset_open_idx(tmp_path("img"), NULL);
        int64_t s[4] = {1, 1, 4, 3};
        float v[12];
        dng_tensor *t = dng_tensor_wrap(4, s, v);
        ck_assert_int_eq(dng_dataset_batch(ds, 2, 1, t, NULL), DNG_OK);
        ck_assert_float_eq(v[5], (float)(((24 + 5) * 37 + 1) % 256) / 255.0f);
        dng_tensor_destroy(t);
        dng_dataset_destroy(ds);
    }
}
END_TEST

START_TEST(idx_open_rejects)
{
    uint32_t img[3] = {23, 4, 3}, lab[1] = {22};
    size_t len;
    uint8_t *b;
    write_idx(tmp_path("img"), 0x08, 3, img, 1);
    write_idx(tmp_path("lab22"), 0x08, 1, lab, 2);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("img"),
                                            tmp_path("lab22")));
    ck_assert(has_text("holds 23 samples but"));
    ck_assert_int_eq(dng_dataset_load_idx(tmp_path("img"),
                                          tmp_path("lab22")) == NULL, 1);
    b = read_bytes(tmp_path("img"), &len);
    write_bytes(tmp_path("trunc"), b, len - 1);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("trunc"), NULL));
    ck_assert(has_text("(truncated)"));
    b[3] = 5;
    write_bytes(tmp_path("dims"), b, len);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("dims"), NULL));
    ck_assert(has_text("5 dimensions"));
    b[3] = 3;
    b[2] = 0x0B;
    write_bytes(tmp_path("type"), b, len);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("type"), NULL));
    ck_assert(has_text("element type 0x0b"));
    b[2] = 0x08;
    put_be32(b + 4, 0xFFFFFFFFu);
    put_be32(b + 8, 0xFFFFFFFFu);
    put_be32(b + 12, 0xFFFFFFFFu);
    write_bytes(tmp_path("huge"), b, len);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("huge"), NULL));
    ck_assert(has_text("overflows"));
    put_be32(b + 4, 0);
    write_bytes(tmp_path("zero"), b, len);
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("zero"), NULL));
    ck_assert(has_text("dimension 0 is 0"));
    free(b);
    {
        gzFile f = gzopen(tmp_path("img.gz"), "wb");
        size_t n;
        uint8_t *raw = read_bytes(tmp_path("img"), &n);
        gzwrite(f, raw, (unsigned)n);
        gzclose(f);
        free(raw);
    }
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("img.gz"), NULL));
    ck_assert(has_text("gzip-compressed"));
    ck_assert(has_text("dng_dataset_load_idx"));
    /* ... which the in-memory loader reads. */
    expect_idx_same(tmp_path("img"), NULL);
    {
        dng_dataset *g = dng_dataset_load_idx(tmp_path("img.gz"), NULL);
        ck_assert_ptr_nonnull(g);
        dng_dataset_destroy(g);
    }
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(NULL, NULL));
    ck_assert(has_text("images_path is NULL"));
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_open_idx(tmp_path("img"),
                                            tmp_path("none")));
    ck_assert(has_text("cannot open"));
}
END_TEST

/* ---- resident memory while streaming a large file ---------------------- */

#define BIG_D 784
#define BIG_N 21400 /* 67 MB of float32 */

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Samples first..first+n: a random class c in 0..9, features uniform in
 * [0, 0.2) plus 1 at feature c, which a small MLP learns in one epoch. */
static void big_rows(int64_t first, int64_t n, float *x, float *y)
{
    dng_test_fill(x, n * BIG_D, (unsigned)(first + 1), 0, 0.2f);
    dng_test_fill(y, n, (unsigned)(first + 7919), 0, 10);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)y[i];
        y[i] = (float)c;
        x[i * BIG_D + c] += 1.0f;
    }
}

START_TEST(mapped_rss_bounded)
{
    int64_t xs[2] = {BIG_N, BIG_D}, ys = BIG_N, chunk = 512;
    char head[512];
    size_t h;
    FILE *fx = fopen(tmp_path("big-x.npy"), "wb");
    FILE *fy = fopen(tmp_path("big-y.npy"), "wb");
    float *bx = malloc(sizeof(float) * (size_t)(chunk * BIG_D));
    float *by = malloc(sizeof(float) * (size_t)chunk);
    long base, peak;
    double file_kb;
    float loss0, loss1, acc;
    dng_net *net = mlp(BIG_D, 32, 10);
    dng_optim *opt = dng_adam(3e-3f, 0.9f, 0.999f, 1e-8f, 0);
    dng_fit_options o;
    dng_dataset *ds, *warm;
    struct stat st;
    /* Written in chunks: the test's own memory stays small. */
    h = npy_header(head, 2, xs, "<f4");
    fwrite(head, 1, h, fx);
    h = npy_header(head, 1, &ys, "<f4");
    fwrite(head, 1, h, fy);
    for (int64_t at = 0; at < BIG_N; at += chunk) {
        int64_t n = BIG_N - at < chunk ? BIG_N - at : chunk;
        big_rows(at, n, bx, by);
        ck_assert_uint_eq(fwrite(bx, sizeof(float), (size_t)(n * BIG_D), fx),
                          (size_t)(n * BIG_D));
        ck_assert_uint_eq(fwrite(by, sizeof(float), (size_t)n, fy),
                          (size_t)n);
    }
    ck_assert_int_eq(fclose(fx), 0);
    ck_assert_int_eq(fclose(fy), 0);
    stat(tmp_path("big-x.npy"), &st);
    file_kb = (double)st.st_size / 1024.0;

    /* Warm up on a small in-memory set so that the library's and BLIS's
     * own buffers exist before the baseline is taken. */
    {
        int64_t s2[2] = {256, BIG_D}, s1 = 256;
        dng_tensor *wx = dng_tensor_create(2, s2), *wy = dng_tensor_create(1,
                                                                       &s1);
        big_rows(BIG_N, 256, dng_tensor_data(wx), dng_tensor_data(wy));
        warm = dng_dataset_from_tensors(wx, wy);
        dng_tensor_destroy(wx);
        dng_tensor_destroy(wy);
    }
    dng_fit_options_default(&o);
    o.epochs = 1;
    o.batch_size = 64;
    o.seed = 1;
    ck_assert_int_eq(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, warm, NULL,
                             &o, NULL, NULL), DNG_OK);
    ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, warm, 256,
                                  &loss0, NULL), DNG_OK);
    free(bx);
    free(by);
    base = maxrss_kb();

    ds = dng_dataset_open_npy(tmp_path("big-x.npy"), tmp_path("big-y.npy"));
    ck_assert_msg(ds != NULL, "%s", dng_last_error());
    /* One shuffled epoch (every row read once, at random) and one
     * sequential evaluation pass over the whole file. */
    ck_assert_int_eq(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &o,
                             NULL, NULL), DNG_OK);
    ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, ds, 256,
                                  &loss1, &acc), DNG_OK);
    peak = maxrss_kb();
    fprintf(stderr, "# mapped_rss_bounded: file %.1f MB, peak RSS growth "
            "%.1f MB (%.1f%%), loss %.3f -> %.3f, accuracy %.3f\n",
            file_kb / 1024, (double)(peak - base) / 1024,
            100.0 * (double)(peak - base) / file_kb, (double)loss0,
            (double)loss1, (double)acc);
    ck_assert_msg((double)(peak - base) < 0.2 * file_kb, "resident memory "
                  "grew by %ld kB while streaming a %.0f kB file",
                  peak - base, file_kb);
    /* The epoch really trained (chance is 10%). */
    ck_assert_float_lt(loss1, loss0);
    ck_assert_float_gt(acc, 0.3f);
    dng_dataset_destroy(ds);
    dng_dataset_destroy(warm);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
}
END_TEST

/* ---- the bad-file corpus ----------------------------------------------- */

static const char *corpus_dir(const char *loader, const char *sub)
{
    static char buf[2][1024];
    static int k;
    char *p = buf[k++ % 2];
    const char *dir = getenv("DNG_TEST_DATA");
    snprintf(p, 1024, "%s/corpus/%s%s%s", dir ? dir : "tests/data", loader,
             sub ? "/" : "", sub ? sub : "");
    return p;
}

/* The fixtures make-corpus.py wrote its valid files from. */
static dng_net *corpus_net(void)
{
    int64_t in = 6;
    dng_net *net = dng_net_create(1, &in);
    add_ok(net, dng_dense(6, 5));
    add_ok(net, dng_batchnorm(5));
    add_ok(net, dng_activation(DNG_ACT_RELU, 0));
    add_ok(net, dng_spectral_norm(dng_dense(5, 3)));
    return net;
}

typedef struct corpus_gan {
    dng_net *g, *d;
    dng_optim *go, *dop;
    dng_gan *gan;
} corpus_gan;

static void corpus_gan_make(corpus_gan *c)
{
    int64_t lat = 4, feat = 6;
    c->g = dng_net_create(1, &lat);
    c->d = dng_net_create(1, &feat);
    add_ok(c->g, dng_dense(4, 6));
    add_ok(c->g, dng_activation(DNG_ACT_TANH, 0));
    add_ok(c->d, dng_dense(6, 1));
    c->go = dng_adam(2e-4f, 0.5f, 0.999f, 1e-8f, 0);
    c->dop = dng_adam(2e-4f, 0.5f, 0.999f, 1e-8f, 0);
    c->gan = dng_gan_create(c->g, c->d, c->go, c->dop);
    ck_assert_ptr_nonnull(c->gan);
}

static void corpus_gan_free(corpus_gan *c)
{
    dng_gan_destroy(c->gan);
    dng_net_destroy(c->g);
    dng_net_destroy(c->d);
    dng_optim_destroy(c->go);
    dng_optim_destroy(c->dop);
}

enum { L_MODEL, L_CHECKPOINT, L_IDX, L_IDX_OPEN, L_NPY, L_NPY_OPEN,
       L_SAFETENSORS };

/* Run one loader on path; the status (DNG_OK when it loaded). */
static dng_status run_loader(int loader, const char *path)
{
    dng_status s = DNG_OK;
    dng_clear_error();
    switch (loader) {
    case L_MODEL: {
        dng_net *n = dng_net_load(path);
        if (!n)
            s = dng_last_error()[0] ? DNG_ERR_FORMAT : DNG_OK;
        dng_net_destroy(n);
        return n ? DNG_OK : s;
    }
    case L_CHECKPOINT: {
        corpus_gan c;
        corpus_gan_make(&c);
        s = dng_gan_load_checkpoint(c.gan, path);
        corpus_gan_free(&c);
        return s;
    }
    case L_IDX:
    case L_IDX_OPEN: {
        dng_dataset *d = loader == L_IDX ? dng_dataset_load_idx(path, NULL)
                                         : dng_dataset_open_idx(path, NULL);
        dng_dataset_destroy(d);
        return d ? DNG_OK : DNG_ERR_FORMAT;
    }
    case L_NPY: {
        dng_tensor *t = dng_tensor_load_npy(path);
        int nd;
        int64_t shape[DNG_MAX_DIMS], numel;
        uint64_t off;
        dng_tensor_destroy(t);
        if (t)
            return DNG_OK;
        /* The header checks again, through the entry point that gives
         * a status. */
        s = dng__npy_probe(path, &nd, shape, &numel, &off);
        return s == DNG_OK ? DNG_ERR_FORMAT : s;
    }
    case L_NPY_OPEN: {
        dng_dataset *d = dng_dataset_open_npy(path, NULL);
        dng_dataset_destroy(d);
        return d ? DNG_OK : DNG_ERR_FORMAT;
    }
    case L_SAFETENSORS: {
        dng_net *n = corpus_net();
        s = dng_net_load_safetensors(n, path);
        dng_net_destroy(n);
        return s;
    }
    }
    return DNG_ERR_INVALID_ARGUMENT;
}

/* Loaders that return NULL give no status; their message must at least
 * exist and not be an argument or memory failure. */
static bool message_is_io_or_format(void)
{
    const char *m = dng_last_error();
    return m[0] != '\0' && !strstr(m, " is NULL") &&
           !strstr(m, "out of memory") && !strstr(m, "cannot allocate");
}

/* Every file directly in corpus/<dir> is refused with a message; every
 * file in corpus/<dir>/good loads. Returns the count of bad files. */
static int run_corpus(const char *dir, int loader, int min_files)
{
    int bad = 0, good = 0;
    for (int pass = 0; pass < 2; pass++) {
        const char *d = corpus_dir(dir, pass ? "good" : NULL);
        DIR *dh = opendir(d);
        struct dirent *e;
        ck_assert_msg(dh != NULL, "no corpus at %s (run "
                      "tests/data/make-corpus.py)", d);
        while ((e = readdir(dh))) {
            char path[2048];
            struct stat st;
            dng_status s;
            snprintf(path, sizeof path, "%s/%s", d, e->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            s = run_loader(loader, path);
            if (pass == 1) {
                ck_assert_msg(s == DNG_OK, "%s: good file refused: %s", path,
                              dng_last_error());
                good++;
                continue;
            }
            ck_assert_msg(s != DNG_OK, "%s: bad file accepted", path);
            ck_assert_msg(message_is_io_or_format(), "%s: no message", path);
            if (loader == L_IDX_OPEN || loader == L_NPY_OPEN) {
                /* Compressed files have their own refusal. */
                if (strstr(dng_last_error(), "compressed") ||
                    strstr(dng_last_error(), "zip archive"))
                    ck_assert_msg(strstr(dng_last_error(), "decompress") ||
                                  strstr(dng_last_error(), "extract"),
                                  "%s: %s", path, dng_last_error());
            } else if (loader == L_CHECKPOINT || loader == L_SAFETENSORS ||
                       loader == L_NPY) {
                ck_assert_msg(s == DNG_ERR_FORMAT || s == DNG_ERR_IO,
                              "%s: status %d: %s", path, s,
                              dng_last_error());
            }
            bad++;
        }
        closedir(dh);
    }
    ck_assert_msg(bad >= min_files, "corpus/%s holds %d bad files; expected "
                  "at least %d", dir, bad, min_files);
    ck_assert_msg(good >= 1, "corpus/%s/good is empty", dir);
    return bad;
}

START_TEST(corpus_model)
{
    run_corpus("model", L_MODEL, 6);
}
END_TEST

START_TEST(corpus_checkpoint)
{
    run_corpus("checkpoint", L_CHECKPOINT, 6);
}
END_TEST

START_TEST(corpus_idx)
{
    run_corpus("idx", L_IDX, 6);
    run_corpus("idx", L_IDX_OPEN, 6);
}
END_TEST

START_TEST(corpus_npy)
{
    run_corpus("npy", L_NPY, 6);
    run_corpus("npy", L_NPY_OPEN, 6);
}
END_TEST

START_TEST(corpus_safetensors)
{
    run_corpus("safetensors", L_SAFETENSORS, 6);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static Suite *bigdata_suite(void)
{
    Suite *s = suite_create("bigdata");
    TCase *st = tcase_create("safetensors");
    TCase *mp = tcase_create("mapped");
    TCase *big = tcase_create("rss");
    TCase *co = tcase_create("corpus");
    tcase_add_test(st, st_round_trip);
    tcase_add_test(st, st_layout);
    tcase_add_test(st, st_accepts);
    tcase_add_test(st, st_rejects);
    tcase_add_test(mp, npy_open_reads);
    tcase_add_test(mp, npy_open_shuffle_split);
    tcase_add_test(mp, npy_open_fit_equals_memory);
    tcase_add_test(mp, npy_open_gan_train);
    tcase_add_test(mp, npy_open_rejects);
    tcase_add_test(mp, idx_open_reads);
    tcase_add_test(mp, idx_open_rejects);
    tcase_add_test(big, mapped_rss_bounded);
    tcase_set_timeout(big, 300);
    tcase_add_test(co, corpus_model);
    tcase_add_test(co, corpus_checkpoint);
    tcase_add_test(co, corpus_idx);
    tcase_add_test(co, corpus_npy);
    tcase_add_test(co, corpus_safetensors);
    suite_add_tcase(s, st);
    suite_add_tcase(s, mp);
    suite_add_tcase(s, big);
    suite_add_tcase(s, co);
    return s;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    int rc;
    dng_set_num_threads(1);
    snprintf(tmpdir, sizeof tmpdir, "%s/dng-bigdata-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    rc = dng_test_run(bigdata_suite());
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
