/* mapped.c: datasets read on demand from memory-mapped, uncompressed IDX
 * and .npy files (dng_dataset_open_idx / dng_dataset_open_npy), for data
 * larger than memory.
 *
 * The whole file is mapped read-only and samples are converted to floats
 * only when a batch asks for them (the dataset ops' read_rows). Shuffling
 * permutes the dataset's perm array, never the file.
 *
 * Pages a read touches become part of the process's resident memory, and
 * one fault may map far more than the page it needs (fault-around, and
 * file systems with large folios map whole folios of up to 2 MB), so
 * without care an epoch over the file would make all of it resident. Each
 * handle therefore keeps an upper estimate of what its reads made
 * resident (every run of consecutive rows counts its bytes plus two whole
 * 2 MB blocks) and, once that passes a budget, releases the span it
 * touched with MADV_DONTNEED: the data stays in the page cache (no disk
 * read to get it back) but resident memory stays bounded however large
 * the file. The budget is 1/32 of the file, within [4 MB, 256 MB], so
 * that on a large file the release (a page-table walk and a TLB flush)
 * comes once per many rows. A small file (the labels, typically) fits in
 * its budget and is never released.
 *
 * A mapped file must not be truncated or rewritten while a dataset uses
 * it: reading a page past a file's new end raises SIGBUS, which no
 * library can turn into an error code. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset-impl.h"
#include "io-impl.h"

/* Element encodings found in the files. */
enum {
    ELEM_U8 = 1,     /* IDX unsigned bytes */
    ELEM_F32_LE = 2, /* .npy '<f4' */
    ELEM_F32_BE = 3  /* IDX float32 (big-endian like all IDX data) */
};

#define IDX_UBYTE 0x08
#define IDX_FLOAT32 0x0D
#define IDX_MAX_DIMS 4

/* The most one fault can map on common systems: a PMD-sized folio (2 MB
 * on x86-64 and arm64 with 4 kB pages). Spans are released in whole
 * blocks of this size, aligned in the file as folios are. */
#define BLOCK ((uint64_t)2 << 20)
#define BUDGET_MIN ((uint64_t)4 << 20)
#define BUDGET_MAX ((uint64_t)256 << 20)

typedef struct mfile {
    uint8_t *map;      /* the whole file, PROT_READ */
    size_t map_len;
    size_t offset;     /* of the first element */
    int elem;
    float div;         /* unsigned bytes are divided by it */
    int64_t row_elems; /* elements per sample */
    size_t row_bytes;
    uint64_t budget;   /* resident bytes allowed before a release */
} mfile;

/* The mappings, shared by a dataset and the views dng_dataset_split makes
 * of it. Views are separate handles, which the threading rules let
 * different threads use at once: the mappings are only read, and the
 * reference count is atomic. */
typedef struct mshared {
    atomic_int refs;
    mfile x, y;
    bool has_y;
} mshared;

/* What one handle's reads have touched since its last release. */
typedef struct mtrack {
    uint64_t lo, hi;   /* the touched span of the file, block-aligned */
    uint64_t est;      /* upper estimate of the resident bytes in it */
} mtrack;

/* A handle's own state (ds->priv). */
typedef struct mhandle {
    mshared *m;
    mtrack tx, ty;
    int advice;        /* the madvise hint last given */
} mhandle;

/* ---- reading ----------------------------------------------------------- */

/* dst[i] = src[i] / div for n unsigned bytes (a division, not a
 * multiplication by 1 / div, to give dng_dataset_load_idx's values). */
static void conv_u8(const uint8_t *src, int64_t n, float div, float *dst)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)src[i] / div;
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* dst[i] = the float32 at src + 4i, stored little- (le) or big-endian. */
static void conv_f32(const uint8_t *src, int64_t n, bool le, float *dst)
{
    if (le == host_is_le()) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] << 24 |
                     (uint32_t)src[4 * i + 1] << 16 |
                     (uint32_t)src[4 * i + 2] << 8 | (uint32_t)src[4 * i + 3];
        memcpy(dst + i, &u, 4);
    }
}

/* Release the span t has touched in f. A failed madvise leaves pages
 * mapped, which costs memory but not correctness, so it is no error. */
static void release(const mfile *f, mtrack *t)
{
    if (t->hi > t->lo)
        madvise(f->map + t->lo, (size_t)(t->hi - t->lo), MADV_DONTNEED);
    t->lo = t->hi = t->est = 0;
}

/* Convert rows [row, row + count) of f into dst and account for the
 * memory the read made resident. */
static void read_run(const mfile *f, mtrack *t, int64_t row, int64_t count,
                     float *dst)
{
    uint64_t at = f->offset + (uint64_t)row * f->row_bytes;
    uint64_t bytes = (uint64_t)count * f->row_bytes;
    uint64_t lo = at - at % BLOCK, hi = at + bytes;
    int64_t n = count * f->row_elems;
    if (f->elem == ELEM_U8)
        conv_u8(f->map + at, n, f->div, dst);
    else
        conv_f32(f->map + at, n, f->elem == ELEM_F32_LE, dst);
    hi = f->map_len - hi < (BLOCK - hi % BLOCK) % BLOCK
             ? f->map_len
             : hi + (BLOCK - hi % BLOCK) % BLOCK;
    if (t->hi == t->lo) {
        t->lo = lo;
        t->hi = hi;
    } else {
        t->lo = lo < t->lo ? lo : t->lo;
        t->hi = hi > t->hi ? hi : t->hi;
    }
    /* A run lies in at most bytes / BLOCK + 2 blocks, each of which one
     * fault may map whole; residency cannot exceed the span itself. */
    t->est += bytes + 2 * BLOCK;
    if (t->est > t->hi - t->lo)
        t->est = t->hi - t->lo;
    if (t->est > f->budget)
        release(f, t);
}

/* Tell the kernel how the next reads go: readahead helps a sequential
 * pass and only wastes I/O and page cache on shuffled rows. The hint is
 * only given again when the pattern changes. */
static void advise(mhandle *h, int advice)
{
    if (h->advice == advice)
        return;
    h->advice = advice;
    madvise(h->m->x.map, h->m->x.map_len, advice);
    if (h->m->has_y)
        madvise(h->m->y.map, h->m->y.map_len, advice);
}

static dng_status mapped_read_rows(const dng_dataset *ds, const int64_t *rows,
                                   int64_t first, int64_t n, float *x,
                                   float *y)
{
    mhandle *h = ds->priv;
    int64_t i = 0, runs = 0;
    /* Consecutive rows are converted in one go: a sequential pass costs
     * one conversion per batch, a shuffled one, one per sample. */
    while (i < n) {
        int64_t row = rows ? rows[i] : first + i, k = 1;
        if (rows)
            while (i + k < n && rows[i + k] == row + k)
                k++;
        else
            k = n;
        read_run(&h->m->x, &h->tx, row, k, x + i * ds->x_stride);
        if (y)
            read_run(&h->m->y, &h->ty, row, k, y + i * ds->y_stride);
        runs++;
        i += k;
    }
    if (n > 1)
        advise(h, runs == 1 ? MADV_SEQUENTIAL : MADV_RANDOM);
    return DNG_OK;
}

static void mshared_release(mshared *m)
{
    if (atomic_fetch_sub(&m->refs, 1) > 1)
        return;
    munmap(m->x.map, m->x.map_len);
    if (m->has_y)
        munmap(m->y.map, m->y.map_len);
    dng__free(m);
}

static void mapped_destroy(dng_dataset *ds)
{
    mhandle *h = ds->priv;
    /* Pages this handle left mapped go with it, even while views keep
     * the mapping. */
    release(&h->m->x, &h->tx);
    if (h->m->has_y)
        release(&h->m->y, &h->ty);
    mshared_release(h->m);
    dng__free(h);
    ds->priv = NULL;
}

static dng_dataset *mapped_view(const dng_dataset *ds, int64_t *rows,
                                int64_t n)
{
    const mhandle *h = ds->priv;
    dng_dataset *v = dng__calloc(1, sizeof *v, "dng_dataset_split");
    mhandle *vh = dng__calloc(1, sizeof *vh, "dng_dataset_split");
    if (!v || !vh) {
        dng__free(v);
        dng__free(vh);
        dng__free(rows);
        return NULL;
    }
    *v = *ds;
    v->n = n;
    v->perm = rows;
    vh->m = h->m;
    vh->advice = MADV_NORMAL;
    v->priv = vh;
    atomic_fetch_add(&h->m->refs, 1);
    return v;
}

static const dng__dataset_ops mapped_ops = {
    .kind = DNG__DATASET_MAPPED,
    .read_rows = mapped_read_rows,
    .destroy = mapped_destroy,
    .view = mapped_view,
};

/* ---- opening ----------------------------------------------------------- */

/* Refuse compressed files with a message that says what to do: a
 * compressed stream cannot be mapped and read at random. */
static dng_status check_not_compressed(const char *func, const char *path,
                                       const uint8_t *head, size_t len,
                                       const char *loader)
{
    if (len >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        return dng__error(DNG_ERR_UNSUPPORTED, "%s: %s is gzip-compressed; "
                          "memory-mapping needs the raw file: decompress it "
                          "first (gunzip -k), or load it into memory with "
                          "%s", func, path, loader);
    if (len >= 4 && memcmp(head, "PK\x03\x04", 4) == 0)
        return dng__error(DNG_ERR_UNSUPPORTED, "%s: %s is a zip archive (an "
                          ".npz?); extract the .npy files from it first",
                          func, path);
    return DNG_OK;
}

/* Map the whole regular file at path read-only into f. */
static dng_status map_file(const char *func, const char *path, mfile *f)
{
    struct stat st;
    void *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dng__error(DNG_ERR_IO, "%s: cannot open %s: %s", func, path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dng__error(DNG_ERR_IO, "%s: %s is not a regular file", func,
                          path);
    }
    if (st.st_size == 0) {
        close(fd);
        return dng__error(DNG_ERR_FORMAT, "%s: %s is empty", func, path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return dng__error(DNG_ERR_UNSUPPORTED, "%s: %s is too large to map "
                          "on this system", func, path);
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the file open */
    if (p == MAP_FAILED)
        return dng__error(errno == ENOMEM ? DNG_ERR_OUT_OF_MEMORY
                                          : DNG_ERR_IO,
                          "%s: cannot map %s: %s", func, path,
                          strerror(errno));
    f->map = p;
    f->map_len = (size_t)st.st_size;
    return DNG_OK;
}

static void unmap(mfile *f)
{
    if (f->map)
        munmap(f->map, f->map_len);
    f->map = NULL;
}

/* The resident-memory budget of a mapping: 1/32 of the file within
 * [BUDGET_MIN, BUDGET_MAX]. */
static uint64_t budget_of(const mfile *f)
{
    uint64_t b = (uint64_t)f->map_len / 32;
    return b < BUDGET_MIN ? BUDGET_MIN : b > BUDGET_MAX ? BUDGET_MAX : b;
}

/* A dataset over the mappings in m (taken over, also on failure) with the
 * per-sample shapes given. */
static dng_dataset *make_dataset(const char *func, mshared *m, int64_t n,
                                 int x_ndim, const int64_t *x_shape,
                                 int y_ndim, const int64_t *y_shape)
{
    dng_dataset *ds = dng__calloc(1, sizeof *ds, func);
    mhandle *h = dng__calloc(1, sizeof *h, func);
    if (!ds || !h) {
        dng__free(ds);
        dng__free(h);
        unmap(&m->x);
        unmap(&m->y);
        dng__free(m);
        return NULL;
    }
    atomic_init(&m->refs, 1);
    m->x.budget = budget_of(&m->x);
    m->y.budget = budget_of(&m->y);
    h->m = m;
    h->advice = MADV_NORMAL;
    ds->ops = &mapped_ops;
    ds->n = n;
    ds->x_ndim = x_ndim;
    memcpy(ds->x_shape, x_shape, (size_t)x_ndim * sizeof *x_shape);
    ds->x_stride = m->x.row_elems;
    ds->has_y = m->has_y;
    ds->y_ndim = y_ndim;
    if (y_ndim)
        memcpy(ds->y_shape, y_shape, (size_t)y_ndim * sizeof *y_shape);
    ds->y_stride = m->has_y ? m->y.row_elems : 1;
    ds->priv = h;
    return ds;
}

/* ---- IDX --------------------------------------------------------------- */

typedef struct idx_head {
    int type, ndim;
    int64_t dims[IDX_MAX_DIMS];
    int64_t count;
} idx_head;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Open and validate one IDX file: the header, and that the file holds
 * exactly the data it announces. */
static dng_status idx_open(const char *func, const char *role,
                           const char *path, mfile *f, idx_head *h)
{
    size_t header, esize;
    int64_t bytes;
    dng_status s;
    memset(f, 0, sizeof *f);
    memset(h, 0, sizeof *h);
    if (!path)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: %s is NULL", func,
                          role);
    if ((s = map_file(func, path, f)) != DNG_OK)
        return s;
    if ((s = check_not_compressed(func, path, f->map, f->map_len,
                                  "dng_dataset_load_idx")) != DNG_OK)
        goto fail;
    if (f->map_len < 4) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: truncated header (%zu of 4 "
                       "magic bytes)", func, path, f->map_len);
        goto fail;
    }
    if (f->map[0] != 0 || f->map[1] != 0) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: magic bytes 0x%02x%02x are "
                       "not 0x0000: not an IDX file", func, path, f->map[0],
                       f->map[1]);
        goto fail;
    }
    h->type = f->map[2];
    if (h->type != IDX_UBYTE && h->type != IDX_FLOAT32) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: element type 0x%02x is not "
                       "supported (0x08 unsigned byte or 0x0D float32)",
                       func, path, h->type);
        goto fail;
    }
    h->ndim = f->map[3];
    if (h->ndim < 1 || h->ndim > IDX_MAX_DIMS) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: %d dimensions is outside "
                       "1..%d", func, path, h->ndim, IDX_MAX_DIMS);
        goto fail;
    }
    header = 4 + 4 * (size_t)h->ndim;
    if (f->map_len < header) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: truncated header (%zu of "
                       "%zu bytes)", func, path, f->map_len, header);
        goto fail;
    }
    esize = h->type == IDX_UBYTE ? 1 : 4;
    h->count = 1;
    for (int i = 0; i < h->ndim; i++) {
        h->dims[i] = be32(f->map + 4 + 4 * i);
        if (h->dims[i] == 0) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: dimension %d is 0", func,
                           path, i);
            goto fail;
        }
        if (dng__mul_overflow_i64(h->count, h->dims[i], &h->count) ||
            h->count > INT64_MAX / 4) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: the dimensions' product "
                           "overflows", func, path);
            goto fail;
        }
    }
    /* The data must fill the rest of the file exactly: a file shorter than
     * its header says would fault on reading, a longer one is not what
     * the header describes. */
    bytes = h->count * (int64_t)esize;
    if ((uint64_t)bytes != f->map_len - header) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: the header announces %"
                       PRId64 " data bytes, the file holds %zu%s", func,
                       path, bytes, f->map_len - header,
                       (uint64_t)bytes > f->map_len - header
                           ? " (truncated)" : "");
        goto fail;
    }
    f->offset = header;
    f->elem = h->type == IDX_UBYTE ? ELEM_U8 : ELEM_F32_BE;
    f->row_elems = h->count / h->dims[0];
    f->row_bytes = (size_t)f->row_elems * esize;
    return DNG_OK;
fail:
    unmap(f);
    return s;
}

DNG_API dng_dataset *dng_dataset_open_idx(const char *images_path,
                                          const char *labels_path)
{
    static const char func[] = "dng_dataset_open_idx";
    idx_head hx, hy;
    int64_t xs[DNG_MAX_DIMS], ys[DNG_MAX_DIMS];
    int xnd, ynd = 0;
    mshared *m = dng__calloc(1, sizeof *m, func);
    if (!m)
        return NULL;
    if (idx_open(func, "images_path", images_path, &m->x, &hx) != DNG_OK) {
        dng__free(m);
        return NULL;
    }
    /* Unsigned bytes become intensities in [0, 1], as
     * dng_dataset_load_idx gives them. */
    m->x.div = 255.0f;
    if (labels_path) {
        if (idx_open(func, "labels_path", labels_path, &m->y, &hy) !=
            DNG_OK) {
            unmap(&m->x);
            dng__free(m);
            return NULL;
        }
        if (hy.dims[0] != hx.dims[0]) {
            dng__error(DNG_ERR_FORMAT, "%s: %s holds %" PRId64 " samples but "
                       "%s holds %" PRId64 " labels", func, images_path,
                       hx.dims[0], labels_path, hy.dims[0]);
            unmap(&m->x);
            unmap(&m->y);
            dng__free(m);
            return NULL;
        }
        m->y.div = 1.0f;
        m->has_y = true;
        /* Labels [N] are one value per sample; [N, ...] keep their shape. */
        ynd = hy.ndim - 1;
        memcpy(ys, hy.dims + 1, (size_t)ynd * sizeof *ys);
    }
    /* The sample shapes of dng_dataset_load_idx: [H, W] images get one
     * channel, [1, H, W]; a 1-D file gives one feature per sample. */
    if (hx.ndim == 3) {
        xs[0] = 1;
        xs[1] = hx.dims[1];
        xs[2] = hx.dims[2];
        xnd = 3;
    } else if (hx.ndim == 1) {
        xs[0] = 1;
        xnd = 1;
    } else {
        xnd = hx.ndim - 1;
        memcpy(xs, hx.dims + 1, (size_t)xnd * sizeof *xs);
    }
    return make_dataset(func, m, hx.dims[0], xnd, xs, ynd, ys);
}

/* ---- .npy -------------------------------------------------------------- */

/* Open and validate one .npy file through npy.c's header parser. */
static dng_status npy_open(const char *func, const char *path, mfile *f,
                           int *ndim, int64_t *shape)
{
    int64_t numel;
    uint64_t offset;
    dng_status s;
    memset(f, 0, sizeof *f);
    if ((s = map_file(func, path, f)) != DNG_OK)
        return s;
    if ((s = check_not_compressed(func, path, f->map, f->map_len,
                                  "dng_tensor_load_npy")) != DNG_OK)
        goto fail;
    if ((s = dng__npy_probe(path, ndim, shape, &numel, &offset)) != DNG_OK) {
        dng__error_prefix(s, "%s", func);
        goto fail;
    }
    /* The probe read the file through another descriptor; the mapping
     * must be the same size, or the file changed in between. */
    if (offset + (uint64_t)numel * 4 != f->map_len) {
        s = dng__error(DNG_ERR_IO, "%s: %s changed while it was opened",
                       func, path);
        goto fail;
    }
    f->offset = (size_t)offset;
    f->elem = ELEM_F32_LE;
    f->row_elems = numel / shape[0];
    f->row_bytes = (size_t)f->row_elems * 4;
    return DNG_OK;
fail:
    unmap(f);
    return s;
}

DNG_API dng_dataset *dng_dataset_open_npy(const char *x_path,
                                          const char *y_path)
{
    static const char func[] = "dng_dataset_open_npy";
    int64_t xs[DNG_MAX_DIMS], ys[DNG_MAX_DIMS];
    int xnd, ynd = 0;
    char a[160], b[160];
    mshared *m;
    if (!x_path) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: x_path is NULL", func);
        return NULL;
    }
    if (!(m = dng__calloc(1, sizeof *m, func)))
        return NULL;
    if (npy_open(func, x_path, &m->x, &xnd, xs) != DNG_OK)
        goto fail;
    if (xnd < 2) {
        dng__error(DNG_ERR_SHAPE, "%s: %s has shape %s; expected [N, "
                   "features...] with at least 2 dimensions", func, x_path,
                   dng__shape_str(a, sizeof a, xnd, xs));
        goto fail;
    }
    if (y_path) {
        if (npy_open(func, y_path, &m->y, &ynd, ys) != DNG_OK)
            goto fail;
        m->has_y = true;
        if (ys[0] != xs[0]) {
            dng__error(DNG_ERR_SHAPE, "%s: x %s and y %s differ in their "
                       "number of samples", func,
                       dng__shape_str(a, sizeof a, xnd, xs),
                       dng__shape_str(b, sizeof b, ynd, ys));
            goto fail;
        }
    }
    /* Drop the sample count: the dataset keeps per-sample shapes. */
    return make_dataset(func, m, xs[0], xnd - 1, xs + 1,
                        ynd > 0 ? ynd - 1 : 0, ys + 1);
fail:
    unmap(&m->x);
    unmap(&m->y);
    dng__free(m);
    return NULL;
}
