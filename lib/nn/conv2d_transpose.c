/* nn/conv2d_transpose.c: being written. */
