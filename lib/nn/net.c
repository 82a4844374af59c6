/* net.c: layers' common plumbing and the sequential network. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "net-impl.h"

/* ---- layers ------------------------------------------------------------ */

dng_layer *dng__layer_new(const dng__layer_ops *ops, const char *func,
                          int niargs, const int64_t *iargs, int nfargs,
                          const float *fargs)
{
    dng_layer *l = dng__calloc(1, sizeof *l, func);
    if (!l)
        return NULL;
    l->ops = ops;
    l->training = true;
    l->niargs = niargs;
    if (niargs)
        memcpy(l->iargs, iargs, (size_t)niargs * sizeof *iargs);
    l->nfargs = nfargs;
    if (nfargs)
        memcpy(l->fargs, fargs, (size_t)nfargs * sizeof *fargs);
    return l;
}

dng_status dng__layer_add_param(dng_layer *l, const char *name, int ndim,
                                const int64_t *shape)
{
    dng_tensor *p, *g;
    if (l->nparams >= DNG__MAX_PARAMS)
        return dng__error(DNG_ERR_UNSUPPORTED, "too many parameters");
    p = dng_tensor_create(ndim, shape);
    g = p ? dng_tensor_create(ndim, shape) : NULL;
    if (!g) {
        dng_tensor_destroy(p);
        return DNG_ERR_OUT_OF_MEMORY;
    }
    l->param[l->nparams] = p;
    l->grad[l->nparams] = g;
    l->param_name[l->nparams] = name;
    l->nparams++;
    return DNG_OK;
}

dng_status dng__layer_add_buffer(dng_layer *l, const char *name, int ndim,
                                 const int64_t *shape)
{
    dng_tensor *b;
    if (l->nbuffers >= DNG__MAX_BUFFERS)
        return dng__error(DNG_ERR_UNSUPPORTED, "too many buffers");
    b = dng_tensor_create(ndim, shape);
    if (!b)
        return DNG_ERR_OUT_OF_MEMORY;
    l->buffer[l->nbuffers] = b;
    l->buffer_name[l->nbuffers] = name;
    l->nbuffers++;
    return DNG_OK;
}

void dng__layer_free(dng_layer *l)
{
    if (!l)
        return;
    /* The kind's hook runs first: a wrapper clears slots it shares with
     * its inner layer so that nothing is freed twice. */
    if (l->ops && l->ops->destroy)
        l->ops->destroy(l);
    for (int i = 0; i < l->nparams; i++) {
        dng_tensor_destroy(l->param[i]);
        dng_tensor_destroy(l->grad[i]);
    }
    for (int i = 0; i < l->nbuffers; i++)
        dng_tensor_destroy(l->buffer[i]);
    dng__layer_free(l->inner);
    dng__free(l);
}

DNG_API void dng_layer_destroy(dng_layer *layer)
{
    if (!layer)
        return;
    if (layer->owner) {
        dng__error(DNG_ERR_STATE, "dng_layer_destroy: the layer belongs to "
                   "a network, which frees it");
        return;
    }
    dng__layer_free(layer);
}

dng_status dng__buf_reserve(float **buf, size_t *cap, size_t n)
{
    float *p;
    if (n <= *cap)
        return DNG_OK;
    p = dng__calloc(n, sizeof(float), "workspace");
    if (!p)
        return DNG_ERR_OUT_OF_MEMORY;
    dng__free(*buf);
    *buf = p;
    *cap = n;
    return DNG_OK;
}

/* ---- network ----------------------------------------------------------- */

DNG_API dng_net *dng_net_create(int ndim, const int64_t *sample_shape)
{
    dng_net *net;
    int64_t numel;
    if (dng__shape_check("dng_net_create", ndim, sample_shape, &numel) !=
        DNG_OK)
        return NULL;
    if (ndim >= DNG_MAX_DIMS) {
        dng__error(DNG_ERR_INVALID_ARGUMENT,
                   "dng_net_create: ndim = %d leaves no room for the batch "
                   "dimension (at most %d)", ndim, DNG_MAX_DIMS - 1);
        return NULL;
    }
    net = dng__calloc(1, sizeof *net, "dng_net_create");
    if (!net)
        return NULL;
    net->in_ndim = ndim;
    memcpy(net->in_shape, sample_shape, (size_t)ndim * sizeof *sample_shape);
    net->training = true;
    net->rng = dng_rng_create(0);
    if (!net->rng) {
        dng__free(net);
        return NULL;
    }
    return net;
}

static void free_names(char **names, int n)
{
    if (!names)
        return;
    for (int i = 0; i < n; i++)
        dng__free(names[i]);
    dng__free(names);
}

DNG_API void dng_net_destroy(dng_net *net)
{
    if (!net)
        return;
    for (int i = 0; i < net->nlayers; i++) {
        dng__layer_free(net->layers[i]);
        dng_tensor_destroy(net->act[i]);
        dng_tensor_destroy(net->dact[i]);
    }
    dng__free(net->layers);
    dng__free(net->act);
    dng__free(net->dact);
    dng_tensor_destroy(net->input);
    dng__free(net->params);
    dng__free(net->grads);
    free_names(net->param_names, net->nparams);
    dng__free(net->buffers);
    free_names(net->buffer_names, net->nbuffers);
    dng_rng_destroy(net->rng);
    dng__free(net);
}

void dng__net_shape_at(const dng_net *net, int i, int *ndim, int64_t *shape)
{
    if (i < 0) {
        *ndim = net->in_ndim;
        memcpy(shape, net->in_shape, (size_t)net->in_ndim * sizeof *shape);
    } else {
        const dng_layer *l = net->layers[i];
        *ndim = l->out_ndim;
        memcpy(shape, l->out_shape, (size_t)l->out_ndim * sizeof *shape);
    }
}

static char *name_dup(int index, const char *name)
{
    int len = snprintf(NULL, 0, "%d.%s", index, name);
    char *s = dng__malloc((size_t)len + 1, "parameter name");
    if (s)
        snprintf(s, (size_t)len + 1, "%d.%s", index, name);
    return s;
}

/* Rebuild the flat parameter and buffer tables after a layer was added. */
static dng_status rebuild_tables(dng_net *net)
{
    int np = 0, nb = 0, k = 0, j = 0;
    dng_tensor **params, **grads, **buffers;
    char **pnames, **bnames;
    for (int i = 0; i < net->nlayers; i++) {
        np += net->layers[i]->nparams;
        nb += net->layers[i]->nbuffers;
    }
    params = dng__calloc((size_t)np + 1, sizeof *params, "dng_net_add");
    grads = dng__calloc((size_t)np + 1, sizeof *grads, "dng_net_add");
    pnames = dng__calloc((size_t)np + 1, sizeof *pnames, "dng_net_add");
    buffers = dng__calloc((size_t)nb + 1, sizeof *buffers, "dng_net_add");
    bnames = dng__calloc((size_t)nb + 1, sizeof *bnames, "dng_net_add");
    if (!params || !grads || !pnames || !buffers || !bnames)
        goto oom;
    for (int i = 0; i < net->nlayers; i++) {
        const dng_layer *l = net->layers[i];
        for (int p = 0; p < l->nparams; p++, k++) {
            params[k] = l->param[p];
            grads[k] = l->grad[p];
            if (!(pnames[k] = name_dup(i, l->param_name[p])))
                goto oom;
        }
        for (int b = 0; b < l->nbuffers; b++, j++) {
            buffers[j] = l->buffer[b];
            if (!(bnames[j] = name_dup(i, l->buffer_name[b])))
                goto oom;
        }
    }
    dng__free(net->params);
    dng__free(net->grads);
    free_names(net->param_names, net->nparams);
    dng__free(net->buffers);
    free_names(net->buffer_names, net->nbuffers);
    net->params = params;
    net->grads = grads;
    net->param_names = pnames;
    net->nparams = np;
    net->buffers = buffers;
    net->buffer_names = bnames;
    net->nbuffers = nb;
    return DNG_OK;
oom:
    dng__free(params);
    dng__free(grads);
    free_names(pnames, k);
    dng__free(buffers);
    free_names(bnames, j);
    return DNG_ERR_OUT_OF_MEMORY;
}

DNG_API dng_status dng_net_add(dng_net *net, dng_layer *layer)
{
    int ndim;
    int64_t shape[DNG_MAX_DIMS];
    char in[160], why[512];
    dng_status s;
    int idx;
    if (!layer) {
        char prev[512];
        snprintf(prev, sizeof prev, "%s", dng_last_error());
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_net_add: layer is NULL (its constructor "
                          "failed%s%s)", prev[0] ? ": " : "", prev);
    }
    if (layer->owner)
        return dng__error(DNG_ERR_STATE, "dng_net_add: the %s layer already "
                          "belongs to a network", layer->ops->name);
    if (!net) {
        dng__layer_free(layer);
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_add: net is "
                          "NULL (the layer was freed)");
    }
    idx = net->nlayers;
    dng__net_shape_at(net, idx - 1, &ndim, shape);
    dng__shape_str(in, sizeof in, ndim, shape);
    dng_clear_error();
    s = layer->ops->infer(layer, ndim, shape);
    if (s != DNG_OK) {
        const char *kind = layer->ops->name; /* a static string */
        snprintf(why, sizeof why, "%s", dng_last_error());
        dng__layer_free(layer);
        return dng__error(s, "dng_net_add: layer %d (%s) does not fit the "
                          "shape %s coming from %s: %s", idx, kind, in,
                          idx == 0 ? "the input" : "the previous layer", why);
    }
    if (layer->out_ndim + 1 > DNG_MAX_DIMS) {
        dng__layer_free(layer);
        return dng__error(DNG_ERR_SHAPE, "dng_net_add: layer %d output has "
                          "too many dimensions", idx);
    }
    if (net->nlayers == net->cap) {
        int cap = net->cap ? 2 * net->cap : 8;
        dng_layer **layers = dng__calloc((size_t)cap, sizeof *layers, "net");
        dng_tensor **act = dng__calloc((size_t)cap, sizeof *act, "net");
        dng_tensor **dact = dng__calloc((size_t)cap, sizeof *dact, "net");
        if (!layers || !act || !dact) {
            dng__free(layers);
            dng__free(act);
            dng__free(dact);
            dng__layer_free(layer);
            return DNG_ERR_OUT_OF_MEMORY;
        }
        if (net->nlayers) {
            size_t n = (size_t)net->nlayers;
            memcpy(layers, net->layers, n * sizeof *layers);
            memcpy(act, net->act, n * sizeof *act);
            memcpy(dact, net->dact, n * sizeof *dact);
        }
        dng__free(net->layers);
        dng__free(net->act);
        dng__free(net->dact);
        net->layers = layers;
        net->act = act;
        net->dact = dact;
        net->cap = cap;
    }
    /* A usable network at once: the default scheme from a seed fixed by
     * the layer's position. */
    if (layer->ops->init) {
        dng_rng r = {.key = UINT64_C(0x5eed0000) + (uint64_t)idx, .used = 4};
        layer->ops->init(layer, DNG_INIT_DEFAULT, &r);
    }
    net->layers[idx] = layer;
    net->act[idx] = NULL;
    net->dact[idx] = NULL;
    net->nlayers++;
    s = rebuild_tables(net);
    if (s != DNG_OK) {
        net->nlayers--;
        dng__layer_free(layer);
        return s;
    }
    layer->owner = net;
    net->forward_done = false;
    net->reserved = 0;
    return DNG_OK;
}

DNG_API dng_status dng_net_init(dng_net *net, dng_init scheme, dng_rng *rng)
{
    DNG__CHECK_NULL(net, "dng_net_init");
    DNG__CHECK_NULL(rng, "dng_net_init");
    if ((int)scheme < DNG_INIT_DEFAULT || (int)scheme > DNG_INIT_NORMAL_002)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_net_init: unknown scheme %d", (int)scheme);
    for (int i = 0; i < net->nlayers; i++)
        if (net->layers[i]->ops->init)
            net->layers[i]->ops->init(net->layers[i], scheme, rng);
    return DNG_OK;
}

DNG_API dng_status dng_net_set_seed(dng_net *net, uint64_t seed)
{
    DNG__CHECK_NULL(net, "dng_net_set_seed");
    net->rng->key = seed;
    net->rng->counter = 0;
    net->rng->used = 4;
    net->rng->has_spare = 0;
    return DNG_OK;
}

static void set_context(dng_net *net, dng_layer *l)
{
    l->training = net->training;
    l->freeze_state = net->freeze_state;
    l->skip_param_grad = net->skip_param_grad;
    l->rng = net->rng;
}

/* Size every activation buffer for a batch of n; only allocates when n
 * exceeds what was seen before. */
static dng_status size_buffers(dng_net *net, int64_t n)
{
    dng_status s;
    if (n > net->reserved) {
        for (int i = 0; i < net->nlayers; i++) {
            dng_layer *l = net->layers[i];
            if (l->ops->reserve && (s = l->ops->reserve(l, n)) != DNG_OK)
                return dng__error_prefix(s, "layer %d (%s)", i,
                                         l->ops->name);
        }
        net->reserved = n;
    }
    if ((s = dng__tensor_ensure(&net->input, n, net->in_ndim,
                                net->in_shape)) != DNG_OK)
        return s;
    for (int i = 0; i < net->nlayers; i++) {
        dng_layer *l = net->layers[i];
        s = dng__tensor_ensure(&net->act[i], n, l->out_ndim, l->out_shape);
        if (s != DNG_OK)
            return s;
    }
    net->batch = n;
    return DNG_OK;
}

static dng_status check_batch(const char *func, const char *what,
                              const dng_tensor *t, int ndim,
                              const int64_t *shape)
{
    char a[160], b[160];
    bool ok = t->ndim == ndim + 1;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i + 1] == shape[i];
    if (!ok)
        return dng__error(DNG_ERR_SHAPE, "%s: %s has shape %s; expected "
                          "[N] + %s", func, what,
                          dng__shape_str(a, sizeof a, t->ndim, t->shape),
                          dng__shape_str(b, sizeof b, ndim, shape));
    return DNG_OK;
}

DNG_API dng_status dng_net_forward(dng_net *net, const dng_tensor *x,
                                   dng_tensor **y)
{
    dng_status s;
    const dng_tensor *cur;
    DNG__CHECK_NULL(net, "dng_net_forward");
    DNG__CHECK_NULL(x, "dng_net_forward");
    DNG__CHECK_NULL(y, "dng_net_forward");
    *y = NULL;
    s = check_batch("dng_net_forward", "x", x, net->in_ndim, net->in_shape);
    if (s != DNG_OK)
        return s;
    net->forward_done = false;
    if ((s = size_buffers(net, x->shape[0])) != DNG_OK)
        return dng__error_prefix(s, "dng_net_forward");
    /* The network keeps its own copy of the input, so backward works even
     * if the caller frees or reuses x in between. */
    memcpy(net->input->data, x->data, (size_t)x->numel * sizeof(float));
    cur = net->input;
    for (int i = 0; i < net->nlayers; i++) {
        dng_layer *l = net->layers[i];
        set_context(net, l);
        s = l->ops->forward(l, cur, net->act[i]);
        if (s != DNG_OK)
            return dng__error_prefix(s, "dng_net_forward: layer %d (%s)", i,
                                     l->ops->name);
        cur = net->act[i];
    }
    net->forward_done = true;
    *y = (dng_tensor *)cur;
    return DNG_OK;
}

DNG_API dng_status dng_net_backward(dng_net *net, const dng_tensor *dy,
                                    dng_tensor **dx)
{
    dng_status s;
    const dng_tensor *out, *grad;
    int last;
    DNG__CHECK_NULL(net, "dng_net_backward");
    DNG__CHECK_NULL(dy, "dng_net_backward");
    if (dx)
        *dx = NULL;
    if (!net->forward_done)
        return dng__error(DNG_ERR_STATE, "dng_net_backward: no forward to "
                          "backpropagate (call dng_net_forward first)");
    last = net->nlayers - 1;
    out = last >= 0 ? net->act[last] : net->input;
    if (!dng__same_shape(dy, out)) {
        char a[160], b[160];
        return dng__error(DNG_ERR_SHAPE, "dng_net_backward: dy has shape %s "
                          "but the output has %s",
                          dng__shape_str(a, sizeof a, dy->ndim, dy->shape),
                          dng__shape_str(b, sizeof b, out->ndim, out->shape));
    }
    grad = dy;
    for (int i = last; i >= 0; i--) {
        dng_layer *l = net->layers[i];
        const dng_tensor *xin = i ? net->act[i - 1] : net->input;
        dng_tensor *din = NULL;
        if (i > 0 || dx) {
            int nd;
            int64_t sh[DNG_MAX_DIMS];
            dng__net_shape_at(net, i - 1, &nd, sh);
            s = dng__tensor_ensure(&net->dact[i], net->batch, nd, sh);
            if (s != DNG_OK)
                return dng__error_prefix(s, "dng_net_backward");
            din = net->dact[i];
        }
        set_context(net, l);
        s = l->ops->backward(l, xin, net->act[i], grad, din);
        if (s != DNG_OK)
            return dng__error_prefix(s, "dng_net_backward: layer %d (%s)", i,
                                     l->ops->name);
        grad = din;
    }
    if (dx) /* an empty network is the identity */
        *dx = last >= 0 ? net->dact[0] : (dng_tensor *)dy;
    return DNG_OK;
}

DNG_API dng_status dng_net_zero_grad(dng_net *net)
{
    DNG__CHECK_NULL(net, "dng_net_zero_grad");
    for (int i = 0; i < net->nparams; i++)
        memset(net->grads[i]->data, 0,
               (size_t)net->grads[i]->numel * sizeof(float));
    return DNG_OK;
}

DNG_API dng_status dng_net_set_training(dng_net *net, int training)
{
    DNG__CHECK_NULL(net, "dng_net_set_training");
    net->training = training != 0;
    return DNG_OK;
}

void dng__net_set_freeze_state(dng_net *net, bool freeze)
{
    net->freeze_state = freeze;
}

void dng__net_set_skip_param_grad(dng_net *net, bool skip)
{
    net->skip_param_grad = skip;
}

DNG_API int dng_net_num_layers(const dng_net *net)
{
    if (!net) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_num_layers: net is "
                   "NULL");
        return -1;
    }
    return net->nlayers;
}

DNG_API dng_status dng_net_output_shape(const dng_net *net, int *ndim,
                                        int64_t *shape)
{
    DNG__CHECK_NULL(net, "dng_net_output_shape");
    DNG__CHECK_NULL(ndim, "dng_net_output_shape");
    DNG__CHECK_NULL(shape, "dng_net_output_shape");
    dng__net_shape_at(net, net->nlayers - 1, ndim, shape);
    return DNG_OK;
}

DNG_API int dng_net_num_params(const dng_net *net)
{
    if (!net) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_num_params: net is "
                   "NULL");
        return -1;
    }
    return net->nparams;
}

static bool index_ok(const char *func, const dng_net *net, int i, int n)
{
    if (!net) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: net is NULL", func);
        return false;
    }
    if (i < 0 || i >= n) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: index %d is outside "
                   "0..%d", func, i, n - 1);
        return false;
    }
    return true;
}

DNG_API dng_tensor *dng_net_param(dng_net *net, int i)
{
    if (!index_ok("dng_net_param", net, i, net ? net->nparams : 0))
        return NULL;
    return net->params[i];
}

DNG_API dng_tensor *dng_net_grad(dng_net *net, int i)
{
    if (!index_ok("dng_net_grad", net, i, net ? net->nparams : 0))
        return NULL;
    return net->grads[i];
}

DNG_API const char *dng_net_param_name(const dng_net *net, int i)
{
    if (!index_ok("dng_net_param_name", net, i, net ? net->nparams : 0))
        return NULL;
    return net->param_names[i];
}

DNG_API int dng_net_param_index(const dng_net *net, const char *name)
{
    if (!net || !name) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_param_index: %s is "
                   "NULL", net ? "name" : "net");
        return -1;
    }
    for (int i = 0; i < net->nparams; i++)
        if (strcmp(net->param_names[i], name) == 0)
            return i;
    dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_param_index: no parameter "
               "named \"%s\"", name);
    return -1;
}

DNG_API int dng_net_num_buffers(const dng_net *net)
{
    if (!net) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_num_buffers: net is "
                   "NULL");
        return -1;
    }
    return net->nbuffers;
}

DNG_API dng_tensor *dng_net_buffer(dng_net *net, int i)
{
    if (!index_ok("dng_net_buffer", net, i, net ? net->nbuffers : 0))
        return NULL;
    return net->buffers[i];
}

DNG_API const char *dng_net_buffer_name(const dng_net *net, int i)
{
    if (!index_ok("dng_net_buffer_name", net, i, net ? net->nbuffers : 0))
        return NULL;
    return net->buffer_names[i];
}

DNG_API int64_t dng_net_param_count(const dng_net *net)
{
    int64_t total = 0;
    if (!net) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_param_count: net is "
                   "NULL");
        return -1;
    }
    for (int i = 0; i < net->nparams; i++)
        total += net->params[i]->numel;
    return total;
}

DNG_API dng_status dng_net_summary(const dng_net *net, char *buf,
                                   size_t len)
{
    size_t off = 0;
    bool cut = false;
    char shape[160];
    DNG__CHECK_NULL(net, "dng_net_summary");
    DNG__CHECK_NULL(buf, "dng_net_summary");
    if (len == 0)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_summary: len "
                          "is 0");
#define DNG__APPEND(...)                                                     \
    do {                                                                     \
        int w_ = snprintf(buf + off, len - off, __VA_ARGS__);                \
        if (w_ < 0 || (size_t)w_ >= len - off) {                             \
            cut = true;                                                      \
            off = len - 1;                                                   \
        } else {                                                             \
            off += (size_t)w_;                                               \
        }                                                                    \
    } while (0)
    buf[0] = '\0';
    DNG__APPEND("%-5s %-18s %-22s %12s\n", "layer", "kind", "output",
                "params");
    DNG__APPEND("%-5s %-18s %-22s %12s\n", "in", "input",
                dng__shape_str(shape, sizeof shape, net->in_ndim,
                               net->in_shape), "0");
    for (int i = 0; i < net->nlayers && !cut; i++) {
        const dng_layer *l = net->layers[i];
        int64_t count = 0;
        for (int p = 0; p < l->nparams; p++)
            count += l->param[p]->numel;
        DNG__APPEND("%-5d %-18s %-22s %12" PRId64 "\n", i, l->ops->name,
                    dng__shape_str(shape, sizeof shape, l->out_ndim,
                                   l->out_shape), count);
    }
    if (!cut)
        DNG__APPEND("total trainable parameters: %" PRId64 "\n",
                    dng_net_param_count(net));
#undef DNG__APPEND
    if (cut)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_summary: the "
                          "summary was cut to %zu bytes", len);
    return DNG_OK;
}

DNG_API dng_status dng_net_copy_weights(dng_net *dst, const dng_net *src)
{
    DNG__CHECK_NULL(dst, "dng_net_copy_weights");
    DNG__CHECK_NULL(src, "dng_net_copy_weights");
    if (dst->nparams != src->nparams || dst->nbuffers != src->nbuffers)
        return dng__error(DNG_ERR_SHAPE, "dng_net_copy_weights: the networks "
                          "differ (%d/%d parameters, %d/%d buffers)",
                          dst->nparams, src->nparams, dst->nbuffers,
                          src->nbuffers);
    for (int i = 0; i < src->nparams; i++)
        if (!dng__same_shape(dst->params[i], src->params[i]))
            return dng__error(DNG_ERR_SHAPE, "dng_net_copy_weights: "
                              "parameter %s differs in shape",
                              src->param_names[i]);
    for (int i = 0; i < src->nbuffers; i++)
        if (!dng__same_shape(dst->buffers[i], src->buffers[i]))
            return dng__error(DNG_ERR_SHAPE, "dng_net_copy_weights: buffer "
                              "%s differs in shape", src->buffer_names[i]);
    for (int i = 0; i < src->nparams; i++)
        memcpy(dst->params[i]->data, src->params[i]->data,
               (size_t)src->params[i]->numel * sizeof(float));
    for (int i = 0; i < src->nbuffers; i++)
        memcpy(dst->buffers[i]->data, src->buffers[i]->data,
               (size_t)src->buffers[i]->numel * sizeof(float));
    return DNG_OK;
}
