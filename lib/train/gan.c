/* gan.c: the adversarial-training loop. One step, as in
 * design/ARCHITECTURE.md: real batch -> D -> loss(real) -> D backward;
 * noise -> G -> D -> loss(fake) -> D backward; D step; then (every k-th
 * step) noise -> G -> D -> generator loss -> D backward to its input ->
 * G backward -> G step. Buffers are sized by the first step and reused. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "dataset-impl.h"
#include "gan-impl.h"
#include "io-impl.h"
#include "modelfile-impl.h"
#include "optim-impl.h"

/* Largest batch dng_gan_sample() pushes through the generator at once. */
#define DNG__SAMPLE_CHUNK 256

struct dng_gan {
    dng_net *g, *d;
    dng_optim *g_opt, *d_opt;

    dng_gan_loss loss;
    int d_steps;
    float real_label;
    dng_noise noise;
    float ema_decay;
    float clip;
    int64_t report_interval;

    dng_rng *rng;
    int64_t steps;    /* discriminator updates */
    int64_t g_steps;  /* generator updates */
    float last_g_loss;

    int64_t latent;
    int g_ndim;       /* generator's per-sample output shape */
    int64_t g_shape[DNG_MAX_DIMS];

    dng_tensor *z;    /* [B, latent] noise */
    dng_tensor *dy;   /* [B, 1...] gradient at D's output */
    dng_net *ema;     /* moving average of G, or NULL */
    int64_t *perm;    /* dng_gan_train's sample order */
    int64_t perm_len;
};

/* ---- settings ---------------------------------------------------------- */

DNG_API dng_gan *dng_gan_create(dng_net *generator, dng_net *discriminator,
                                dng_optim *g_opt, dng_optim *d_opt)
{
    dng_gan *gan;
    int dnd;
    int64_t dshape[DNG_MAX_DIMS], dnumel = 1;
    char a[160], b[160];
    if (!generator || !discriminator || !g_opt || !d_opt) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_create: %s is NULL",
                   !generator ? "generator" : !discriminator ? "discriminator"
                   : !g_opt ? "g_opt" : "d_opt");
        return NULL;
    }
    if (generator == discriminator || g_opt == d_opt) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_create: the generator "
                   "and discriminator need distinct networks and "
                   "optimizers");
        return NULL;
    }
    if (generator->in_ndim != 1) {
        dng__error(DNG_ERR_SHAPE, "dng_gan_create: the generator takes "
                   "samples of shape %s; it must take latent vectors [L]",
                   dng__shape_str(a, sizeof a, generator->in_ndim,
                                  generator->in_shape));
        return NULL;
    }
    gan = dng__calloc(1, sizeof *gan, "dng_gan_create");
    if (!gan)
        return NULL;
    dng__net_shape_at(generator, generator->nlayers - 1, &gan->g_ndim,
                      gan->g_shape);
    if (gan->g_ndim != discriminator->in_ndim ||
        memcmp(gan->g_shape, discriminator->in_shape,
               (size_t)gan->g_ndim * sizeof(int64_t)) != 0) {
        dng__error(DNG_ERR_SHAPE, "dng_gan_create: the generator makes "
                   "samples of shape %s but the discriminator takes %s",
                   dng__shape_str(a, sizeof a, gan->g_ndim, gan->g_shape),
                   dng__shape_str(b, sizeof b, discriminator->in_ndim,
                                  discriminator->in_shape));
        dng__free(gan);
        return NULL;
    }
    dng__net_shape_at(discriminator, discriminator->nlayers - 1, &dnd,
                      dshape);
    for (int i = 0; i < dnd; i++)
        dnumel *= dshape[i];
    if (dnumel != 1) {
        dng__error(DNG_ERR_SHAPE, "dng_gan_create: the discriminator must "
                   "give one value per sample, not %s",
                   dng__shape_str(a, sizeof a, dnd, dshape));
        dng__free(gan);
        return NULL;
    }
    gan->rng = dng_rng_create(0);
    if (!gan->rng) {
        dng__free(gan);
        return NULL;
    }
    gan->g = generator;
    gan->d = discriminator;
    gan->g_opt = g_opt;
    gan->d_opt = d_opt;
    gan->loss = DNG_GAN_LOSS_BCE;
    gan->d_steps = 1;
    gan->real_label = 1.0f;
    gan->noise = DNG_NOISE_NORMAL;
    gan->clip = 0.01f;
    gan->report_interval = 100;
    gan->latent = generator->in_shape[0];
    gan->last_g_loss = NAN;
    return gan;
}

DNG_API void dng_gan_destroy(dng_gan *gan)
{
    if (!gan)
        return;
    dng_tensor_destroy(gan->z);
    dng_tensor_destroy(gan->dy);
    dng_net_destroy(gan->ema);
    dng_rng_destroy(gan->rng);
    dng__free(gan->perm);
    dng__free(gan);
}

DNG_API dng_status dng_gan_set_loss(dng_gan *gan, dng_gan_loss loss)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_loss");
    if ((int)loss < DNG_GAN_LOSS_BCE || (int)loss > DNG_GAN_LOSS_WASSERSTEIN)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_loss: unknown loss %d", (int)loss);
    gan->loss = loss;
    return DNG_OK;
}

DNG_API dng_status dng_gan_set_d_steps(dng_gan *gan, int k)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_d_steps");
    if (k < 1 || k > 100)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_d_steps: k = %d is outside 1..100", k);
    gan->d_steps = k;
    return DNG_OK;
}

DNG_API dng_status dng_gan_set_label_smoothing(dng_gan *gan,
                                               float real_label)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_label_smoothing");
    if (!(real_label > 0.0f && real_label <= 1.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_label_smoothing: real_label = %g is "
                          "outside (0, 1]", (double)real_label);
    gan->real_label = real_label;
    return DNG_OK;
}

DNG_API dng_status dng_gan_set_noise(dng_gan *gan, dng_noise noise)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_noise");
    if ((int)noise != DNG_NOISE_NORMAL && (int)noise != DNG_NOISE_UNIFORM)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_noise: unknown noise %d", (int)noise);
    gan->noise = noise;
    return DNG_OK;
}

/* A network with the generator's architecture, for the moving average. */
static dng_net *clone_net(const dng_net *net, const char *func)
{
    dng__wbuf w = {0};
    dng__rbuf r;
    dng_net *copy;
    dng_status s = dng__net_serialize(&w, net);
    if (s != DNG_OK || w.failed) {
        dng__wbuf_free(&w);
        if (s == DNG_OK)
            dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: cannot copy the "
                       "generator", func);
        return NULL;
    }
    r = (dng__rbuf){.data = w.data, .len = w.len};
    copy = dng__net_deserialize(&r, func);
    dng__wbuf_free(&w);
    return copy;
}

DNG_API dng_status dng_gan_set_ema(dng_gan *gan, float decay)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_ema");
    if (!(decay >= 0.0f && decay < 1.0f))
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_ema: decay = %g is outside [0, 1)",
                          (double)decay);
    if (decay == 0.0f) {
        dng_net_destroy(gan->ema);
        gan->ema = NULL;
    } else if (!gan->ema) {
        /* The average starts from the generator's current weights. */
        gan->ema = clone_net(gan->g, "dng_gan_set_ema");
        if (!gan->ema)
            return dng__error_prefix(DNG_ERR_OUT_OF_MEMORY,
                                     "dng_gan_set_ema");
        dng_net_set_training(gan->ema, 0);
    }
    gan->ema_decay = decay;
    return DNG_OK;
}

DNG_API dng_status dng_gan_set_clip(dng_gan *gan, float clip)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_clip");
    if (!(clip > 0.0f) || !isfinite(clip))
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_clip: clip = %g must be positive",
                          (double)clip);
    gan->clip = clip;
    return DNG_OK;
}

DNG_API dng_status dng_gan_set_seed(dng_gan *gan, uint64_t seed)
{
    uint64_t st[4] = {seed, 0, 4, 0};
    DNG__CHECK_NULL(gan, "dng_gan_set_seed");
    return dng_rng_set_state(gan->rng, st);
}

DNG_API dng_status dng_gan_set_report_interval(dng_gan *gan, int64_t steps)
{
    DNG__CHECK_NULL(gan, "dng_gan_set_report_interval");
    if (steps < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_gan_set_report_interval: steps = %" PRId64
                          " must be positive", steps);
    gan->report_interval = steps;
    return DNG_OK;
}

DNG_API int64_t dng_gan_steps(const dng_gan *gan)
{
    if (!gan) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_steps: gan is NULL");
        return -1;
    }
    return gan->steps;
}

/* ---- losses on D's logits ---------------------------------------------- */

/* Which term of the adversarial loss is being computed. */
enum gan_term { TERM_REAL, TERM_FAKE, TERM_GEN };

/* Loss (mean over the batch) of D's outputs y for one term, with dL/dy
 * into g (each already divided by n). */
static double gan_term_loss(const dng_gan *gan, enum gan_term term,
                            const float *y, float *g, int64_t n)
{
    double sum = 0.0;
    const float inv = 1.0f / (float)n;
    switch (gan->loss) {
    case DNG_GAN_LOSS_BCE: {
        /* BCE(sigmoid(y), t) = max(y, 0) - y t + log(1 + exp(-|y|)) */
        float t = term == TERM_REAL ? gan->real_label
                  : term == TERM_FAKE ? 0.0f : 1.0f;
        for (int64_t i = 0; i < n; i++) {
            float x = y[i];
            float sig = x >= 0 ? 1.0f / (1.0f + expf(-x))
                               : expf(x) / (1.0f + expf(x));
            sum += (double)(x > 0 ? x : 0) - (double)x * t +
                   log1p(exp(-fabs((double)x)));
            g[i] = (sig - t) * inv;
        }
        break;
    }
    case DNG_GAN_LOSS_HINGE:
        for (int64_t i = 0; i < n; i++) {
            float x = y[i];
            if (term == TERM_REAL) { /* relu(1 - y) */
                sum += x < 1.0f ? 1.0 - x : 0.0;
                g[i] = x < 1.0f ? -inv : 0.0f;
            } else if (term == TERM_FAKE) { /* relu(1 + y) */
                sum += x > -1.0f ? 1.0 + x : 0.0;
                g[i] = x > -1.0f ? inv : 0.0f;
            } else { /* -y */
                sum -= x;
                g[i] = -inv;
            }
        }
        break;
    case DNG_GAN_LOSS_LSGAN: {
        /* (y - t)^2 / 2 */
        float t = term == TERM_REAL ? gan->real_label
                  : term == TERM_FAKE ? 0.0f : 1.0f;
        for (int64_t i = 0; i < n; i++) {
            float e = y[i] - t;
            sum += 0.5 * (double)e * e;
            g[i] = e * inv;
        }
        break;
    }
    case DNG_GAN_LOSS_WASSERSTEIN: {
        /* D minimises D(fake) - D(real); G minimises -D(fake) */
        float sign = term == TERM_FAKE ? 1.0f : -1.0f;
        for (int64_t i = 0; i < n; i++) {
            sum += sign * (double)y[i];
            g[i] = sign * inv;
        }
        break;
    }
    }
    return sum / (double)n;
}

/* Mean D output as reported: a probability for BCE, raw otherwise. */
static double mean_output(const dng_gan *gan, const float *y, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += gan->loss == DNG_GAN_LOSS_BCE ? 1.0 / (1.0 + exp(-(double)y[i]))
                                           : (double)y[i];
    return s / (double)n;
}

/* ---- one step ---------------------------------------------------------- */

static dng_status ensure_buffers(dng_gan *gan, int64_t n)
{
    int dnd;
    int64_t dshape[DNG_MAX_DIMS];
    dng_status s = dng__tensor_ensure(&gan->z, n, 1, &gan->latent);
    if (s != DNG_OK)
        return s;
    dng__net_shape_at(gan->d, gan->d->nlayers - 1, &dnd, dshape);
    return dng__tensor_ensure(&gan->dy, n, dnd, dshape);
}

static void draw_noise(dng_gan *gan, dng_rng *rng, dng_tensor *z)
{
    if (gan->noise == DNG_NOISE_UNIFORM)
        dng_rng_uniform(rng, z->data, z->numel, -1.0f, 1.0f);
    else
        dng_rng_normal(rng, z->data, z->numel, 0.0f, 1.0f);
}

/* One pass of D on batch x for one term: forward, loss, backward into
 * D's parameter gradients. */
static dng_status d_term(dng_gan *gan, enum gan_term term,
                         const dng_tensor *x, double *loss, double *mean)
{
    dng_tensor *y;
    dng_status s = dng_net_forward(gan->d, x, &y);
    if (s != DNG_OK)
        return s;
    *loss = gan_term_loss(gan, term, y->data, gan->dy->data, y->numel);
    *mean = mean_output(gan, y->data, y->numel);
    if (!isfinite(*loss))
        return dng__error(DNG_ERR_NUMERIC, "the discriminator's loss on %s "
                          "samples is not finite (%g)",
                          term == TERM_REAL ? "real" : "generated", *loss);
    return dng_net_backward(gan->d, gan->dy, NULL);
}

dng_status dng__gan_generator_grads(dng_gan *gan, const dng_tensor *z,
                                    float *loss)
{
    dng_tensor *fake, *y, *dfake;
    dng_status s;
    double l;
    if ((s = ensure_buffers(gan, z->shape[0])) != DNG_OK)
        return s;
    dng_net_zero_grad(gan->g);
    if ((s = dng_net_forward(gan->g, z, &fake)) != DNG_OK)
        return s;
    /* Through D without touching it: no running-statistics or
     * power-iteration updates, no parameter gradients. */
    dng__net_set_freeze_state(gan->d, true);
    dng__net_set_skip_param_grad(gan->d, true);
    s = dng_net_forward(gan->d, fake, &y);
    if (s == DNG_OK) {
        l = gan_term_loss(gan, TERM_GEN, y->data, gan->dy->data, y->numel);
        if (!isfinite(l))
            s = dng__error(DNG_ERR_NUMERIC, "the generator's loss is not "
                           "finite (%g)", l);
        else
            s = dng_net_backward(gan->d, gan->dy, &dfake);
    }
    dng__net_set_freeze_state(gan->d, false);
    dng__net_set_skip_param_grad(gan->d, false);
    if (s != DNG_OK)
        return s;
    if ((s = dng_net_backward(gan->g, dfake, NULL)) != DNG_OK)
        return s;
    *loss = (float)l;
    return DNG_OK;
}

/* ema = decay ema + (1 - decay) w; running statistics are copied. */
static void update_ema(dng_gan *gan)
{
    const float a = gan->ema_decay, b = 1.0f - gan->ema_decay;
    for (int i = 0; i < gan->g->nparams; i++) {
        float *e = gan->ema->params[i]->data;
        const float *w = gan->g->params[i]->data;
        for (int64_t j = 0; j < gan->g->params[i]->numel; j++)
            e[j] = a * e[j] + b * w[j];
    }
    for (int i = 0; i < gan->g->nbuffers; i++)
        memcpy(gan->ema->buffers[i]->data, gan->g->buffers[i]->data,
               (size_t)gan->g->buffers[i]->numel * sizeof(float));
}

DNG_API dng_status dng_gan_step(dng_gan *gan, const dng_tensor *real,
                                dng_rng *rng, dng_gan_stats *out)
{
    dng_status s;
    dng_tensor *fake;
    double lr, lf, mr, mf;
    int64_t n;
    DNG__CHECK_NULL(gan, "dng_gan_step");
    DNG__CHECK_NULL(real, "dng_gan_step");
    if (out && out->size < sizeof *out)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_step: "
                          "out->size = %zu; set it to "
                          "sizeof(dng_gan_stats)", out->size);
    if (real->ndim != gan->d->in_ndim + 1 ||
        memcmp(real->shape + 1, gan->d->in_shape,
               (size_t)gan->d->in_ndim * sizeof(int64_t)) != 0) {
        char a[160], b[160];
        return dng__error(DNG_ERR_SHAPE, "dng_gan_step: the real batch has "
                          "shape %s; the discriminator takes [N] + %s",
                          dng__shape_str(a, sizeof a, real->ndim,
                                         real->shape),
                          dng__shape_str(b, sizeof b, gan->d->in_ndim,
                                         gan->d->in_shape));
    }
    if (!rng)
        rng = gan->rng;
    n = real->shape[0];
    if ((s = ensure_buffers(gan, n)) != DNG_OK)
        return dng__error_prefix(s, "dng_gan_step");

    /* Discriminator: real and fake batches pass separately, so batch
     * statistics never mix the two. */
    dng_net_zero_grad(gan->d);
    if ((s = d_term(gan, TERM_REAL, real, &lr, &mr)) != DNG_OK)
        return dng__error_prefix(s, "dng_gan_step");
    draw_noise(gan, rng, gan->z);
    if ((s = dng_net_forward(gan->g, gan->z, &fake)) != DNG_OK)
        return dng__error_prefix(s, "dng_gan_step: generator");
    if ((s = d_term(gan, TERM_FAKE, fake, &lf, &mf)) != DNG_OK)
        return dng__error_prefix(s, "dng_gan_step");
    if ((s = dng_optim_step(gan->d_opt, gan->d)) != DNG_OK)
        return dng__error_prefix(s, "dng_gan_step: discriminator update");
    if (gan->loss == DNG_GAN_LOSS_WASSERSTEIN) {
        const float c = gan->clip;
        for (int i = 0; i < gan->d->nparams; i++) {
            float *p = gan->d->params[i]->data;
            for (int64_t j = 0; j < gan->d->params[i]->numel; j++)
                p[j] = p[j] < -c ? -c : p[j] > c ? c : p[j];
        }
    }
    gan->steps++;

    /* Generator, every d_steps discriminator updates. */
    if (gan->steps % gan->d_steps == 0) {
        float lg;
        draw_noise(gan, rng, gan->z);
        if ((s = dng__gan_generator_grads(gan, gan->z, &lg)) != DNG_OK)
            return dng__error_prefix(s, "dng_gan_step: generator update");
        if ((s = dng_optim_step(gan->g_opt, gan->g)) != DNG_OK)
            return dng__error_prefix(s, "dng_gan_step: generator update");
        gan->g_steps++;
        gan->last_g_loss = lg;
        if (gan->ema)
            update_ema(gan);
    }
    if (out) {
        out->d_loss = (float)(lr + lf);
        out->g_loss = gan->last_g_loss;
        out->d_real = (float)mr;
        out->d_fake = (float)mf;
        out->step = gan->steps;
    }
    return DNG_OK;
}

/* ---- sampling ---------------------------------------------------------- */

static dng_status check_out(const char *func, const dng_gan *gan, int64_t n,
                            const dng_tensor *out)
{
    bool ok = out->ndim == gan->g_ndim + 1 && out->shape[0] == n &&
              memcmp(out->shape + 1, gan->g_shape,
                     (size_t)gan->g_ndim * sizeof(int64_t)) == 0;
    if (!ok) {
        char a[160], b[160];
        return dng__error(DNG_ERR_SHAPE, "%s: out has shape %s; expected "
                          "[%" PRId64 "] + %s", func,
                          dng__shape_str(a, sizeof a, out->ndim, out->shape),
                          n, dng__shape_str(b, sizeof b, gan->g_ndim,
                                            gan->g_shape));
    }
    return DNG_OK;
}

/* Run the sampling network (the average when enabled) on z in evaluation
 * mode, chunk by chunk, into out. */
static dng_status generate(dng_gan *gan, const float *z, int64_t n,
                           float *out, const char *func)
{
    dng_net *net = gan->ema ? gan->ema : gan->g;
    bool was_training = net->training;
    int64_t per = 1, done = 0;
    dng_status s = DNG_OK;
    for (int i = 0; i < gan->g_ndim; i++)
        per *= gan->g_shape[i];
    dng_net_set_training(net, 0);
    while (done < n && s == DNG_OK) {
        int64_t k = n - done < DNG__SAMPLE_CHUNK ? n - done
                                                 : DNG__SAMPLE_CHUNK;
        int64_t shape[2] = {k, gan->latent};
        dng_tensor zt = {.ndim = 2, .numel = k * gan->latent,
                         .data = (float *)z + done * gan->latent,
                         .wrapped = true};
        dng_tensor *y;
        memcpy(zt.shape, shape, sizeof shape);
        s = dng_net_forward(net, &zt, &y);
        if (s == DNG_OK)
            memcpy(out + done * per, y->data,
                   (size_t)(k * per) * sizeof(float));
        done += k;
    }
    dng_net_set_training(net, was_training);
    return s == DNG_OK ? DNG_OK : dng__error_prefix(s, "%s", func);
}

DNG_API dng_status dng_gan_generate(dng_gan *gan, const dng_tensor *z,
                                    dng_tensor *out)
{
    dng_status s;
    DNG__CHECK_NULL(gan, "dng_gan_generate");
    DNG__CHECK_NULL(z, "dng_gan_generate");
    DNG__CHECK_NULL(out, "dng_gan_generate");
    if (z->ndim != 2 || z->shape[1] != gan->latent)
        return dng__error(DNG_ERR_SHAPE, "dng_gan_generate: z must be "
                          "[n, %" PRId64 "]", gan->latent);
    if ((s = check_out("dng_gan_generate", gan, z->shape[0], out)) != DNG_OK)
        return s;
    return generate(gan, z->data, z->shape[0], out->data,
                    "dng_gan_generate");
}

DNG_API dng_status dng_gan_sample(dng_gan *gan, int64_t n, dng_rng *rng,
                                  dng_tensor *out)
{
    dng_status s;
    float *z;
    int64_t zn;
    DNG__CHECK_NULL(gan, "dng_gan_sample");
    DNG__CHECK_NULL(out, "dng_gan_sample");
    if (n < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_sample: n = %"
                          PRId64 " must be positive", n);
    if ((s = check_out("dng_gan_sample", gan, n, out)) != DNG_OK)
        return s;
    if (dng__mul_overflow_i64(n, gan->latent, &zn))
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_sample: n is "
                          "too large");
    z = dng__calloc((size_t)zn, sizeof(float), "dng_gan_sample");
    if (!z)
        return DNG_ERR_OUT_OF_MEMORY;
    if (!rng)
        rng = gan->rng;
    {
        dng_tensor zt = {.ndim = 1, .numel = zn, .data = z, .wrapped = true};
        zt.shape[0] = zn;
        draw_noise(gan, rng, &zt);
    }
    s = generate(gan, z, n, out->data, "dng_gan_sample");
    dng__free(z);
    return s;
}

/* ---- training over a dataset ------------------------------------------- */

/* Copy samples idx[0..n) of ds into x, whatever the dataset's kind. */
static dng_status gather(const dng_dataset *ds, const int64_t *idx,
                         int64_t n, dng_tensor *x)
{
    return dng__dataset_gather(ds, idx, 0, n, x->data, NULL);
}

static void stats_add(dng_gan_stats *acc, const dng_gan_stats *s)
{
    acc->d_loss += s->d_loss;
    acc->g_loss += isfinite(s->g_loss) ? s->g_loss : 0.0f;
    acc->d_real += s->d_real;
    acc->d_fake += s->d_fake;
}

DNG_API dng_status dng_gan_train(dng_gan *gan, const dng_dataset *ds,
                                 int epochs, int64_t batch_size,
                                 dng_gan_callback callback, void *user)
{
    int64_t n, batches, since = 0, total_steps;
    int ndim;
    int64_t shape[DNG_MAX_DIMS + 1];
    dng_tensor *x = NULL;
    dng_status s = DNG_OK;
    dng_gan_stats acc = {.size = sizeof acc};
    double t0 = dng__now();
    bool stop = false;
    DNG__CHECK_NULL(gan, "dng_gan_train");
    DNG__CHECK_NULL(ds, "dng_gan_train");
    if (epochs < 1)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_train: epochs "
                          "= %d must be positive", epochs);
    n = dng_dataset_size(ds);
    if (batch_size < 1 || batch_size > n)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_gan_train: "
                          "batch_size = %" PRId64 " is outside 1..%" PRId64
                          " (the dataset's size)", batch_size, n);
    if ((s = dng_dataset_sample_shape(ds, &ndim, shape + 1)) != DNG_OK)
        return s;
    if (ndim != gan->d->in_ndim ||
        memcmp(shape + 1, gan->d->in_shape,
               (size_t)ndim * sizeof(int64_t)) != 0) {
        char a[160], b[160];
        return dng__error(DNG_ERR_SHAPE, "dng_gan_train: the dataset's "
                          "samples have shape %s; the discriminator takes %s",
                          dng__shape_str(a, sizeof a, ndim, shape + 1),
                          dng__shape_str(b, sizeof b, gan->d->in_ndim,
                                         gan->d->in_shape));
    }
    shape[0] = batch_size;
    x = dng_tensor_create(ndim + 1, shape);
    if (!x)
        return dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_gan_train");
    if (gan->perm_len != n) {
        dng__free(gan->perm);
        gan->perm = dng__calloc((size_t)n, sizeof *gan->perm,
                                "dng_gan_train");
        gan->perm_len = gan->perm ? n : 0;
        if (!gan->perm) {
            dng_tensor_destroy(x);
            return DNG_ERR_OUT_OF_MEMORY;
        }
    }
    batches = n / batch_size;
    total_steps = gan->steps + batches * epochs;
    for (int e = 1; e <= epochs && !stop && s == DNG_OK; e++) {
        /* A fresh Fisher-Yates permutation per epoch from the trainer's
         * own generator: resumable from a checkpoint. */
        for (int64_t i = 0; i < n; i++)
            gan->perm[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)dng__rng_below(gan->rng, (uint64_t)i + 1);
            int64_t t = gan->perm[i];
            gan->perm[i] = gan->perm[j];
            gan->perm[j] = t;
        }
        for (int64_t b = 0; b < batches && !stop; b++) {
            dng_gan_stats st = {.size = sizeof st};
            s = gather(ds, gan->perm + b * batch_size, batch_size, x);
            if (s == DNG_OK)
                s = dng_gan_step(gan, x, gan->rng, &st);
            if (s != DNG_OK)
                break;
            stats_add(&acc, &st);
            since++;
            if (since == gan->report_interval ||
                (e == epochs && b == batches - 1)) {
                dng_gan_progress p = {.size = sizeof p};
                p.epoch = e;
                p.epochs = epochs;
                p.step = gan->steps;
                p.steps = total_steps;
                p.stats.size = sizeof p.stats;
                p.stats.d_loss = acc.d_loss / (float)since;
                p.stats.g_loss = acc.g_loss / (float)since;
                p.stats.d_real = acc.d_real / (float)since;
                p.stats.d_fake = acc.d_fake / (float)since;
                p.stats.step = gan->steps;
                p.seconds = dng__now() - t0;
                if (callback && callback(&p, user) != 0)
                    stop = true;
                memset(&acc, 0, sizeof acc);
                acc.size = sizeof acc;
                since = 0;
            }
        }
    }
    dng_tensor_destroy(x);
    return s == DNG_OK ? DNG_OK : dng__error_prefix(s, "dng_gan_train");
}

/* ---- checkpoints ------------------------------------------------------- */

static const char ckpt_magic[8] = {'D', 'N', 'G', 'C', 'K', 'P', 'T', '\0'};
#define DNG__CKPT_VERSION 1u

DNG_API dng_status dng_gan_save_checkpoint(const dng_gan *gan,
                                           const char *path)
{
    dng__wbuf w = {0};
    uint64_t st[4];
    dng_status s;
    DNG__CHECK_NULL(gan, "dng_gan_save_checkpoint");
    DNG__CHECK_NULL(path, "dng_gan_save_checkpoint");
    dng__w_u32(&w, (uint32_t)gan->loss);
    dng__w_u32(&w, (uint32_t)gan->d_steps);
    dng__w_f32(&w, gan->real_label);
    dng__w_u32(&w, (uint32_t)gan->noise);
    dng__w_f32(&w, gan->ema_decay);
    dng__w_f32(&w, gan->clip);
    dng__w_i64(&w, gan->report_interval);
    dng__w_i64(&w, gan->steps);
    dng__w_i64(&w, gan->g_steps);
    dng__w_f32(&w, gan->last_g_loss);
    dng_rng_get_state(gan->rng, st);
    for (int i = 0; i < 4; i++)
        dng__w_u64(&w, st[i]);
    if ((s = dng__net_write_state(&w, gan->g)) != DNG_OK ||
        (s = dng__net_write_state(&w, gan->d)) != DNG_OK ||
        (s = dng__optim_write_state(&w, gan->g_opt)) != DNG_OK ||
        (s = dng__optim_write_state(&w, gan->d_opt)) != DNG_OK)
        goto done;
    dng__w_u8(&w, gan->ema ? 1 : 0);
    if (gan->ema && (s = dng__net_write_state(&w, gan->ema)) != DNG_OK)
        goto done;
    if (w.failed) {
        s = dng__error(DNG_ERR_OUT_OF_MEMORY, "dng_gan_save_checkpoint: "
                       "cannot build the checkpoint in memory");
        goto done;
    }
    s = dng__file_save("dng_gan_save_checkpoint", path, ckpt_magic,
                       DNG__CKPT_VERSION, &w);
done:
    dng__wbuf_free(&w);
    return s;
}

/* Parse a checkpoint payload; with apply false nothing changes, so the
 * whole file is validated before the trainer is touched. */
static dng_status read_checkpoint(dng_gan *gan, dng__rbuf *r, bool apply)
{
    const char *f = "dng_gan_load_checkpoint";
    uint32_t loss, dsteps, noise;
    float real_label, ema_decay, clip, last_g;
    int64_t report, steps, g_steps;
    uint64_t st[4];
    uint8_t has_ema;
    dng_status s;
    dng__r_u32(r, &loss);
    dng__r_u32(r, &dsteps);
    dng__r_f32(r, &real_label);
    dng__r_u32(r, &noise);
    dng__r_f32(r, &ema_decay);
    dng__r_f32(r, &clip);
    dng__r_i64(r, &report);
    dng__r_i64(r, &steps);
    dng__r_i64(r, &g_steps);
    dng__r_f32(r, &last_g);
    for (int i = 0; i < 4; i++)
        dng__r_u64(r, &st[i]);
    if (r->failed)
        return dng__error(DNG_ERR_FORMAT, "%s: the checkpoint is truncated",
                          f);
    if (loss > DNG_GAN_LOSS_WASSERSTEIN || dsteps < 1 || dsteps > 100 ||
        !(real_label > 0.0f && real_label <= 1.0f) || noise > 1 ||
        !(ema_decay >= 0.0f && ema_decay < 1.0f) || !(clip > 0.0f) ||
        report < 1 || steps < 0 || g_steps < 0 || g_steps > steps)
        return dng__error(DNG_ERR_FORMAT, "%s: the checkpoint's settings are "
                          "out of range", f);
    if ((s = dng__net_read_state(r, gan->g, apply, f)) != DNG_OK ||
        (s = dng__net_read_state(r, gan->d, apply, f)) != DNG_OK)
        return s;
    /* The networks' tensors matched the trainer's just above, so moment
     * buffers of other shapes (DNG_ERR_SHAPE from the optimizer) mean a
     * damaged file, not a caller's mistake. */
    for (int k = 0; k < 2; k++)
        if ((s = dng__optim_read_state(r, k ? gan->d_opt : gan->g_opt,
                                       k ? gan->d : gan->g, apply)) !=
            DNG_OK)
            return dng__error_prefix(s == DNG_ERR_SHAPE ? DNG_ERR_FORMAT : s,
                                     "%s: the %s's optimizer", f,
                                     k ? "discriminator" : "generator");
    if (!dng__r_u8(r, &has_ema) || has_ema > 1 ||
        (has_ema != 0) != (ema_decay > 0.0f))
        return dng__error(DNG_ERR_FORMAT, "%s: the checkpoint's moving "
                          "average flag is invalid", f);
    if (has_ema) {
        if (apply && !gan->ema &&
            (s = dng_gan_set_ema(gan, ema_decay)) != DNG_OK)
            return s;
        if ((s = dng__net_read_state(r, apply ? gan->ema : gan->g, apply,
                                     f)) != DNG_OK)
            return s;
    }
    if (dng__r_left(r) != 0)
        return dng__error(DNG_ERR_FORMAT, "%s: %zu unexpected bytes after "
                          "the checkpoint's contents", f, dng__r_left(r));
    if (apply) {
        if (!has_ema && gan->ema) {
            dng_net_destroy(gan->ema);
            gan->ema = NULL;
        }
        gan->loss = (dng_gan_loss)loss;
        gan->d_steps = (int)dsteps;
        gan->real_label = real_label;
        gan->noise = (dng_noise)noise;
        gan->ema_decay = ema_decay;
        gan->clip = clip;
        gan->report_interval = report;
        gan->steps = steps;
        gan->g_steps = g_steps;
        gan->last_g_loss = last_g;
        if ((s = dng_rng_set_state(gan->rng, st)) != DNG_OK)
            return dng__error_prefix(DNG_ERR_FORMAT, "%s", f);
    } else {
        dng_rng probe = {0};
        if (dng_rng_set_state(&probe, st) != DNG_OK)
            return dng__error(DNG_ERR_FORMAT, "%s: the checkpoint's random "
                              "generator state is invalid", f);
    }
    return DNG_OK;
}

DNG_API dng_status dng_gan_load_checkpoint(dng_gan *gan, const char *path)
{
    uint8_t *data = NULL;
    size_t len = 0;
    uint32_t version;
    dng__rbuf payload, again;
    dng_status s;
    DNG__CHECK_NULL(gan, "dng_gan_load_checkpoint");
    DNG__CHECK_NULL(path, "dng_gan_load_checkpoint");
    s = dng__file_load("dng_gan_load_checkpoint", path, ckpt_magic,
                       DNG__CKPT_VERSION, &data, &len, &payload, &version);
    if (s != DNG_OK)
        return s;
    again = payload;
    s = read_checkpoint(gan, &payload, false);
    if (s == DNG_OK)
        s = read_checkpoint(gan, &again, true);
    dng__free(data);
    if (s == DNG_OK) {
        /* Buffers sized for another batch stay valid; a forward must come
         * before any backward again. */
        gan->g->forward_done = false;
        gan->d->forward_done = false;
    }
    return s;
}
