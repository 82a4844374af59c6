/* activation.c: elementwise activations, and softmax over the features
 * of each sample. */
#include <math.h>
#include <string.h>

#include "layer-impl.h"

static dng_status act_infer(dng_layer *l, int ndim, const int64_t *in)
{
    l->in_ndim = l->out_ndim = ndim;
    memcpy(l->in_shape, in, (size_t)ndim * sizeof *in);
    memcpy(l->out_shape, in, (size_t)ndim * sizeof *in);
    return DNG_OK;
}

static dng_status act_forward(dng_layer *l, const dng_tensor *x,
                              dng_tensor *y)
{
    int kind = (int)l->iargs[0];
    if (kind == DNG_ACT_SOFTMAX) {
        int64_t rows = x->shape[0];
        dng__softmax_forward(x->data, y->data, rows, x->numel / rows);
    } else {
        dng__act_forward(kind, l->fargs[0], x->data, y->data, x->numel);
    }
    return DNG_OK;
}

static dng_status act_backward(dng_layer *l, const dng_tensor *x,
                               const dng_tensor *y, const dng_tensor *dy,
                               dng_tensor *dx)
{
    int kind = (int)l->iargs[0];
    if (!dx)
        return DNG_OK;
    if (kind == DNG_ACT_SOFTMAX) {
        int64_t rows = x->shape[0];
        dng__softmax_backward(y->data, dy->data, dx->data, rows,
                              x->numel / rows);
    } else {
        dng__act_backward(kind, l->fargs[0], x->data, y->data, dy->data,
                          dx->data, x->numel);
    }
    return DNG_OK;
}

static const dng__layer_ops act_ops = {
    .name = "activation",
    .kind = DNG__LAYER_ACTIVATION,
    .infer = act_infer,
    .forward = act_forward,
    .backward = act_backward,
};

DNG_API dng_layer *dng_activation(dng_act kind, float param)
{
    int64_t k = (int64_t)kind;
    if ((int)kind < DNG_ACT_RELU || (int)kind > DNG_ACT_IDENTITY) {
        dng__error(DNG_ERR_INVALID_ARGUMENT,
                   "dng_activation: unknown kind %d", (int)kind);
        return NULL;
    }
    if (!isfinite(param)) {
        dng__error(DNG_ERR_INVALID_ARGUMENT,
                   "dng_activation: param is not finite");
        return NULL;
    }
    return dng__layer_new(&act_ops, "dng_activation", 1, &k, 1, &param);
}
