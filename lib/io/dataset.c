/* dataset.c: in-memory datasets of samples and optional labels, with
 * shuffling, splitting and batch extraction. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "dataset-impl.h"

/* ---- the in-memory kind ------------------------------------------------ */

static dng_status memory_read_rows(const dng_dataset *ds,
                                   const int64_t *rows, int64_t first,
                                   int64_t n, float *x, float *y)
{
    size_t xb = (size_t)ds->x_stride * sizeof(float);
    size_t yb = (size_t)ds->y_stride * sizeof(float);
    const float *xs = ds->x->data, *ys = ds->has_y ? ds->y->data : NULL;
    if (!rows) {
        /* Contiguous rows: one copy each for x and y. */
        memcpy(x, xs + first * ds->x_stride, (size_t)n * xb);
        if (y)
            memcpy(y, ys + first * ds->y_stride, (size_t)n * yb);
        return DNG_OK;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy(x + i * ds->x_stride, xs + rows[i] * ds->x_stride, xb);
    if (y)
        for (int64_t i = 0; i < n; i++)
            memcpy(y + i * ds->y_stride, ys + rows[i] * ds->y_stride, yb);
    return DNG_OK;
}

static const dng__dataset_ops memory_ops = {
    .kind = DNG__DATASET_MEMORY,
    .read_rows = memory_read_rows,
    .destroy = NULL,
};

dng_dataset *dng__dataset_adopt(const char *func, dng_tensor *x,
                                dng_tensor *y)
{
    dng_dataset *ds = dng__calloc(1, sizeof *ds, func);
    if (!ds) {
        dng_tensor_destroy(x);
        dng_tensor_destroy(y);
        return NULL;
    }
    ds->ops = &memory_ops;
    ds->n = x->shape[0];
    ds->x_ndim = x->ndim - 1;
    memcpy(ds->x_shape, x->shape + 1, (size_t)ds->x_ndim * sizeof(int64_t));
    ds->x_stride = x->numel / ds->n;
    ds->x = x;
    ds->y_stride = 1;
    if (y) {
        ds->has_y = true;
        ds->y_ndim = y->ndim - 1;
        memcpy(ds->y_shape, y->shape + 1,
               (size_t)ds->y_ndim * sizeof(int64_t));
        ds->y_stride = y->numel / ds->n;
        ds->y = y;
    }
    return ds;
}

/* ---- shared plumbing --------------------------------------------------- */

/* Fisher-Yates on an index array: every order equally likely. */
static void shuffle_indices(dng_rng *rng, int64_t *perm, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)dng__rng_below(rng, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void dng__permutation(dng_rng *rng, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    shuffle_indices(rng, perm, n);
}

dng_status dng__dataset_gather(const dng_dataset *ds, const int64_t *idx,
                               int64_t start, int64_t n, float *x, float *y)
{
    if (!ds->perm)
        return ds->ops->read_rows(ds, idx, start, n, x, y);
    /* A shuffled view maps each logical index to its row. Rows are read
     * one at a time so that no index buffer is needed. */
    for (int64_t i = 0; i < n; i++) {
        int64_t row = ds->perm[idx ? idx[i] : start + i];
        dng_status s = ds->ops->read_rows(ds, &row, 0, 1,
                                          x + i * ds->x_stride,
                                          y ? y + i * ds->y_stride : NULL);
        if (s != DNG_OK)
            return s;
    }
    return DNG_OK;
}

/* ---- public API -------------------------------------------------------- */

DNG_API dng_dataset *dng_dataset_from_tensors(const dng_tensor *x,
                                              const dng_tensor *y)
{
    static const char func[] = "dng_dataset_from_tensors";
    dng_tensor *xc, *yc = NULL;
    char a[160], b[160];
    if (!x) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: x is NULL", func);
        return NULL;
    }
    if (x->ndim < 2) {
        dng__error(DNG_ERR_SHAPE, "%s: x has shape %s; expected [N, "
                   "features...] with at least 2 dimensions", func,
                   dng__shape_str(a, sizeof a, x->ndim, x->shape));
        return NULL;
    }
    if (y && y->shape[0] != x->shape[0]) {
        dng__error(DNG_ERR_SHAPE, "%s: x %s and y %s differ in their "
                   "number of samples", func,
                   dng__shape_str(a, sizeof a, x->ndim, x->shape),
                   dng__shape_str(b, sizeof b, y->ndim, y->shape));
        return NULL;
    }
    xc = dng_tensor_from_data(x->ndim, x->shape, x->data);
    if (!xc)
        return NULL;
    if (y && !(yc = dng_tensor_from_data(y->ndim, y->shape, y->data))) {
        dng_tensor_destroy(xc);
        return NULL;
    }
    return dng__dataset_adopt(func, xc, yc);
}

DNG_API void dng_dataset_destroy(dng_dataset *ds)
{
    if (!ds)
        return;
    if (ds->ops->destroy)
        ds->ops->destroy(ds);
    dng_tensor_destroy(ds->x);
    dng_tensor_destroy(ds->y);
    dng__free(ds->perm);
    dng__free(ds);
}

DNG_API int64_t dng_dataset_size(const dng_dataset *ds)
{
    if (!ds) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_size: ds is NULL");
        return -1;
    }
    return ds->n;
}

DNG_API dng_status dng_dataset_sample_shape(const dng_dataset *ds, int *ndim,
                                            int64_t *shape)
{
    DNG__CHECK_NULL(ds, "dng_dataset_sample_shape");
    DNG__CHECK_NULL(ndim, "dng_dataset_sample_shape");
    DNG__CHECK_NULL(shape, "dng_dataset_sample_shape");
    *ndim = ds->x_ndim;
    memcpy(shape, ds->x_shape, (size_t)ds->x_ndim * sizeof *shape);
    return DNG_OK;
}

DNG_API int dng_dataset_has_labels(const dng_dataset *ds)
{
    if (!ds) {
        dng__error(DNG_ERR_INVALID_ARGUMENT,
                   "dng_dataset_has_labels: ds is NULL");
        return -1;
    }
    return ds->has_y ? 1 : 0;
}

DNG_API dng_tensor *dng_dataset_x(dng_dataset *ds)
{
    if (!ds) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_x: ds is NULL");
        return NULL;
    }
    if (!ds->x)
        dng__error(DNG_ERR_UNSUPPORTED, "dng_dataset_x: the dataset is not "
                   "held in memory; read it with dng_dataset_batch");
    return ds->x;
}

DNG_API dng_tensor *dng_dataset_y(dng_dataset *ds)
{
    if (!ds) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_y: ds is NULL");
        return NULL;
    }
    if (ds->has_y && !ds->y)
        dng__error(DNG_ERR_UNSUPPORTED, "dng_dataset_y: the dataset is not "
                   "held in memory; read it with dng_dataset_batch");
    return ds->y;
}

/* Swap rows i and j of a [rows, stride] float matrix through tmp. */
static void swap_rows(float *m, int64_t stride, int64_t i, int64_t j,
                      float *tmp)
{
    size_t bytes = (size_t)stride * sizeof(float);
    memcpy(tmp, m + i * stride, bytes);
    memcpy(m + i * stride, m + j * stride, bytes);
    memcpy(m + j * stride, tmp, bytes);
}

DNG_API dng_status dng_dataset_shuffle(dng_dataset *ds, dng_rng *rng)
{
    float *tmp;
    DNG__CHECK_NULL(ds, "dng_dataset_shuffle");
    DNG__CHECK_NULL(rng, "dng_dataset_shuffle");
    if (!ds->x) {
        /* Data that cannot move is shuffled through its permutation. */
        if (!ds->perm) {
            ds->perm = dng__calloc((size_t)ds->n, sizeof *ds->perm,
                                   "dng_dataset_shuffle");
            if (!ds->perm)
                return DNG_ERR_OUT_OF_MEMORY;
            for (int64_t i = 0; i < ds->n; i++)
                ds->perm[i] = i;
        }
        shuffle_indices(rng, ds->perm, ds->n);
        return DNG_OK;
    }
    tmp = dng__malloc((size_t)(ds->x_stride > ds->y_stride ? ds->x_stride
                                                           : ds->y_stride) *
                          sizeof(float),
                      "dng_dataset_shuffle");
    if (!tmp)
        return DNG_ERR_OUT_OF_MEMORY;
    /* Fisher-Yates on the rows, moving each label with its sample. */
    for (int64_t i = ds->n - 1; i > 0; i--) {
        int64_t j = (int64_t)dng__rng_below(rng, (uint64_t)i + 1);
        if (j == i)
            continue;
        swap_rows(ds->x->data, ds->x_stride, i, j, tmp);
        if (ds->has_y)
            swap_rows(ds->y->data, ds->y_stride, i, j, tmp);
    }
    dng__free(tmp);
    return DNG_OK;
}

/* A new in-memory dataset holding the logical samples idx[0..n) (or
 * start..start+n when idx is NULL) of ds. */
static dng_dataset *subset(const dng_dataset *ds, const int64_t *idx,
                           int64_t start, int64_t n)
{
    static const char func[] = "dng_dataset_split";
    int64_t shape[DNG_MAX_DIMS];
    dng_tensor *x, *y = NULL;
    if (ds->ops->view) {
        /* Data that cannot move (a mapped file) is shared by a view over
         * the chosen physical rows rather than copied into memory. */
        int64_t *rows = dng__calloc((size_t)n, sizeof *rows, func);
        if (!rows)
            return NULL;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = idx ? idx[i] : start + i;
            rows[i] = ds->perm ? ds->perm[k] : k;
        }
        return ds->ops->view(ds, rows, n);
    }
    shape[0] = n;
    memcpy(shape + 1, ds->x_shape, (size_t)ds->x_ndim * sizeof *shape);
    if (!(x = dng_tensor_create(ds->x_ndim + 1, shape)))
        return NULL;
    if (ds->has_y) {
        memcpy(shape + 1, ds->y_shape, (size_t)ds->y_ndim * sizeof *shape);
        if (!(y = dng_tensor_create(ds->y_ndim + 1, shape))) {
            dng_tensor_destroy(x);
            return NULL;
        }
    }
    if (dng__dataset_gather(ds, idx, start, n, x->data,
                            y ? y->data : NULL) != DNG_OK) {
        dng_tensor_destroy(x);
        dng_tensor_destroy(y);
        return NULL;
    }
    return dng__dataset_adopt(func, x, y);
}

DNG_API dng_status dng_dataset_split(const dng_dataset *ds,
                                     double valid_fraction, dng_rng *rng,
                                     dng_dataset **train,
                                     dng_dataset **valid)
{
    int64_t nv, nt, *perm = NULL;
    dng_dataset *t, *v;
    DNG__CHECK_NULL(train, "dng_dataset_split");
    DNG__CHECK_NULL(valid, "dng_dataset_split");
    *train = *valid = NULL;
    DNG__CHECK_NULL(ds, "dng_dataset_split");
    if (!(valid_fraction > 0.0 && valid_fraction < 1.0))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_split: "
                          "valid_fraction = %g is outside (0, 1)",
                          valid_fraction);
    nv = (int64_t)llround((double)ds->n * valid_fraction);
    nt = ds->n - nv;
    if (nv < 1 || nt < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_split: "
                          "valid_fraction = %g of %" PRId64 " samples "
                          "leaves an empty %s set", valid_fraction, ds->n,
                          nv < 1 ? "validation" : "training");
    if (rng) {
        perm = dng__calloc((size_t)ds->n, sizeof *perm, "dng_dataset_split");
        if (!perm)
            return DNG_ERR_OUT_OF_MEMORY;
        dng__permutation(rng, perm, ds->n);
    }
    t = subset(ds, perm, 0, nt);
    v = t ? subset(ds, perm ? perm + nt : NULL, nt, nv) : NULL;
    dng__free(perm);
    if (!v) {
        dng_dataset_destroy(t);
        return dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_dataset_split");
    }
    *train = t;
    *valid = v;
    return DNG_OK;
}

/* Check that t is [n] + sample shape; name it in the message. */
static dng_status check_out(const char *what, const dng_tensor *t,
                            int64_t n, int ndim, const int64_t *shape)
{
    char a[160], b[160];
    bool ok = t->ndim == ndim + 1 && t->shape[0] == n;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i + 1] == shape[i];
    if (!ok) {
        int64_t want[DNG_MAX_DIMS + 1];
        want[0] = n;
        memcpy(want + 1, shape, (size_t)ndim * sizeof *shape);
        return dng__error(DNG_ERR_SHAPE, "dng_dataset_batch: %s has shape "
                          "%s; expected %s", what,
                          dng__shape_str(a, sizeof a, t->ndim, t->shape),
                          dng__shape_str(b, sizeof b, ndim + 1, want));
    }
    return DNG_OK;
}

DNG_API dng_status dng_dataset_batch(const dng_dataset *ds, int64_t start,
                                     int64_t n, dng_tensor *x_out,
                                     dng_tensor *y_out)
{
    dng_status s;
    DNG__CHECK_NULL(ds, "dng_dataset_batch");
    DNG__CHECK_NULL(x_out, "dng_dataset_batch");
    if (start < 0 || start >= ds->n)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_batch: "
                          "start = %" PRId64 " is outside 0..%" PRId64,
                          start, ds->n - 1);
    if (n < 1 || n > ds->n - start)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_batch: "
                          "n = %" PRId64 " is outside 1..%" PRId64
                          " (samples left after start = %" PRId64 ")",
                          n, ds->n - start, start);
    if (y_out && !ds->has_y)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dataset_batch: "
                          "y_out is given but the dataset has no labels");
    if ((s = check_out("x_out", x_out, n, ds->x_ndim, ds->x_shape)) != DNG_OK)
        return s;
    if (y_out &&
        (s = check_out("y_out", y_out, n, ds->y_ndim, ds->y_shape)) != DNG_OK)
        return s;
    s = dng__dataset_gather(ds, NULL, start, n, x_out->data,
                            y_out ? y_out->data : NULL);
    return s == DNG_OK ? s : dng__error_prefix(s, "dng_dataset_batch");
}
