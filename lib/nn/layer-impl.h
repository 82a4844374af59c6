/* layer-impl.h: the layer vtable. One file per layer kind implements it
 * (lib/nn/<kind>.c); the network (net.c) drives it. */
#ifndef DNG_LAYER_IMPL_H
#define DNG_LAYER_IMPL_H

#include "core-impl.h"
#include "kernels.h"

#define DNG__MAX_PARAMS 4
#define DNG__MAX_BUFFERS 4
#define DNG__MAX_ARGS 8

/* Stable numbers of the layer kinds, used by the model file format:
 * never change or reuse one. */
typedef enum dng__layer_kind {
    DNG__LAYER_DENSE = 1,
    DNG__LAYER_CONV2D = 2,
    DNG__LAYER_CONV2D_TRANSPOSE = 3,
    DNG__LAYER_MAXPOOL2D = 4,
    DNG__LAYER_AVGPOOL2D = 5,
    DNG__LAYER_BATCHNORM = 6,
    DNG__LAYER_LAYERNORM = 7,
    DNG__LAYER_DROPOUT = 8,
    DNG__LAYER_ACTIVATION = 9,
    DNG__LAYER_RESHAPE = 10,
    DNG__LAYER_FLATTEN = 11,
    DNG__LAYER_SPECTRAL_NORM = 12
} dng__layer_kind;

typedef struct dng__layer_ops {
    const char *name;     /* "dense", shown in summaries and messages */
    dng__layer_kind kind;
    /* Check that a per-sample input shape fits and set l->out_ndim and
     * l->out_shape. On failure return DNG_ERR_SHAPE with a message that
     * says what the layer expects (net.c adds the index and shapes). */
    dng_status (*infer)(dng_layer *l, int ndim, const int64_t *in_shape);
    /* Size work buffers for batches of up to n samples (called before the
     * first forward and whenever the batch grows); may be NULL. */
    dng_status (*reserve)(dng_layer *l, int64_t n);
    /* y = f(x). x is [n, in_shape], y is already sized [n, out_shape]. */
    dng_status (*forward)(dng_layer *l, const dng_tensor *x, dng_tensor *y);
    /* Given the last forward's x and y and dy = dL/dy: add dL/dparams into
     * l->grad[] (unless l->skip_param_grad) and, when dx is not NULL,
     * write dL/dx into dx (sized like x; overwrite, do not accumulate). */
    dng_status (*backward)(dng_layer *l, const dng_tensor *x,
                           const dng_tensor *y, const dng_tensor *dy,
                           dng_tensor *dx);
    /* (Re)initialise parameters and reset state; may be NULL for layers
     * without parameters. */
    void (*init)(dng_layer *l, dng_init scheme, dng_rng *rng);
    /* Free l->priv and anything else the layer allocated beyond the
     * tensors in param/grad/buffer (which the caller frees); may be NULL. */
    void (*destroy)(dng_layer *l);
} dng__layer_ops;

struct dng_layer {
    const dng__layer_ops *ops;
    dng_net *owner;          /* the network that owns it, or NULL */

    /* Mode and context, set by the network before each call. */
    bool training;
    bool freeze_state;       /* training forward must not update running
                                statistics or power-iteration vectors */
    bool skip_param_grad;    /* backward may skip dL/dparams */
    dng_rng *rng;            /* the network's generator (dropout) */

    int in_ndim;             /* per-sample shapes, set by infer */
    int64_t in_shape[DNG_MAX_DIMS];
    int out_ndim;
    int64_t out_shape[DNG_MAX_DIMS];

    int nparams;             /* trainable tensors and their gradients */
    dng_tensor *param[DNG__MAX_PARAMS];
    dng_tensor *grad[DNG__MAX_PARAMS];
    const char *param_name[DNG__MAX_PARAMS];   /* "weight", "bias" */
    int nbuffers;            /* saved non-trainable state */
    dng_tensor *buffer[DNG__MAX_BUFFERS];
    const char *buffer_name[DNG__MAX_BUFFERS]; /* "running_mean" */

    /* Constructor arguments, for the model file and the summary. */
    int niargs;
    int64_t iargs[DNG__MAX_ARGS];
    int nfargs;
    float fargs[DNG__MAX_ARGS];

    dng_layer *inner;        /* wrapped layer (spectral norm), owned */
    void *priv;              /* kind-specific state */
};

/* Allocate a layer with its ops and constructor arguments recorded. */
dng_layer *dng__layer_new(const dng__layer_ops *ops, const char *func,
                          int niargs, const int64_t *iargs, int nfargs,
                          const float *fargs);

/* Add a parameter (with a zeroed gradient of the same shape) or a buffer
 * to a layer under construction. name must be a string literal. */
dng_status dng__layer_add_param(dng_layer *l, const char *name, int ndim,
                                const int64_t *shape);
dng_status dng__layer_add_buffer(dng_layer *l, const char *name, int ndim,
                                 const int64_t *shape);

/* Free a layer regardless of ownership (the network's destructor). */
void dng__layer_free(dng_layer *l);

/* Build a layer from a kind and recorded arguments (model files). */
dng_layer *dng__layer_from_args(dng__layer_kind kind, int niargs,
                                const int64_t *iargs, int nfargs,
                                const float *fargs, dng_layer *inner);

/* ---- initialisation helpers (init.c) ------------------------------- */

/* Fill weight w with the scheme given fan_in and fan_out; the default is
 * PyTorch's kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(fan_in)). */
void dng__init_weight(dng_tensor *w, dng_init scheme, int64_t fan_in,
                      int64_t fan_out, dng_rng *rng);
/* Fill bias b: U(+-1/sqrt(fan_in)) for the default scheme, else 0. */
void dng__init_bias(dng_tensor *b, dng_init scheme, int64_t fan_in,
                    dng_rng *rng);

/* ---- workspace ----------------------------------------------------- */

/* Grow a float buffer to at least n floats (contents lost on growth). */
dng_status dng__buf_reserve(float **buf, size_t *cap, size_t n);

/* ---- convolution lowering (conv2d.c; conv2d_transpose.c uses it) ---- */

/* An image [c, h, w] seen through kh x kw windows moved by stride over
 * its zero-padded extent: oh x ow positions, each a column of c kh kw
 * values in dng__im2col's order. */
typedef struct dng__conv_geom {
    int64_t c, h, w, oh, ow;
    int kh, kw, stride, pad;
} dng__conv_geom;

/* Samples that share one GEMM in a batch of n, when a sample's operands
 * have at most `rows` rows of p columns. A function of the shapes and n
 * only (never of the thread count), so gradient sums are reproducible. */
int64_t dng__conv_group(int64_t rows, int64_t p, int64_t n);
/* Threads worth starting for about `work` multiply-adds. */
int dng__conv_threads(int64_t work);
/* col [c kh kw, m P] (P = oh ow) gets image i (at img + i c h w) lowered
 * into columns i P .. i P + P - 1, im2col's layout with row stride m P. */
void dng__conv_lower(const dng__conv_geom *g, const float *img, int64_t m,
                     float *col, int threads);
/* The adjoint: image i = col2im(columns i P ..) + bias[channel] (bias may
 * be NULL); the images are overwritten. */
void dng__conv_raise(const dng__conv_geom *g, const float *col, int64_t m,
                     const float *bias, float *img, int threads);
/* mat [rows, m p] gets src_i [rows, p] (at src + i rows p) as columns
 * i p .. i p + p - 1; scatter is the inverse, adding bias[row] when bias
 * is not NULL. */
void dng__conv_gather(const float *src, int64_t m, int64_t rows, int64_t p,
                      float *mat, int threads);
void dng__conv_scatter(const float *mat, int64_t m, int64_t rows, int64_t p,
                       const float *bias, float *dst, int threads);

#endif
