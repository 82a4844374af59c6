/* idx.c: IDX files (the MNIST format), raw or gzip-compressed, loaded into
 * an in-memory dataset.
 *
 * An IDX file is a 4-byte magic (two zero bytes, an element type, the
 * number of dimensions), one big-endian uint32 per dimension, then the
 * elements in row-major order, big-endian. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset-impl.h"

#define IDX_UBYTE 0x08
#define IDX_FLOAT32 0x0D
#define IDX_MAX_DIMS 4
/* The largest element count accepted: 2^31, far above any IDX data set
 * in use (MNIST's training images hold 47 million bytes). */
#define IDX_MAX_ELEMENTS (INT64_C(1) << 31)
/* Compressed files do not tell their size up front, so the buffer grows
 * as data arrives: a header that promises more than the file holds then
 * costs at most twice what was really read. */
#define IDX_FIRST_CHUNK ((size_t)1 << 20)

static const char FUNC[] = "dng_dataset_load_idx";

typedef struct idx_data {
    int type;                     /* IDX_UBYTE or IDX_FLOAT32 */
    int ndim;
    int64_t dims[IDX_MAX_DIMS];
    int64_t count;                /* elements */
    uint8_t *bytes;               /* count * element size, big-endian */
} idx_data;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read up to n bytes; returns the count read (short at end of file) or
 * -1 on a zlib error. gzread takes an unsigned int, hence the chunks. */
static int64_t read_some(gzFile gz, uint8_t *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > ((size_t)1 << 30) ? (size_t)1 << 30
                                                  : n - got;
        int k = gzread(gz, dst + got, (unsigned)want);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (int64_t)got;
}

/* A failed gzread: DNG_ERR_IO when the system could not read the file,
 * DNG_ERR_FORMAT when zlib found the stream damaged. */
static dng_status read_failed(gzFile gz, const char *path)
{
    int err = Z_OK, e = errno;
    const char *msg = gzerror(gz, &err);
    if (err == Z_ERRNO)
        return dng__error(DNG_ERR_IO, "%s: cannot read %s: %s", FUNC, path,
                          strerror(e));
    /* zlib names the stream "<fd:N>" (it was opened with gzdopen); the
     * message names the file instead. */
    if (msg && strncmp(msg, "<fd:", 4) == 0 && strstr(msg, ": "))
        msg = strstr(msg, ": ") + 2;
    return dng__error(DNG_ERR_FORMAT, "%s: %s: corrupt compressed data: %s",
                      FUNC, path, msg && *msg ? msg : "unknown zlib error");
}

static dng_status idx_read(const char *role, const char *path, idx_data *d)
{
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    struct stat st;
    gzFile gz;
    int fd;
    int64_t got, esize, header;
    size_t total, len = 0, cap;
    dng_status s = DNG_OK;
    memset(d, 0, sizeof *d);
    if (!path)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: %s is NULL", FUNC,
                          role);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dng__error(DNG_ERR_IO, "%s: cannot open %s: %s", FUNC, path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dng__error(DNG_ERR_IO, "%s: %s is not a regular file", FUNC,
                          path);
    }
    gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: cannot set up zlib "
                          "to read %s", FUNC, path);
    }
    gzbuffer(gz, 1u << 17);

    got = read_some(gz, head, 4);
    if (got < 0) {
        s = read_failed(gz, path);
        goto done;
    }
    if (got < 4) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: truncated header (%" PRId64
                       " of 4 magic bytes)", FUNC, path, got);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: magic bytes 0x%02x%02x are "
                       "not 0x0000: not an IDX file", FUNC, path, head[0],
                       head[1]);
        goto done;
    }
    d->type = head[2];
    if (d->type != IDX_UBYTE && d->type != IDX_FLOAT32) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: element type 0x%02x is not "
                       "supported (0x08 unsigned byte or 0x0D float32)",
                       FUNC, path, d->type);
        goto done;
    }
    d->ndim = head[3];
    if (d->ndim < 1 || d->ndim > IDX_MAX_DIMS) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: %d dimensions is outside "
                       "1..%d", FUNC, path, d->ndim, IDX_MAX_DIMS);
        goto done;
    }
    got = read_some(gz, head + 4, 4 * (size_t)d->ndim);
    if (got < 0) {
        s = read_failed(gz, path);
        goto done;
    }
    if (got < 4 * d->ndim) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: truncated header (%" PRId64
                       " of %d dimension bytes)", FUNC, path, got,
                       4 * d->ndim);
        goto done;
    }
    d->count = 1;
    for (int i = 0; i < d->ndim; i++) {
        d->dims[i] = be32(head + 4 + 4 * i);
        if (d->dims[i] == 0) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: dimension %d is 0", FUNC,
                           path, i);
            goto done;
        }
        /* Each factor is below 2^32 and the running product stays at or
         * below 2^31, so the product cannot overflow int64_t. */
        d->count *= d->dims[i];
        if (d->count > IDX_MAX_ELEMENTS) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: the dimensions hold "
                           "more than 2^31 elements", FUNC, path);
            goto done;
        }
    }
    esize = d->type == IDX_UBYTE ? 1 : 4;
    total = (size_t)(d->count * esize);
    header = 4 + 4 * (int64_t)d->ndim;
    if (gzdirect(gz)) {
        /* An uncompressed file: its size is known, so a header promising
         * more data than there is fails before anything is allocated. */
        int64_t have = (int64_t)st.st_size - header;
        if (have < (int64_t)total) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: truncated data: the "
                           "header promises %zu bytes, the file holds %"
                           PRId64, FUNC, path, total, have);
            goto done;
        }
        if (have > (int64_t)total) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: %" PRId64 " more "
                           "bytes after the %zu bytes of data", FUNC, path,
                           have - (int64_t)total, total);
            goto done;
        }
        cap = total;
    } else {
        cap = total < IDX_FIRST_CHUNK ? total : IDX_FIRST_CHUNK;
    }
    d->bytes = malloc(cap ? cap : 1);
    if (!d->bytes) {
        s = dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: %s: cannot allocate %zu "
                       "bytes", FUNC, path, cap);
        goto done;
    }
    while (len < total) {
        if (len == cap) {
            size_t ncap = cap > total / 2 ? total : 2 * cap;
            uint8_t *p = realloc(d->bytes, ncap);
            if (!p) {
                s = dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: %s: cannot "
                               "allocate %zu bytes", FUNC, path, ncap);
                goto done;
            }
            d->bytes = p;
            cap = ncap;
        }
        size_t want = cap - len;
        got = read_some(gz, d->bytes + len, want);
        if (got < 0) {
            s = read_failed(gz, path);
            goto done;
        }
        len += (size_t)got;
        /* read_some stops short only at the end of the file. */
        if ((size_t)got < want) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: truncated data: the "
                           "header promises %zu bytes, the file holds %zu",
                           FUNC, path, total, len);
            goto done;
        }
    }
    {
        /* Anything after the data means the header does not describe the
         * file: refuse rather than guess. */
        uint8_t extra;
        got = read_some(gz, &extra, 1);
        if (got < 0) {
            s = read_failed(gz, path);
            goto done;
        }
        if (got > 0) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: more bytes after the %zu "
                           "bytes of data", FUNC, path, total);
            goto done;
        }
    }
    {
        /* A gzip stream cut short after its last data byte (its CRC-32
         * and length trailer missing) still yields every byte: zlib
         * reports the truncation through gzerror, not gzread's count. */
        int err = Z_OK;
        gzerror(gz, &err);
        if (err == Z_BUF_ERROR) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: the compressed stream "
                           "is truncated (its integrity trailer is missing)",
                           FUNC, path);
            goto done;
        }
    }
done:
    gzclose(gz);
    if (s != DNG_OK) {
        free(d->bytes);
        d->bytes = NULL;
    }
    return s;
}

/* Convert the file's elements into t's floats: bytes become b / 255 when
 * scale is set (image intensities in [0, 1]) and b otherwise (labels);
 * float32 elements are byte-swapped from big-endian. */
static void idx_convert(const idx_data *d, bool scale, float *dst)
{
    const uint8_t *b = d->bytes;
    if (d->type == IDX_UBYTE) {
        if (scale)
            for (int64_t i = 0; i < d->count; i++)
                dst[i] = (float)b[i] / 255.0f;
        else
            for (int64_t i = 0; i < d->count; i++)
                dst[i] = (float)b[i];
    } else {
        for (int64_t i = 0; i < d->count; i++) {
            uint32_t u = be32(b + 4 * i);
            memcpy(dst + i, &u, sizeof u);
        }
    }
}

/* A tensor holding d's elements: images [N, H, W] become [N, 1, H, W]
 * (one channel, NCHW), a 1-D images file [N] becomes [N, 1]; labels [N]
 * stay [N]; other ranks keep their shape. */
static dng_tensor *idx_tensor(const idx_data *d, bool images)
{
    int64_t shape[IDX_MAX_DIMS + 1];
    int ndim = d->ndim;
    dng_tensor *t;
    memcpy(shape, d->dims, (size_t)ndim * sizeof *shape);
    if (images && ndim == 3) {
        shape[1] = 1;
        shape[2] = d->dims[1];
        shape[3] = d->dims[2];
        ndim = 4;
    } else if (images && ndim == 1) {
        shape[1] = 1;
        ndim = 2;
    }
    t = dng_tensor_create(ndim, shape);
    if (t)
        idx_convert(d, images, t->data);
    return t;
}

DNG_API dng_dataset *dng_dataset_load_idx(const char *images_path,
                                          const char *labels_path)
{
    idx_data img, lab;
    dng_tensor *x, *y = NULL;
    if (idx_read("images_path", images_path, &img) != DNG_OK)
        return NULL;
    if (labels_path) {
        if (idx_read("labels_path", labels_path, &lab) != DNG_OK) {
            free(img.bytes);
            return NULL;
        }
        if (lab.dims[0] != img.dims[0]) {
            dng__error(DNG_ERR_FORMAT, "%s: %s holds %" PRId64 " samples "
                       "but %s holds %" PRId64 " labels", FUNC, images_path,
                       img.dims[0], labels_path, lab.dims[0]);
            free(img.bytes);
            free(lab.bytes);
            return NULL;
        }
        y = idx_tensor(&lab, false);
        free(lab.bytes);
        if (!y) {
            free(img.bytes);
            return NULL;
        }
    }
    x = idx_tensor(&img, true);
    free(img.bytes);
    if (!x) {
        dng_tensor_destroy(y);
        return NULL;
    }
    return dng__dataset_adopt(FUNC, x, y);
}
