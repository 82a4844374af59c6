/* optim.c: torch.optim's SGD, Adam, AdamW and RMSprop (single-tensor CPU
 * code paths of PyTorch 1.13, operation for operation in float32 so that
 * results agree to rounding), learning-rate schedules, gradient-norm
 * clipping as clip_grad_norm_, and the optimizer state that checkpoints
 * carry. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "net-impl.h"
#include "optim-impl.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Stable numbers of the optimizer kinds, stored in checkpoints: never
 * change or reuse one. */
enum {
    OPT_SGD = 1,
    OPT_ADAM = 2,
    OPT_ADAMW = 3,
    OPT_RMSPROP = 4
};

#define STATE_MAGIC 0x4f474e44u /* "DNGO" in little-endian bytes */
#define STATE_VERSION 1u

/* Hyper-parameters; fields a kind does not use are kept at 0. */
typedef struct hyper {
    int kind;
    float lr; /* base learning rate, before the schedule */
    float momentum, weight_decay, beta1, beta2, alpha, eps;
    bool nesterov;
} hyper;

typedef struct sched {
    int kind;       /* dng_schedule */
    int64_t period; /* 0 when the kind takes none */
    float gamma;    /* 1 when the kind takes none */
    float min_lr;   /* 0 unless cosine */
    int64_t t;      /* position, advanced by dng_optim_schedule_step */
} sched;

/* Where a parameter's moment buffers live, and the shape they were sized
 * for (to notice a network that changed under the optimizer). */
typedef struct param_layout {
    int ndim;
    int64_t shape[DNG_MAX_DIMS];
    int64_t numel;
    int64_t offset; /* first float of its nslots buffers in state */
} param_layout;

struct dng_optim {
    hyper h;
    sched s;
    float clip;    /* max global gradient norm; 0 = off */
    int64_t steps; /* updates made */

    /* Bound on the first step. */
    const dng_net *net;
    int nparams, nslots;
    param_layout *layout;
    float *state; /* per parameter: nslots buffers of numel floats */
};

static const char *kind_name(int kind)
{
    switch (kind) {
    case OPT_SGD:
        return "SGD";
    case OPT_ADAM:
        return "Adam";
    case OPT_ADAMW:
        return "AdamW";
    case OPT_RMSPROP:
        return "RMSprop";
    default:
        return "unknown";
    }
}

/* Moment buffers per parameter: SGD's momentum buffer; Adam's exp_avg and
 * exp_avg_sq; RMSprop's square_avg and momentum buffer. */
static int slots_of(const hyper *h)
{
    switch (h->kind) {
    case OPT_SGD:
        return h->momentum != 0.0f ? 1 : 0;
    case OPT_ADAM:
    case OPT_ADAMW:
        return 2;
    case OPT_RMSPROP:
        return h->momentum > 0.0f ? 2 : 1;
    default:
        return 0;
    }
}

/* The slot holding a running mean of squares (never negative), or -1. */
static int square_slot(int kind)
{
    return kind == OPT_ADAM || kind == OPT_ADAMW ? 1
           : kind == OPT_RMSPROP                 ? 0
                                                 : -1;
}

/* Zero the fields a kind does not use, so that two optimizers with the
 * same behaviour hold the same bytes. */
static void normalise(hyper *h)
{
    if (h->kind != OPT_SGD && h->kind != OPT_RMSPROP)
        h->momentum = 0.0f;
    if (h->kind != OPT_SGD)
        h->nesterov = false;
    if (h->kind != OPT_ADAM && h->kind != OPT_ADAMW)
        h->beta1 = h->beta2 = 0.0f;
    if (h->kind != OPT_RMSPROP)
        h->alpha = 0.0f;
    if (h->kind == OPT_SGD)
        h->eps = 0.0f;
}

static bool in_unit(float x) /* [0, 1) */
{
    return x >= 0.0f && x < 1.0f;
}

static dng_status check_lr(const char *func, float lr)
{
    if (!(isfinite(lr) && lr > 0.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: lr = %g must be "
                          "positive and finite", func, (double)lr);
    return DNG_OK;
}

static dng_status check_hyper(const char *func, const hyper *h)
{
    dng_status s = check_lr(func, h->lr);
    if (s != DNG_OK)
        return s;
    if (!(isfinite(h->weight_decay) && h->weight_decay >= 0.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: weight_decay = %g "
                          "must be finite and at least 0", func,
                          (double)h->weight_decay);
    switch (h->kind) {
    case OPT_SGD:
    case OPT_RMSPROP:
        if (!(isfinite(h->momentum) && h->momentum >= 0.0f))
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: momentum = %g "
                              "must be finite and at least 0", func,
                              (double)h->momentum);
        if (h->nesterov && !(h->momentum > 0.0f))
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: nesterov "
                              "requires momentum > 0", func);
        if (h->kind == OPT_RMSPROP && !in_unit(h->alpha))
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: alpha = %g is "
                              "outside [0, 1)", func, (double)h->alpha);
        break;
    case OPT_ADAM:
    case OPT_ADAMW:
        if (!in_unit(h->beta1))
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: beta1 = %g is "
                              "outside [0, 1)", func, (double)h->beta1);
        if (!in_unit(h->beta2))
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: beta2 = %g is "
                              "outside [0, 1)", func, (double)h->beta2);
        break;
    default:
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: unknown optimizer "
                          "kind %d", func, h->kind);
    }
    if (h->kind != OPT_SGD && !(isfinite(h->eps) && h->eps > 0.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: eps = %g must be "
                          "positive and finite", func, (double)h->eps);
    return DNG_OK;
}

static bool sched_uses_period(int kind)
{
    return kind == DNG_SCHED_STEP || kind == DNG_SCHED_COSINE ||
           kind == DNG_SCHED_WARMUP_LINEAR;
}

static bool sched_uses_gamma(int kind)
{
    return kind == DNG_SCHED_STEP || kind == DNG_SCHED_EXPONENTIAL;
}

static dng_status check_sched(const char *func, int kind, int64_t period,
                              float gamma, float min_lr)
{
    if (kind < DNG_SCHED_CONSTANT || kind > DNG_SCHED_WARMUP_LINEAR)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: unknown schedule "
                          "kind %d", func, kind);
    if (sched_uses_period(kind) && period < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: period = %" PRId64
                          " must be at least 1", func, period);
    if (sched_uses_gamma(kind) && !(gamma > 0.0f && gamma <= 1.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: gamma = %g is "
                          "outside (0, 1]", func, (double)gamma);
    if (kind == DNG_SCHED_COSINE && !(isfinite(min_lr) && min_lr >= 0.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: min_lr = %g must "
                          "be finite and at least 0", func, (double)min_lr);
    return DNG_OK;
}

/* The learning rate at schedule position t, in double like PyTorch's
 * schedulers (closed forms, as their _get_closed_form_lr). */
static double sched_lr(const hyper *h, const sched *s)
{
    const double base = h->lr, t = (double)s->t;
    switch (s->kind) {
    case DNG_SCHED_STEP: /* base gamma^floor(t / period) */
        return base * pow((double)s->gamma, (double)(s->t / s->period));
    case DNG_SCHED_EXPONENTIAL: /* base gamma^t */
        return base * pow((double)s->gamma, t);
    case DNG_SCHED_COSINE: /* min + (base - min) (1 + cos(pi t / T)) / 2 */
        return (double)s->min_lr + (base - (double)s->min_lr) *
               (1.0 + cos(M_PI * t / (double)s->period)) / 2.0;
    case DNG_SCHED_WARMUP_LINEAR: /* base min(1, (t + 1) / (period + 1)) */
        return s->t >= s->period
                   ? base
                   : base * (t + 1.0) / ((double)s->period + 1.0);
    default:
        return base;
    }
}

/* ---- construction ------------------------------------------------------ */

static dng_optim *optim_new(const char *func, const hyper *h)
{
    dng_optim *o;
    if (check_hyper(func, h) != DNG_OK)
        return NULL;
    o = dng__calloc(1, sizeof *o, func);
    if (!o)
        return NULL;
    o->h = *h;
    o->s.kind = DNG_SCHED_CONSTANT;
    o->s.gamma = 1.0f;
    return o;
}

DNG_API dng_optim *dng_sgd(float lr, float momentum, int nesterov,
                           float weight_decay)
{
    hyper h = {.kind = OPT_SGD, .lr = lr, .momentum = momentum,
               .weight_decay = weight_decay, .nesterov = nesterov != 0};
    if (nesterov != 0 && nesterov != 1) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_sgd: nesterov = %d must "
                   "be 0 or 1", nesterov);
        return NULL;
    }
    return optim_new("dng_sgd", &h);
}

DNG_API dng_optim *dng_adam(float lr, float beta1, float beta2, float eps,
                            float weight_decay)
{
    hyper h = {.kind = OPT_ADAM, .lr = lr, .beta1 = beta1, .beta2 = beta2,
               .eps = eps, .weight_decay = weight_decay};
    return optim_new("dng_adam", &h);
}

DNG_API dng_optim *dng_adamw(float lr, float beta1, float beta2, float eps,
                             float weight_decay)
{
    hyper h = {.kind = OPT_ADAMW, .lr = lr, .beta1 = beta1, .beta2 = beta2,
               .eps = eps, .weight_decay = weight_decay};
    return optim_new("dng_adamw", &h);
}

DNG_API dng_optim *dng_rmsprop(float lr, float alpha, float eps,
                               float momentum, float weight_decay)
{
    hyper h = {.kind = OPT_RMSPROP, .lr = lr, .alpha = alpha, .eps = eps,
               .momentum = momentum, .weight_decay = weight_decay};
    return optim_new("dng_rmsprop", &h);
}

static void unbind(dng_optim *o)
{
    dng__free(o->layout);
    dng__free(o->state);
    o->layout = NULL;
    o->state = NULL;
    o->net = NULL;
    o->nparams = o->nslots = 0;
}

DNG_API void dng_optim_destroy(dng_optim *opt)
{
    if (!opt)
        return;
    unbind(opt);
    dng__free(opt);
}

/* ---- settings ---------------------------------------------------------- */

DNG_API dng_status dng_optim_set_lr(dng_optim *opt, float lr)
{
    dng_status s;
    DNG__CHECK_NULL(opt, "dng_optim_set_lr");
    s = check_lr("dng_optim_set_lr", lr);
    if (s != DNG_OK)
        return s;
    opt->h.lr = lr;
    return DNG_OK;
}

DNG_API float dng_optim_get_lr(const dng_optim *opt)
{
    if (!opt) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_optim_get_lr: opt is "
                   "NULL");
        return -1.0f;
    }
    return (float)sched_lr(&opt->h, &opt->s);
}

DNG_API dng_status dng_optim_set_schedule(dng_optim *opt, dng_schedule kind,
                                          int64_t period, float gamma,
                                          float min_lr)
{
    dng_status s;
    int k = (int)kind;
    DNG__CHECK_NULL(opt, "dng_optim_set_schedule");
    s = check_sched("dng_optim_set_schedule", k, period, gamma, min_lr);
    if (s != DNG_OK)
        return s;
    /* Arguments a kind ignores are stored as neutral values, so the saved
     * state holds nothing unchecked. */
    opt->s.kind = k;
    opt->s.period = sched_uses_period(k) ? period : 0;
    opt->s.gamma = sched_uses_gamma(k) ? gamma : 1.0f;
    opt->s.min_lr = k == DNG_SCHED_COSINE ? min_lr : 0.0f;
    opt->s.t = 0;
    return DNG_OK;
}

DNG_API dng_status dng_optim_schedule_step(dng_optim *opt)
{
    DNG__CHECK_NULL(opt, "dng_optim_schedule_step");
    if (opt->s.t == INT64_MAX)
        return dng__error(DNG_ERR_STATE, "dng_optim_schedule_step: the "
                          "schedule position cannot advance further");
    opt->s.t++;
    return DNG_OK;
}

DNG_API dng_status dng_optim_set_clip_norm(dng_optim *opt, float max_norm)
{
    DNG__CHECK_NULL(opt, "dng_optim_set_clip_norm");
    if (!(isfinite(max_norm) && max_norm >= 0.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_optim_set_clip_norm:"
                          " max_norm = %g must be finite and at least 0 (0 "
                          "turns clipping off)", (double)max_norm);
    opt->clip = max_norm;
    return DNG_OK;
}

int64_t dng__optim_steps(const dng_optim *opt)
{
    return opt ? opt->steps : -1;
}

const dng_net *dng__optim_owner(const dng_optim *opt)
{
    return opt ? opt->net : NULL;
}

/* ---- update rules ------------------------------------------------------ */

/* Each kernel below follows PyTorch's tensor operations one by one in
 * float32 (d_p.add(param, alpha=wd) is d + wd p, addcmul_ is
 * s + v * a * b, addcdiv_ is s + v * a / b), with the per-step scalars
 * computed in double as Python does and then rounded to float, as ATen
 * does with a Python number. */

/* SGD: d = g + wd p; b = mu b + d (b = d on the first step);
 * p += -lr (nesterov ? d + mu b : b) */
static void sgd_update(float *restrict p, const float *restrict g,
                       float *restrict b, int64_t n, const hyper *h,
                       float nlr, bool first)
{
    const float wd = h->weight_decay, mu = h->momentum;
    const bool decay = wd != 0.0f, nesterov = h->nesterov;
    if (mu == 0.0f) {
        for (int64_t i = 0; i < n; i++) {
            float d = g[i];
            if (decay)
                d = d + wd * p[i];
            p[i] = p[i] + nlr * d;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float d = g[i], v;
        if (decay)
            d = d + wd * p[i];
        v = first ? d : b[i] * mu + d;
        b[i] = v;
        p[i] = p[i] + nlr * (nesterov ? d + mu * v : v);
    }
}

/* Adam / AdamW: p *= 1 - lr wd (AdamW only); d = g + wd p (Adam only);
 * m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
 * p += -lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static void adam_update(float *restrict p, const float *restrict g,
                        float *restrict m, float *restrict v, int64_t n,
                        const hyper *h, double lr, int64_t step)
{
    const double bc1 = 1.0 - pow((double)h->beta1, (double)step);
    const double bc2 = 1.0 - pow((double)h->beta2, (double)step);
    const float b1 = h->beta1, c1 = (float)(1.0 - (double)h->beta1);
    const float b2 = h->beta2, c2 = (float)(1.0 - (double)h->beta2);
    const float bc2s = (float)sqrt(bc2), eps = h->eps;
    const float nstep = (float)-(lr / bc1);
    const bool adamw = h->kind == OPT_ADAMW;
    const float wd = adamw ? 0.0f : h->weight_decay;
    const float shrink = (float)(1.0 - lr * (double)h->weight_decay);
    const bool decay = wd != 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float d = g[i], pi = p[i], mi, vi, den;
        if (adamw)
            pi = pi * shrink;
        if (decay)
            d = d + wd * pi;
        mi = m[i] * b1 + c1 * d;
        vi = v[i] * b2 + c2 * d * d;
        m[i] = mi;
        v[i] = vi;
        den = sqrtf(vi) / bc2s + eps;
        p[i] = pi + nstep * mi / den;
    }
}

/* RMSprop (not centred): d = g + wd p; s = alpha s + (1 - alpha) d^2;
 * a = sqrt(s) + eps; with momentum b = mu b + d / a, p += -lr b;
 * without, p += -lr d / a */
static void rmsprop_update(float *restrict p, const float *restrict g,
                           float *restrict sq, float *restrict b, int64_t n,
                           const hyper *h, float nlr)
{
    const float wd = h->weight_decay, alpha = h->alpha, mu = h->momentum;
    const float c = (float)(1.0 - (double)h->alpha), eps = h->eps;
    const bool decay = wd != 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float d = g[i], si, avg;
        if (decay)
            d = d + wd * p[i];
        si = sq[i] * alpha + c * d * d;
        sq[i] = si;
        avg = sqrtf(si) + eps;
        if (b) {
            float bi = b[i] * mu + d / avg;
            b[i] = bi;
            p[i] = p[i] + nlr * bi;
        } else {
            p[i] = p[i] + nlr * d / avg;
        }
    }
}

/* ---- stepping ---------------------------------------------------------- */

static bool layout_matches(const param_layout *l, const dng_tensor *t)
{
    if (l->ndim != t->ndim)
        return false;
    for (int d = 0; d < l->ndim; d++)
        if (l->shape[d] != t->shape[d])
            return false;
    return true;
}

static dng_status check_layout(const dng_optim *o, const dng_net *net)
{
    char a[160], b[160];
    if (net->nparams != o->nparams)
        return dng__error(DNG_ERR_STATE, "dng_optim_step: the network has "
                          "%d parameter tensors but had %d at the "
                          "optimizer's first step", net->nparams,
                          o->nparams);
    for (int i = 0; i < o->nparams; i++) {
        const param_layout *l = &o->layout[i];
        const dng_tensor *t = net->params[i];
        if (!layout_matches(l, t))
            return dng__error(DNG_ERR_STATE, "dng_optim_step: parameter %s "
                              "is %s but was %s at the optimizer's first "
                              "step", net->param_names[i],
                              dng__shape_str(a, sizeof a, t->ndim, t->shape),
                              dng__shape_str(b, sizeof b, l->ndim,
                                             l->shape));
    }
    return DNG_OK;
}

/* Size the state for net's parameters (all moments start at zero) and make
 * net its owner. The only allocation the optimizer ever makes. */
static dng_status bind(dng_optim *o, const dng_net *net)
{
    const int np = net->nparams, ns = slots_of(&o->h);
    param_layout *lay;
    float *st;
    int64_t total = 0;
    lay = dng__calloc((size_t)np + 1, sizeof *lay, "dng_optim_step");
    if (!lay)
        return DNG_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < np; i++) {
        const dng_tensor *t = net->params[i];
        lay[i].ndim = t->ndim;
        memcpy(lay[i].shape, t->shape, (size_t)t->ndim * sizeof *t->shape);
        lay[i].numel = t->numel;
        lay[i].offset = total;
        total += t->numel * ns;
    }
    st = dng__calloc((size_t)total + 1, sizeof *st, "dng_optim_step");
    if (!st) {
        dng__free(lay);
        return DNG_ERR_OUT_OF_MEMORY;
    }
    unbind(o);
    o->net = net;
    o->nparams = np;
    o->nslots = ns;
    o->layout = lay;
    o->state = st;
    return DNG_OK;
}

/* sum x_i^2 in double, with eight independent partial sums: one running
 * sum would make every addition wait for the previous one, which costs
 * more than reading the gradients. The order is fixed, so the result does
 * not vary between runs. */
static double sumsq(const float *x, int64_t n)
{
    double a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            a[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++)
        a[0] += (double)x[i] * (double)x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* Check that every gradient is finite and, when clipping, return the
 * global norm through *norm. With clipping the sums of squares double as
 * the check (a NaN or infinity makes its sum non-finite, and finite
 * floats cannot overflow a double sum), so the gradients are read once. */
static dng_status check_grads(const dng_net *net, bool want_norm,
                              double *norm)
{
    double total = 0.0;
    for (int i = 0; i < net->nparams; i++) {
        const dng_tensor *g = net->grads[i];
        bool ok;
        if (want_norm) {
            double ss = sumsq(g->data, g->numel);
            ok = isfinite(ss);
            total += ss;
        } else {
            ok = dng__all_finite(g->data, g->numel);
        }
        if (!ok)
            return dng__error(DNG_ERR_NUMERIC, "dng_optim_step: the "
                              "gradient of %s is not finite; nothing was "
                              "updated", net->param_names[i]);
    }
    *norm = sqrt(total);
    return DNG_OK;
}

/* clip_grad_norm_: coef = max / (||all gradients||_2 + 1e-6); gradients
 * *= coef when coef < 1. The norm is summed in double; the coefficient is
 * formed in float as PyTorch's tensors do. */
static void clip_grads(dng_net *net, float max_norm, double norm)
{
    const float nf = (float)norm;
    const float coef = isfinite(nf) ? max_norm / (nf + 1e-6f)
                                    : (float)((double)max_norm / norm);
    if (coef < 1.0f)
        for (int i = 0; i < net->nparams; i++)
            dng__scale(net->grads[i]->numel, coef, net->grads[i]->data);
}

DNG_API dng_status dng_optim_step(dng_optim *opt, dng_net *net)
{
    double lr, norm = 0.0;
    dng_status s;
    DNG__CHECK_NULL(opt, "dng_optim_step");
    DNG__CHECK_NULL(net, "dng_optim_step");
    if (opt->net && opt->net != net)
        return dng__error(DNG_ERR_STATE, "dng_optim_step: the optimizer's "
                          "state belongs to the network it first stepped; "
                          "use one optimizer per network");
    if (opt->net) {
        s = check_layout(opt, net);
        if (s != DNG_OK)
            return s;
    }
    /* Everything is checked before anything changes, so that a bad batch
     * can be skipped with parameters, moments and gradients intact. */
    s = check_grads(net, opt->clip > 0.0f, &norm);
    if (s != DNG_OK)
        return s;
    if (opt->steps == INT64_MAX)
        return dng__error(DNG_ERR_STATE, "dng_optim_step: step count "
                          "exhausted");
    if (!opt->net) {
        s = bind(opt, net);
        if (s != DNG_OK)
            return dng__error_prefix(s, "dng_optim_step");
    }
    if (opt->clip > 0.0f)
        clip_grads(net, opt->clip, norm);

    lr = sched_lr(&opt->h, &opt->s);
    for (int i = 0; i < net->nparams; i++) {
        const param_layout *l = &opt->layout[i];
        float *p = net->params[i]->data;
        const float *g = net->grads[i]->data;
        float *st = opt->state + l->offset;
        const int64_t n = l->numel;
        switch (opt->h.kind) {
        case OPT_SGD:
            sgd_update(p, g, opt->nslots ? st : NULL, n, &opt->h,
                       (float)-lr, opt->steps == 0);
            break;
        case OPT_ADAM:
        case OPT_ADAMW:
            adam_update(p, g, st, st + n, n, &opt->h, lr, opt->steps + 1);
            break;
        default: /* OPT_RMSPROP */
            rmsprop_update(p, g, st, opt->nslots > 1 ? st + n : NULL, n,
                           &opt->h, (float)-lr);
            break;
        }
    }
    opt->steps++;
    return DNG_OK;
}

/* ---- serialised state -------------------------------------------------- */

dng_status dng__optim_write_state(dng__wbuf *w, const dng_optim *opt)
{
    size_t start;
    const hyper *h;
    DNG__CHECK_NULL(w, "dng__optim_write_state");
    DNG__CHECK_NULL(opt, "dng__optim_write_state");
    h = &opt->h;
    start = w->len;
    dng__w_u32(w, STATE_MAGIC);
    dng__w_u32(w, STATE_VERSION);
    dng__w_u32(w, (uint32_t)h->kind);
    dng__w_f32(w, h->lr);
    dng__w_f32(w, h->momentum);
    dng__w_f32(w, h->weight_decay);
    dng__w_f32(w, h->beta1);
    dng__w_f32(w, h->beta2);
    dng__w_f32(w, h->alpha);
    dng__w_f32(w, h->eps);
    dng__w_u8(w, h->nesterov ? 1 : 0);
    dng__w_u32(w, (uint32_t)opt->s.kind);
    dng__w_i64(w, opt->s.period);
    dng__w_f32(w, opt->s.gamma);
    dng__w_f32(w, opt->s.min_lr);
    dng__w_i64(w, opt->s.t);
    dng__w_f32(w, opt->clip);
    dng__w_i64(w, opt->steps);
    dng__w_u8(w, opt->net ? 1 : 0);
    if (opt->net) {
        int64_t total = 0;
        dng__w_u32(w, (uint32_t)opt->nparams);
        dng__w_u32(w, (uint32_t)opt->nslots);
        for (int i = 0; i < opt->nparams; i++) {
            const param_layout *l = &opt->layout[i];
            dng__w_u32(w, (uint32_t)l->ndim);
            for (int d = 0; d < l->ndim; d++)
                dng__w_i64(w, l->shape[d]);
            total += l->numel * opt->nslots;
        }
        dng__w_f32s(w, opt->state, (size_t)total);
    }
    if (w->failed)
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "dng__optim_write_state: "
                          "the output buffer could not grow");
    dng__w_u32(w, dng__crc32(0, w->data + start, w->len - start));
    if (w->failed)
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "dng__optim_write_state: "
                          "the output buffer could not grow");
    return DNG_OK;
}

static dng_status corrupt(const char *what)
{
    return dng__error(DNG_ERR_FORMAT, "optimizer state: %s", what);
}

/* Read n floats of one moment buffer into dst (or, when dst is NULL, into
 * a small scratch buffer, to check them without keeping them), and check
 * that they are finite and, for a mean of squares, not negative. */
static dng_status read_moments(dng__rbuf *r, float *dst, int64_t n,
                               bool nonneg)
{
    float scratch[512];
    while (n > 0) {
        int64_t k = dst ? n : (n < 512 ? n : 512);
        float *buf = dst ? dst : scratch;
        bool bad = false;
        if (!dng__r_f32s(r, buf, (size_t)k))
            return corrupt("the moment buffers are truncated");
        if (!dng__all_finite(buf, k))
            return corrupt("a moment buffer holds a non-finite value");
        if (nonneg)
            for (int64_t i = 0; i < k; i++)
                bad |= buf[i] < 0.0f;
        if (bad)
            return corrupt("a running mean of squares is negative");
        n -= k;
        if (dst)
            dst += k;
    }
    return DNG_OK;
}

dng_status dng__optim_read_state(dng__rbuf *r, dng_optim *opt, dng_net *net,
                                 bool apply)
{
    const char *func = "dng__optim_read_state";
    uint32_t magic, version, kind, skind, crc, np32 = 0, ns32 = 0;
    uint8_t nesterov, bound;
    hyper h = {0};
    sched sc = {0};
    float clip;
    int64_t steps, total = 0;
    size_t start, end;
    param_layout *lay = NULL;
    float *st = NULL;
    dng_status s;
    DNG__CHECK_NULL(r, func);
    DNG__CHECK_NULL(opt, func);
    start = r->pos;
    dng__r_u32(r, &magic);
    dng__r_u32(r, &version);
    if (r->failed)
        return corrupt("the section is truncated");
    if (magic != STATE_MAGIC)
        return corrupt("bad magic number (not an optimizer state)");
    if (version != STATE_VERSION)
        return dng__error(DNG_ERR_FORMAT, "optimizer state: version %u is "
                          "not supported (this library reads %u)",
                          (unsigned)version, (unsigned)STATE_VERSION);
    dng__r_u32(r, &kind);
    dng__r_f32(r, &h.lr);
    dng__r_f32(r, &h.momentum);
    dng__r_f32(r, &h.weight_decay);
    dng__r_f32(r, &h.beta1);
    dng__r_f32(r, &h.beta2);
    dng__r_f32(r, &h.alpha);
    dng__r_f32(r, &h.eps);
    dng__r_u8(r, &nesterov);
    dng__r_u32(r, &skind);
    dng__r_i64(r, &sc.period);
    dng__r_f32(r, &sc.gamma);
    dng__r_f32(r, &sc.min_lr);
    dng__r_i64(r, &sc.t);
    dng__r_f32(r, &clip);
    dng__r_i64(r, &steps);
    dng__r_u8(r, &bound);
    if (r->failed)
        return corrupt("the section is truncated");
    if ((int)kind != opt->h.kind)
        return dng__error(DNG_ERR_FORMAT, "optimizer state: it holds %s "
                          "state but the optimizer is %s",
                          kind_name((int)kind), kind_name(opt->h.kind));
    h.kind = (int)kind;
    h.nesterov = nesterov != 0;
    if (nesterov > 1 || bound > 1)
        return corrupt("a flag is neither 0 nor 1");
    normalise(&h);
    if (check_hyper("optimizer state", &h) != DNG_OK)
        return dng__error_prefix(DNG_ERR_FORMAT, "corrupt");
    if (skind > (uint32_t)DNG_SCHED_WARMUP_LINEAR ||
        check_sched("optimizer state", (int)skind, sc.period, sc.gamma,
                    sc.min_lr) != DNG_OK)
        return dng__error_prefix(DNG_ERR_FORMAT, "corrupt");
    sc.kind = (int)skind;
    if (sc.t < 0 || steps < 0)
        return corrupt("a negative step count");
    if (!(isfinite(clip) && clip >= 0.0f))
        return corrupt("the clip norm is negative or not finite");
    /* The state is bound by the first step and only then. */
    if ((bound == 1) != (steps > 0))
        return corrupt("the step count contradicts the bound flag");

    if (bound) {
        const int sq = square_slot(h.kind);
        int ns;
        dng__r_u32(r, &np32);
        dng__r_u32(r, &ns32);
        if (r->failed)
            return corrupt("the section is truncated");
        ns = slots_of(&h);
        if (ns32 != (uint32_t)ns)
            return corrupt("the number of moment buffers does not fit the "
                           "hyper-parameters");
        if (!net)
            return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: net is NULL "
                              "but the saved state belongs to a network",
                              func);
        if (np32 != (uint32_t)net->nparams)
            return dng__error(DNG_ERR_SHAPE, "optimizer state: saved for %u "
                              "parameter tensors, the network has %d",
                              (unsigned)np32, net->nparams);
        if (apply) {
            lay = dng__calloc((size_t)np32 + 1, sizeof *lay, func);
            if (!lay)
                return DNG_ERR_OUT_OF_MEMORY;
        }
        for (uint32_t i = 0; i < np32; i++) {
            param_layout l = {0};
            uint32_t nd;
            char a[160], b[160];
            const dng_tensor *t = net->params[i];
            if (!dng__r_u32(r, &nd)) {
                s = corrupt("the section is truncated");
                goto fail;
            }
            if (nd < 1 || nd > DNG_MAX_DIMS) {
                s = corrupt("a parameter has an impossible rank");
                goto fail;
            }
            l.ndim = (int)nd;
            for (uint32_t d = 0; d < nd; d++)
                dng__r_i64(r, &l.shape[d]);
            if (r->failed) {
                s = corrupt("the section is truncated");
                goto fail;
            }
            if (!layout_matches(&l, t)) {
                s = dng__error(DNG_ERR_SHAPE, "optimizer state: parameter "
                               "%s is %s in the network but %s in the "
                               "saved state", net->param_names[i],
                               dng__shape_str(a, sizeof a, t->ndim,
                                              t->shape),
                               dng__shape_str(b, sizeof b, l.ndim,
                                              l.shape));
                goto fail;
            }
            l.numel = t->numel;
            l.offset = total;
            total += t->numel * ns;
            if (lay)
                lay[i] = l;
        }
        /* Refuse a size the remaining bytes cannot hold before allocating
         * for it. */
        if ((uint64_t)total > dng__r_left(r) / 4) {
            s = corrupt("the moment buffers are truncated");
            goto fail;
        }
        if (apply) {
            st = dng__calloc((size_t)total + 1, sizeof *st, func);
            if (!st) {
                s = DNG_ERR_OUT_OF_MEMORY;
                goto fail;
            }
        }
        for (uint32_t i = 0; i < np32; i++) {
            const int64_t n = net->params[i]->numel;
            for (int k = 0; k < ns; k++) {
                float *dst = st ? st + lay[i].offset + (int64_t)k * n : NULL;
                s = read_moments(r, dst, n, k == sq);
                if (s != DNG_OK)
                    goto fail;
            }
        }
    }
    end = r->pos;
    if (!dng__r_u32(r, &crc)) {
        s = corrupt("the section is truncated");
        goto fail;
    }
    if (crc != dng__crc32(0, r->data + start, end - start)) {
        s = corrupt("checksum mismatch");
        goto fail;
    }
    if (!apply)
        return DNG_OK;

    unbind(opt);
    opt->h = h;
    opt->s = sc;
    opt->clip = clip;
    opt->steps = steps;
    if (bound) {
        opt->net = net;
        opt->nparams = (int)np32;
        opt->nslots = (int)ns32;
        opt->layout = lay;
        opt->state = st;
    }
    return DNG_OK;
fail:
    dng__free(lay);
    dng__free(st);
    return s;
}
