/* gan-impl.h: internals of the GAN trainer exposed to the tests. */
#ifndef DNG_GAN_IMPL_H
#define DNG_GAN_IMPL_H

#include "net-impl.h"

/* Compute the generator's loss on latent batch z and accumulate its
 * gradients into the generator (after zeroing them), without stepping:
 * the generator update minus the optimizer step. The discriminator's
 * weights, gradients-to-be and running statistics are left untouched. */
dng_status dng__gan_generator_grads(dng_gan *gan, const dng_tensor *z,
                                    float *loss);

#endif
