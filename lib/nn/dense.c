/* dense.c: fully connected layer, y = x W^T + b, W [out, in]. */
#include <inttypes.h>

#include "layer-impl.h"

static dng_status dense_infer(dng_layer *l, int ndim, const int64_t *in)
{
    if (ndim != 1 || in[0] != l->iargs[0])
        return dng__error(DNG_ERR_SHAPE, "dense expects [%" PRId64 "] "
                          "features per sample", l->iargs[0]);
    l->in_ndim = 1;
    l->in_shape[0] = in[0];
    l->out_ndim = 1;
    l->out_shape[0] = l->iargs[1];
    return DNG_OK;
}

static dng_status dense_forward(dng_layer *l, const dng_tensor *x,
                                dng_tensor *y)
{
    int64_t n = x->shape[0], in = l->iargs[0], out = l->iargs[1];
    /* y = x W^T + b: copy b into every row, then GEMM with beta = 1. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < out; j++)
            y->data[i * out + j] = l->param[1]->data[j];
    dng__sgemm(false, true, n, out, in, 1.0f, x->data, in, l->param[0]->data,
               in, 1.0f, y->data, out, dng__threads());
    return DNG_OK;
}

static dng_status dense_backward(dng_layer *l, const dng_tensor *x,
                                 const dng_tensor *y, const dng_tensor *dy,
                                 dng_tensor *dx)
{
    int64_t n = x->shape[0], in = l->iargs[0], out = l->iargs[1];
    int nt = dng__threads();
    if (!l->skip_param_grad) {
        /* dW += dy^T x, db += column sums of dy */
        dng__sgemm(true, false, out, in, n, 1.0f, dy->data, out, x->data,
                   in, 1.0f, l->grad[0]->data, in, nt);
        dng__col_sums(dy->data, n, out, out, l->grad[1]->data, true);
    }
    if (dx) /* dx = dy W */
        dng__sgemm(false, false, n, in, out, 1.0f, dy->data, out,
                   l->param[0]->data, in, 0.0f, dx->data, in, nt);
    return DNG_OK;
}

static void dense_init(dng_layer *l, dng_init scheme, dng_rng *rng)
{
    dng__init_weight(l->param[0], scheme, l->iargs[0], l->iargs[1], rng);
    dng__init_bias(l->param[1], scheme, l->iargs[0], rng);
}

static const dng__layer_ops dense_ops = {
    .name = "dense",
    .kind = DNG__LAYER_DENSE,
    .infer = dense_infer,
    .forward = dense_forward,
    .backward = dense_backward,
    .init = dense_init,
};

DNG_API dng_layer *dng_dense(int64_t in_features, int64_t out_features)
{
    int64_t args[2] = {in_features, out_features};
    int64_t wshape[2] = {out_features, in_features};
    dng_layer *l;
    if (in_features < 1 || out_features < 1) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_dense: in_features = %"
                   PRId64 " and out_features = %" PRId64 " must be positive",
                   in_features, out_features);
        return NULL;
    }
    l = dng__layer_new(&dense_ops, "dng_dense", 2, args, 0, NULL);
    if (!l)
        return NULL;
    if (dng__layer_add_param(l, "weight", 2, wshape) != DNG_OK ||
        dng__layer_add_param(l, "bias", 1, &out_features) != DNG_OK) {
        dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_dense");
        dng__layer_free(l);
        return NULL;
    }
    return l;
}
