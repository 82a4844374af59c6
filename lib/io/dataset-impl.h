/* dataset-impl.h: the dataset handle, shared by the loaders (lib/io) and
 * the trainers (lib/train). */
#ifndef DNG_DATASET_IMPL_H
#define DNG_DATASET_IMPL_H

#include "core-impl.h"

/* Where the samples live. Only the in-memory kind exists so far; a
 * memory-mapped kind (dng_dataset_open_idx/npy) adds its own ops and keeps
 * its mapping in priv. */
typedef enum dng__dataset_kind {
    DNG__DATASET_MEMORY = 1,
    DNG__DATASET_MAPPED = 2
} dng__dataset_kind;

typedef struct dng__dataset_ops {
    dng__dataset_kind kind;
    /* Copy the physical rows rows[0..n) (or first..first+n when rows is
     * NULL) into x (n * x_stride floats) and, when y is not NULL, their
     * labels into y (n * y_stride floats). Indices are already checked. */
    dng_status (*read_rows)(const dng_dataset *ds, const int64_t *rows,
                            int64_t first, int64_t n, float *x, float *y);
    /* Free priv and any storage beyond ds->x / ds->y; may be NULL. */
    void (*destroy)(dng_dataset *ds);
    /* A new dataset of the same kind over the physical rows rows[0..n)
     * (its perm), sharing the storage; takes ownership of rows, also on
     * failure. May be NULL: dng_dataset_split then copies into memory. */
    dng_dataset *(*view)(const dng_dataset *ds, int64_t *rows, int64_t n);
} dng__dataset_ops;

struct dng_dataset {
    const dng__dataset_ops *ops;
    int64_t n;                        /* samples */
    int x_ndim;                       /* per-sample shape of x */
    int64_t x_shape[DNG_MAX_DIMS];
    int64_t x_stride;                 /* floats per sample */
    bool has_y;
    int y_ndim;                       /* per-sample label shape; 0 for [N] */
    int64_t y_shape[DNG_MAX_DIMS];
    int64_t y_stride;                 /* floats per label (1 for [N]) */
    /* Logical order: sample i is physical row perm[i]; NULL means the
     * identity. Kinds that cannot move their data (mapped files) shuffle
     * this array instead; the in-memory kind moves rows and keeps NULL. */
    int64_t *perm;
    dng_tensor *x, *y;                /* in-memory storage, else NULL */
    void *priv;                       /* kind-specific state */
};

/* Copy the logical samples idx[0..n) (or start..start+n when idx is NULL)
 * into x and, when y is not NULL, their labels into y. Every index must be
 * in 0..ds->n-1; the caller checks. Allocates nothing. */
dng_status dng__dataset_gather(const dng_dataset *ds, const int64_t *idx,
                               int64_t start, int64_t n, float *x, float *y);

/* Wrap freshly allocated tensors x [N, ...] and y [N, ...] (or NULL) into
 * an in-memory dataset without copying; takes ownership of both, also on
 * failure. */
dng_dataset *dng__dataset_adopt(const char *func, dng_tensor *x,
                                dng_tensor *y);

/* Fisher-Yates: fill perm with a uniformly random permutation of 0..n-1
 * drawn from rng (dng__rng_below), the same for the same stream. */
void dng__permutation(dng_rng *rng, int64_t *perm, int64_t n);

#endif
