/* hello-tensor.c: a first libdnngen program, using only the public API.
 *
 * It checks that the library it loaded matches the header it was built
 * with, makes a tensor, runs a small network forward and compares the
 * result with the same arithmetic done by hand, then makes a deliberate
 * mistake to show how errors come back. Exit status 0 means every step
 * gave what it should.
 *
 * Build against an installed library:
 *   cc hello-tensor.c $(pkg-config --cflags --libs dnngen) -o hello-tensor
 */
#include <math.h>
#include <stdio.h>

#include "dnngen.h"

/* Print a failure with the library's message and give up. */
static int fail(const char *what, dng_status s)
{
    fprintf(stderr, "hello-tensor: %s failed: %s: %s\n", what,
            dng_status_string(s), dng_last_error());
    return 1;
}

int main(void)
{
    const int64_t xshape[2] = {2, 3};  /* a batch of 2 samples of 3 */
    const float xv[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.0f, -0.5f};
    const int64_t sample[1] = {3};
    const int64_t bad_shape[2] = {2, 5};
    dng_tensor *x = NULL, *bad = NULL, *y = NULL;
    dng_net *net = NULL;
    dng_rng *rng = NULL;
    dng_status s;
    char summary[1024];
    int rc = 1;

    /* 1. The library at run time is the one this program was built for. */
    printf("libdnngen %s (header %s)\n", dng_version_string(),
           DNG_VERSION_STRING);
    if (dng_version() != DNG_VERSION) {
        fprintf(stderr, "hello-tensor: built for %d, loaded %d\n",
                DNG_VERSION, dng_version());
        return 1;
    }

    /* 2. A tensor holds a copy of our floats. */
    x = dng_tensor_from_data(2, xshape, xv);
    if (!x)
        return fail("dng_tensor_from_data", DNG_ERR_INVALID_ARGUMENT);
    printf("x: %d dims, [%lld, %lld], %lld elements\n", dng_tensor_ndim(x),
           (long long)dng_tensor_dim(x, 0), (long long)dng_tensor_dim(x, -1),
           (long long)dng_tensor_numel(x));

    /* 3. A network: dense 3 -> 4, tanh, dense 4 -> 1, initialised from a
     *    seeded generator so every run prints the same numbers. The
     *    network owns the layers once added. */
    net = dng_net_create(1, sample);
    rng = dng_rng_create(42);
    if (!net || !rng)
        return fail("create", DNG_ERR_OUT_OF_MEMORY);
    if ((s = dng_net_add(net, dng_dense(3, 4))) != DNG_OK ||
        (s = dng_net_add(net, dng_activation(DNG_ACT_TANH, 0.0f))) !=
            DNG_OK ||
        (s = dng_net_add(net, dng_dense(4, 1))) != DNG_OK) {
        rc = fail("dng_net_add", s);
        goto out;
    }
    if ((s = dng_net_init(net, DNG_INIT_XAVIER_UNIFORM, rng)) != DNG_OK) {
        rc = fail("dng_net_init", s);
        goto out;
    }
    if ((s = dng_net_summary(net, summary, sizeof summary)) != DNG_OK) {
        rc = fail("dng_net_summary", s);
        goto out;
    }
    fputs(summary, stdout);

    /* y is borrowed from the network: valid until its next forward. */
    if ((s = dng_net_forward(net, x, &y)) != DNG_OK) {
        rc = fail("dng_net_forward", s);
        goto out;
    }
    for (int i = 0; i < 2; i++)
        printf("y[%d] = %.6f\n", i, (double)dng_tensor_data(y)[i]);

    /* 4. The same arithmetic by hand, from the parameters in PyTorch's
     *    layout: "0.weight" [4, 3], "0.bias" [4], "2.weight" [1, 4],
     *    "2.bias" [1]. */
    {
        const float *w0 = dng_tensor_data(dng_net_param(net, 0));
        const float *b0 = dng_tensor_data(dng_net_param(net, 1));
        const float *w2 = dng_tensor_data(dng_net_param(net, 2));
        const float *b2 = dng_tensor_data(dng_net_param(net, 3));
        double worst = 0.0;
        for (int i = 0; i < 2; i++) {
            double out = b2[0];
            for (int j = 0; j < 4; j++) {
                double h = b0[j];
                for (int k = 0; k < 3; k++)
                    h += (double)w0[j * 3 + k] * xv[i * 3 + k];
                out += (double)w2[j] * tanh(h);
            }
            worst = fmax(worst, fabs(out - dng_tensor_data(y)[i]));
        }
        printf("hand computation: %s (largest difference %.1e)\n",
               worst < 1e-5 ? "match" : "MISMATCH", worst);
        if (!(worst < 1e-5))
            goto out;
    }

    /* 5. A deliberate mistake: samples of 5 features where the network
     *    takes 3. The call fails cleanly, and says why. */
    bad = dng_tensor_create(2, bad_shape);
    s = dng_net_forward(net, bad, &y);
    if (s == DNG_OK) {
        fprintf(stderr, "hello-tensor: a wrong shape was accepted\n");
        goto out;
    }
    printf("expected error: %s: %s\n", dng_status_string(s),
           dng_last_error());
    rc = s == DNG_ERR_SHAPE ? 0 : 1;
    if (rc == 0)
        printf("done\n");

out:
    dng_tensor_destroy(bad);
    dng_tensor_destroy(x);
    dng_net_destroy(net);
    dng_rng_destroy(rng);
    return rc;
}
