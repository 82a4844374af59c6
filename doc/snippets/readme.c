/* readme.c: a complete small program. A network learns XOR with dng_fit.
 * Build: cc readme.c $(pkg-config --cflags --libs dnngen) */
#include <stdio.h>

#include <dnngen.h>

int main(void)
{
    const float xs[] = {0, 0, 0, 1, 1, 0, 1, 1}, ys[] = {0, 1, 1, 0};
    const int64_t x_shape[] = {4, 2}, y_shape[] = {4, 1}, sample[] = {2};
    dng_tensor *x = dng_tensor_from_data(2, x_shape, xs);
    dng_tensor *y = dng_tensor_from_data(2, y_shape, ys);
    dng_dataset *data = dng_dataset_from_tensors(x, y); /* copies x, y */
    dng_net *net = dng_net_create(1, sample);
    dng_optim *opt = dng_adam(0.05f, 0.9f, 0.999f, 1e-8f, 0.0f);
    dng_fit_options fo;
    dng_status s = DNG_OK;
    float loss, accuracy;

    if (!x || !y || !data || !net || !opt)
        s = DNG_ERR_OUT_OF_MEMORY; /* the reason is in dng_last_error() */
    if (s == DNG_OK) /* small networks run fastest on one thread */
        s = dng_set_num_threads(1);
    if (s == DNG_OK) /* the network takes the layers, even on failure */
        s = dng_net_add(net, dng_dense(2, 8));
    if (s == DNG_OK)
        s = dng_net_add(net, dng_activation(DNG_ACT_TANH, 0));
    if (s == DNG_OK)
        s = dng_net_add(net, dng_dense(8, 1));
    dng_fit_options_default(&fo);
    fo.epochs = 300;
    fo.batch_size = 4;
    if (s == DNG_OK)
        s = dng_fit(net, opt, DNG_LOSS_BCE_WITH_LOGITS, data, NULL, &fo,
                    NULL, NULL);
    if (s == DNG_OK)
        s = dng_evaluate(net, DNG_LOSS_BCE_WITH_LOGITS, data, 4, &loss,
                         &accuracy);
    if (s == DNG_OK)
        printf("loss %.4f  accuracy %.2f\n", loss, accuracy);
    else
        fprintf(stderr, "failed: %s\n", dng_last_error());

    /* Destroy functions accept NULL. */
    dng_optim_destroy(opt);
    dng_net_destroy(net);
    dng_dataset_destroy(data);
    dng_tensor_destroy(y);
    dng_tensor_destroy(x);
    return s == DNG_OK ? 0 : 1;
}
