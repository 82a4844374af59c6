/* test-optim.c: the optimizers against a double-precision reference of
 * PyTorch's update rules written here, schedules against their closed
 * forms, clipping, weight decay (L2 against decoupled), error paths, and
 * the serialised state (round trip, then every corruption rejected). */
#include "testutil.h"

#include "net-impl.h"
#include "optim-impl.h"

/* ---- a tiny network with known parameters and gradients --------------- */

static dng_net *tiny_net(unsigned seed)
{
    int64_t in = 3;
    dng_net *net = dng_net_create(1, &in);
    ck_assert_ptr_nonnull(net);
    ck_assert_int_eq(dng_net_add(net, dng_dense(3, 4)), DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_activation(DNG_ACT_TANH, 0.0f)),
                     DNG_OK);
    ck_assert_int_eq(dng_net_add(net, dng_dense(4, 2)), DNG_OK);
    ck_assert_int_eq(net->nparams, 4);
    for (int i = 0; i < net->nparams; i++)
        dng_test_fill(net->params[i]->data, net->params[i]->numel,
                      seed + (unsigned)i, -1.0f, 1.0f);
    return net;
}

static int64_t total_params(const dng_net *net)
{
    int64_t n = 0;
    for (int i = 0; i < net->nparams; i++)
        n += net->params[i]->numel;
    return n;
}

/* Gradients of step k: a fixed pseudo-random pattern per step. */
static void set_grads(dng_net *net, int k, float scale)
{
    for (int i = 0; i < net->nparams; i++)
        dng_test_fill(net->grads[i]->data, net->grads[i]->numel,
                      100u + 10u * (unsigned)k + (unsigned)i, -scale,
                      scale);
}

static void gather(dng_tensor **ts, int n, float *out)
{
    for (int i = 0; i < n; i++) {
        memcpy(out, ts[i]->data, (size_t)ts[i]->numel * sizeof(float));
        out += ts[i]->numel;
    }
}

/* ---- the reference: PyTorch's rules in double ------------------------- */

enum { K_SGD, K_ADAM, K_ADAMW, K_RMSPROP };

typedef struct variant {
    const char *name;
    int kind;
    float lr, momentum, weight_decay, beta1, beta2, alpha, eps;
    int nesterov;
    int sched; /* a dng_schedule advanced after every step */
    float clip;
} variant;

static const variant variants[] = {
    {"sgd", K_SGD, 0.1f, 0, 0, 0, 0, 0, 0, 0, DNG_SCHED_CONSTANT, 0},
    {"sgd-momentum", K_SGD, 0.1f, 0.9f, 0, 0, 0, 0, 0, 0,
     DNG_SCHED_EXPONENTIAL, 0},
    {"sgd-nesterov-wd", K_SGD, 0.05f, 0.8f, 0.01f, 0, 0, 0, 0, 1,
     DNG_SCHED_COSINE, 0},
    {"sgd-wd-clip", K_SGD, 0.1f, 0, 0.1f, 0, 0, 0, 0, 0, DNG_SCHED_STEP,
     0.7f},
    {"adam", K_ADAM, 0.01f, 0, 0, 0.9f, 0.999f, 0, 1e-8f, 0,
     DNG_SCHED_CONSTANT, 0},
    {"adam-wd", K_ADAM, 0.02f, 0, 0.05f, 0.8f, 0.99f, 0, 1e-6f, 0,
     DNG_SCHED_WARMUP_LINEAR, 0},
    {"adamw", K_ADAMW, 0.01f, 0, 0.1f, 0.9f, 0.999f, 0, 1e-8f, 0,
     DNG_SCHED_COSINE, 0.5f},
    {"rmsprop", K_RMSPROP, 0.01f, 0, 0, 0, 0, 0.99f, 1e-8f, 0,
     DNG_SCHED_CONSTANT, 0},
    {"rmsprop-momentum-wd", K_RMSPROP, 0.01f, 0.5f, 0.01f, 0, 0, 0.9f,
     1e-6f, 0, DNG_SCHED_EXPONENTIAL, 0},
};
#define NVARIANTS ((int)(sizeof variants / sizeof variants[0]))

static dng_optim *make_opt(const variant *v)
{
    dng_optim *o = NULL;
    switch (v->kind) {
    case K_SGD:
        o = dng_sgd(v->lr, v->momentum, v->nesterov, v->weight_decay);
        break;
    case K_ADAM:
        o = dng_adam(v->lr, v->beta1, v->beta2, v->eps, v->weight_decay);
        break;
    case K_ADAMW:
        o = dng_adamw(v->lr, v->beta1, v->beta2, v->eps, v->weight_decay);
        break;
    default:
        o = dng_rmsprop(v->lr, v->alpha, v->eps, v->momentum,
                        v->weight_decay);
        break;
    }
    ck_assert_msg(o != NULL, "%s: %s", v->name, dng_last_error());
    /* period 4, gamma 0.7, min 1e-3: every schedule moves within the
     * steps the tests make. */
    ck_assert_int_eq(dng_optim_set_schedule(o, (dng_schedule)v->sched, 4,
                                            0.7f, 1e-3f), DNG_OK);
    ck_assert_int_eq(dng_optim_set_clip_norm(o, v->clip), DNG_OK);
    return o;
}

/* The schedules' closed forms, as PyTorch's schedulers define them. */
static double ref_lr(int sched, double base, int64_t t, int64_t period,
                     double gamma, double min_lr)
{
    switch (sched) {
    case DNG_SCHED_STEP:
        return base * pow(gamma, (double)(t / period));
    case DNG_SCHED_EXPONENTIAL:
        return base * pow(gamma, (double)t);
    case DNG_SCHED_COSINE:
        return min_lr + (base - min_lr) *
                        (1.0 + cos(3.14159265358979323846 * (double)t /
                                   (double)period)) / 2.0;
    case DNG_SCHED_WARMUP_LINEAR:
        return base * fmin(1.0, (double)(t + 1) / (double)(period + 1));
    default:
        return base;
    }
}

typedef struct ref_state {
    int64_t n, t;
    double *p, *m, *v, *b;
} ref_state;

static void ref_init(ref_state *r, const dng_net *net)
{
    float *tmp;
    r->n = total_params(net);
    r->t = 0;
    r->p = calloc((size_t)r->n, sizeof(double));
    r->m = calloc((size_t)r->n, sizeof(double));
    r->v = calloc((size_t)r->n, sizeof(double));
    r->b = calloc((size_t)r->n, sizeof(double));
    tmp = malloc((size_t)r->n * sizeof(float));
    gather(net->params, net->nparams, tmp);
    for (int64_t i = 0; i < r->n; i++)
        r->p[i] = tmp[i];
    free(tmp);
}

static void ref_free(ref_state *r)
{
    free(r->p);
    free(r->m);
    free(r->v);
    free(r->b);
}

/* One update in double: clip_grad_norm_, then the textbook form of each
 * torch.optim rule (Adam with explicit bias-corrected moments). */
static void ref_step(ref_state *r, const variant *v, const float *gf,
                     double lr)
{
    const double mu = v->momentum, wd = v->weight_decay;
    const double b1 = v->beta1, b2 = v->beta2, al = v->alpha, eps = v->eps;
    double coef = 1.0;
    r->t++;
    if (v->clip > 0.0f) {
        double ss = 0.0;
        for (int64_t i = 0; i < r->n; i++)
            ss += (double)gf[i] * gf[i];
        coef = fmin(1.0, v->clip / (sqrt(ss) + 1e-6));
    }
    for (int64_t i = 0; i < r->n; i++) {
        double g = gf[i] * coef, *p = &r->p[i];
        switch (v->kind) {
        case K_SGD:
            g += wd * *p;
            if (mu != 0.0) {
                r->b[i] = r->t == 1 ? g : mu * r->b[i] + g;
                g = v->nesterov ? g + mu * r->b[i] : r->b[i];
            }
            *p -= lr * g;
            break;
        case K_ADAM:
        case K_ADAMW: {
            double mh, vh;
            if (v->kind == K_ADAMW)
                *p *= 1.0 - lr * wd;
            else
                g += wd * *p;
            r->m[i] = b1 * r->m[i] + (1.0 - b1) * g;
            r->v[i] = b2 * r->v[i] + (1.0 - b2) * g * g;
            mh = r->m[i] / (1.0 - pow(b1, (double)r->t));
            vh = r->v[i] / (1.0 - pow(b2, (double)r->t));
            *p -= lr * mh / (sqrt(vh) + eps);
            break;
        }
        default: {
            double avg;
            g += wd * *p;
            r->v[i] = al * r->v[i] + (1.0 - al) * g * g;
            avg = sqrt(r->v[i]) + eps;
            if (mu > 0.0) {
                r->b[i] = mu * r->b[i] + g / avg;
                *p -= lr * r->b[i];
            } else {
                *p -= lr * g / avg;
            }
            break;
        }
        }
    }
}

static double compare_params(const dng_net *net, const ref_state *r)
{
    float *got = malloc((size_t)r->n * sizeof(float));
    float *want = malloc((size_t)r->n * sizeof(float));
    double worst;
    gather(net->params, net->nparams, got);
    for (int64_t i = 0; i < r->n; i++)
        want[i] = (float)r->p[i];
    worst = dng_test_close_ratio(got, want, r->n, 2e-6, 1e-5);
    free(got);
    free(want);
    return worst;
}

/* ---- update rules ----------------------------------------------------- */

START_TEST(test_rules)
{
    const variant *v = &variants[_i];
    dng_net *net = tiny_net(1);
    dng_optim *opt = make_opt(v);
    ref_state r;
    float *g;
    ref_init(&r, net);
    g = malloc((size_t)r.n * sizeof(float));
    for (int k = 0; k < 6; k++) {
        double lr = ref_lr(v->sched, v->lr, k, 4, 0.7f, 1e-3f), worst;
        set_grads(net, k, 1.0f);
        gather(net->grads, net->nparams, g);
        ck_assert_double_le(fabs(dng_optim_get_lr(opt) - lr), 1e-7 * lr);
        ck_assert_int_eq(dng_optim_step(opt, net), DNG_OK);
        ref_step(&r, v, g, lr);
        worst = compare_params(net, &r);
        ck_assert_msg(worst <= 1.0, "%s step %d: params off by ratio %g",
                      v->name, k + 1, worst);
        ck_assert_int_eq(dng_optim_schedule_step(opt), DNG_OK);
    }
    ck_assert_int_eq(dng__optim_steps(opt), 6);
    ck_assert_ptr_eq(dng__optim_owner(opt), net);
    free(g);
    ref_free(&r);
    dng_optim_destroy(opt);
    dng_net_destroy(net);
}
END_TEST

/* ---- schedules -------------------------------------------------------- */

START_TEST(test_schedules)
{
    const struct {
        int kind;
        int64_t period;
        float gamma, min_lr;
    } cases[] = {
        {DNG_SCHED_CONSTANT, 0, 0.0f, 0.0f},
        {DNG_SCHED_STEP, 3, 0.5f, 0.0f},
        {DNG_SCHED_EXPONENTIAL, 0, 0.9f, 0.0f},
        {DNG_SCHED_COSINE, 10, 0.0f, 0.001f},
        {DNG_SCHED_WARMUP_LINEAR, 4, 0.0f, 0.0f},
    };
    dng_optim *o = dng_sgd(0.2f, 0.0f, 0, 0.0f);
    ck_assert_ptr_nonnull(o);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ck_assert_int_eq(dng_optim_set_schedule(o, (dng_schedule)cases[c]
                                                .kind, cases[c].period,
                                                cases[c].gamma,
                                                cases[c].min_lr), DNG_OK);
        /* Past the cosine's period the curve rises again, as PyTorch's
         * CosineAnnealingLR does. */
        for (int64_t t = 0; t <= 14; t++) {
            double want = ref_lr(cases[c].kind, (double)0.2f, t,
                                 cases[c].period, cases[c].gamma,
                                 cases[c].min_lr);
            ck_assert_msg(fabs(dng_optim_get_lr(o) - want) <=
                          1e-7 * want + 1e-12, "schedule %d, t %d: %g vs "
                          "%g", cases[c].kind, (int)t,
                          (double)dng_optim_get_lr(o), want);
            ck_assert_int_eq(dng_optim_schedule_step(o), DNG_OK);
        }
    }
    /* Spot values written out by hand. */
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_STEP, 2, 0.5f, 0),
                     DNG_OK);
    ck_assert_float_eq(dng_optim_get_lr(o), 0.2f);
    dng_optim_schedule_step(o);
    dng_optim_schedule_step(o);
    ck_assert_float_eq(dng_optim_get_lr(o), 0.1f);
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_WARMUP_LINEAR, 3,
                                            1.0f, 0), DNG_OK);
    ck_assert_float_eq(dng_optim_get_lr(o), 0.05f); /* 0.2 * 1/4 */
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_COSINE, 2, 1.0f,
                                            0.0f), DNG_OK);
    dng_optim_schedule_step(o);
    ck_assert_float_eq(dng_optim_get_lr(o), 0.1f); /* halfway */
    dng_optim_schedule_step(o);
    ck_assert_float_eq(dng_optim_get_lr(o), 0.0f); /* at T_max */
    /* The base rate moves under the schedule. */
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_EXPONENTIAL, 0,
                                            0.5f, 0), DNG_OK);
    dng_optim_schedule_step(o);
    ck_assert_int_eq(dng_optim_set_lr(o, 0.8f), DNG_OK);
    ck_assert_float_eq(dng_optim_get_lr(o), 0.4f);
    /* Invalid schedules are refused and leave the schedule alone. */
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_STEP, 0, 0.5f, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "period"));
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_STEP, 2, 0.0f, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "gamma"));
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_EXPONENTIAL, 0,
                                            1.5f, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_EXPONENTIAL, 0,
                                            NAN, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_COSINE, 5, 1.0f,
                                            -1.0f),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "min_lr"));
    ck_assert_int_eq(dng_optim_set_schedule(o, DNG_SCHED_WARMUP_LINEAR, -3,
                                            1.0f, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_optim_set_schedule(o, (dng_schedule)5, 1, 1.0f, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "kind 5"));
    ck_assert_float_eq(dng_optim_get_lr(o), 0.4f);
    ck_assert_int_eq(dng_optim_set_schedule(NULL, DNG_SCHED_CONSTANT, 0, 1,
                                            0), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_optim_schedule_step(NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_float_eq(dng_optim_get_lr(NULL), -1.0f);
    dng_optim_destroy(o);
}
END_TEST

/* ---- clipping ---------------------------------------------------------- */

START_TEST(test_clipping)
{
    dng_net *net = tiny_net(2);
    dng_optim *o = dng_sgd(1.0f, 0.0f, 0, 0.0f);
    int64_t n = total_params(net);
    float *p0 = malloc((size_t)n * sizeof(float));
    float *g0 = malloc((size_t)n * sizeof(float));
    float *p1 = malloc((size_t)n * sizeof(float));
    float *g1 = malloc((size_t)n * sizeof(float));
    double ss = 0.0, norm, after = 0.0;
    float coef;

    set_grads(net, 0, 2.0f);
    gather(net->params, net->nparams, p0);
    gather(net->grads, net->nparams, g0);
    for (int64_t i = 0; i < n; i++)
        ss += (double)g0[i] * g0[i];
    norm = sqrt(ss);

    /* A norm below the bound leaves the gradients bit for bit. */
    ck_assert_int_eq(dng_optim_set_clip_norm(o, (float)(2.0 * norm)),
                     DNG_OK);
    ck_assert_int_eq(dng_optim_step(o, net), DNG_OK);
    gather(net->grads, net->nparams, g1);
    gather(net->params, net->nparams, p1);
    ck_assert_int_eq(memcmp(g0, g1, (size_t)n * sizeof(float)), 0);
    for (int64_t i = 0; i < n; i++)
        ck_assert_float_eq(p1[i], p0[i] - g0[i]);

    /* Above it, the gradients are scaled in place to the bound and the
     * update uses the scaled ones. */
    memcpy(p0, p1, (size_t)n * sizeof(float));
    ck_assert_int_eq(dng_optim_set_clip_norm(o, (float)(norm / 4.0)),
                     DNG_OK);
    ck_assert_int_eq(dng_optim_step(o, net), DNG_OK);
    gather(net->grads, net->nparams, g1);
    gather(net->params, net->nparams, p1);
    coef = (float)(norm / 4.0) / ((float)norm + 1e-6f);
    for (int64_t i = 0; i < n; i++) {
        ck_assert_float_eq(g1[i], g0[i] * coef);
        ck_assert_float_eq(p1[i], p0[i] - g1[i]);
        after += (double)g1[i] * g1[i];
    }
    ck_assert_double_le(fabs(sqrt(after) - norm / 4.0), 1e-5 * norm);

    /* 0 turns clipping off; negative and non-finite bounds are refused. */
    ck_assert_int_eq(dng_optim_set_clip_norm(o, 0.0f), DNG_OK);
    ck_assert_int_eq(dng_optim_set_clip_norm(o, -1.0f),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "max_norm"));
    ck_assert_int_eq(dng_optim_set_clip_norm(o, INFINITY),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_optim_set_clip_norm(NULL, 1.0f),
                     DNG_ERR_INVALID_ARGUMENT);
    memcpy(p0, p1, (size_t)n * sizeof(float));
    set_grads(net, 0, 2.0f);
    ck_assert_int_eq(dng_optim_step(o, net), DNG_OK);
    gather(net->params, net->nparams, p1);
    for (int64_t i = 0; i < n; i++)
        ck_assert_float_eq(p1[i], p0[i] - g0[i]);
    free(p0);
    free(g0);
    free(p1);
    free(g1);
    dng_optim_destroy(o);
    dng_net_destroy(net);
}
END_TEST

/* ---- weight decay: L2 in the gradient against decoupled --------------- */

START_TEST(test_weight_decay)
{
    dng_net *na = tiny_net(3), *nw = tiny_net(3), *ns = tiny_net(3);
    dng_optim *adam = dng_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.1f);
    dng_optim *adamw = dng_adamw(0.01f, 0.9f, 0.999f, 1e-8f, 0.1f);
    dng_optim *sgd = dng_sgd(0.5f, 0.0f, 0, 0.1f);
    int64_t n = total_params(na);
    float *p0 = malloc((size_t)n * sizeof(float));
    float *pa = malloc((size_t)n * sizeof(float));
    float *pw = malloc((size_t)n * sizeof(float));
    float *ps = malloc((size_t)n * sizeof(float));
    const float shrink = (float)(1.0 - (double)0.01f * (double)0.1f);
    gather(na->params, na->nparams, p0);
    /* Zero gradients: the decay alone moves the parameters. */
    ck_assert_int_eq(dng_optim_step(adam, na), DNG_OK);
    ck_assert_int_eq(dng_optim_step(adamw, nw), DNG_OK);
    ck_assert_int_eq(dng_optim_step(sgd, ns), DNG_OK);
    gather(na->params, na->nparams, pa);
    gather(nw->params, nw->nparams, pw);
    gather(ns->params, ns->nparams, ps);
    for (int64_t i = 0; i < n; i++) {
        /* AdamW shrinks p by 1 - lr wd and its moments stay zero. */
        ck_assert_float_eq(pw[i], p0[i] * shrink);
        /* Adam's first step normalises the L2 term: p - lr sign(p). */
        ck_assert_double_le(fabs(pa[i] - (p0[i] - 0.01 * copysign(1.0,
                                                                 p0[i]))),
                            1e-6);
        /* SGD: p - lr wd p. */
        ck_assert_double_le(fabs(ps[i] - p0[i] * (1.0 - 0.05)), 1e-7);
    }
    free(p0);
    free(pa);
    free(pw);
    free(ps);
    dng_optim_destroy(adam);
    dng_optim_destroy(adamw);
    dng_optim_destroy(sgd);
    dng_net_destroy(na);
    dng_net_destroy(nw);
    dng_net_destroy(ns);
}
END_TEST

/* ---- failures leave everything as it was ------------------------------ */

static void snapshot_state(const dng_optim *o, dng__wbuf *w)
{
    memset(w, 0, sizeof *w);
    ck_assert_int_eq(dng__optim_write_state(w, o), DNG_OK);
}

START_TEST(test_non_finite_gradient)
{
    const float bad[2] = {NAN, -INFINITY};
    for (int b = 0; b < 2; b++) {
        dng_net *net = tiny_net(4);
        dng_optim *o = dng_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.0f);
        int64_t n = total_params(net);
        float *p0 = malloc((size_t)n * sizeof(float));
        float *p1 = malloc((size_t)n * sizeof(float));
        float *g0 = malloc((size_t)n * sizeof(float));
        float *g1 = malloc((size_t)n * sizeof(float));
        dng__wbuf s0, s1;
        ck_assert_int_eq(dng_optim_set_clip_norm(o, 0.1f), DNG_OK);
        for (int k = 0; k < 2; k++) {
            set_grads(net, k, 1.0f);
            ck_assert_int_eq(dng_optim_step(o, net), DNG_OK);
        }
        set_grads(net, 2, 1.0f);
        net->grads[1]->data[3] = bad[b];
        gather(net->params, net->nparams, p0);
        gather(net->grads, net->nparams, g0);
        snapshot_state(o, &s0);
        ck_assert_int_eq(dng_optim_step(o, net), DNG_ERR_NUMERIC);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "0.bias"));
        gather(net->params, net->nparams, p1);
        gather(net->grads, net->nparams, g1);
        snapshot_state(o, &s1);
        /* Parameters, gradients (not clipped either) and moments. */
        ck_assert_int_eq(memcmp(p0, p1, (size_t)n * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(g0, g1, (size_t)n * sizeof(float)), 0);
        ck_assert_uint_eq(s0.len, s1.len);
        ck_assert_int_eq(memcmp(s0.data, s1.data, s0.len), 0);
        ck_assert_int_eq(dng__optim_steps(o), 2);
        dng__wbuf_free(&s0);
        dng__wbuf_free(&s1);
        free(p0);
        free(p1);
        free(g0);
        free(g1);
        dng_optim_destroy(o);
        dng_net_destroy(net);
    }
}
END_TEST

START_TEST(test_ownership)
{
    dng_net *a = tiny_net(5), *b = tiny_net(5);
    dng_optim *o = dng_sgd(0.1f, 0.9f, 0, 0.0f);
    float keep;
    ck_assert_ptr_null(dng__optim_owner(o));
    set_grads(a, 0, 1.0f);
    set_grads(b, 0, 1.0f);
    /* A first step with a bad gradient binds nothing. */
    b->grads[0]->data[0] = NAN;
    ck_assert_int_eq(dng_optim_step(o, b), DNG_ERR_NUMERIC);
    ck_assert_ptr_null(dng__optim_owner(o));
    b->grads[0]->data[0] = 0.5f;
    ck_assert_int_eq(dng_optim_step(o, a), DNG_OK);
    ck_assert_ptr_eq(dng__optim_owner(o), a);
    keep = b->params[0]->data[0];
    ck_assert_int_eq(dng_optim_step(o, b), DNG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_optim_step"));
    ck_assert_float_eq(b->params[0]->data[0], keep);
    /* A layer without parameters changes nothing the optimizer holds; one
     * with parameters does. */
    ck_assert_int_eq(dng_net_add(a, dng_activation(DNG_ACT_RELU, 0)),
                     DNG_OK);
    ck_assert_int_eq(dng_optim_step(o, a), DNG_OK);
    ck_assert_int_eq(dng_net_add(a, dng_dense(2, 3)), DNG_OK);
    ck_assert_int_eq(dng_optim_step(o, a), DNG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "6 parameter tensors"));
    ck_assert_int_eq(dng_optim_step(NULL, a), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_optim_step(o, NULL), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "net"));
    dng_optim_destroy(o);
    dng_optim_destroy(NULL);
    dng_net_destroy(a);
    dng_net_destroy(b);
}
END_TEST

START_TEST(test_hyper_parameters)
{
    const struct {
        dng_optim *opt;
        const char *word;
    } bad[] = {
        {dng_sgd(0.0f, 0.0f, 0, 0.0f), "lr"},
        {dng_sgd(-0.1f, 0.0f, 0, 0.0f), "lr"},
        {dng_sgd(NAN, 0.0f, 0, 0.0f), "lr"},
        {dng_sgd(INFINITY, 0.0f, 0, 0.0f), "lr"},
        {dng_sgd(0.1f, -0.5f, 0, 0.0f), "momentum"},
        {dng_sgd(0.1f, NAN, 0, 0.0f), "momentum"},
        {dng_sgd(0.1f, 0.0f, 1, 0.0f), "nesterov"},
        {dng_sgd(0.1f, 0.9f, 2, 0.0f), "nesterov"},
        {dng_sgd(0.1f, 0.9f, 0, -1e-4f), "weight_decay"},
        {dng_adam(0.1f, 1.0f, 0.999f, 1e-8f, 0.0f), "beta1"},
        {dng_adam(0.1f, -0.1f, 0.999f, 1e-8f, 0.0f), "beta1"},
        {dng_adam(0.1f, 0.9f, 1.0f, 1e-8f, 0.0f), "beta2"},
        {dng_adam(0.1f, 0.9f, NAN, 1e-8f, 0.0f), "beta2"},
        {dng_adam(0.1f, 0.9f, 0.999f, 0.0f, 0.0f), "eps"},
        {dng_adamw(0.1f, 0.9f, 0.999f, 1e-8f, INFINITY), "weight_decay"},
        {dng_adamw(-1.0f, 0.9f, 0.999f, 1e-8f, 0.0f), "lr"},
        {dng_rmsprop(0.1f, 1.0f, 1e-8f, 0.0f, 0.0f), "alpha"},
        {dng_rmsprop(0.1f, 0.99f, -1e-8f, 0.0f, 0.0f), "eps"},
        {dng_rmsprop(0.1f, 0.99f, 1e-8f, -0.9f, 0.0f), "momentum"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(bad[i].opt == NULL, "case %zu accepted", i);
    /* Each message names its argument; check them one at a time since the
     * array above was built in one go. */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dng_optim *o = NULL;
        switch (i) {
        case 4:
            o = dng_sgd(0.1f, -0.5f, 0, 0.0f);
            break;
        case 6:
            o = dng_sgd(0.1f, 0.0f, 1, 0.0f);
            break;
        case 11:
            o = dng_adam(0.1f, 0.9f, 1.0f, 1e-8f, 0.0f);
            break;
        case 16:
            o = dng_rmsprop(0.1f, 1.0f, 1e-8f, 0.0f, 0.0f);
            break;
        default:
            continue;
        }
        ck_assert_ptr_null(o);
        ck_assert_msg(strstr(dng_last_error(), bad[i].word) != NULL,
                      "case %zu: %s", i, dng_last_error());
    }
    {
        dng_optim *o = dng_adam(0.1f, 0.0f, 0.0f, 1e-8f, 0.0f);
        ck_assert_ptr_nonnull(o); /* betas of 0 are allowed */
        ck_assert_int_eq(dng_optim_set_lr(o, 0.0f),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert_int_eq(dng_optim_set_lr(o, NAN),
                         DNG_ERR_INVALID_ARGUMENT);
        ck_assert_float_eq(dng_optim_get_lr(o), 0.1f);
        ck_assert_int_eq(dng_optim_set_lr(NULL, 0.1f),
                         DNG_ERR_INVALID_ARGUMENT);
        dng_optim_destroy(o);
    }
}
END_TEST

/* ---- serialised state ------------------------------------------------- */

START_TEST(test_state_round_trip)
{
    const variant *v = &variants[_i];
    variant other = *v;
    dng_net *a = tiny_net(6), *b = tiny_net(60);
    dng_optim *oa = make_opt(v), *ob, *oc;
    dng__wbuf w = {0}, wa = {0}, wb = {0};
    dng__rbuf r;
    int64_t n = total_params(a);
    float *pa = malloc((size_t)n * sizeof(float));
    float *pb = malloc((size_t)n * sizeof(float));
    for (int k = 0; k < 3; k++) {
        set_grads(a, k, 1.0f);
        ck_assert_int_eq(dng_optim_step(oa, a), DNG_OK);
        ck_assert_int_eq(dng_optim_schedule_step(oa), DNG_OK);
    }
    ck_assert_int_eq(dng__optim_write_state(&w, oa), DNG_OK);

    /* A fresh optimizer of the same kind with other settings, on another
     * network that receives a's weights: after restoring, both continue
     * bit for bit alike. */
    other.lr *= 3.0f;
    other.momentum = v->momentum > 0 ? 0.0f : 0.3f;
    other.nesterov = 0;
    other.sched = DNG_SCHED_CONSTANT;
    other.clip = 0.0f;
    ob = make_opt(&other);
    oc = make_opt(&other);
    ck_assert_int_eq(dng_net_copy_weights(b, a), DNG_OK);

    /* Checking only: nothing changes but the read position. */
    r = (dng__rbuf){.data = w.data, .len = w.len};
    ck_assert_int_eq(dng__optim_read_state(&r, oc, b, false), DNG_OK);
    ck_assert_uint_eq(r.pos, w.len);
    ck_assert_ptr_null(dng__optim_owner(oc));
    ck_assert_int_eq(dng__optim_steps(oc), 0);
    ck_assert_float_eq(dng_optim_get_lr(oc), other.lr);

    r = (dng__rbuf){.data = w.data, .len = w.len};
    ck_assert_int_eq(dng__optim_read_state(&r, ob, b, true), DNG_OK);
    ck_assert_uint_eq(r.pos, w.len);
    ck_assert_ptr_eq(dng__optim_owner(ob), b);
    ck_assert_int_eq(dng__optim_steps(ob), 3);
    ck_assert_float_eq(dng_optim_get_lr(ob), dng_optim_get_lr(oa));
    for (int k = 3; k < 7; k++) {
        set_grads(a, k, 1.0f);
        set_grads(b, k, 1.0f);
        ck_assert_int_eq(dng_optim_step(oa, a), DNG_OK);
        ck_assert_int_eq(dng_optim_step(ob, b), DNG_OK);
        dng_optim_schedule_step(oa);
        dng_optim_schedule_step(ob);
    }
    gather(a->params, a->nparams, pa);
    gather(b->params, b->nparams, pb);
    ck_assert_int_eq(memcmp(pa, pb, (size_t)n * sizeof(float)), 0);
    /* The states are identical too, byte for byte. */
    ck_assert_int_eq(dng__optim_write_state(&wa, oa), DNG_OK);
    ck_assert_int_eq(dng__optim_write_state(&wb, ob), DNG_OK);
    ck_assert_uint_eq(wa.len, wb.len);
    ck_assert_int_eq(memcmp(wa.data, wb.data, wa.len), 0);
    /* And b now belongs to ob. */
    ck_assert_int_eq(dng_optim_step(ob, a), DNG_ERR_STATE);

    dng__wbuf_free(&w);
    dng__wbuf_free(&wa);
    dng__wbuf_free(&wb);
    free(pa);
    free(pb);
    dng_optim_destroy(oa);
    dng_optim_destroy(ob);
    dng_optim_destroy(oc);
    dng_net_destroy(a);
    dng_net_destroy(b);
}
END_TEST

START_TEST(test_state_unbound)
{
    /* Saved before the first step: restores settings and stays free to
     * bind to any network. */
    dng_optim *a = dng_rmsprop(0.03f, 0.9f, 1e-7f, 0.2f, 0.0f);
    dng_optim *b = dng_rmsprop(0.01f, 0.99f, 1e-8f, 0.0f, 0.0f);
    dng_net *net = tiny_net(7);
    dng__wbuf w = {0}, w2 = {0};
    dng__rbuf r;
    ck_assert_int_eq(dng_optim_set_schedule(a, DNG_SCHED_STEP, 2, 0.5f, 0),
                     DNG_OK);
    dng_optim_schedule_step(a);
    dng_optim_schedule_step(a);
    ck_assert_int_eq(dng__optim_write_state(&w, a), DNG_OK);
    r = (dng__rbuf){.data = w.data, .len = w.len};
    ck_assert_int_eq(dng__optim_read_state(&r, b, NULL, true), DNG_OK);
    ck_assert_float_eq(dng_optim_get_lr(b), 0.015f);
    ck_assert_ptr_null(dng__optim_owner(b));
    ck_assert_int_eq(dng__optim_write_state(&w2, b), DNG_OK);
    ck_assert_uint_eq(w.len, w2.len);
    ck_assert_int_eq(memcmp(w.data, w2.data, w.len), 0);
    set_grads(net, 0, 1.0f);
    ck_assert_int_eq(dng_optim_step(b, net), DNG_OK);
    ck_assert_ptr_eq(dng__optim_owner(b), net);
    dng__wbuf_free(&w);
    dng__wbuf_free(&w2);
    dng_optim_destroy(a);
    dng_optim_destroy(b);
    dng_net_destroy(net);
}
END_TEST

/* Rewrite the trailing CRC after editing a section, so that the value
 * checks (not the checksum) are what rejects it. */
static void reseal(dng__wbuf *w)
{
    uint32_t c = dng__crc32(0, w->data, w->len - 4);
    for (int i = 0; i < 4; i++)
        w->data[w->len - 4 + (size_t)i] = (uint8_t)(c >> (8 * i));
}

static dng_status read_into(const uint8_t *data, size_t len, dng_optim *o,
                            dng_net *net, bool apply)
{
    dng__rbuf r = {.data = data, .len = len};
    return dng__optim_read_state(&r, o, net, apply);
}

START_TEST(test_state_corrupt)
{
    dng_net *net = tiny_net(8);
    dng_optim *o = dng_adam(0.01f, 0.9f, 0.999f, 1e-8f, 0.0f);
    dng_optim *fresh = dng_adam(0.02f, 0.9f, 0.999f, 1e-8f, 0.0f);
    dng_optim *sgd = dng_sgd(0.1f, 0.9f, 0, 0.0f);
    dng__wbuf w = {0};
    uint8_t *copy;
    float neg = -1.0f, nan = NAN;
    int64_t wrong_in = 3;
    dng_net *wrong;
    for (int k = 0; k < 2; k++) {
        set_grads(net, k, 1.0f);
        ck_assert_int_eq(dng_optim_step(o, net), DNG_OK);
    }
    ck_assert_int_eq(dng__optim_write_state(&w, o), DNG_OK);
    copy = malloc(w.len);

    /* Every single-bit flip anywhere is refused, in either mode, and the
     * optimizer is untouched. */
    for (size_t i = 0; i < w.len; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            dng_status s1, s2;
            memcpy(copy, w.data, w.len);
            copy[i] ^= (uint8_t)(1u << bit);
            s1 = read_into(copy, w.len, fresh, net, false);
            s2 = read_into(copy, w.len, fresh, net, true);
            ck_assert_msg(s1 == DNG_ERR_FORMAT || s1 == DNG_ERR_SHAPE,
                          "byte %zu bit %d: status %d", i, bit, s1);
            ck_assert_int_eq(s1, s2);
        }
    ck_assert_ptr_null(dng__optim_owner(fresh));
    ck_assert_int_eq(dng__optim_steps(fresh), 0);
    ck_assert_float_eq(dng_optim_get_lr(fresh), 0.02f);

    /* Every truncation is refused. */
    for (size_t len = 0; len < w.len; len++)
        ck_assert_int_eq(read_into(w.data, len, fresh, net, true),
                         DNG_ERR_FORMAT);
    ck_assert_ptr_null(dng__optim_owner(fresh));

    /* A well-sealed section with impossible moments: the last float is the
     * last parameter's second moment. */
    memcpy(copy, w.data, w.len);
    memcpy(&w.data[w.len - 8], &neg, 4);
    reseal(&w);
    ck_assert_int_eq(read_into(w.data, w.len, fresh, net, true),
                     DNG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "negative"));
    memcpy(&w.data[w.len - 8], &nan, 4);
    reseal(&w);
    ck_assert_int_eq(read_into(w.data, w.len, fresh, net, true),
                     DNG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "non-finite"));
    memcpy(w.data, copy, w.len);
    ck_assert_ptr_null(dng__optim_owner(fresh));

    /* Another kind of optimizer, another network, no network. */
    ck_assert_int_eq(read_into(w.data, w.len, sgd, net, true),
                     DNG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "Adam"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "SGD"));
    wrong = dng_net_create(1, &wrong_in);
    dng_net_add(wrong, dng_dense(3, 5));
    dng_net_add(wrong, dng_dense(5, 2));
    ck_assert_int_eq(read_into(w.data, w.len, fresh, wrong, true),
                     DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "0.weight"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[5, 3]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[4, 3]"));
    ck_assert_int_eq(read_into(w.data, w.len, fresh, NULL, true),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(read_into(w.data, w.len, NULL, net, true),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_ptr_null(dng__optim_owner(fresh));
    ck_assert_int_eq(dng__optim_write_state(NULL, o),
                     DNG_ERR_INVALID_ARGUMENT);

    /* The intact section still loads after all that. */
    ck_assert_int_eq(read_into(w.data, w.len, fresh, net, true), DNG_OK);
    ck_assert_int_eq(dng__optim_steps(fresh), 2);
    ck_assert_float_eq(dng_optim_get_lr(fresh), 0.01f);

    free(copy);
    dng__wbuf_free(&w);
    dng_optim_destroy(o);
    dng_optim_destroy(fresh);
    dng_optim_destroy(sgd);
    dng_net_destroy(net);
    dng_net_destroy(wrong);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_rules, 0, NVARIANTS);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_clipping);
    tcase_add_test(tc, test_weight_decay);
    tcase_add_test(tc, test_non_finite_gradient);
    tcase_add_test(tc, test_ownership);
    tcase_add_test(tc, test_hyper_parameters);
    tcase_add_loop_test(tc, test_state_round_trip, 0, NVARIANTS);
    tcase_add_test(tc, test_state_unbound);
    tcase_add_test(tc, test_state_corrupt);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dng_test_run(optim_suite());
}
