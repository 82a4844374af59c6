/* fit.c: supervised training (dng_fit) and evaluation (dng_evaluate). */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "dataset-impl.h"
#include "net-impl.h"

/* How accuracy is counted, decided from the loss and the shapes. */
typedef enum acc_mode {
    ACC_NONE = 0,   /* labels are not class indices: accuracy is NaN */
    ACC_ARGMAX = 1, /* C > 1 outputs: argmax against an index in 0..C-1 */
    ACC_SIGN = 2    /* 1 output: output > threshold against a 0/1 label */
} acc_mode;

/* The batch buffers the training and evaluation loops share. They are
 * sized once for the largest batch; smaller batches shrink them in place
 * (dng__tensor_resize never allocates when shrinking), so the loops
 * allocate nothing per step. */
typedef struct fit_ctx {
    dng_loss_kind loss;
    dng_tensor *x, *y, *grad;
    int x_ndim;                     /* per-sample shapes */
    int64_t x_shape[DNG_MAX_DIMS];
    int y_ndim;                     /* label shape as the loss wants it */
    int64_t y_shape[DNG_MAX_DIMS];
    int out_ndim;
    int64_t out_shape[DNG_MAX_DIMS];
    int64_t classes;                /* output values per sample */
    acc_mode acc;
    float threshold;                /* ACC_SIGN: the decision boundary */
} fit_ctx;

static const char *loss_name(dng_loss_kind kind)
{
    switch (kind) {
    case DNG_LOSS_MSE:
        return "MSE";
    case DNG_LOSS_BCE_WITH_LOGITS:
        return "BCE-with-logits";
    case DNG_LOSS_CROSS_ENTROPY:
        return "cross-entropy";
    case DNG_LOSS_HINGE:
        return "hinge";
    }
    return "unknown";
}

/* Check that ds fits net and the loss, naming the set (role) in every
 * message. */
static dng_status check_set(const char *func, const char *role,
                            const dng_net *net, dng_loss_kind kind,
                            const dng_dataset *ds)
{
    char a[160], b[160];
    int ondim;
    int64_t oshape[DNG_MAX_DIMS], onumel = 1;
    bool same = ds->x_ndim == net->in_ndim;
    for (int i = 0; same && i < ds->x_ndim; i++)
        same = ds->x_shape[i] == net->in_shape[i];
    if (!same)
        return dng__error(DNG_ERR_SHAPE, "%s: the %s set's samples are %s "
                          "but the network takes %s", func, role,
                          dng__shape_str(a, sizeof a, ds->x_ndim,
                                         ds->x_shape),
                          dng__shape_str(b, sizeof b, net->in_ndim,
                                         net->in_shape));
    if (!ds->has_y)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: the %s set has no "
                          "labels", func, role);
    dng__net_shape_at(net, net->nlayers - 1, &ondim, oshape);
    for (int i = 0; i < ondim; i++)
        onumel *= oshape[i];
    dng__shape_str(a, sizeof a, ondim, oshape);
    dng__shape_str(b, sizeof b, ds->y_ndim, ds->y_shape);
    if (kind == DNG_LOSS_CROSS_ENTROPY) {
        if (ondim != 1)
            return dng__error(DNG_ERR_SHAPE, "%s: cross-entropy needs one "
                              "logit per class ([classes] per sample); the "
                              "network gives %s", func, a);
        if (ds->y_stride != 1)
            return dng__error(DNG_ERR_SHAPE, "%s: cross-entropy needs one "
                              "class index per sample; the %s set's labels "
                              "are %s per sample", func, role, b);
    } else if (ds->y_stride != onumel) {
        return dng__error(DNG_ERR_SHAPE, "%s: the %s loss needs one target "
                          "per output (%s per sample); the %s set's labels "
                          "are %s per sample", func, loss_name(kind), a,
                          role, b);
    }
    return DNG_OK;
}

static void ctx_free(fit_ctx *c)
{
    dng_tensor_destroy(c->x);
    dng_tensor_destroy(c->y);
    dng_tensor_destroy(c->grad);
}

/* Size the batch buffers for batches of up to n samples of ds. */
static dng_status ctx_init(fit_ctx *c, const dng_net *net,
                           dng_loss_kind kind, const dng_dataset *ds,
                           int64_t n)
{
    dng_status s;
    memset(c, 0, sizeof *c);
    c->loss = kind;
    c->x_ndim = ds->x_ndim;
    memcpy(c->x_shape, ds->x_shape, sizeof c->x_shape);
    dng__net_shape_at(net, net->nlayers - 1, &c->out_ndim, c->out_shape);
    c->classes = 1;
    for (int i = 0; i < c->out_ndim; i++)
        c->classes *= c->out_shape[i];
    /* Labels take the shape the loss compares them with: [N] class
     * indices for cross-entropy, the output's shape otherwise (so [N]
     * labels serve a network with one output, [N, 1]). */
    if (kind == DNG_LOSS_CROSS_ENTROPY) {
        c->y_ndim = 0;
    } else {
        c->y_ndim = c->out_ndim;
        memcpy(c->y_shape, c->out_shape, sizeof c->y_shape);
    }
    if (ds->y_stride == 1 && c->classes > 1)
        c->acc = ACC_ARGMAX;
    else if (ds->y_stride == 1 && c->classes == 1)
        c->acc = ACC_SIGN;
    /* A logit (BCE) or a margin (hinge) decides at 0; a regression onto
     * 0/1 targets (MSE) at one half. */
    c->threshold = kind == DNG_LOSS_MSE ? 0.5f : 0.0f;
    if ((s = dng__tensor_ensure(&c->x, n, c->x_ndim, c->x_shape)) ||
        (s = dng__tensor_ensure(&c->y, n, c->y_ndim, c->y_shape)) ||
        (s = dng__tensor_ensure(&c->grad, n, c->out_ndim, c->out_shape))) {
        ctx_free(c);
        return s;
    }
    return DNG_OK;
}

/* Give t the batch size n, keeping its per-sample shape. */
static void set_rows(dng_tensor *t, int64_t n)
{
    t->numel = t->numel / t->shape[0] * n;
    t->shape[0] = n;
}

/* Shrink (or restore) the batch buffers to n samples: no allocation, as n
 * never exceeds the size given to ctx_init. */
static void ctx_batch(fit_ctx *c, int64_t n)
{
    set_rows(c->x, n);
    set_rows(c->y, n);
    set_rows(c->grad, n);
}

/* Count the correct predictions of one batch; false when a label is not
 * a class index, which makes the accuracy undefined. */
static bool count_correct(const fit_ctx *c, const float *out,
                          const float *y, int64_t n, int64_t *correct)
{
    int64_t k = c->classes, hits = 0;
    if (c->acc == ACC_ARGMAX) {
        for (int64_t i = 0; i < n; i++) {
            const float *row = out + i * k;
            float lab = y[i];
            int64_t best = 0;
            if (!(lab >= 0.0f && lab < (float)k && lab == floorf(lab)))
                return false;
            for (int64_t j = 1; j < k; j++)
                if (row[j] > row[best])
                    best = j;
            hits += best == (int64_t)lab;
        }
    } else if (c->acc == ACC_SIGN) {
        /* 0/1 labels; the hinge loss's -1/+1 labels count too. */
        bool pm = c->loss == DNG_LOSS_HINGE;
        for (int64_t i = 0; i < n; i++) {
            float lab = y[i];
            if (!(lab == 0.0f || lab == 1.0f || (pm && lab == -1.0f)))
                return false;
            hits += (out[i] > c->threshold) == (lab > 0.0f);
        }
    } else {
        return false;
    }
    *correct += hits;
    return true;
}

/* Mean loss and accuracy of net over ds in evaluation mode, through the
 * buffers of c (sized for batches of at least bs). The training mode the
 * network was in is restored. */
static dng_status run_eval(const char *func, dng_net *net, fit_ctx *c,
                           const dng_dataset *ds, int64_t bs, float *loss,
                           float *accuracy)
{
    bool was_training = net->training;
    bool acc_ok = c->acc != ACC_NONE;
    double sum = 0.0;
    int64_t correct = 0;
    dng_status s = DNG_OK;
    net->training = false;
    for (int64_t start = 0; start < ds->n; start += bs) {
        int64_t n = ds->n - start < bs ? ds->n - start : bs;
        dng_tensor *out;
        float v;
        ctx_batch(c, n);
        s = dng__dataset_gather(ds, NULL, start, n, c->x->data, c->y->data);
        if (s == DNG_OK)
            s = dng_net_forward(net, c->x, &out);
        if (s == DNG_OK)
            s = dng_loss(c->loss, out, c->y, &v, NULL);
        if (s != DNG_OK) {
            s = dng__error_prefix(s, "%s: the batch at sample %" PRId64,
                                  func, start);
            break;
        }
        sum += (double)v * (double)n;
        if (acc_ok)
            acc_ok = count_correct(c, out->data, c->y->data, n, &correct);
    }
    net->training = was_training;
    if (s != DNG_OK)
        return s;
    if (loss)
        *loss = (float)(sum / (double)ds->n);
    if (accuracy)
        *accuracy = acc_ok ? (float)((double)correct / (double)ds->n) : NAN;
    return DNG_OK;
}

static dng_status check_loss_kind(const char *func, dng_loss_kind kind)
{
    if ((int)kind < DNG_LOSS_MSE || (int)kind > DNG_LOSS_HINGE)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: unknown loss kind "
                          "%d", func, (int)kind);
    return DNG_OK;
}

DNG_API dng_status dng_evaluate(dng_net *net, dng_loss_kind loss_kind,
                                const dng_dataset *ds, int64_t batch_size,
                                float *loss, float *accuracy)
{
    static const char func[] = "dng_evaluate";
    fit_ctx c;
    dng_status s;
    DNG__CHECK_NULL(net, func);
    DNG__CHECK_NULL(ds, func);
    if ((s = check_loss_kind(func, loss_kind)) != DNG_OK)
        return s;
    if (batch_size < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: batch_size = %"
                          PRId64 " is not positive", func, batch_size);
    if ((s = check_set(func, "evaluation", net, loss_kind, ds)) != DNG_OK)
        return s;
    if (batch_size > ds->n)
        batch_size = ds->n;
    if ((s = ctx_init(&c, net, loss_kind, ds, batch_size)) != DNG_OK)
        return dng__error_prefix(s, "%s", func);
    s = run_eval(func, net, &c, ds, batch_size, loss, accuracy);
    ctx_free(&c);
    return s;
}

DNG_API void dng_fit_options_default(dng_fit_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
    opts->epochs = 10;
    opts->batch_size = 64;
    opts->shuffle = 1;
    opts->seed = 0;
    opts->patience = 0;
    opts->min_delta = 0.0f;
}

static dng_status check_options(const char *func, const dng_fit_options *o)
{
    if (o->size != sizeof(dng_fit_options))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: opts->size is %zu, "
                          "not %zu: fill opts with dng_fit_options_default()",
                          func, o->size, sizeof(dng_fit_options));
    if (o->epochs < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: opts->epochs = %d "
                          "is not positive", func, o->epochs);
    if (o->batch_size < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: opts->batch_size = "
                          "%" PRId64 " is not positive", func, o->batch_size);
    if (o->patience < 0)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: opts->patience = %d "
                          "is negative", func, o->patience);
    if (!(o->min_delta >= 0.0f && isfinite(o->min_delta)))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: opts->min_delta = "
                          "%g is not a finite value >= 0", func,
                          (double)o->min_delta);
    return DNG_OK;
}

/* Copy every parameter and state tensor of net into snap (or back). */
static void snapshot(dng_net *net, float *snap, bool restore)
{
    for (int i = 0; i < net->nparams + net->nbuffers; i++) {
        dng_tensor *t = i < net->nparams ? net->params[i]
                                         : net->buffers[i - net->nparams];
        size_t bytes = (size_t)t->numel * sizeof(float);
        if (restore)
            memcpy(t->data, snap, bytes);
        else
            memcpy(snap, t->data, bytes);
        snap += t->numel;
    }
}

/* One pass over the training set in the order perm; adds the summed
 * per-sample loss to *sum and counts steps. */
static dng_status train_epoch(dng_net *net, dng_optim *opt, fit_ctx *c,
                              const dng_dataset *ds, const int64_t *perm,
                              int64_t bs, int epoch, int64_t *step,
                              double *sum)
{
    static const char func[] = "dng_fit";
    for (int64_t start = 0; start < ds->n; start += bs) {
        int64_t n = ds->n - start < bs ? ds->n - start : bs;
        dng_tensor *out;
        float v = NAN;
        dng_status s;
        ctx_batch(c, n);
        s = dng__dataset_gather(ds, perm + start, 0, n, c->x->data,
                                c->y->data);
        if (s == DNG_OK)
            s = dng_net_forward(net, c->x, &out);
        if (s == DNG_OK)
            s = dng_loss(c->loss, out, c->y, &v, c->grad);
        if (s == DNG_ERR_NUMERIC || (s == DNG_OK && !isfinite(v)))
            return dng__error(DNG_ERR_NUMERIC, "%s: the training loss is "
                              "not finite (%g) at epoch %d, step %" PRId64
                              " (batch at position %" PRId64 ")", func,
                              (double)v, epoch, *step + 1, start);
        if (s == DNG_OK)
            s = dng_net_zero_grad(net);
        if (s == DNG_OK)
            s = dng_net_backward(net, c->grad, NULL);
        if (s == DNG_OK)
            s = dng_optim_step(opt, net);
        if (s != DNG_OK)
            return dng__error_prefix(s, "%s: epoch %d, step %" PRId64, func,
                                     epoch, *step + 1);
        ++*step;
        *sum += (double)v * (double)n;
    }
    return DNG_OK;
}

DNG_API dng_status dng_fit(dng_net *net, dng_optim *opt,
                           dng_loss_kind loss, const dng_dataset *train,
                           const dng_dataset *valid,
                           const dng_fit_options *opts,
                           dng_fit_callback callback, void *user)
{
    static const char func[] = "dng_fit";
    fit_ctx c;
    dng_status s;
    int64_t bs, step = 0, *perm = NULL, nsnap = 0;
    float *best = NULL, best_loss = INFINITY;
    int best_epoch = 0, since_best = 0, done = 0;
    dng_rng rng;
    DNG__CHECK_NULL(net, func);
    DNG__CHECK_NULL(opt, func);
    DNG__CHECK_NULL(train, func);
    DNG__CHECK_NULL(opts, func);
    if ((s = check_loss_kind(func, loss)) != DNG_OK ||
        (s = check_options(func, opts)) != DNG_OK ||
        (s = check_set(func, "training", net, loss, train)) != DNG_OK)
        return s;
    if (valid && (s = check_set(func, "validation", net, loss, valid)))
        return s;
    if (opts->patience > 0 && !valid)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: early stopping "
                          "(opts->patience = %d) needs a validation set",
                          func, opts->patience);

    bs = opts->batch_size;
    {
        /* Evaluation reuses the training buffers, so they are sized for
         * the larger of the two sets' batches. */
        int64_t cap = bs < train->n ? bs : train->n;
        if (valid && cap < bs && cap < valid->n)
            cap = bs < valid->n ? bs : valid->n;
        if ((s = ctx_init(&c, net, loss, train, cap)) != DNG_OK)
            return dng__error_prefix(s, "%s", func);
    }
    perm = dng__calloc((size_t)train->n, sizeof *perm, func);
    if (opts->patience > 0) {
        for (int i = 0; i < net->nparams; i++)
            nsnap += net->params[i]->numel;
        for (int i = 0; i < net->nbuffers; i++)
            nsnap += net->buffers[i]->numel;
        best = dng__calloc((size_t)nsnap + 1, sizeof *best, func);
    }
    if (!perm || (opts->patience > 0 && !best)) {
        s = DNG_ERR_OUT_OF_MEMORY;
        goto out;
    }
    for (int64_t i = 0; i < train->n; i++)
        perm[i] = i;

    /* Dropout draws from the network's generator and shuffling from a
     * second one derived from the same seed, so a run is reproduced by
     * its seed alone. */
    dng_net_set_seed(net, opts->seed);
    memset(&rng, 0, sizeof rng);
    rng.key = opts->seed ^ UINT64_C(0x9E3779B97F4A7C15);
    rng.used = 4;
    net->training = true;

    for (int epoch = 1; epoch <= opts->epochs; epoch++) {
        dng_fit_progress p;
        double t0 = dng__now(), sum = 0.0;
        bool stop = false;
        memset(&p, 0, sizeof p);
        p.size = sizeof p;
        p.epoch = epoch;
        p.epochs = opts->epochs;
        p.lr = dng_optim_get_lr(opt);
        if (opts->shuffle)
            dng__permutation(&rng, perm, train->n);
        s = train_epoch(net, opt, &c, train, perm, bs, epoch, &step, &sum);
        if (s != DNG_OK)
            goto out;
        done = epoch;
        p.step = step;
        p.train_loss = (float)(sum / (double)train->n);
        p.valid_loss = NAN;
        p.valid_accuracy = NAN;
        if (valid) {
            s = run_eval(func, net, &c, valid, bs, &p.valid_loss,
                         &p.valid_accuracy);
            if (s != DNG_OK) {
                s = dng__error_prefix(s, "%s: validation after epoch %d",
                                      func, epoch);
                goto out;
            }
            if (epoch == 1 || p.valid_loss < best_loss - opts->min_delta) {
                best_loss = p.valid_loss;
                best_epoch = epoch;
                since_best = 0;
                if (best)
                    snapshot(net, best, false);
            } else {
                since_best++;
            }
        }
        p.best_epoch = best_epoch;
        if ((s = dng_optim_schedule_step(opt)) != DNG_OK) {
            s = dng__error_prefix(s, "%s: after epoch %d", func, epoch);
            goto out;
        }
        p.seconds = dng__now() - t0;
        if (callback && callback(&p, user) != 0)
            stop = true;
        if (opts->patience > 0 && since_best >= opts->patience)
            stop = true;
        if (stop)
            break;
    }
    /* With early stopping the network ends with the weights of its best
     * validation epoch, whether training stopped early or ran out. */
    if (best && best_epoch > 0 && best_epoch != done)
        snapshot(net, best, true);
    s = DNG_OK;
out:
    net->training = true;
    ctx_free(&c);
    dng__free(perm);
    dng__free(best);
    return s;
}
