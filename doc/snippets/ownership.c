/* ownership.c: who frees what, borrowed and wrapped tensors, and what a
 * failing call leaves behind (doc/threading.md). */
#include <stdio.h>
#include <stdlib.h>

#include <dnngen.h>

/* Print a call's status name and this thread's message. */
static void show(const char *what, dng_status s)
{
    printf("%s: %s", what, dng_status_string(s));
    if (s != DNG_OK)
        printf(": %s", dng_last_error());
    printf("\n");
}

int main(void)
{
    const int64_t sample[1] = {4};
    dng_net *net = dng_net_create(1, sample);
    if (!net)
        return 1;
    show("add dense(4, 3)", dng_net_add(net, dng_dense(4, 3)));

    /* A layer that does not fit is destroyed by dng_net_add: no leak, and
     * the network is unchanged. */
    show("add dense(5, 2)", dng_net_add(net, dng_dense(5, 2)));
    printf("layers: %d\n", dng_net_num_layers(net));

    /* A failed constructor returns NULL; dng_net_add reports it with the
     * constructor's own message, so chaining the calls loses nothing. */
    show("add dense(3, 0)", dng_net_add(net, dng_dense(3, 0)));

    /* A layer belongs to one network; a second add is refused and the
     * layer stays with its first owner. */
    dng_net *other = dng_net_create(1, sample);
    dng_layer *relu = dng_activation(DNG_ACT_RELU, 0);
    show("add relu", dng_net_add(net, relu));
    show("add relu to another net", dng_net_add(other, relu));
    dng_net_destroy(other);

    /* Wrapped tensors read the caller's memory, which must outlive them. */
    float data[2 * 4] = {1, 2, 3, 4, -1, -2, -3, -4};
    const int64_t shape[2] = {2, 4};
    dng_tensor *x = dng_tensor_wrap(2, shape, data);
    dng_tensor *y; /* borrowed from net: valid until its next forward */
    show("backward before forward", dng_net_backward(net, x, NULL));
    show("forward", dng_net_forward(net, x, &y));
    printf("output shape: [%lld, %lld]\n", (long long)dng_tensor_dim(y, 0),
           (long long)dng_tensor_dim(y, 1));
    data[0] = 100; /* the tensor sees the change: there is no copy */
    printf("x[0] = %g\n", dng_tensor_data(x)[0]);
    dng_tensor_destroy(x); /* frees the handle, never data */

    /* Files are written to a temporary name, then renamed into place: a
     * failed save leaves no partial file behind. */
    show("save", dng_net_save(net, "no-such-dir/net.dngm"));
    FILE *f = fopen("not-a-model.dngm", "wb");
    if (f) {
        fputs("not a model", f);
        fclose(f);
    }
    dng_net *loaded = dng_net_load("not-a-model.dngm");
    printf("load: %s: %s\n", loaded ? "loaded" : "NULL", dng_last_error());
    remove("not-a-model.dngm");

    dng_net_destroy(net); /* and its layers, relu included */
    dng_net_destroy(NULL); /* destroying NULL does nothing */
    return 0;
}
