/* net-impl.h: the sequential network's internals, shared with the
 * trainers (lib/train) and the file formats (lib/io). */
#ifndef DNG_NET_IMPL_H
#define DNG_NET_IMPL_H

#include "layer-impl.h"

struct dng_net {
    int in_ndim;                 /* per-sample input shape */
    int64_t in_shape[DNG_MAX_DIMS];
    int nlayers, cap;
    dng_layer **layers;

    dng_tensor *input;           /* copy of the last forward's input */
    dng_tensor **act;            /* act[i]: output of layer i */
    dng_tensor **dact;           /* dact[i]: dL/d(input of layer i) */
    int64_t batch;               /* batch the buffers currently hold */
    int64_t reserved;            /* largest batch the layers reserved */
    bool forward_done;           /* a forward may be backpropagated */

    bool training;
    bool freeze_state;
    bool skip_param_grad;
    dng_rng *rng;                /* dropout masks */

    /* Flat views over the layers' parameters and buffers, rebuilt by
     * dng_net_add: index -> tensor and PyTorch-style name. */
    int nparams;
    dng_tensor **params, **grads;
    char **param_names;
    int nbuffers;
    dng_tensor **buffers;
    char **buffer_names;
};

/* Freeze running statistics / power-iteration state during training
 * forwards (the GAN's generator step through the discriminator). */
void dng__net_set_freeze_state(dng_net *net, bool freeze);
/* Let backward skip parameter gradients (only dL/dx is wanted). */
void dng__net_set_skip_param_grad(dng_net *net, bool skip);

/* Per-sample shape of layer i's output (i = -1: the input). */
void dng__net_shape_at(const dng_net *net, int i, int *ndim,
                       int64_t *shape);

#endif
