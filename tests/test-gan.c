/* test-gan.c: the adversarial-training loop. */
#include <sys/stat.h>
#include <unistd.h>

#include "gan-impl.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static dng_net *mlp(int64_t in, int64_t hidden, int64_t out, int layers,
                    dng_act act, float slope)
{
    dng_net *n = dng_net_create(1, &in);
    int64_t cur = in;
    ck_assert_ptr_nonnull(n);
    for (int i = 0; i < layers; i++) {
        ck_assert_int_eq(dng_net_add(n, dng_dense(cur, hidden)), DNG_OK);
        ck_assert_int_eq(dng_net_add(n, dng_activation(act, slope)), DNG_OK);
        cur = hidden;
    }
    ck_assert_int_eq(dng_net_add(n, dng_dense(cur, out)), DNG_OK);
    return n;
}

typedef struct gan_fixture {
    dng_net *g, *d;
    dng_optim *go, *dop;
    dng_gan *gan;
} gan_fixture;

static void fixture_free(gan_fixture *f)
{
    dng_gan_destroy(f->gan);
    dng_optim_destroy(f->go);
    dng_optim_destroy(f->dop);
    dng_net_destroy(f->g);
    dng_net_destroy(f->d);
}

/* Generator latent -> 2 and discriminator 2 -> 1, with batch norm in D so
 * running statistics are exercised. */
/* A trainer over g and d (taken over by the fixture) with DCGAN's Adam
 * settings at lr 1e-3, seeded. */
static gan_fixture adam_gan(dng_net *g, dng_net *d, uint64_t seed)
{
    gan_fixture f = {.g = g, .d = d};
    f.go = dng_adam(1e-3f, 0.5f, 0.999f, 1e-8f, 0.0f);
    f.dop = dng_adam(1e-3f, 0.5f, 0.999f, 1e-8f, 0.0f);
    f.gan = dng_gan_create(f.g, f.d, f.go, f.dop);
    ck_assert_ptr_nonnull(f.gan);
    ck_assert_int_eq(dng_gan_set_seed(f.gan, seed), DNG_OK);
    return f;
}

static gan_fixture small_gan_act(uint64_t seed, int with_bn, dng_act act)
{
    gan_fixture f;
    int64_t two = 2;
    dng_rng *r = dng_rng_create(seed);
    f.g = mlp(4, 16, 2, 2, act, 0.2f);
    f.d = dng_net_create(1, &two);
    ck_assert_int_eq(dng_net_add(f.d, dng_dense(2, 16)), DNG_OK);
    if (with_bn)
        ck_assert_int_eq(dng_net_add(f.d, dng_batchnorm(16)), DNG_OK);
    ck_assert_int_eq(dng_net_add(f.d, dng_activation(act, 0.2f)), DNG_OK);
    ck_assert_int_eq(dng_net_add(f.d, dng_dense(16, 1)), DNG_OK);
    ck_assert_int_eq(dng_net_init(f.g, DNG_INIT_XAVIER_UNIFORM, r), DNG_OK);
    ck_assert_int_eq(dng_net_init(f.d, DNG_INIT_XAVIER_UNIFORM, r), DNG_OK);
    dng_rng_destroy(r);
    return adam_gan(f.g, f.d, seed);
}

static gan_fixture small_gan(uint64_t seed, int with_bn)
{
    return small_gan_act(seed, with_bn, DNG_ACT_LEAKY_RELU);
}

/* Flatten every parameter and buffer of a network into one array. */
static float *snapshot(dng_net *n, int64_t *len)
{
    int64_t total = 0, off = 0;
    float *out;
    for (int i = 0; i < dng_net_num_params(n); i++)
        total += dng_tensor_numel(dng_net_param(n, i));
    for (int i = 0; i < dng_net_num_buffers(n); i++)
        total += dng_tensor_numel(dng_net_buffer(n, i));
    out = malloc(sizeof(float) * (size_t)(total ? total : 1));
    for (int i = 0; i < dng_net_num_params(n); i++) {
        dng_tensor *t = dng_net_param(n, i);
        memcpy(out + off, dng_tensor_data(t),
               sizeof(float) * (size_t)dng_tensor_numel(t));
        off += dng_tensor_numel(t);
    }
    for (int i = 0; i < dng_net_num_buffers(n); i++) {
        dng_tensor *t = dng_net_buffer(n, i);
        memcpy(out + off, dng_tensor_data(t),
               sizeof(float) * (size_t)dng_tensor_numel(t));
        off += dng_tensor_numel(t);
    }
    *len = total;
    return out;
}

static int same_floats(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

/* A batch of n points from the ring of 8 Gaussians (radius 2, std sd). */
static void ring_batch(dng_rng *r, float *x, int64_t n, float sd)
{
    for (int64_t i = 0; i < n; i++) {
        float u, e[2];
        dng_rng_uniform(r, &u, 1, 0.0f, 8.0f);
        int k = (int)u;
        dng_rng_normal(r, e, 2, 0.0f, sd);
        x[2 * i] = 2.0f * cosf((float)k * (float)M_PI / 4.0f) + e[0];
        x[2 * i + 1] = 2.0f * sinf((float)k * (float)M_PI / 4.0f) + e[1];
    }
}

/* ---- learning ---------------------------------------------------------- */

START_TEST(test_gaussian_1d)
{
    /* Target N(3, 0.5^2); the generator must match mean and std to 0.1. */
    int64_t shape[2] = {128, 1}, sshape[2] = {10000, 1};
    gan_fixture f = adam_gan(mlp(4, 32, 1, 2, DNG_ACT_LEAKY_RELU, 0.2f),
                             mlp(1, 32, 1, 2, DNG_ACT_LEAKY_RELU, 0.2f), 5);
    dng_gan *gan = f.gan;
    dng_tensor *real = dng_tensor_create(2, shape);
    dng_tensor *s = dng_tensor_create(2, sshape);
    dng_rng *data = dng_rng_create(11);
    double mean = 0, var = 0;
    for (int step = 0; step < 3000; step++) {
        dng_tensor_fill_normal(real, data, 3.0f, 0.5f);
        ck_assert_int_eq(dng_gan_step(gan, real, NULL, NULL), DNG_OK);
    }
    ck_assert_int_eq(dng_gan_sample(gan, 10000, NULL, s), DNG_OK);
    for (int i = 0; i < 10000; i++)
        mean += dng_tensor_data(s)[i];
    mean /= 10000;
    for (int i = 0; i < 10000; i++) {
        double e = dng_tensor_data(s)[i] - mean;
        var += e * e;
    }
    var /= 9999;
    ck_assert_msg(fabs(mean - 3.0) < 0.1, "mean %g", mean);
    ck_assert_msg(fabs(sqrt(var) - 0.5) < 0.1, "std %g", sqrt(var));
    dng_tensor_destroy(real);
    dng_tensor_destroy(s);
    dng_rng_destroy(data);
    fixture_free(&f);
}
END_TEST

START_TEST(test_ring_of_gaussians)
{
    /* Mode coverage on the ring of 8: at least 6 modes each receive a
     * share of the samples within 3 std of their centre. */
    int64_t shape[2] = {128, 2}, sshape[2] = {4000, 2};
    gan_fixture f = adam_gan(mlp(8, 64, 2, 2, DNG_ACT_RELU, 0.0f),
                             mlp(2, 64, 1, 2, DNG_ACT_LEAKY_RELU, 0.2f), 9);
    dng_gan *gan = f.gan;
    dng_tensor *real = dng_tensor_create(2, shape);
    dng_tensor *s = dng_tensor_create(2, sshape);
    dng_rng *data = dng_rng_create(3);
    int counts[8] = {0}, covered = 0, good = 0;
    const float sd = 0.05f;
    for (int step = 0; step < 3000; step++) {
        ring_batch(data, dng_tensor_data(real), 128, sd);
        ck_assert_int_eq(dng_gan_step(gan, real, NULL, NULL), DNG_OK);
    }
    ck_assert_int_eq(dng_gan_sample(gan, 4000, NULL, s), DNG_OK);
    for (int i = 0; i < 4000; i++) {
        float px = dng_tensor_data(s)[2 * i], py = dng_tensor_data(s)[2 * i + 1];
        for (int k = 0; k < 8; k++) {
            float cx = 2.0f * cosf((float)k * (float)M_PI / 4.0f);
            float cy = 2.0f * sinf((float)k * (float)M_PI / 4.0f);
            if (hypotf(px - cx, py - cy) < 3 * sd * 4) {
                counts[k]++;
                good++;
            }
        }
    }
    for (int k = 0; k < 8; k++)
        covered += counts[k] >= 4000 / 8 / 10;
    ck_assert_msg(covered >= 6, "covered %d modes (%d %d %d %d %d %d %d %d), "
                  "%d near a mode", covered, counts[0], counts[1], counts[2],
                  counts[3], counts[4], counts[5], counts[6], counts[7],
                  good);
    dng_tensor_destroy(real);
    dng_tensor_destroy(s);
    dng_rng_destroy(data);
    fixture_free(&f);
}
END_TEST

/* ---- the generator's update -------------------------------------------- */

START_TEST(test_generator_grads_fd)
{
    /* dL_G/dθ_G through D, against central differences in the loss.
     * Smooth activations, so that no perturbation crosses a kink. */
    gan_fixture f = small_gan_act(21, 1, DNG_ACT_TANH);
    int64_t zs[2] = {8, 4};
    dng_tensor *z = dng_tensor_create(2, zs);
    dng_rng *r = dng_rng_create(2);
    float loss;
    double worst = 0;
    dng_tensor_fill_normal(z, r, 0, 1);
    for (int kind = 0; kind < 4; kind++) {
        ck_assert_int_eq(dng_gan_set_loss(f.gan, (dng_gan_loss)kind), DNG_OK);
        ck_assert_int_eq(dng__gan_generator_grads(f.gan, z, &loss), DNG_OK);
        for (int p = 0; p < dng_net_num_params(f.g); p++) {
            dng_tensor *w = dng_net_param(f.g, p);
            int64_t n = dng_tensor_numel(w);
            float *an = malloc(sizeof(float) * (size_t)n);
            memcpy(an, dng_tensor_data(dng_net_grad(f.g, p)),
                   sizeof(float) * (size_t)n);
            for (int64_t i = 0; i < n; i += (n > 12 ? n / 12 : 1)) {
                float keep = dng_tensor_data(w)[i], lp, lm;
                const float eps = 1e-2f;
                double num, ratio;
                dng_tensor_data(w)[i] = keep + eps;
                dng__gan_generator_grads(f.gan, z, &lp);
                dng_tensor_data(w)[i] = keep - eps;
                dng__gan_generator_grads(f.gan, z, &lm);
                dng_tensor_data(w)[i] = keep;
                num = ((double)lp - lm) / (2 * eps);
                ratio = fabs(an[i] - num) / (2e-3 + 2e-2 * fabs(num));
                if (ratio > worst)
                    worst = ratio;
                ck_assert_msg(ratio <= 1.0, "loss %d, %s[%lld]: analytic %g "
                              "numeric %g", kind,
                              dng_net_param_name(f.g, p), (long long)i,
                              (double)an[i], num);
            }
            free(an);
        }
    }
    dng_tensor_destroy(z);
    dng_rng_destroy(r);
    fixture_free(&f);
}
END_TEST

START_TEST(test_generator_step_leaves_d_untouched)
{
    /* D has batch norm (running statistics): a generator update must not
     * change any of D's parameters or buffers. */
    gan_fixture f = small_gan(4, 1);
    int64_t zs[2] = {16, 4}, len_before, len_after;
    dng_tensor *z = dng_tensor_create(2, zs);
    dng_rng *r = dng_rng_create(8);
    float loss, *before, *after;
    dng_tensor_fill_normal(z, r, 0, 1);
    before = snapshot(f.d, &len_before);
    ck_assert_int_eq(dng__gan_generator_grads(f.gan, z, &loss), DNG_OK);
    ck_assert(isfinite(loss));
    after = snapshot(f.d, &len_after);
    ck_assert_int_eq(len_before, len_after);
    ck_assert(same_floats(before, after, len_before));
    /* ...while a discriminator step does move them (the check above can
     * fail). */
    {
        int64_t rs[2] = {16, 2};
        dng_tensor *real = dng_tensor_create(2, rs);
        dng_tensor_fill_normal(real, r, 1, 1);
        ck_assert_int_eq(dng_gan_step(f.gan, real, NULL, NULL), DNG_OK);
        free(after);
        after = snapshot(f.d, &len_after);
        ck_assert(!same_floats(before, after, len_before));
        dng_tensor_destroy(real);
    }
    free(before);
    free(after);
    dng_tensor_destroy(z);
    dng_rng_destroy(r);
    fixture_free(&f);
}
END_TEST

/* ---- losses, clipping, smoothing, EMA ---------------------------------- */

/* G: latent 1 -> dense(1,1) with weight 0, bias c: every fake is c.
 * D: dense(1,1) with weight 1, bias 0: D(x) = x. */
static gan_fixture linear_gan(float c)
{
    gan_fixture f;
    int64_t one = 1;
    f.g = dng_net_create(1, &one);
    f.d = dng_net_create(1, &one);
    ck_assert_int_eq(dng_net_add(f.g, dng_dense(1, 1)), DNG_OK);
    ck_assert_int_eq(dng_net_add(f.d, dng_dense(1, 1)), DNG_OK);
    dng_tensor_data(dng_net_param(f.g, 0))[0] = 0.0f;
    dng_tensor_data(dng_net_param(f.g, 1))[0] = c;
    dng_tensor_data(dng_net_param(f.d, 0))[0] = 1.0f;
    dng_tensor_data(dng_net_param(f.d, 1))[0] = 0.0f;
    f.go = dng_sgd(0.1f, 0, 0, 0);
    f.dop = dng_sgd(0.1f, 0, 0, 0);
    f.gan = dng_gan_create(f.g, f.d, f.go, f.dop);
    ck_assert_ptr_nonnull(f.gan);
    return f;
}

static double softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

START_TEST(test_loss_values)
{
    const float realv[4] = {0.5f, 1.5f, -0.25f, 2.0f};
    const float c = -0.7f;
    int64_t shape[2] = {4, 1};
    for (int kind = 0; kind < 4; kind++) {
        gan_fixture f = linear_gan(c);
        dng_tensor *real = dng_tensor_from_data(2, shape, realv);
        dng_gan_stats st = {.size = sizeof st};
        double expect = 0, mr = 0;
        ck_assert_int_eq(dng_gan_set_loss(f.gan, (dng_gan_loss)kind), DNG_OK);
        if (kind == DNG_GAN_LOSS_BCE)
            ck_assert_int_eq(dng_gan_set_label_smoothing(f.gan, 0.9f),
                             DNG_OK);
        ck_assert_int_eq(dng_gan_step(f.gan, real, NULL, &st), DNG_OK);
        for (int i = 0; i < 4; i++) {
            double y = realv[i];
            switch (kind) {
            case DNG_GAN_LOSS_BCE: /* smoothed target 0.9 */
                expect += 0.9 * softplus(-y) + 0.1 * softplus(y);
                mr += 1 / (1 + exp(-y));
                break;
            case DNG_GAN_LOSS_HINGE:
                expect += y < 1 ? 1 - y : 0;
                mr += y;
                break;
            case DNG_GAN_LOSS_LSGAN:
                expect += 0.5 * (y - 1) * (y - 1);
                mr += y;
                break;
            default:
                expect += -y;
                mr += y;
            }
        }
        expect /= 4;
        mr /= 4;
        switch (kind) { /* the fake term, D(fake) = c */
        case DNG_GAN_LOSS_BCE:
            expect += softplus(c);
            break;
        case DNG_GAN_LOSS_HINGE:
            expect += c > -1 ? 1 + c : 0;
            break;
        case DNG_GAN_LOSS_LSGAN:
            expect += 0.5 * c * c;
            break;
        default:
            expect += c;
        }
        ck_assert_msg(fabs(st.d_loss - expect) < 1e-5, "loss %d: %g vs %g",
                      kind, (double)st.d_loss, expect);
        ck_assert_msg(fabs(st.d_real - mr) < 1e-5, "loss %d D(real)", kind);
        ck_assert_msg(fabs(st.d_fake - (kind == DNG_GAN_LOSS_BCE
                                            ? 1 / (1 + exp(-c)) : c)) < 1e-5,
                      "loss %d D(fake)", kind);
        ck_assert(isfinite(st.g_loss));
        ck_assert_int_eq(st.step, 1);
        if (kind == DNG_GAN_LOSS_WASSERSTEIN) {
            /* weights clipped to [-0.01, 0.01] after the update */
            for (int p = 0; p < dng_net_num_params(f.d); p++)
                ck_assert(fabsf(dng_tensor_data(dng_net_param(f.d, p))[0]) <=
                          0.01f);
        }
        dng_tensor_destroy(real);
        fixture_free(&f);
    }
}
END_TEST

START_TEST(test_d_steps_and_ema)
{
    gan_fixture f = linear_gan(0.3f);
    int64_t shape[2] = {4, 1}, zs[2] = {2, 1}, os[2] = {2, 1};
    const float realv[4] = {1, 2, 3, 4}, zv[2] = {0, 1};
    dng_tensor *real = dng_tensor_from_data(2, shape, realv);
    dng_tensor *z = dng_tensor_from_data(2, zs, zv), *o = dng_tensor_create(2, os);
    float w0, b0, w1, b1;
    ck_assert_int_eq(dng_gan_set_d_steps(f.gan, 3), DNG_OK);
    ck_assert_int_eq(dng_gan_set_ema(f.gan, 0.5f), DNG_OK);
    w0 = dng_tensor_data(dng_net_param(f.g, 0))[0];
    b0 = dng_tensor_data(dng_net_param(f.g, 1))[0];
    /* two D steps: G unchanged */
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(dng_gan_step(f.gan, real, NULL, NULL), DNG_OK);
    ck_assert(dng_tensor_data(dng_net_param(f.g, 0))[0] == w0);
    ck_assert(dng_tensor_data(dng_net_param(f.g, 1))[0] == b0);
    /* third: one G update; the EMA is the average of old and new */
    ck_assert_int_eq(dng_gan_step(f.gan, real, NULL, NULL), DNG_OK);
    w1 = dng_tensor_data(dng_net_param(f.g, 0))[0];
    b1 = dng_tensor_data(dng_net_param(f.g, 1))[0];
    ck_assert(w1 != w0 || b1 != b0);
    ck_assert_int_eq(dng_gan_generate(f.gan, z, o), DNG_OK);
    ck_assert_float_eq_tol(dng_tensor_data(o)[0], 0.5f * (b0 + b1), 1e-6f);
    ck_assert_float_eq_tol(dng_tensor_data(o)[1],
                           0.5f * (w0 + w1) + 0.5f * (b0 + b1), 1e-6f);
    ck_assert_int_eq(dng_gan_steps(f.gan), 3);
    dng_tensor_destroy(real);
    dng_tensor_destroy(z);
    dng_tensor_destroy(o);
    fixture_free(&f);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------- */

static void train_steps(gan_fixture *f, dng_rng *data, int steps)
{
    int64_t shape[2] = {32, 2};
    dng_tensor *real = dng_tensor_create(2, shape);
    for (int i = 0; i < steps; i++) {
        ring_batch(data, dng_tensor_data(real), 32, 0.1f);
        ck_assert_int_eq(dng_gan_step(f->gan, real, NULL, NULL), DNG_OK);
    }
    dng_tensor_destroy(real);
}

static char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/dng-test-gan-%d-%s", dir, (int)getpid(), name);
    return p;
}

START_TEST(test_checkpoint_resume_bit_identical)
{
    gan_fixture a = small_gan(31, 1), b = small_gan(31, 1), c;
    dng_rng *da = dng_rng_create(1), *db = dng_rng_create(1);
    uint64_t dstate[4];
    const char *path = tmp_path("resume.ckpt");
    float *wa, *wc;
    int64_t la, lc;
    ck_assert_int_eq(dng_gan_set_ema(a.gan, 0.9f), DNG_OK);
    ck_assert_int_eq(dng_gan_set_ema(b.gan, 0.9f), DNG_OK);
    train_steps(&a, da, 30);
    train_steps(&b, db, 12);
    ck_assert_int_eq(dng_gan_save_checkpoint(b.gan, path), DNG_OK);
    dng_rng_get_state(db, dstate);
    fixture_free(&b);
    /* a fresh trainer with a different seed and no EMA: all restored */
    c = small_gan(999, 1);
    ck_assert_int_eq(dng_gan_load_checkpoint(c.gan, path), DNG_OK);
    ck_assert_int_eq(dng_gan_steps(c.gan), 12);
    dng_rng_set_state(db, dstate);
    train_steps(&c, db, 18);
    wa = snapshot(a.g, &la);
    wc = snapshot(c.g, &lc);
    ck_assert(la == lc && same_floats(wa, wc, la));
    free(wa);
    free(wc);
    wa = snapshot(a.d, &la);
    wc = snapshot(c.d, &lc);
    ck_assert(la == lc && same_floats(wa, wc, la));
    free(wa);
    free(wc);
    {
        /* samples come from the EMA copies, which must agree too */
        int64_t ss[2] = {16, 2};
        dng_tensor *sa = dng_tensor_create(2, ss), *sc = dng_tensor_create(2, ss);
        dng_rng *r1 = dng_rng_create(5), *r2 = dng_rng_create(5);
        ck_assert_int_eq(dng_gan_sample(a.gan, 16, r1, sa), DNG_OK);
        ck_assert_int_eq(dng_gan_sample(c.gan, 16, r2, sc), DNG_OK);
        ck_assert(same_floats(dng_tensor_data(sa), dng_tensor_data(sc), 32));
        dng_tensor_destroy(sa);
        dng_tensor_destroy(sc);
        dng_rng_destroy(r1);
        dng_rng_destroy(r2);
    }
    unlink(path);
    dng_rng_destroy(da);
    dng_rng_destroy(db);
    fixture_free(&a);
    fixture_free(&c);
}
END_TEST

static int write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fwrite(b, 1, n, f);
    fclose(f);
    return 0;
}

START_TEST(test_checkpoint_corrupt)
{
    gan_fixture f = small_gan(7, 1);
    dng_rng *data = dng_rng_create(2);
    const char *path = tmp_path("good.ckpt"), *bad = tmp_path("bad.ckpt");
    unsigned char *buf;
    long size;
    FILE *fp;
    float *before, *after;
    int64_t lb, la;
    train_steps(&f, data, 3);
    ck_assert_int_eq(dng_gan_save_checkpoint(f.gan, path), DNG_OK);
    fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    rewind(fp);
    buf = malloc((size_t)size);
    ck_assert_int_eq(fread(buf, 1, (size_t)size, fp), size);
    fclose(fp);
    train_steps(&f, data, 2);
    before = snapshot(f.g, &lb);
    /* truncations at many lengths */
    for (long n = 0; n < size; n += (n < 64 ? 1 : 97)) {
        dng_status s;
        write_bytes(bad, buf, (size_t)n);
        s = dng_gan_load_checkpoint(f.gan, bad);
        ck_assert_msg(s == DNG_ERR_FORMAT || s == DNG_ERR_IO, "len %ld: %d",
                      n, s);
        ck_assert(strlen(dng_last_error()) > 0);
    }
    /* single bit flips */
    for (long i = 0; i < size; i += 37) {
        buf[i] ^= 0x10;
        write_bytes(bad, buf, (size_t)size);
        ck_assert_int_eq(dng_gan_load_checkpoint(f.gan, bad), DNG_ERR_FORMAT);
        buf[i] ^= 0x10;
    }
    after = snapshot(f.g, &la);
    ck_assert(lb == la && same_floats(before, after, lb));
    ck_assert_int_eq(dng_gan_steps(f.gan), 5);
    /* a missing file, and a checkpoint for other networks */
    ck_assert_int_eq(dng_gan_load_checkpoint(f.gan, "/nonexistent/x.ckpt"),
                     DNG_ERR_IO);
    {
        gan_fixture o = small_gan(7, 0); /* D without batch norm */
        ck_assert_int_eq(dng_gan_load_checkpoint(o.gan, path),
                         DNG_ERR_FORMAT);
        ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_gan_load"));
        fixture_free(&o);
    }
    /* failed saves (a missing folder; a directory in the way of the
     * rename) leave what was there intact */
    ck_assert_int_eq(dng_gan_save_checkpoint(f.gan, "/nonexistent/d/x.ckpt"),
                     DNG_ERR_IO);
    {
        char dirpath[600];
        snprintf(dirpath, sizeof dirpath, "%s.dir", path);
        ck_assert_int_eq(mkdir(dirpath, 0700), 0);
        ck_assert_int_eq(dng_gan_save_checkpoint(f.gan, dirpath), DNG_ERR_IO);
        ck_assert_int_eq(rmdir(dirpath), 0); /* still an empty directory */
    }
    ck_assert_int_eq(dng_gan_load_checkpoint(f.gan, path), DNG_OK);
    ck_assert_int_eq(dng_gan_steps(f.gan), 3);
    unlink(path);
    unlink(bad);
    free(buf);
    free(before);
    free(after);
    dng_rng_destroy(data);
    fixture_free(&f);
}
END_TEST

/* ---- bad input --------------------------------------------------------- */

START_TEST(test_bad_input)
{
    int64_t three = 3, two = 2, four = 4;
    dng_net *g = dng_net_create(1, &four), *d = dng_net_create(1, &two);
    dng_net *d3 = dng_net_create(1, &three);
    dng_optim *a = dng_sgd(0.1f, 0, 0, 0), *b = dng_sgd(0.1f, 0, 0, 0);
    dng_gan *gan;
    int64_t bs[2] = {5, 3}, ok[2] = {5, 2};
    dng_tensor *wrong = dng_tensor_create(2, bs), *good = dng_tensor_create(2, ok);
    dng_gan_stats st = {0};
    ck_assert_int_eq(dng_net_add(g, dng_dense(4, 2)), DNG_OK);
    ck_assert_int_eq(dng_net_add(d, dng_dense(2, 1)), DNG_OK);
    ck_assert_int_eq(dng_net_add(d3, dng_dense(3, 1)), DNG_OK);
    /* G makes [2], D takes [3] */
    ck_assert_ptr_null(dng_gan_create(g, d3, a, b));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[2]"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[3]"));
    ck_assert_ptr_null(dng_gan_create(NULL, d, a, b));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "generator"));
    ck_assert_ptr_null(dng_gan_create(g, d, a, a));
    ck_assert_ptr_null(dng_gan_create(d, d, a, b));
    gan = dng_gan_create(g, d, a, b);
    ck_assert_ptr_nonnull(gan);
    ck_assert_int_eq(dng_gan_step(gan, wrong, NULL, NULL), DNG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[5, 3]"));
    ck_assert_int_eq(dng_gan_step(NULL, good, NULL, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_step(gan, NULL, NULL, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_step(gan, good, NULL, &st),
                     DNG_ERR_INVALID_ARGUMENT); /* size not set */
    ck_assert_int_eq(dng_gan_set_loss(gan, (dng_gan_loss)9),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_d_steps(gan, 0), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_label_smoothing(gan, 1.5f),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_label_smoothing(gan, NAN),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_noise(gan, (dng_noise)5),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_ema(gan, 1.0f), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_clip(gan, -1), DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_set_report_interval(gan, 0),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_sample(gan, 0, NULL, good),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_sample(gan, 4, NULL, good), DNG_ERR_SHAPE);
    ck_assert_int_eq(dng_gan_train(gan, NULL, 1, 2, NULL, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_save_checkpoint(gan, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(dng_gan_steps(NULL), -1);
    {
        /* non-finite real data: a numeric error, not a crash */
        dng_tensor_fill(good, NAN);
        ck_assert_int_eq(dng_gan_step(gan, good, NULL, NULL),
                         DNG_ERR_NUMERIC);
    }
    dng_gan_destroy(NULL);
    dng_gan_destroy(gan);
    dng_tensor_destroy(wrong);
    dng_tensor_destroy(good);
    dng_optim_destroy(a);
    dng_optim_destroy(b);
    dng_net_destroy(g);
    dng_net_destroy(d);
    dng_net_destroy(d3);
}
END_TEST

/* ---- dng_gan_train ----------------------------------------------------- */

typedef struct report_log {
    int calls;
    int64_t last_step;
    int stop_after;
} report_log;

static int on_report(const dng_gan_progress *p, void *user)
{
    report_log *l = user;
    ck_assert_int_eq(p->size, sizeof *p);
    ck_assert(isfinite(p->stats.d_loss));
    ck_assert(p->step > l->last_step);
    l->last_step = p->step;
    l->calls++;
    return l->stop_after && l->calls >= l->stop_after;
}

START_TEST(test_train_over_dataset)
{
    gan_fixture f = small_gan(12, 1);
    int64_t xs[2] = {200, 2};
    dng_tensor *x = dng_tensor_create(2, xs);
    dng_rng *r = dng_rng_create(4);
    dng_dataset *ds;
    report_log log = {0};
    ring_batch(r, dng_tensor_data(x), 200, 0.05f);
    ds = dng_dataset_from_tensors(x, NULL);
    ck_assert_ptr_nonnull(ds);
    ck_assert_int_eq(dng_gan_set_report_interval(f.gan, 5), DNG_OK);
    /* 200 / 32 = 6 full batches per epoch (the partial one is dropped) */
    ck_assert_int_eq(dng_gan_train(f.gan, ds, 3, 32, on_report, &log),
                     DNG_OK);
    ck_assert_int_eq(dng_gan_steps(f.gan), 18);
    ck_assert_int_eq(log.calls, 4); /* steps 5, 10, 15 and the end */
    ck_assert_int_eq(log.last_step, 18);
    /* stopping from the callback */
    log = (report_log){.stop_after = 1};
    ck_assert_int_eq(dng_gan_train(f.gan, ds, 5, 32, on_report, &log),
                     DNG_OK);
    ck_assert_int_eq(dng_gan_steps(f.gan), 23);
    ck_assert_int_eq(dng_gan_train(f.gan, ds, 1, 500, NULL, NULL),
                     DNG_ERR_INVALID_ARGUMENT);
    dng_dataset_destroy(ds);
    dng_tensor_destroy(x);
    dng_rng_destroy(r);
    fixture_free(&f);
}
END_TEST

static Suite *gan_suite(void)
{
    Suite *s = suite_create("gan");
    TCase *tc = tcase_create("gan");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_loss_values);
    tcase_add_test(tc, test_d_steps_and_ema);
    tcase_add_test(tc, test_generator_grads_fd);
    tcase_add_test(tc, test_generator_step_leaves_d_untouched);
    tcase_add_test(tc, test_checkpoint_resume_bit_identical);
    tcase_add_test(tc, test_checkpoint_corrupt);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_train_over_dataset);
    tcase_add_test(tc, test_gaussian_1d);
    tcase_add_test(tc, test_ring_of_gaussians);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Small networks: one thread avoids BLIS's barrier spinning. */
    dng_set_num_threads(1);
    return dng_test_run(gan_suite());
}
