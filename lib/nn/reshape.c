/* reshape.c: per-sample reshape (PyTorch's view, one -1 allowed) and
 * flatten. The batch dimension is kept; data is copied unchanged. */
#include <inttypes.h>
#include <string.h>

#include "layer-impl.h"

/* The largest per-sample rank: one dimension stays for the batch. */
#define RS_MAX_NDIM (DNG_MAX_DIMS - 1)

static int64_t rs_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

static dng_status rs_infer(dng_layer *l, int ndim, const int64_t *in)
{
    const int out_ndim = (int)l->iargs[0];
    const int64_t *want = l->iargs + 1;
    const int64_t numel = rs_numel(ndim, in);
    int64_t known = 1;
    int infer_at = -1;
    char a[160], b[160];
    for (int i = 0; i < out_ndim; i++) {
        if (want[i] == -1)
            infer_at = i;
        else
            known *= want[i];
    }
    if (infer_at >= 0 ? numel % known != 0 : numel != known)
        return dng__error(DNG_ERR_SHAPE, "reshape to %s needs %s%" PRId64
                          " elements per sample but %s has %" PRId64,
                          dng__shape_str(a, sizeof a, out_ndim, want),
                          infer_at >= 0 ? "a multiple of " : "", known,
                          dng__shape_str(b, sizeof b, ndim, in), numel);
    l->in_ndim = ndim;
    memcpy(l->in_shape, in, (size_t)ndim * sizeof *in);
    l->out_ndim = out_ndim;
    memcpy(l->out_shape, want, (size_t)out_ndim * sizeof *want);
    if (infer_at >= 0)
        l->out_shape[infer_at] = numel / known;
    return DNG_OK;
}

static dng_status flat_infer(dng_layer *l, int ndim, const int64_t *in)
{
    l->in_ndim = ndim;
    memcpy(l->in_shape, in, (size_t)ndim * sizeof *in);
    l->out_ndim = 1;
    l->out_shape[0] = rs_numel(ndim, in);
    return DNG_OK;
}

/* Row-major order is unchanged by a reshape: the data is a plain copy. */
static dng_status rs_forward(dng_layer *l, const dng_tensor *x, dng_tensor *y)
{
    memcpy(y->data, x->data, (size_t)x->numel * sizeof(float));
    return DNG_OK;
}

static dng_status rs_backward(dng_layer *l, const dng_tensor *x,
                              const dng_tensor *y, const dng_tensor *dy,
                              dng_tensor *dx)
{
    if (dx)
        memcpy(dx->data, dy->data, (size_t)dy->numel * sizeof(float));
    return DNG_OK;
}

static const dng__layer_ops rs_ops = {
    .name = "reshape",
    .kind = DNG__LAYER_RESHAPE,
    .infer = rs_infer,
    .forward = rs_forward,
    .backward = rs_backward,
};

static const dng__layer_ops flat_ops = {
    .name = "flatten",
    .kind = DNG__LAYER_FLATTEN,
    .infer = flat_infer,
    .forward = rs_forward,
    .backward = rs_backward,
};

DNG_API dng_layer *dng_reshape(int ndim, const int64_t *shape)
{
    int64_t args[1 + RS_MAX_NDIM];
    int64_t known = 1;
    int inferred = 0;
    if (ndim < 1 || ndim > RS_MAX_NDIM) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_reshape: ndim = %d is "
                   "outside 1..%d (one dimension is the batch)", ndim,
                   RS_MAX_NDIM);
        return NULL;
    }
    if (!shape) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_reshape: shape is NULL");
        return NULL;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (inferred++) {
                dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_reshape: shape "
                           "has more than one -1 entry");
                return NULL;
            }
        } else if (shape[i] < 1) {
            dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_reshape: shape[%d] = %"
                       PRId64 " must be positive or -1", i, shape[i]);
            return NULL;
        } else if (dng__mul_overflow_i64(known, shape[i], &known)) {
            dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_reshape: shape's "
                       "element count overflows");
            return NULL;
        }
    }
    args[0] = ndim;
    memcpy(args + 1, shape, (size_t)ndim * sizeof *shape);
    return dng__layer_new(&rs_ops, "dng_reshape", 1 + ndim, args, 0, NULL);
}

DNG_API dng_layer *dng_flatten(void)
{
    return dng__layer_new(&flat_ops, "dng_flatten", 0, NULL, 0, NULL);
}
