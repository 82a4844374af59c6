/* test-tensor.c: the public core through the shared library only:
 * version, status strings, per-thread errors, thread settings, the
 * random number generator and tensors; and that bad input of every kind
 * gives a negative status (or NULL) with a message naming the argument,
 * never a crash. */
#include <float.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "testutil.h"

/* The overflow tests ask for 2^62 bytes on purpose: under AddressSanitizer
 * that must fail like malloc does, not abort the process. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* A failure with the expected status and a message naming both the
 * function and the argument (or other key word). */
#define EXPECT_ERR(call, status, func, word)                                 \
    do {                                                                     \
        dng_clear_error();                                                   \
        dng_status s_ = (call);                                              \
        ck_assert_msg(s_ == (status), "%s gave %d (%s), expected %d",        \
                      #call, (int)s_, dng_last_error(), (int)(status));      \
        expect_msg(#call, func, word);                                       \
    } while (0)

/* A constructor failing with NULL and a message. */
#define EXPECT_NULL(call, func, word)                                        \
    do {                                                                     \
        dng_clear_error();                                                   \
        ck_assert_msg((call) == NULL, "%s did not fail", #call);             \
        expect_msg(#call, func, word);                                       \
    } while (0)

static void expect_msg(const char *call, const char *func, const char *word)
{
    const char *m = dng_last_error();
    ck_assert_msg(m != NULL && strstr(m, func) != NULL,
                  "%s: message \"%s\" does not name %s", call, m, func);
    ck_assert_msg(strstr(m, word) != NULL,
                  "%s: message \"%s\" does not mention \"%s\"", call, m,
                  word);
}

/* ---- version and status ------------------------------------------------ */

START_TEST(test_version)
{
    char buf[64];
    ck_assert_int_eq(dng_version(), DNG_VERSION);
    ck_assert_int_eq(DNG_VERSION, DNG_VERSION_MAJOR * 10000 +
                                      DNG_VERSION_MINOR * 100 +
                                      DNG_VERSION_PATCH);
    ck_assert_str_eq(dng_version_string(), DNG_VERSION_STRING);
    snprintf(buf, sizeof buf, "%d.%d.%d", DNG_VERSION_MAJOR,
             DNG_VERSION_MINOR, DNG_VERSION_PATCH);
    ck_assert_str_eq(dng_version_string(), buf);
    ck_assert_int_ge(DNG_VERSION_MAJOR, 0);
    ck_assert_int_lt(DNG_VERSION_MINOR, 100);
    ck_assert_int_lt(DNG_VERSION_PATCH, 100);
}
END_TEST

START_TEST(test_status_strings)
{
    /* Every code: its documented number (never to change) and its text. */
    struct {
        dng_status s;
        int num;
        const char *text;
    } table[] = {
#define ROW(name, num, text) {DNG_##name, num, text},
        DNG_STATUS_MAP(ROW)
#undef ROW
    };
    size_t n = sizeof table / sizeof table[0];
    static const int unknown[] = {1, 2, -9, -100, 1000, INT_MIN + 1};
    ck_assert_int_eq((int)n, 9);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq((int)table[i].s, table[i].num);
        ck_assert_int_eq(table[i].num, -(int)i); /* 0, -1, -2, ... */
        ck_assert_str_eq(dng_status_string(table[i].s), table[i].text);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(dng_status_string(table[i].s),
                             dng_status_string(table[j].s));
    }
    ck_assert_int_eq(DNG_OK, 0);
    ck_assert_int_eq(DNG_ERR_INVALID_ARGUMENT, -1);
    ck_assert_int_eq(DNG_ERR_UNSUPPORTED, -8);
    ck_assert_str_eq(dng_status_string(DNG_ERR_SHAPE), "shape mismatch");
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ck_assert_str_eq(dng_status_string((dng_status)unknown[i]),
                         "unknown status");
}
END_TEST

/* ---- per-thread errors ------------------------------------------------- */

static pthread_barrier_t barrier;

struct thread_result {
    int id;
    char first[256];   /* the message a new thread starts with */
    int mismatches;    /* rounds where another thread's message showed */
};

static void *error_thread(void *arg)
{
    struct thread_result *r = arg;
    int64_t shape[1] = {-(r->id + 1)};
    char want[256];
    snprintf(r->first, sizeof r->first, "%s", dng_last_error());
    for (int round = 0; round < 200; round++) {
        /* Both threads fail at the same moment with different messages;
         * each must read back its own. */
        pthread_barrier_wait(&barrier);
        if (r->id == 0)
            dng_tensor_destroy(dng_tensor_create(1, shape));
        else
            dng_set_num_threads(-7 - round);
        snprintf(want, sizeof want, "%s", dng_last_error());
        pthread_barrier_wait(&barrier);
        if (strcmp(want, dng_last_error()) != 0 ||
            strstr(want, r->id == 0 ? "dng_tensor_create"
                                    : "dng_set_num_threads") == NULL)
            r->mismatches++;
    }
    return NULL;
}

START_TEST(test_last_error_per_thread)
{
    pthread_t th[2];
    struct thread_result res[2] = {{.id = 0}, {.id = 1}};
    char mine[256];
    int64_t zero = 0;

    /* The main thread's message, set before the others start. */
    ck_assert_ptr_null(dng_tensor_create(1, &zero));
    snprintf(mine, sizeof mine, "%s", dng_last_error());
    ck_assert_ptr_nonnull(strstr(mine, "shape[0] = 0"));

    ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, error_thread,
                                        &res[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(res[i].first[0] == '\0', "a new thread starts with "
                      "\"%s\"", res[i].first);
        ck_assert_int_eq(res[i].mismatches, 0);
    }
    /* Nothing the threads did reached this thread's message. */
    ck_assert_str_eq(dng_last_error(), mine);

    /* A success does not clear the message; dng_clear_error does. */
    ck_assert_int_eq(dng_set_num_threads(1), DNG_OK);
    ck_assert_str_eq(dng_last_error(), mine);
    dng_clear_error();
    ck_assert_str_eq(dng_last_error(), "");
}
END_TEST

START_TEST(test_threads)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int all = online < 1 ? 1 : (online > 1024 ? 1024 : (int)online);
    const char *env = getenv("DNG_NUM_THREADS");
    char saved[64] = "";
    int before;
    if (env)
        snprintf(saved, sizeof saved, "%s", env);
    ck_assert_int_eq(dng_set_num_threads(1), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), 1);
    ck_assert_int_eq(dng_set_num_threads(3), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), 3);
    ck_assert_int_eq(dng_set_num_threads(1024), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), 1024);
    /* 0: DNG_NUM_THREADS when it holds 1..1024, else every processor */
    setenv("DNG_NUM_THREADS", "3", 1);
    ck_assert_int_eq(dng_set_num_threads(0), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), 3);
    setenv("DNG_NUM_THREADS", "1025", 1);
    ck_assert_int_eq(dng_set_num_threads(0), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), all);
    setenv("DNG_NUM_THREADS", "2x", 1);
    ck_assert_int_eq(dng_set_num_threads(0), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), all);
    unsetenv("DNG_NUM_THREADS");
    ck_assert_int_eq(dng_set_num_threads(0), DNG_OK);
    ck_assert_int_eq(dng_get_num_threads(), all);
    if (saved[0])
        setenv("DNG_NUM_THREADS", saved, 1);
    ck_assert_int_eq(dng_set_num_threads(2), DNG_OK);
    before = dng_get_num_threads();
    EXPECT_ERR(dng_set_num_threads(-1), DNG_ERR_INVALID_ARGUMENT,
               "dng_set_num_threads", "n = -1");
    EXPECT_ERR(dng_set_num_threads(1025), DNG_ERR_INVALID_ARGUMENT,
               "dng_set_num_threads", "n = 1025");
    EXPECT_ERR(dng_set_num_threads(INT_MIN), DNG_ERR_INVALID_ARGUMENT,
               "dng_set_num_threads", "n = ");
    ck_assert_int_eq(dng_get_num_threads(), before); /* unchanged */
    ck_assert_int_eq(dng_set_num_threads(1), DNG_OK);
}
END_TEST

/* ---- random numbers ---------------------------------------------------- */

static bool same_floats(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

START_TEST(test_rng_same_seed)
{
    enum { N = 1000 };
    float a[N], b[N], c[N];
    dng_rng *r1 = dng_rng_create(42), *r2 = dng_rng_create(42);
    dng_rng *r3 = dng_rng_create(43);
    dng_rng *r4 = dng_rng_create(42 | (UINT64_C(1) << 32));
    ck_assert_ptr_nonnull(r1);
    ck_assert_int_eq(dng_rng_uniform(r1, a, N, 0.0f, 1.0f), DNG_OK);
    /* The stream does not depend on how it is cut into calls. */
    ck_assert_int_eq(dng_rng_uniform(r2, b, 7, 0.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_uniform(r2, b + 7, 1, 0.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_uniform(r2, b + 8, 0, 0.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_uniform(r2, b + 8, N - 8, 0.0f, 1.0f), DNG_OK);
    ck_assert(same_floats(a, b, N));
    /* Other seeds, including one differing only in the high word. */
    ck_assert_int_eq(dng_rng_uniform(r3, c, N, 0.0f, 1.0f), DNG_OK);
    ck_assert(!same_floats(a, c, N));
    ck_assert_int_eq(dng_rng_uniform(r4, c, N, 0.0f, 1.0f), DNG_OK);
    ck_assert(!same_floats(a, c, N));
    {
        int equal = 0;
        for (int i = 0; i < N; i++)
            equal += a[i] == c[i];
        ck_assert_int_lt(equal, 5); /* not merely shifted or correlated */
    }
    dng_rng_destroy(r1);
    dng_rng_destroy(r2);
    r1 = dng_rng_create(42);
    r2 = dng_rng_create(42);
    ck_assert_int_eq(dng_rng_normal(r1, a, N, 1.0f, 2.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_normal(r2, b, 3, 1.0f, 2.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_normal(r2, b + 3, N - 3, 1.0f, 2.0f), DNG_OK);
    ck_assert(same_floats(a, b, N));
    dng_rng_destroy(r1);
    dng_rng_destroy(r2);
    dng_rng_destroy(r3);
    dng_rng_destroy(r4);
    dng_rng_destroy(NULL);
}
END_TEST

START_TEST(test_rng_moments)
{
    const int64_t n = 1 << 20;
    float *x = malloc(sizeof(float) * (size_t)n);
    dng_rng *rng = dng_rng_create(7);
    double s = 0.0, s2 = 0.0, mn = INFINITY, mx = -INFINITY;
    int64_t in1 = 0, in2 = 0;

    /* U(0, 1): mean 1/2, variance 1/12, all in [0, 1) */
    ck_assert_int_eq(dng_rng_uniform(rng, x, n, 0.0f, 1.0f), DNG_OK);
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        mn = fmin(mn, x[i]);
        mx = fmax(mx, x[i]);
    }
    ck_assert(mn >= 0.0 && mx < 1.0);
    ck_assert(mn < 1e-4 && mx > 1.0 - 1e-4);
    ck_assert_msg(fabs(s / n - 0.5) < 0.002, "mean %g", s / n);
    ck_assert_msg(fabs(s2 / n - (s / n) * (s / n) - 1.0 / 12.0) < 0.001,
                  "variance %g", s2 / n - (s / n) * (s / n));

    /* U(-3, 5) */
    ck_assert_int_eq(dng_rng_uniform(rng, x, n, -3.0f, 5.0f), DNG_OK);
    s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        ck_assert(x[i] >= -3.0f && x[i] < 5.0f);
        s += x[i];
    }
    ck_assert_msg(fabs(s / n - 1.0) < 0.01, "mean %g", s / n);

    /* N(2, 3^2): mean, std, and the 68-95 rule */
    ck_assert_int_eq(dng_rng_normal(rng, x, n, 2.0f, 3.0f), DNG_OK);
    s = s2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double z = (x[i] - 2.0) / 3.0;
        ck_assert(isfinite(x[i]));
        s += x[i];
        s2 += (double)x[i] * x[i];
        in1 += fabs(z) < 1.0;
        in2 += fabs(z) < 2.0;
    }
    ck_assert_msg(fabs(s / n - 2.0) < 0.01, "normal mean %g", s / n);
    ck_assert_msg(fabs(sqrt(s2 / n - (s / n) * (s / n)) - 3.0) < 0.015,
                  "normal std %g", sqrt(s2 / n - (s / n) * (s / n)));
    ck_assert_msg(fabs((double)in1 / n - 0.682689) < 0.003, "within 1 sd: "
                  "%g", (double)in1 / n);
    ck_assert_msg(fabs((double)in2 / n - 0.954500) < 0.002, "within 2 sd: "
                  "%g", (double)in2 / n);

    /* std 0 gives the mean exactly; lo == hi gives lo */
    ck_assert_int_eq(dng_rng_normal(rng, x, 100, -1.5f, 0.0f), DNG_OK);
    for (int i = 0; i < 100; i++)
        ck_assert(x[i] == -1.5f);
    ck_assert_int_eq(dng_rng_uniform(rng, x, 100, 4.0f, 4.0f), DNG_OK);
    for (int i = 0; i < 100; i++)
        ck_assert(x[i] == 4.0f);

    /* The widest finite range: hi - lo overflows float, yet the values
     * spread over it instead of collapsing onto one end. */
    ck_assert_int_eq(dng_rng_uniform(rng, x, 1000, -FLT_MAX, FLT_MAX),
                     DNG_OK);
    s = 0.0;
    in1 = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert(isfinite(x[i]) && x[i] < FLT_MAX);
        in1 += x[i] > 0.0f;
        s += x[i] / (double)FLT_MAX;
    }
    ck_assert_msg(in1 > 400 && in1 < 600, "%lld of 1000 positive",
                  (long long)in1);
    ck_assert_msg(fabs(s / 1000) < 0.1, "mean %g FLT_MAX", s / 1000);
    dng_rng_destroy(rng);
    free(x);
}
END_TEST

/* Draw a mixed sequence: uniforms and normals interleaved. */
static void draw(dng_rng *rng, float *out)
{
    ck_assert_int_eq(dng_rng_uniform(rng, out, 3, -1.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_normal(rng, out + 3, 5, 0.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_uniform(rng, out + 8, 9, 0.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_normal(rng, out + 17, 3, 0.0f, 1.0f), DNG_OK);
}

START_TEST(test_rng_state_resume)
{
    /* Save the state after every prefix length from 0 to 11 uniforms (so
     * within and across blocks), and after an odd number of normals (a
     * cached spare variate): another generator set to that state must
     * continue bit-identically. */
    for (int pre = 0; pre < 12; pre++)
        for (int normals = 0; normals < 4; normals++) {
            dng_rng *a = dng_rng_create(99), *b = dng_rng_create(12345);
            uint64_t st[4], st2[4];
            float tmp[16], ra[20], rb[20];
            ck_assert_int_eq(dng_rng_uniform(a, tmp, pre, 0.0f, 1.0f),
                             DNG_OK);
            ck_assert_int_eq(dng_rng_normal(a, tmp, normals, 0.0f, 1.0f),
                             DNG_OK);
            ck_assert_int_eq(dng_rng_get_state(a, st), DNG_OK);
            draw(a, ra);
            ck_assert_int_eq(dng_rng_set_state(b, st), DNG_OK);
            ck_assert_int_eq(dng_rng_get_state(b, st2), DNG_OK);
            ck_assert(memcmp(st, st2, sizeof st) == 0);
            draw(b, rb);
            ck_assert_msg(same_floats(ra, rb, 20), "resume after %d "
                          "uniforms and %d normals differs", pre, normals);
            /* and the same generator rewinds */
            ck_assert_int_eq(dng_rng_set_state(a, st), DNG_OK);
            draw(a, rb);
            ck_assert(same_floats(ra, rb, 20));
            dng_rng_destroy(a);
            dng_rng_destroy(b);
        }
}
END_TEST

START_TEST(test_rng_state_garbage)
{
    static const uint64_t bad[][4] = {
        {0, 0, 5, 0},                   /* more than 4 words used */
        {0, 0, 255, 0},
        {0, 0, 4 | (1u << 9), 0},       /* unknown flag bits */
        {0, 0, 4, UINT64_C(1) << 32},   /* spare wider than a float */
        {0, 0, 2, 0},                   /* mid-block before any block */
        {1, 0, 0, 0},
    };
    dng_rng *a = dng_rng_create(5), *ref = dng_rng_create(5);
    uint64_t st[4];
    float x[20], y[20];
    draw(a, x);
    draw(ref, y);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_ERR(dng_rng_set_state(a, bad[i]), DNG_ERR_INVALID_ARGUMENT,
                   "dng_rng_set_state", "state");
    /* A rejected state left the generator as it was. */
    draw(a, x);
    draw(ref, y);
    ck_assert(same_floats(x, y, 20));
    EXPECT_ERR(dng_rng_set_state(NULL, bad[0]), DNG_ERR_INVALID_ARGUMENT,
               "dng_rng_set_state", "rng is NULL");
    EXPECT_ERR(dng_rng_set_state(a, NULL), DNG_ERR_INVALID_ARGUMENT,
               "dng_rng_set_state", "state is NULL");
    EXPECT_ERR(dng_rng_get_state(NULL, st), DNG_ERR_INVALID_ARGUMENT,
               "dng_rng_get_state", "rng is NULL");
    EXPECT_ERR(dng_rng_get_state(a, NULL), DNG_ERR_INVALID_ARGUMENT,
               "dng_rng_get_state", "state is NULL");
    dng_rng_destroy(a);
    dng_rng_destroy(ref);
}
END_TEST

START_TEST(test_rng_bad_args)
{
    dng_rng *rng = dng_rng_create(1);
    float x[4];
    EXPECT_ERR(dng_rng_uniform(NULL, x, 4, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_uniform", "rng is NULL");
    EXPECT_ERR(dng_rng_uniform(rng, NULL, 4, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_uniform", "out is NULL");
    EXPECT_ERR(dng_rng_uniform(rng, x, -1, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_uniform", "n = -1");
    EXPECT_ERR(dng_rng_uniform(rng, x, 4, 1.0f, 0.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_uniform", "lo = 1");
    EXPECT_ERR(dng_rng_uniform(rng, x, 4, NAN, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_uniform", "lo = nan");
    EXPECT_ERR(dng_rng_uniform(rng, x, 4, 0.0f, INFINITY),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_uniform", "hi = inf");
    EXPECT_ERR(dng_rng_normal(NULL, x, 4, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_normal", "rng is NULL");
    EXPECT_ERR(dng_rng_normal(rng, NULL, 4, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_normal", "out is NULL");
    EXPECT_ERR(dng_rng_normal(rng, x, -5, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_normal", "n = -5");
    EXPECT_ERR(dng_rng_normal(rng, x, 4, 0.0f, -1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_normal", "std = -1");
    EXPECT_ERR(dng_rng_normal(rng, x, 4, NAN, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_normal", "mean = nan");
    EXPECT_ERR(dng_rng_normal(rng, x, 4, 0.0f, INFINITY),
               DNG_ERR_INVALID_ARGUMENT, "dng_rng_normal", "std = inf");
    /* n = 0 needs no buffer */
    ck_assert_int_eq(dng_rng_uniform(rng, NULL, 0, 0.0f, 1.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_normal(rng, NULL, 0, 0.0f, 1.0f), DNG_OK);
    dng_rng_destroy(rng);
}
END_TEST

/* ---- tensors ----------------------------------------------------------- */

START_TEST(test_tensor_basics)
{
    const int64_t shape[3] = {2, 3, 4};
    int64_t got[DNG_MAX_DIMS];
    float src[24], orig[24], out[30];
    dng_tensor *t = dng_tensor_create(3, shape), *u;
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(dng_tensor_ndim(t), 3);
    ck_assert_int_eq(dng_tensor_numel(t), 24);
    ck_assert_int_eq(dng_tensor_dim(t, 0), 2);
    ck_assert_int_eq(dng_tensor_dim(t, 2), 4);
    ck_assert_int_eq(dng_tensor_dim(t, -1), 4);
    ck_assert_int_eq(dng_tensor_dim(t, -3), 2);
    ck_assert_int_eq(dng_tensor_shape(t, got), DNG_OK);
    ck_assert(got[0] == 2 && got[1] == 3 && got[2] == 4);
    for (int i = 0; i < 24; i++) /* zeros */
        ck_assert(dng_tensor_data(t)[i] == 0.0f);

    /* from_data copies: changing the source later changes nothing */
    dng_test_fill(src, 24, 1, -1.0f, 1.0f);
    memcpy(orig, src, sizeof src);
    u = dng_tensor_from_data(3, shape, src);
    ck_assert_ptr_nonnull(u);
    ck_assert_ptr_ne(dng_tensor_data(u), src);
    ck_assert(same_floats(dng_tensor_data(u), src, 24));
    src[5] = 100.0f;
    ck_assert(dng_tensor_data(u)[5] != 100.0f);

    /* copy_out with room to spare; copy_in exactly numel */
    for (int i = 0; i < 30; i++)
        out[i] = -7.0f;
    ck_assert_int_eq(dng_tensor_copy_out(u, out, 30), DNG_OK);
    ck_assert(same_floats(out, dng_tensor_data(u), 24));
    ck_assert(out[24] == -7.0f && out[29] == -7.0f);
    ck_assert_int_eq(dng_tensor_copy_in(t, src, 24), DNG_OK);
    ck_assert(same_floats(dng_tensor_data(t), src, 24));
    ck_assert(dng_tensor_data(t)[5] == 100.0f);

    /* fill */
    ck_assert_int_eq(dng_tensor_fill(t, 2.5f), DNG_OK);
    for (int i = 0; i < 24; i++)
        ck_assert(dng_tensor_data(t)[i] == 2.5f);

    /* reshape keeps the data, changes the shape */
    {
        const int64_t flat[1] = {24}, four[4] = {1, 2, 12, 1};
        ck_assert_int_eq(dng_tensor_reshape(u, 1, flat), DNG_OK);
        ck_assert_int_eq(dng_tensor_ndim(u), 1);
        ck_assert_int_eq(dng_tensor_dim(u, 0), 24);
        ck_assert_int_eq(dng_tensor_reshape(u, 4, four), DNG_OK);
        ck_assert_int_eq(dng_tensor_dim(u, -2), 12);
        ck_assert_int_eq(dng_tensor_numel(u), 24);
        ck_assert(same_floats(dng_tensor_data(u), orig, 24));
    }
    dng_tensor_destroy(t);
    dng_tensor_destroy(u);
    dng_tensor_destroy(NULL);
}
END_TEST

START_TEST(test_tensor_wrap)
{
    /* Memory on the stack: freeing it would crash under valgrind/ASan. */
    float buf[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[2] = {2, 3}, bigger[2] = {3, 3}, other[2] = {3, 2};
    dng_tensor *t = dng_tensor_wrap(2, shape, buf);
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_eq(dng_tensor_data(t), buf); /* zero-copy */
    dng_tensor_data(t)[4] = 50.0f;
    ck_assert(buf[4] == 50.0f);
    buf[0] = -1.0f;
    ck_assert(dng_tensor_data(t)[0] == -1.0f);
    ck_assert_int_eq(dng_tensor_fill(t, 9.0f), DNG_OK);
    ck_assert(buf[5] == 9.0f);
    ck_assert_int_eq(dng_tensor_reshape(t, 2, other), DNG_OK);
    ck_assert_ptr_eq(dng_tensor_data(t), buf);
    EXPECT_ERR(dng_tensor_reshape(t, 2, bigger), DNG_ERR_SHAPE,
               "dng_tensor_reshape", "[3, 3]");
    dng_tensor_destroy(t);
    ck_assert(buf[5] == 9.0f); /* still ours */
}
END_TEST

START_TEST(test_tensor_fill_random)
{
    const int64_t shape[2] = {10, 100};
    dng_tensor *t = dng_tensor_create(2, shape);
    dng_rng *r1 = dng_rng_create(3), *r2 = dng_rng_create(3);
    float ref[1000];
    /* Same numbers as the generator gives directly. */
    ck_assert_int_eq(dng_tensor_fill_uniform(t, r1, -2.0f, 2.0f), DNG_OK);
    ck_assert_int_eq(dng_rng_uniform(r2, ref, 1000, -2.0f, 2.0f), DNG_OK);
    ck_assert(same_floats(dng_tensor_data(t), ref, 1000));
    ck_assert_int_eq(dng_tensor_fill_normal(t, r1, 0.5f, 0.1f), DNG_OK);
    ck_assert_int_eq(dng_rng_normal(r2, ref, 1000, 0.5f, 0.1f), DNG_OK);
    ck_assert(same_floats(dng_tensor_data(t), ref, 1000));
    EXPECT_ERR(dng_tensor_fill_uniform(t, r1, 2.0f, -2.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_tensor_fill_uniform", "lo");
    EXPECT_ERR(dng_tensor_fill_normal(t, r1, 0.0f, -3.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_tensor_fill_normal", "std");
    /* a rejected fill leaves the data alone */
    ck_assert(same_floats(dng_tensor_data(t), ref, 1000));
    dng_tensor_destroy(t);
    dng_rng_destroy(r1);
    dng_rng_destroy(r2);
}
END_TEST

START_TEST(test_tensor_bad_shapes)
{
    const int64_t ok[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int64_t zero[2] = {3, 0}, neg[3] = {2, 2, -4};
    const int64_t ovf64[2] = {INT64_MAX, 2};
    const int64_t ovf64b[2] = {INT64_C(1) << 40, INT64_C(1) << 30};
    const int64_t ovfsize[2] = {INT64_C(1) << 31, INT64_C(1) << 31};
    const int64_t huge[1] = {INT64_C(1) << 60};
    float data[4] = {0};
    dng_tensor *t;

    EXPECT_NULL(dng_tensor_create(0, ok), "dng_tensor_create", "ndim = 0");
    EXPECT_NULL(dng_tensor_create(9, ok), "dng_tensor_create", "ndim = 9");
    EXPECT_NULL(dng_tensor_create(-1, ok), "dng_tensor_create", "ndim");
    EXPECT_NULL(dng_tensor_create(2, NULL), "dng_tensor_create",
                "shape is NULL");
    EXPECT_NULL(dng_tensor_create(2, zero), "dng_tensor_create",
                "shape[1] = 0");
    EXPECT_NULL(dng_tensor_create(3, neg), "dng_tensor_create",
                "shape[2] = -4");
    EXPECT_NULL(dng_tensor_create(2, ovf64), "dng_tensor_create", "shape");
    EXPECT_NULL(dng_tensor_create(2, ovf64b), "dng_tensor_create", "shape");
    /* 2^62 elements fit int64_t, but not size_t once counted in bytes */
    EXPECT_NULL(dng_tensor_create(2, ovfsize), "dng_tensor_create",
                "shape");
    /* 2^62 bytes passes the arithmetic checks and fails to allocate */
    EXPECT_NULL(dng_tensor_create(1, huge), "dng_tensor_create", "");
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "allocate"));
    t = dng_tensor_create(8, ok);
    ck_assert_ptr_nonnull(t); /* 8 dimensions is the limit, allowed */
    ck_assert_int_eq(dng_tensor_numel(t), 1);
    dng_tensor_destroy(t);

    EXPECT_NULL(dng_tensor_from_data(2, zero, data), "dng_tensor_from_data",
                "shape[1] = 0");
    EXPECT_NULL(dng_tensor_from_data(9, ok, data), "dng_tensor_from_data",
                "ndim = 9");
    EXPECT_NULL(dng_tensor_from_data(2, ovf64, data),
                "dng_tensor_from_data", "shape");
    EXPECT_NULL(dng_tensor_from_data(1, ok, NULL), "dng_tensor_from_data",
                "data is NULL");
    EXPECT_NULL(dng_tensor_wrap(0, ok, data), "dng_tensor_wrap", "ndim = 0");
    EXPECT_NULL(dng_tensor_wrap(3, neg, data), "dng_tensor_wrap",
                "shape[2] = -4");
    EXPECT_NULL(dng_tensor_wrap(2, ovfsize, data), "dng_tensor_wrap",
                "shape");
    EXPECT_NULL(dng_tensor_wrap(1, ok, NULL), "dng_tensor_wrap",
                "data is NULL");
    EXPECT_NULL(dng_tensor_wrap(1, NULL, data), "dng_tensor_wrap",
                "shape is NULL");
}
END_TEST

START_TEST(test_tensor_null_and_ranges)
{
    const int64_t shape[2] = {2, 3}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int64_t wrong[2] = {4, 2}, zero[1] = {0};
    int64_t out[DNG_MAX_DIMS];
    float buf[6];
    dng_tensor *t = dng_tensor_create(2, shape);
    dng_rng *rng = dng_rng_create(0);

    dng_clear_error();
    ck_assert_int_eq(dng_tensor_ndim(NULL), -1);
    expect_msg("ndim", "dng_tensor_ndim", "t is NULL");
    ck_assert_int_eq(dng_tensor_numel(NULL), -1);
    expect_msg("numel", "dng_tensor_numel", "t is NULL");
    ck_assert_int_eq(dng_tensor_dim(NULL, 0), -1);
    expect_msg("dim", "dng_tensor_dim", "t is NULL");
    ck_assert_ptr_null(dng_tensor_data(NULL));
    expect_msg("data", "dng_tensor_data", "t is NULL");
    dng_clear_error();
    ck_assert_int_eq(dng_tensor_dim(t, 2), -1);
    expect_msg("dim 2", "dng_tensor_dim", "axis 2");
    ck_assert_int_eq(dng_tensor_dim(t, -3), -1);
    expect_msg("dim -3", "dng_tensor_dim", "axis -3");
    ck_assert_int_eq(dng_tensor_dim(t, INT_MIN), -1);
    ck_assert_int_eq(dng_tensor_dim(t, INT_MAX), -1);

    EXPECT_ERR(dng_tensor_shape(NULL, out), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_shape", "t is NULL");
    EXPECT_ERR(dng_tensor_shape(t, NULL), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_shape", "out is NULL");
    EXPECT_ERR(dng_tensor_copy_out(NULL, buf, 6), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_out", "t is NULL");
    EXPECT_ERR(dng_tensor_copy_out(t, NULL, 6), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_out", "dst is NULL");
    EXPECT_ERR(dng_tensor_copy_out(t, buf, 5), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_out", "n = 5");
    EXPECT_ERR(dng_tensor_copy_out(t, buf, -1), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_out", "n = -1");
    EXPECT_ERR(dng_tensor_copy_in(NULL, buf, 6), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_in", "t is NULL");
    EXPECT_ERR(dng_tensor_copy_in(t, NULL, 6), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_in", "src is NULL");
    EXPECT_ERR(dng_tensor_copy_in(t, buf, 7), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_in", "n = 7");
    EXPECT_ERR(dng_tensor_copy_in(t, buf, 5), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_copy_in", "n = 5");
    EXPECT_ERR(dng_tensor_fill(NULL, 1.0f), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_fill", "t is NULL");
    EXPECT_ERR(dng_tensor_fill_uniform(NULL, rng, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_tensor_fill_uniform",
               "t is NULL");
    EXPECT_ERR(dng_tensor_fill_uniform(t, NULL, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_tensor_fill_uniform",
               "rng is NULL");
    EXPECT_ERR(dng_tensor_fill_normal(NULL, rng, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_tensor_fill_normal",
               "t is NULL");
    EXPECT_ERR(dng_tensor_fill_normal(t, NULL, 0.0f, 1.0f),
               DNG_ERR_INVALID_ARGUMENT, "dng_tensor_fill_normal",
               "rng is NULL");
    EXPECT_ERR(dng_tensor_reshape(NULL, 2, shape), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_reshape", "t is NULL");
    EXPECT_ERR(dng_tensor_reshape(t, 2, NULL), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_reshape", "shape is NULL");
    EXPECT_ERR(dng_tensor_reshape(t, 9, nine), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_reshape", "ndim = 9");
    EXPECT_ERR(dng_tensor_reshape(t, 0, nine), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_reshape", "ndim = 0");
    EXPECT_ERR(dng_tensor_reshape(t, 1, zero), DNG_ERR_INVALID_ARGUMENT,
               "dng_tensor_reshape", "shape[0] = 0");
    EXPECT_ERR(dng_tensor_reshape(t, 2, wrong), DNG_ERR_SHAPE,
               "dng_tensor_reshape", "[2, 3]");
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "[4, 2]"));
    /* failed reshapes left the shape alone */
    ck_assert_int_eq(dng_tensor_ndim(t), 2);
    ck_assert_int_eq(dng_tensor_dim(t, 1), 3);
    dng_tensor_destroy(t);
    dng_rng_destroy(rng);
}
END_TEST

/* ---- enums and ownership ----------------------------------------------- */

START_TEST(test_unknown_enums)
{
    const int64_t in[1] = {4}, sh[2] = {2, 3};
    dng_net *net = dng_net_create(1, in);
    dng_rng *rng = dng_rng_create(1);
    dng_tensor *p = dng_tensor_create(2, sh), *q = dng_tensor_create(2, sh);
    float v = -1.0f;
    EXPECT_NULL(dng_activation((dng_act)99, 0.0f), "dng_activation",
                "kind 99");
    EXPECT_NULL(dng_activation((dng_act)-1, 0.0f), "dng_activation",
                "kind -1");
    EXPECT_NULL(dng_activation(DNG_ACT_LEAKY_RELU, NAN), "dng_activation",
                "param");
    ck_assert_int_eq(dng_net_add(net, dng_dense(4, 2)), DNG_OK);
    EXPECT_ERR(dng_net_init(net, (dng_init)42, rng),
               DNG_ERR_INVALID_ARGUMENT, "dng_net_init", "scheme 42");
    EXPECT_ERR(dng_net_init(net, (dng_init)-3, rng),
               DNG_ERR_INVALID_ARGUMENT, "dng_net_init", "scheme -3");
    EXPECT_ERR(dng_net_init(NULL, DNG_INIT_HE_NORMAL, rng),
               DNG_ERR_INVALID_ARGUMENT, "dng_net_init", "net is NULL");
    EXPECT_ERR(dng_net_init(net, DNG_INIT_HE_NORMAL, NULL),
               DNG_ERR_INVALID_ARGUMENT, "dng_net_init", "rng is NULL");
    EXPECT_ERR(dng_loss((dng_loss_kind)42, p, q, &v, NULL),
               DNG_ERR_INVALID_ARGUMENT, "dng_loss", "kind 42");
    ck_assert(v == -1.0f); /* untouched */
    EXPECT_ERR(dng_loss((dng_loss_kind)-1, p, q, &v, NULL),
               DNG_ERR_INVALID_ARGUMENT, "dng_loss", "kind -1");
    /* every valid scheme works */
    for (int s = DNG_INIT_DEFAULT; s <= DNG_INIT_NORMAL_002; s++)
        ck_assert_int_eq(dng_net_init(net, (dng_init)s, rng), DNG_OK);
    dng_net_destroy(net);
    dng_rng_destroy(rng);
    dng_tensor_destroy(p);
    dng_tensor_destroy(q);
}
END_TEST

START_TEST(test_owned_layer_not_freed)
{
    const int64_t in[1] = {3}, xs[2] = {2, 3};
    const float xv[6] = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f, -1.0f};
    dng_net *net = dng_net_create(1, in);
    dng_layer *dense = dng_dense(3, 2);
    dng_tensor *x = dng_tensor_from_data(2, xs, xv), *y = NULL;
    const float *w, *b;
    ck_assert_int_eq(dng_net_add(net, dense), DNG_OK);
    /* The network owns it now: destroying it must be refused (an error
     * message, nothing freed), and adding it again too. */
    dng_clear_error();
    dng_layer_destroy(dense);
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "dng_layer_destroy"));
    ck_assert_ptr_nonnull(strstr(dng_last_error(), "network"));
    EXPECT_ERR(dng_net_add(net, dense), DNG_ERR_STATE, "dng_net_add",
               "already belongs");
    ck_assert_int_eq(dng_net_num_layers(net), 1);
    /* ... and the layer still works: y = x W^T + b by hand */
    ck_assert_int_eq(dng_net_forward(net, x, &y), DNG_OK);
    w = dng_tensor_data(dng_net_param(net, 0));
    b = dng_tensor_data(dng_net_param(net, 1));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double want = b[j];
            for (int k = 0; k < 3; k++)
                want += (double)xv[i * 3 + k] * w[j * 3 + k];
            ck_assert(fabs(dng_tensor_data(y)[i * 2 + j] - want) < 1e-5);
        }
    dng_net_destroy(net); /* frees the layer once */
    dng_tensor_destroy(x);
    dng_layer_destroy(NULL);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_last_error_per_thread);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("rng");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rng_same_seed);
    tcase_add_test(tc, test_rng_moments);
    tcase_add_test(tc, test_rng_state_resume);
    tcase_add_test(tc, test_rng_state_garbage);
    tcase_add_test(tc, test_rng_bad_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("tensor");
    tcase_add_test(tc, test_tensor_basics);
    tcase_add_test(tc, test_tensor_wrap);
    tcase_add_test(tc, test_tensor_fill_random);
    tcase_add_test(tc, test_tensor_bad_shapes);
    tcase_add_test(tc, test_tensor_null_and_ranges);
    suite_add_tcase(s, tc);

    tc = tcase_create("enums");
    tcase_add_test(tc, test_unknown_enums);
    tcase_add_test(tc, test_owned_layer_not_freed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return dng_test_run(tensor_suite());
}
