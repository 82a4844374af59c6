/* test-data.c: datasets, IDX loading, dng_fit and dng_evaluate. */
#define _GNU_SOURCE 1
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

static char tmpdir[256];

/* ---- helpers ----------------------------------------------------------- */

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* Write bytes to path, gzip-compressed through zlib when gz is set. */
static void write_bytes(const char *path, const void *data, size_t len,
                        int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb9");
        ck_assert_ptr_nonnull(f);
        if (len)
            ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        if (len)
            ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* Build an IDX image in buf: magic, type, ndim, big-endian dims, then
 * payload. Returns the length. */
static size_t make_idx(uint8_t *buf, int type, int ndim,
                       const uint32_t *dims, const void *payload,
                       size_t payload_len)
{
    size_t off = 0;
    buf[off++] = 0;
    buf[off++] = 0;
    buf[off++] = (uint8_t)type;
    buf[off++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[off++] = (uint8_t)(dims[i] >> 24);
        buf[off++] = (uint8_t)(dims[i] >> 16);
        buf[off++] = (uint8_t)(dims[i] >> 8);
        buf[off++] = (uint8_t)dims[i];
    }
    if (payload_len)
        memcpy(buf + off, payload, payload_len);
    return off + payload_len;
}

static void put_be_float(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (uint8_t)(u >> 24);
    p[1] = (uint8_t)(u >> 16);
    p[2] = (uint8_t)(u >> 8);
    p[3] = (uint8_t)u;
}

/* Expect loading to fail with a message naming the file and containing
 * why. */
static void expect_load_fail(const char *images, const char *labels,
                             const char *named, const char *why)
{
    dng_dataset *ds;
    dng_clear_error();
    ds = dng_dataset_load_idx(images, labels);
    ck_assert_msg(ds == NULL, "loading %s should fail (%s)", named, why);
    ck_assert_msg(strstr(dng_last_error(), named) != NULL,
                  "message \"%s\" does not name %s", dng_last_error(),
                  named);
    ck_assert_msg(strstr(dng_last_error(), why) != NULL,
                  "message \"%s\" does not say \"%s\"", dng_last_error(),
                  why);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- IDX loading ------------------------------------------------------- */

START_TEST(idx_ubyte_images_and_labels)
{
    /* 5 images of 3 x 4 with every byte value pattern including 0, 255. */
    enum { N = 5, H = 3, W = 4 };
    uint8_t pix[N * H * W], lab[N] = {3, 0, 9, 255, 7};
    uint8_t buf[512];
    uint32_t idims[3] = {N, H, W}, ldims[1] = {N};
    for (int i = 0; i < N * H * W; i++)
        pix[i] = (uint8_t)(i * 53 + 1);
    pix[0] = 0;
    pix[1] = 255;
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = tmp_path(gz ? "img.gz" : "img.raw");
        const char *lp = tmp_path(gz ? "lab.gz" : "lab.raw");
        int64_t shape[DNG_MAX_DIMS];
        int nd;
        dng_dataset *ds;
        const float *x, *y;
        write_bytes(ip, buf, make_idx(buf, 0x08, 3, idims, pix, sizeof pix),
                    gz);
        write_bytes(lp, buf, make_idx(buf, 0x08, 1, ldims, lab, sizeof lab),
                    gz);
        ds = dng_dataset_load_idx(ip, lp);
        ck_assert_msg(ds != NULL, "%s", dng_last_error());
        ck_assert_int_eq(dng_dataset_size(ds), N);
        ck_assert_int_eq(dng_dataset_has_labels(ds), 1);
        ck_assert_int_eq(dng_dataset_sample_shape(ds, &nd, shape), DNG_OK);
        ck_assert_int_eq(nd, 3);
        ck_assert_int_eq(shape[0], 1);
        ck_assert_int_eq(shape[1], H);
        ck_assert_int_eq(shape[2], W);
        ck_assert_int_eq(dng_tensor_ndim(dng_dataset_x(ds)), 4);
        ck_assert_int_eq(dng_tensor_ndim(dng_dataset_y(ds)), 1);
        x = dng_tensor_data(dng_dataset_x(ds));
        y = dng_tensor_data(dng_dataset_y(ds));
        for (int i = 0; i < N * H * W; i++)
            ck_assert_msg(x[i] == (float)pix[i] / 255.0f,
                          "x[%d] = %.9g, expected %d / 255", i,
                          (double)x[i], pix[i]);
        ck_assert(x[0] == 0.0f && x[1] == 1.0f);
        for (int i = 0; i < N; i++)
            ck_assert(y[i] == (float)lab[i]);
        dng_dataset_destroy(ds);

        /* Without labels. */
        ds = dng_dataset_load_idx(ip, NULL);
        ck_assert_msg(ds != NULL, "%s", dng_last_error());
        ck_assert_int_eq(dng_dataset_has_labels(ds), 0);
        ck_assert_ptr_null(dng_dataset_y(ds));
        dng_dataset_destroy(ds);
    }
}
END_TEST

START_TEST(idx_2d_and_float32)
{
    uint8_t buf[512], pay[256];
    uint32_t d2[2] = {4, 6}, d1[1] = {4}, f2[2] = {3, 2}, f1[1] = {3};
    const float fv[6] = {-1.5f, 0.0f, 3.25f, 1e-7f, -0.0f, 123456.78f};
    const float fl[3] = {0.5f, -2.0f, 7.0f};
    dng_dataset *ds;
    const float *x, *y;
    for (int i = 0; i < 24; i++)
        pay[i] = (uint8_t)(250 - 7 * i);
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = tmp_path(gz ? "d2.gz" : "d2");
        const char *lp = tmp_path(gz ? "d2l.gz" : "d2l");
        uint8_t lab[4] = {1, 2, 3, 4};
        write_bytes(ip, buf, make_idx(buf, 0x08, 2, d2, pay, 24), gz);
        write_bytes(lp, buf, make_idx(buf, 0x08, 1, d1, lab, 4), gz);
        ds = dng_dataset_load_idx(ip, lp);
        ck_assert_msg(ds != NULL, "%s", dng_last_error());
        ck_assert_int_eq(dng_tensor_ndim(dng_dataset_x(ds)), 2);
        ck_assert_int_eq(dng_tensor_dim(dng_dataset_x(ds), 1), 6);
        x = dng_tensor_data(dng_dataset_x(ds));
        for (int i = 0; i < 24; i++)
            ck_assert(x[i] == (float)pay[i] / 255.0f);
        dng_dataset_destroy(ds);
    }
    /* float32 big-endian data and labels keep their values, unscaled. */
    for (int i = 0; i < 6; i++)
        put_be_float(pay + 4 * i, fv[i]);
    write_bytes(tmp_path("f32"), buf, make_idx(buf, 0x0D, 2, f2, pay, 24),
                1);
    for (int i = 0; i < 3; i++)
        put_be_float(pay + 4 * i, fl[i]);
    write_bytes(tmp_path("f32l"), buf, make_idx(buf, 0x0D, 1, f1, pay, 12),
                0);
    ds = dng_dataset_load_idx(tmp_path("f32"), tmp_path("f32l"));
    ck_assert_msg(ds != NULL, "%s", dng_last_error());
    x = dng_tensor_data(dng_dataset_x(ds));
    y = dng_tensor_data(dng_dataset_y(ds));
    ck_assert_int_eq(dng_tensor_dim(dng_dataset_x(ds), 0), 3);
    ck_assert_int_eq(dng_tensor_dim(dng_dataset_x(ds), 1), 2);
    ck_assert_mem_eq(x, fv, sizeof fv);
    ck_assert_mem_eq(y, fl, sizeof fl);
    dng_dataset_destroy(ds);
}
END_TEST

START_TEST(idx_bad_files)
{
    uint8_t buf[4096], pay[64];
    uint32_t d3[3] = {2, 2, 2}, d1[1] = {3};
    size_t len;
    memset(pay, 7, sizeof pay);
    for (int gz = 0; gz < 2; gz++) {
        char name[64];
#define BAD(tag) (snprintf(name, sizeof name, "bad-%s%s", tag,             \
                           gz ? ".gz" : ""), tmp_path(name))
        const char *p;

        p = BAD("empty");
        write_bytes(p, buf, 0, gz);
        expect_load_fail(p, NULL, p, "truncated header");

        p = BAD("head2");
        write_bytes(p, "\0\0", 2, gz);
        expect_load_fail(p, NULL, p, "truncated header");

        p = BAD("dims");
        len = make_idx(buf, 0x08, 3, d3, NULL, 0);
        write_bytes(p, buf, len - 5, gz);
        expect_load_fail(p, NULL, p, "truncated header");

        p = BAD("data");
        len = make_idx(buf, 0x08, 3, d3, pay, 8);
        write_bytes(p, buf, len - 1, gz);
        expect_load_fail(p, NULL, p, "truncated data");

        p = BAD("trail");
        len = make_idx(buf, 0x08, 3, d3, pay, 9);
        write_bytes(p, buf, len, gz);
        expect_load_fail(p, NULL, p, "after the 8 bytes");

        p = BAD("magic");
        len = make_idx(buf, 0x08, 3, d3, pay, 8);
        buf[1] = 0x01;
        write_bytes(p, buf, len, gz);
        expect_load_fail(p, NULL, p, "magic");
        if (gz) {
            /* A gzip header inside the gzip stream is still no IDX. */
            buf[0] = 0x1f;
            buf[1] = 0x8b;
            write_bytes(p, buf, len, gz);
            expect_load_fail(p, NULL, p, "magic");
        }

        p = BAD("type");
        for (int t = 0; t < 3; t++) {
            static const int types[3] = {0x00, 0x0B, 0x0E};
            len = make_idx(buf, types[t], 3, d3, pay, 8 * 8);
            write_bytes(p, buf, len, gz);
            expect_load_fail(p, NULL, p, "element type");
        }

        p = BAD("ndim0");
        len = make_idx(buf, 0x08, 0, d3, pay, 8);
        write_bytes(p, buf, len, gz);
        expect_load_fail(p, NULL, p, "0 dimensions is outside 1..4");

        p = BAD("ndim9");
        {
            uint32_t d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
            len = make_idx(buf, 0x08, 9, d9, pay, 1);
        }
        write_bytes(p, buf, len, gz);
        expect_load_fail(p, NULL, p, "9 dimensions is outside 1..4");

        p = BAD("zero");
        {
            uint32_t dz[3] = {2, 0, 2};
            len = make_idx(buf, 0x08, 3, dz, pay, 0);
        }
        write_bytes(p, buf, len, gz);
        expect_load_fail(p, NULL, p, "dimension 1 is 0");

        p = BAD("overflow");
        {
            /* 2^32 - 1 cubed overflows 64 bits; 65536 x 65536 x 2 is 2^33. */
            uint32_t dbig[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
            len = make_idx(buf, 0x08, 3, dbig, pay, 8);
            write_bytes(p, buf, len, gz);
            expect_load_fail(p, NULL, p, "more than 2^31 elements");
            dbig[0] = dbig[1] = 65536;
            dbig[2] = 2;
            len = make_idx(buf, 0x0D, 3, dbig, pay, 8);
            write_bytes(p, buf, len, gz);
            expect_load_fail(p, NULL, p, "more than 2^31 elements");
        }

        p = BAD("huge");
        {
            /* Exactly 2^31 promised, 8 bytes present: must fail as
             * truncated without trying to hold 2 GiB (raw) or more than
             * what was read (gzip). */
            uint32_t dh[3] = {32768, 256, 256};
            len = make_idx(buf, 0x08, 3, dh, pay, 8);
            write_bytes(p, buf, len, gz);
            expect_load_fail(p, NULL, p, "truncated data");
        }

        /* Labels that do not match the images. */
        p = BAD("img");
        len = make_idx(buf, 0x08, 3, d3, pay, 8);
        write_bytes(p, buf, len, gz);
        {
            const char *l = BAD("lab3");
            len = make_idx(buf, 0x08, 1, d1, pay, 3);
            write_bytes(l, buf, len, gz);
            expect_load_fail(p, l, l, "holds 3 labels");
            expect_load_fail(p, BAD("nolabels"), "nolabels",
                             "cannot open");
        }
#undef BAD
    }
    /* A damaged gzip stream: flip bytes inside the compressed data. */
    {
        uint8_t big[4096], raw[8192];
        FILE *f;
        size_t n;
        uint32_t dd[2] = {64, 64};
        const char *p = tmp_path("bad-stream.gz");
        for (int i = 0; i < 4096; i++)
            big[i] = (uint8_t)(i * 31 % 251);
        write_bytes(p, raw, make_idx(raw, 0x08, 2, dd, big, 4096), 1);
        f = fopen(p, "rb");
        n = fread(raw, 1, sizeof raw, f);
        fclose(f);
        ck_assert_uint_gt(n, 40);
        /* A compressed file cut short: zlib reports the stream ended
         * early, which reads as truncated IDX data. */
        write_bytes(p, raw, n / 2, 0);
        expect_load_fail(p, NULL, p, "truncated data");
        /* Cut after the last data byte: every byte decompresses, only
         * the CRC-32 and length trailer is missing. */
        write_bytes(p, raw, n - 8, 0);
        expect_load_fail(p, NULL, p, "compressed stream is truncated");
        /* A damaged CRC-32 in the gzip trailer. */
        raw[n - 6] ^= 0x01;
        write_bytes(p, raw, n, 0);
        expect_load_fail(p, NULL, p, "corrupt compressed data");
        raw[n - 6] ^= 0x01;
        for (size_t i = 20; i < n - 10; i += 7)
            raw[i] ^= 0x5A;
        write_bytes(p, raw, n, 0);
        dng_clear_error();
        ck_assert_ptr_null(dng_dataset_load_idx(p, NULL));
        ck_assert(strstr(dng_last_error(), p) != NULL);
    }
    expect_load_fail(tmp_path("missing"), NULL, "missing", "cannot open");
    expect_load_fail(tmpdir, NULL, tmpdir, "not a regular file");
    dng_clear_error();
    ck_assert_ptr_null(dng_dataset_load_idx(NULL, NULL));
    ck_assert(strstr(dng_last_error(), "images_path is NULL") != NULL);
}
END_TEST

START_TEST(idx_fashion_mnist_t10k)
{
    const char *dir = getenv("DNG_FASHION_MNIST");
    char ip[512], lp[512];
    dng_dataset *ds;
    const float *x, *y;
    int64_t counts[10] = {0};
    double first = 0.0, all = 0.0;
    int64_t outside = 0;
    static const float first_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    if (!dir)
        dir = "/usr/share/datasets/fashion-mnist";
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", dir);
    if (access(ip, R_OK) != 0 || access(lp, R_OK) != 0)
        return; /* the data set is not installed here */
    ds = dng_dataset_load_idx(ip, lp);
    ck_assert_msg(ds != NULL, "%s", dng_last_error());
    ck_assert_int_eq(dng_dataset_size(ds), 10000);
    ck_assert_int_eq(dng_tensor_dim(dng_dataset_x(ds), 1), 1);
    ck_assert_int_eq(dng_tensor_dim(dng_dataset_x(ds), 2), 28);
    ck_assert_int_eq(dng_tensor_dim(dng_dataset_x(ds), 3), 28);
    x = dng_tensor_data(dng_dataset_x(ds));
    y = dng_tensor_data(dng_dataset_y(ds));
    ck_assert_mem_eq(y, first_labels, sizeof first_labels);
    for (int i = 0; i < 10000; i++)
        counts[(int)y[i]]++;
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(counts[c], 1000);
    /* Byte sums computed independently with numpy from the same files. */
    for (int64_t i = 0; i < 784; i++)
        first += (double)lrintf(x[i] * 255.0f);
    for (int64_t i = 0; i < 10000 * 784; i++) {
        outside += !(x[i] >= 0.0f && x[i] <= 1.0f);
        all += (double)lrintf(x[i] * 255.0f);
    }
    ck_assert_int_eq(outside, 0);
    ck_assert_double_eq(first, 33456.0);
    ck_assert_double_eq(all, 573469082.0);
    ck_assert(x[10 * 28 + 15] == 53.0f / 255.0f);
    dng_dataset_destroy(ds);
}
END_TEST

/* ---- in-memory datasets ------------------------------------------------ */

/* A dataset of n samples [2, 3] where every value of sample i encodes i
 * (i * 10 + k), with labels [n] = 1000 + i. */
static dng_dataset *id_dataset(int64_t n, int labels)
{
    int64_t xs[3] = {n, 2, 3}, ys[1] = {n};
    dng_tensor *x = dng_tensor_create(3, xs), *y = dng_tensor_create(1, ys);
    dng_dataset *ds;
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < 6; k++)
            dng_tensor_data(x)[i * 6 + k] = (float)(i * 10 + k);
        dng_tensor_data(y)[i] = (float)(1000 + i);
    }
    ds = dng_dataset_from_tensors(x, labels ? y : NULL);
    ck_assert_msg(ds != NULL, "%s", dng_last_error());
    dng_tensor_destroy(x);
    dng_tensor_destroy(y);
    return ds;
}

/* Sample index encoded in row r of ds's x, checking the row is intact and
 * its label (if any) goes with it. */
static int64_t row_id(dng_dataset *ds, int64_t r)
{
    const float *x = dng_tensor_data(dng_dataset_x(ds)) + r * 6;
    int64_t id = (int64_t)x[0] / 10;
    for (int k = 0; k < 6; k++)
        ck_assert(x[k] == (float)(id * 10 + k));
    if (dng_dataset_has_labels(ds))
        ck_assert(dng_tensor_data(dng_dataset_y(ds))[r] ==
                  (float)(1000 + id));
    return id;
}

START_TEST(dataset_from_tensors_copies)
{
    int64_t xs[2] = {3, 2}, ys[2] = {3, 4}, bad[1] = {2}, one[1] = {3};
    float xv[6] = {1, 2, 3, 4, 5, 6};
    dng_tensor *x = dng_tensor_from_data(2, xs, xv);
    dng_tensor *y = dng_tensor_create(2, ys);
    dng_tensor *yb = dng_tensor_create(1, bad);
    dng_tensor *x1 = dng_tensor_create(1, one);
    dng_dataset *ds = dng_dataset_from_tensors(x, y);
    int nd;
    int64_t sh[DNG_MAX_DIMS];
    ck_assert_ptr_nonnull(ds);
    dng_tensor_data(x)[0] = 99.0f;
    ck_assert(dng_tensor_data(dng_dataset_x(ds))[0] == 1.0f);
    ck_assert_ptr_ne(dng_dataset_x(ds), x);
    ck_assert_int_eq(dng_dataset_sample_shape(ds, &nd, sh), DNG_OK);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(sh[0], 2);
    ck_assert_int_eq(dng_tensor_dim(dng_dataset_y(ds), 1), 4);
    dng_dataset_destroy(ds);

    ck_assert_ptr_null(dng_dataset_from_tensors(NULL, y));
    ck_assert(strstr(dng_last_error(), "x is NULL") != NULL);
    ck_assert_ptr_null(dng_dataset_from_tensors(x, yb));
    ck_assert(strstr(dng_last_error(), "number of samples") != NULL);
    ck_assert_ptr_null(dng_dataset_from_tensors(x1, NULL));
    ck_assert(strstr(dng_last_error(), "at least 2 dimensions") != NULL);
    ck_assert_int_eq(dng_dataset_size(NULL), -1);
    ck_assert_int_eq(dng_dataset_has_labels(NULL), -1);
    ck_assert_ptr_null(dng_dataset_x(NULL));
    ck_assert_int_eq(dng_dataset_sample_shape(NULL, &nd, sh),
                     DNG_ERR_INVALID_ARGUMENT);
    dng_dataset_destroy(NULL);
    dng_tensor_destroy(x);
    dng_tensor_destroy(y);
    dng_tensor_destroy(yb);
    dng_tensor_destroy(x1);
}
END_TEST

START_TEST(dataset_shuffle_keeps_pairs)
{
    enum { N = 50 };
    dng_dataset *a = id_dataset(N, 1), *b = id_dataset(N, 1);
    dng_dataset *u = id_dataset(N, 0);
    dng_rng *r1 = dng_rng_create(42), *r2 = dng_rng_create(42);
    dng_rng *r3 = dng_rng_create(42);
    int seen[N] = {0}, moved = 0;
    ck_assert_int_eq(dng_dataset_shuffle(a, r1), DNG_OK);
    ck_assert_int_eq(dng_dataset_shuffle(b, r2), DNG_OK);
    ck_assert_int_eq(dng_dataset_shuffle(u, r3), DNG_OK);
    for (int64_t r = 0; r < N; r++) {
        int64_t id = row_id(a, r);
        ck_assert(id >= 0 && id < N);
        seen[id]++;
        moved += id != r;
        /* Same seed, same order, with or without labels. */
        ck_assert_int_eq(row_id(b, r), id);
        ck_assert_int_eq(row_id(u, r), id);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, N / 2);
    /* A second shuffle goes on with the stream: a new order. */
    ck_assert_int_eq(dng_dataset_shuffle(b, r2), DNG_OK);
    moved = 0;
    for (int64_t r = 0; r < N; r++)
        moved += row_id(a, r) != row_id(b, r);
    ck_assert_int_gt(moved, N / 2);
    ck_assert_int_eq(dng_dataset_shuffle(NULL, r1),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_shuffle(a, NULL), DNG_ERR_INVALID_ARGUMENT);
    dng_dataset_destroy(a);
    dng_dataset_destroy(b);
    dng_dataset_destroy(u);
    dng_rng_destroy(r1);
    dng_rng_destroy(r2);
    dng_rng_destroy(r3);
}
END_TEST

START_TEST(dataset_split_sizes_and_disjoint)
{
    enum { N = 10 };
    dng_dataset *ds = id_dataset(N, 1), *t = NULL, *v = NULL;
    dng_rng *rng = dng_rng_create(3);
    int seen[N];
    /* Without a generator: the last round(N f) samples, in order. */
    ck_assert_int_eq(dng_dataset_split(ds, 0.3, NULL, &t, &v), DNG_OK);
    ck_assert_int_eq(dng_dataset_size(t), 7);
    ck_assert_int_eq(dng_dataset_size(v), 3);
    for (int64_t r = 0; r < 7; r++)
        ck_assert_int_eq(row_id(t, r), r);
    for (int64_t r = 0; r < 3; r++)
        ck_assert_int_eq(row_id(v, r), 7 + r);
    dng_dataset_destroy(t);
    dng_dataset_destroy(v);
    /* With one: disjoint, covering, shuffled; the source is untouched. */
    ck_assert_int_eq(dng_dataset_split(ds, 0.25, rng, &t, &v), DNG_OK);
    ck_assert_int_eq(dng_dataset_size(t), 7); /* round(2.5) = 3 valid */
    ck_assert_int_eq(dng_dataset_size(v), 3);
    memset(seen, 0, sizeof seen);
    {
        int in_order = 1;
        for (int64_t r = 0; r < 7; r++) {
            int64_t id = row_id(t, r);
            seen[id]++;
            in_order &= id == r;
        }
        ck_assert(!in_order);
    }
    for (int64_t r = 0; r < 3; r++)
        seen[row_id(v, r)]++;
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    for (int64_t r = 0; r < N; r++)
        ck_assert_int_eq(row_id(ds, r), r);
    dng_dataset_destroy(t);
    dng_dataset_destroy(v);

    ck_assert_int_eq(dng_dataset_split(ds, 0.0, NULL, &t, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(dng_dataset_split(ds, 1.0, NULL, &t, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_split(ds, NAN, NULL, &t, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_split(ds, 0.01, NULL, &t, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(dng_last_error(), "empty validation set") != NULL);
    ck_assert_int_eq(dng_dataset_split(ds, 0.99, NULL, &t, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(dng_last_error(), "empty training set") != NULL);
    ck_assert_int_eq(dng_dataset_split(NULL, 0.5, NULL, &t, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_split(ds, 0.5, NULL, NULL, &v),
                     DNG_ERR_INVALID_ARGUMENT);
    dng_dataset_destroy(ds);
    dng_rng_destroy(rng);
}
END_TEST

START_TEST(dataset_batch_contents_and_checks)
{
    enum { N = 7 };
    dng_dataset *ds = id_dataset(N, 1), *u = id_dataset(N, 0);
    int64_t xs[3] = {3, 2, 3}, ys[1] = {3}, xbad[3] = {3, 3, 2};
    int64_t x4[3] = {4, 2, 3}, y2[2] = {3, 1};
    dng_tensor *x = dng_tensor_create(3, xs), *y = dng_tensor_create(1, ys);
    dng_tensor *xb = dng_tensor_create(3, xbad);
    dng_tensor *xw = dng_tensor_create(3, x4);
    dng_tensor *yw = dng_tensor_create(2, y2);
    /* The last, partial batch: samples 4..6. */
    ck_assert_int_eq(dng_dataset_batch(ds, 4, 3, x, y), DNG_OK);
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 6; k++)
            ck_assert(dng_tensor_data(x)[i * 6 + k] ==
                      (float)((4 + i) * 10 + k));
        ck_assert(dng_tensor_data(y)[i] == (float)(1004 + i));
    }
    ck_assert_int_eq(dng_dataset_batch(ds, 0, 3, x, NULL), DNG_OK);
    ck_assert(dng_tensor_data(x)[6] == 10.0f);
    ck_assert_int_eq(dng_dataset_batch(u, 1, 3, x, NULL), DNG_OK);
    ck_assert(dng_tensor_data(x)[0] == 10.0f);

    ck_assert_int_eq(dng_dataset_batch(ds, 5, 3, x, y),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(dng_last_error(), "n = 3") != NULL);
    ck_assert_int_eq(dng_dataset_batch(ds, -1, 3, x, y),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_batch(ds, 7, 1, x, y),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_batch(ds, 0, 0, x, y),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_batch(ds, 0, 3, xb, y), DNG_ERR_SHAPE);
    ck_assert(strstr(dng_last_error(), "x_out has shape [3, 3, 2]; "
                     "expected [3, 2, 3]") != NULL);
    ck_assert_int_eq(dng_dataset_batch(ds, 0, 3, xw, y), DNG_ERR_SHAPE);
    ck_assert_int_eq(dng_dataset_batch(ds, 0, 3, x, yw), DNG_ERR_SHAPE);
    ck_assert(strstr(dng_last_error(), "y_out") != NULL);
    ck_assert_int_eq(dng_dataset_batch(u, 0, 3, x, y),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert(strstr(dng_last_error(), "no labels") != NULL);
    ck_assert_int_eq(dng_dataset_batch(NULL, 0, 3, x, y),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_dataset_batch(ds, 0, 3, NULL, y),
                     DNG_ERR_INVALID_ARGUMENT);
    dng_tensor_destroy(x);
    dng_tensor_destroy(y);
    dng_tensor_destroy(xb);
    dng_tensor_destroy(xw);
    dng_tensor_destroy(yw);
    dng_dataset_destroy(ds);
    dng_dataset_destroy(u);
}
END_TEST

/* ---- training ---------------------------------------------------------- */

/* A dataset from arrays: x [n, d], y [n] (or [n, yd] when yd > 0). */
static dng_dataset *make_ds(const float *x, int64_t n, int64_t d,
                            const float *y, int64_t yd)
{
    int64_t xs[2] = {n, d}, ys[2] = {n, yd};
    dng_tensor *xt = dng_tensor_from_data(2, xs, x);
    dng_tensor *yt = y ? dng_tensor_from_data(yd > 0 ? 2 : 1, ys, y) : NULL;
    dng_dataset *ds = dng_dataset_from_tensors(xt, yt);
    ck_assert_msg(ds != NULL, "%s", dng_last_error());
    dng_tensor_destroy(xt);
    dng_tensor_destroy(yt);
    return ds;
}

/* An MLP in -> hidden... -> out with the given activation between. */
static dng_net *mlp(int64_t in, int64_t h1, int64_t h2, int64_t out,
                    dng_act act, float dropout)
{
    dng_net *net = dng_net_create(1, &in);
    int64_t prev = in;
    ck_assert_ptr_nonnull(net);
    if (h1) {
        ck_assert_int_eq(dng_net_add(net, dng_dense(prev, h1)), DNG_OK);
        ck_assert_int_eq(dng_net_add(net, dng_activation(act, 0)), DNG_OK);
        prev = h1;
        if (dropout > 0)
            ck_assert_int_eq(dng_net_add(net, dng_dropout(dropout)), DNG_OK);
    }
    if (h2) {
        ck_assert_int_eq(dng_net_add(net, dng_dense(prev, h2)), DNG_OK);
        ck_assert_int_eq(dng_net_add(net, dng_activation(act, 0)), DNG_OK);
        prev = h2;
    }
    ck_assert_int_eq(dng_net_add(net, dng_dense(prev, out)), DNG_OK);
    return net;
}

/* A noisy spiral of `arms` arms, n points per arm, labels 0..arms-1. */
static void spiral(int arms, int n, float noise, float *x, float *y)
{
    float r01[2];
    dng_rng *rng = dng_rng_create(1234);
    for (int a = 0; a < arms; a++)
        for (int i = 0; i < n; i++) {
            int k = a * n + i;
            float r = (float)i / (float)n;
            float t = 4.0f * r + 2.0944f * (float)a;
            dng_rng_normal(rng, r01, 2, 0.0f, noise);
            x[2 * k] = r * sinf(t) + r01[0] * r;
            x[2 * k + 1] = r * cosf(t) + r01[1] * r;
            y[k] = (float)a;
        }
    dng_rng_destroy(rng);
}

START_TEST(fit_xor)
{
    const float x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0};
    dng_dataset *ds = make_ds(x, 4, 2, y, 0);
    dng_net *net = mlp(2, 8, 0, 1, DNG_ACT_TANH, 0);
    dng_optim *opt = dng_adam(0.05f, 0.9f, 0.999f, 1e-8f, 0.0f);
    dng_fit_options o;
    float loss = -1, acc = -1;
    dng_fit_options_default(&o);
    o.epochs = 300;
    o.batch_size = 4;
    ck_assert_ptr_nonnull(opt);
    ck_assert_msg(dng_fit(net, opt, DNG_LOSS_BCE_WITH_LOGITS, ds, NULL, &o,
                          NULL, NULL) == DNG_OK, "%s", dng_last_error());
    ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_BCE_WITH_LOGITS, ds, 3, &loss,
                                  &acc), DNG_OK);
    ck_assert_float_eq(acc, 1.0f);
    ck_assert_float_lt(loss, 0.05f);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_dataset_destroy(ds);
}
END_TEST

typedef struct run_log {
    int calls, stop_at;
    dng_fit_progress last;
    dng_net *net;
    float *snaps;       /* parameters after each epoch */
    int64_t count;      /* scalars per snapshot */
    float loss[64];
} run_log;

static void flat_params(dng_net *net, float *dst)
{
    for (int i = 0; i < dng_net_num_params(net); i++) {
        dng_tensor *p = dng_net_param(net, i);
        memcpy(dst, dng_tensor_data(p), sizeof(float) *
               (size_t)dng_tensor_numel(p));
        dst += dng_tensor_numel(p);
    }
}

static int log_cb(const dng_fit_progress *p, void *user)
{
    run_log *log = user;
    ck_assert_uint_eq(p->size, sizeof *p);
    ck_assert_int_eq(p->epoch, log->calls + 1);
    log->loss[log->calls % 64] = p->valid_loss;
    if (log->snaps)
        flat_params(log->net, log->snaps + (size_t)log->calls *
                                               (size_t)log->count);
    log->calls++;
    log->last = *p;
    return log->stop_at && p->epoch >= log->stop_at;
}

START_TEST(fit_spiral_and_reproducible)
{
    enum { ARMS = 3, PER = 100, N = ARMS * PER };
    float x[2 * N], y[N];
    dng_dataset *ds;
    dng_fit_options o;
    float acc = 0, loss = 0;
    float *w[3];
    int64_t count = 0;
    spiral(ARMS, PER, 0.15f, x, y);
    ds = make_ds(x, N, 2, y, 0);
    dng_fit_options_default(&o);
    o.epochs = 60;
    o.batch_size = 32;
    o.seed = 11;
    for (int run = 0; run < 3; run++) {
        dng_net *net = mlp(2, 64, 64, ARMS, DNG_ACT_RELU, 0.05f);
        dng_optim *opt = dng_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.0f);
        run_log log = {0};
        o.seed = run < 2 ? 11 : 12;
        ck_assert_msg(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &o,
                              log_cb, &log) == DNG_OK, "%s",
                      dng_last_error());
        ck_assert_int_eq(log.calls, 60);
        ck_assert_int_eq(log.last.step, 60 * 10); /* ceil(300 / 32) = 10 */
        ck_assert(isnan(log.last.valid_loss));
        ck_assert(isnan(log.last.valid_accuracy));
        ck_assert_int_eq(log.last.best_epoch, 0);
        ck_assert_float_eq_tol(log.last.lr, 0.01f, 1e-9f);
        ck_assert(log.last.seconds >= 0.0);
        count = dng_net_param_count(net);
        w[run] = malloc(sizeof(float) * (size_t)count);
        flat_params(net, w[run]);
        if (run == 0) {
            ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, ds,
                                          64, &loss, &acc), DNG_OK);
            ck_assert_msg(acc > 0.95f, "spiral training accuracy %g",
                          (double)acc);
            ck_assert_float_lt(loss, 0.2f);
        }
        dng_optim_destroy(opt);
        dng_net_destroy(net);
    }
    /* Same seed, bit-identical weights; another seed, other weights. */
    ck_assert_mem_eq(w[0], w[1], sizeof(float) * (size_t)count);
    ck_assert(memcmp(w[0], w[2], sizeof(float) * (size_t)count) != 0);
    for (int i = 0; i < 3; i++)
        free(w[i]);
    dng_dataset_destroy(ds);
}
END_TEST

START_TEST(fit_linear_regression_and_mean_loss)
{
    /* y = 2 x0 - 3 x1 + 0.5 exactly: SGD on MSE must find it. */
    enum { N = 37 };
    float x[2 * N], y[N], w[3];
    dng_dataset *ds;
    dng_net *net = mlp(2, 0, 0, 1, DNG_ACT_RELU, 0);
    dng_optim *opt = dng_sgd(0.1f, 0.9f, 0, 0.0f);
    dng_fit_options o;
    run_log log = {0};
    float loss, acc;
    dng_test_fill(x, 2 * N, 5, -1.0f, 1.0f);
    for (int i = 0; i < N; i++)
        y[i] = 2.0f * x[2 * i] - 3.0f * x[2 * i + 1] + 0.5f;
    ds = make_ds(x, N, 2, y, 0);
    dng_fit_options_default(&o);
    o.epochs = 200;
    o.batch_size = 8; /* 4 full batches and one of 5 */
    ck_assert_msg(dng_fit(net, opt, DNG_LOSS_MSE, ds, NULL, &o, log_cb,
                          &log) == DNG_OK, "%s", dng_last_error());
    ck_assert_int_eq(log.last.step, 200 * 5);
    flat_params(net, w);
    ck_assert_float_eq_tol(w[0], 2.0f, 1e-3f);
    ck_assert_float_eq_tol(w[1], -3.0f, 1e-3f);
    ck_assert_float_eq_tol(w[2], 0.5f, 1e-3f);
    ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_MSE, ds, 5, &loss, &acc),
                     DNG_OK);
    ck_assert_float_lt(loss, 1e-6f);
    ck_assert(isnan(acc)); /* regression targets are not classes */
    dng_optim_destroy(opt);

    /* With a negligible learning rate the weights stay put, so the
     * epoch's mean training loss (partial batch weighted by its size)
     * equals the evaluated loss. */
    for (int i = 0; i < N; i++)
        y[i] += (float)(i % 3) - 1.0f;
    dng_dataset_destroy(ds);
    ds = make_ds(x, N, 2, y, 0);
    opt = dng_sgd(1e-30f, 0.0f, 0, 0.0f);
    o.epochs = 1;
    memset(&log, 0, sizeof log);
    ck_assert_int_eq(dng_fit(net, opt, DNG_LOSS_MSE, ds, ds, &o, log_cb,
                             &log), DNG_OK);
    ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_MSE, ds, 37, &loss, NULL),
                     DNG_OK);
    ck_assert_float_gt(loss, 0.5f);
    ck_assert_float_eq_tol(log.last.train_loss, loss, 1e-6f * loss);
    ck_assert_float_eq_tol(log.last.valid_loss, loss, 1e-6f * loss);
    ck_assert(isnan(log.last.valid_accuracy));
    ck_assert_int_eq(log.last.best_epoch, 1);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_dataset_destroy(ds);
}
END_TEST

START_TEST(fit_early_stopping_restores_best)
{
    /* A wide network fitted to 16 noisy points with a large step: the
     * validation loss on clean points of the same function falls, then
     * wanders (about epoch 15 with this seed) without improving for
     * `patience` epochs. Whatever the exact epochs, the checks below hold
     * for any run that stops early. */
    enum { NT = 16, NV = 200, EPOCHS = 60 };
    float xt[NT], yt[NT], noise[NT], xv[NV], yv[NV];
    dng_dataset *tr, *va;
    dng_net *net = mlp(1, 128, 128, 1, DNG_ACT_TANH, 0);
    dng_optim *opt = dng_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.0f);
    dng_fit_options o;
    run_log log = {0};
    float *final;
    dng_test_fill(xt, NT, 1, -1.0f, 1.0f);
    dng_test_fill(noise, NT, 2, -0.6f, 0.6f);
    for (int i = 0; i < NT; i++)
        yt[i] = sinf(3.0f * xt[i]) + noise[i];
    for (int i = 0; i < NV; i++) {
        xv[i] = -1.0f + 2.0f * (float)i / (NV - 1);
        yv[i] = sinf(3.0f * xv[i]);
    }
    tr = make_ds(xt, NT, 1, yt, 0);
    va = make_ds(xv, NV, 1, yv, 0);
    dng_fit_options_default(&o);
    o.epochs = EPOCHS;
    o.batch_size = 4;
    o.patience = 5;
    o.min_delta = 1e-4f;
    log.net = net;
    log.count = dng_net_param_count(net);
    log.snaps = malloc(sizeof(float) * (size_t)(log.count * EPOCHS));
    final = malloc(sizeof(float) * (size_t)log.count);
    ck_assert_msg(dng_fit(net, opt, DNG_LOSS_MSE, tr, va, &o, log_cb,
                          &log) == DNG_OK, "%s", dng_last_error());
    /* It stopped early, patience epochs after a best epoch that is
     * neither the first nor the last. */
    ck_assert_int_lt(log.calls, EPOCHS);
    ck_assert_int_gt(log.last.best_epoch, 1);
    ck_assert_int_eq(log.calls, log.last.best_epoch + o.patience);
    for (int e = log.last.best_epoch; e < log.calls; e++)
        ck_assert_float_ge(log.loss[e],
                           log.loss[log.last.best_epoch - 1] - o.min_delta);
    flat_params(net, final);
    ck_assert_mem_eq(final, log.snaps + (size_t)(log.last.best_epoch - 1) *
                                            (size_t)log.count,
                     sizeof(float) * (size_t)log.count);
    ck_assert(memcmp(final, log.snaps + (size_t)(log.calls - 1) *
                                            (size_t)log.count,
                     sizeof(float) * (size_t)log.count) != 0);
    free(final);
    free(log.snaps);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_dataset_destroy(tr);
    dng_dataset_destroy(va);
}
END_TEST

START_TEST(fit_callback_stops)
{
    const float x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0};
    dng_dataset *ds = make_ds(x, 4, 2, y, 0);
    dng_net *net = mlp(2, 4, 0, 2, DNG_ACT_TANH, 0);
    dng_optim *opt = dng_sgd(0.1f, 0.0f, 0, 0.0f);
    dng_fit_options o;
    run_log log = {0};
    dng_fit_options_default(&o);
    o.epochs = 50;
    o.batch_size = 3;
    log.stop_at = 3;
    ck_assert_int_eq(dng_optim_set_schedule(opt, DNG_SCHED_STEP, 1, 0.5f,
                                            0.0f), DNG_OK);
    ck_assert_int_eq(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, ds, &o,
                             log_cb, &log), DNG_OK);
    ck_assert_int_eq(log.calls, 3);
    ck_assert_int_eq(log.last.epoch, 3);
    ck_assert_int_eq(log.last.epochs, 50);
    ck_assert_int_eq(log.last.step, 6);
    /* The schedule stepped once per epoch: epoch 3 ran at 0.1 / 4. */
    ck_assert_float_eq_tol(log.last.lr, 0.025f, 1e-7f);
    ck_assert_float_eq_tol(dng_optim_get_lr(opt), 0.0125f, 1e-7f);
    ck_assert(isfinite(log.last.train_loss));
    ck_assert(log.last.valid_accuracy >= 0.0f &&
              log.last.valid_accuracy <= 1.0f);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_dataset_destroy(ds);
}
END_TEST

START_TEST(evaluate_hand_made)
{
    /* Identity dense layer: the logits are the inputs. */
    const float xs[12] = {2, 1, 0, 0.5f, 0, 3, 1, 1.5f, 1, -1, -2, -3};
    const float y[4] = {0, 2, 0, 1};
    dng_dataset *ds = make_ds(xs, 4, 3, y, 0);
    dng_net *net = mlp(3, 0, 0, 3, DNG_ACT_RELU, 0);
    float loss, acc, ref = 0.0f;
    float *w = dng_tensor_data(dng_net_param(net, 0));
    dng_tensor_fill(dng_net_param(net, 0), 0.0f);
    dng_tensor_fill(dng_net_param(net, 1), 0.0f);
    w[0] = w[4] = w[8] = 1.0f;
    /* argmax: 0 (right), 2 (right), 1 (wrong, label 0), 0 (wrong). */
    for (int i = 0; i < 4; i++) {
        double m = 0.0, s = 0.0;
        const float *r = xs + 3 * i;
        m = fmax(fmax(r[0], r[1]), r[2]);
        for (int j = 0; j < 3; j++)
            s += exp(r[j] - m);
        ref += (float)((m + log(s) - r[(int)y[i]]) / 4.0);
    }
    for (int64_t bs = 1; bs <= 5; bs++) {
        ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, ds, bs,
                                      &loss, &acc), DNG_OK);
        ck_assert_float_eq_tol(loss, ref, 1e-5f);
        ck_assert_float_eq(acc, 0.5f);
    }
    dng_dataset_destroy(ds);

    /* Labels that are not class indices: the loss refuses them. */
    {
        const float ybad[4] = {0, 2.5f, 0, 1};
        ds = make_ds(xs, 4, 3, ybad, 0);
        ck_assert_int_eq(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, ds, 2,
                                      &loss, &acc),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert(strstr(dng_last_error(), "dng_evaluate") != NULL);
        dng_dataset_destroy(ds);
    }
    dng_net_destroy(net);

    /* One logit per sample: positive logit means class 1. */
    {
        const float xb[5] = {2, -1, 0.5f, -3, 0}, yb[5] = {1, 1, 0, 0, 0};
        dng_net *n1 = mlp(1, 0, 0, 1, DNG_ACT_RELU, 0);
        double r = 0.0;
        dng_tensor_fill(dng_net_param(n1, 0), 1.0f);
        dng_tensor_fill(dng_net_param(n1, 1), 0.0f);
        ds = make_ds(xb, 5, 1, yb, 0);
        ck_assert_int_eq(dng_evaluate(n1, DNG_LOSS_BCE_WITH_LOGITS, ds, 2,
                                      &loss, &acc), DNG_OK);
        for (int i = 0; i < 5; i++)
            r += fmax(xb[i], 0) - xb[i] * yb[i] + log1p(exp(-fabs(xb[i])));
        ck_assert_float_eq_tol(loss, (float)(r / 5.0), 1e-6f);
        ck_assert_float_eq_tol(acc, 0.6f, 1e-7f); /* 2, -3, 0 right */
        dng_net_destroy(n1);
        dng_dataset_destroy(ds);
    }
}
END_TEST

START_TEST(fit_errors)
{
    const float x[12] = {0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1};
    const float y[6] = {0, 1, 1, 0, 0, 0}, y2[12] = {0};
    dng_dataset *ds = make_ds(x, 6, 2, y, 0);
    dng_dataset *d3 = make_ds(x, 4, 3, y, 0);
    dng_dataset *dy2 = make_ds(x, 6, 2, y2, 2);
    dng_dataset *nol = make_ds(x, 6, 2, NULL, 0);
    dng_net *net = mlp(2, 4, 0, 2, DNG_ACT_TANH, 0);
    dng_optim *opt = dng_sgd(0.1f, 0.0f, 0, 0.0f);
    dng_fit_options o, bad;
    dng_fit_options_default(&o);
    ck_assert_int_eq(o.size, sizeof o);
    ck_assert_int_eq(o.epochs, 10);
    ck_assert_int_eq(o.batch_size, 64);
    ck_assert_int_eq(o.shuffle, 1);
    ck_assert_int_eq(o.patience, 0);
    o.epochs = 2;
#define FAILS(call, code, text)                                              \
    do {                                                                     \
        dng_clear_error();                                                   \
        ck_assert_int_eq(call, code);                                        \
        ck_assert_msg(strstr(dng_last_error(), text) != NULL,                \
                      "\"%s\" lacks \"%s\"", dng_last_error(), text);        \
    } while (0)
    FAILS(dng_fit(NULL, opt, DNG_LOSS_MSE, ds, NULL, &o, NULL, NULL),
          DNG_ERR_INVALID_ARGUMENT, "net is NULL");
    FAILS(dng_fit(net, NULL, DNG_LOSS_MSE, ds, NULL, &o, NULL, NULL),
          DNG_ERR_INVALID_ARGUMENT, "opt is NULL");
    FAILS(dng_fit(net, opt, DNG_LOSS_MSE, NULL, NULL, &o, NULL, NULL),
          DNG_ERR_INVALID_ARGUMENT, "train is NULL");
    FAILS(dng_fit(net, opt, DNG_LOSS_MSE, ds, NULL, NULL, NULL, NULL),
          DNG_ERR_INVALID_ARGUMENT, "opts is NULL");
    FAILS(dng_fit(net, opt, (dng_loss_kind)9, ds, NULL, &o, NULL, NULL),
          DNG_ERR_INVALID_ARGUMENT, "unknown loss kind 9");
    bad = o;
    bad.size = 0;
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &bad, NULL,
                  NULL), DNG_ERR_INVALID_ARGUMENT, "opts->size");
    bad = o;
    bad.batch_size = 0;
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &bad, NULL,
                  NULL), DNG_ERR_INVALID_ARGUMENT, "batch_size");
    bad = o;
    bad.epochs = 0;
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &bad, NULL,
                  NULL), DNG_ERR_INVALID_ARGUMENT, "epochs");
    bad = o;
    bad.min_delta = -1.0f;
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &bad, NULL,
                  NULL), DNG_ERR_INVALID_ARGUMENT, "min_delta");
    bad = o;
    bad.patience = 2;
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, NULL, &bad, NULL,
                  NULL), DNG_ERR_INVALID_ARGUMENT, "needs a validation set");
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, d3, NULL, &o, NULL,
                  NULL), DNG_ERR_SHAPE, "samples are [3] but the network "
          "takes [2]");
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, ds, d3, &o, NULL, NULL),
          DNG_ERR_SHAPE, "validation set's samples");
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, nol, NULL, &o, NULL,
                  NULL), DNG_ERR_INVALID_ARGUMENT, "has no labels");
    FAILS(dng_fit(net, opt, DNG_LOSS_CROSS_ENTROPY, dy2, NULL, &o, NULL,
                  NULL), DNG_ERR_SHAPE, "one class index per sample");
    FAILS(dng_fit(net, opt, DNG_LOSS_MSE, ds, NULL, &o, NULL, NULL),
          DNG_ERR_SHAPE, "MSE loss needs one target per output ([2]");
    FAILS(dng_evaluate(net, DNG_LOSS_MSE, ds, 4, NULL, NULL), DNG_ERR_SHAPE,
          "dng_evaluate");
    FAILS(dng_evaluate(net, DNG_LOSS_CROSS_ENTROPY, ds, 0, NULL, NULL),
          DNG_ERR_INVALID_ARGUMENT, "batch_size");
    /* [N, 2] targets fit MSE on two outputs. */
    ck_assert_msg(dng_fit(net, opt, DNG_LOSS_MSE, dy2, dy2, &o, NULL,
                          NULL) == DNG_OK, "%s", dng_last_error());

    /* A non-finite loss stops training with the epoch and step. */
    {
        float xn[12];
        dng_dataset *dn;
        dng_net *n2 = mlp(2, 4, 0, 2, DNG_ACT_TANH, 0);
        dng_optim *o2 = dng_sgd(0.1f, 0.0f, 0, 0.0f);
        memcpy(xn, x, sizeof xn);
        xn[9] = NAN; /* sample 4, in the third batch of 2 */
        dn = make_ds(xn, 6, 2, y, 0);
        o.shuffle = 0;
        o.batch_size = 2;
        FAILS(dng_fit(n2, o2, DNG_LOSS_CROSS_ENTROPY, dn, NULL, &o, NULL,
                      NULL), DNG_ERR_NUMERIC, "epoch 1, step 3");
        dng_dataset_destroy(dn);
        dng_net_destroy(n2);
        dng_optim_destroy(o2);
    }
#undef FAILS
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_dataset_destroy(ds);
    dng_dataset_destroy(d3);
    dng_dataset_destroy(dy2);
    dng_dataset_destroy(nol);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *io = tcase_create("idx");
    TCase *mem = tcase_create("dataset");
    TCase *fit = tcase_create("fit");
    tcase_add_test(io, idx_ubyte_images_and_labels);
    tcase_add_test(io, idx_2d_and_float32);
    tcase_add_test(io, idx_bad_files);
    tcase_add_test(io, idx_fashion_mnist_t10k);
    tcase_add_test(mem, dataset_from_tensors_copies);
    tcase_add_test(mem, dataset_shuffle_keeps_pairs);
    tcase_add_test(mem, dataset_split_sizes_and_disjoint);
    tcase_add_test(mem, dataset_batch_contents_and_checks);
    tcase_add_test(fit, fit_xor);
    tcase_add_test(fit, fit_spiral_and_reproducible);
    tcase_add_test(fit, fit_linear_regression_and_mean_loss);
    tcase_add_test(fit, fit_early_stopping_restores_best);
    tcase_add_test(fit, fit_callback_stops);
    tcase_add_test(fit, evaluate_hand_made);
    tcase_add_test(fit, fit_errors);
    tcase_set_timeout(fit, 120);
    suite_add_tcase(s, io);
    suite_add_tcase(s, mem);
    suite_add_tcase(s, fit);
    return s;
}

int main(void)
{
    int rc;
    snprintf(tmpdir, sizeof tmpdir, "%s/dng-data-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    dng_set_num_threads(1);
    rc = dng_test_run(data_suite());
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
