/* nn/spectral_norm.c: being written. */
