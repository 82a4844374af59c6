/* nn/conv2d.c: being written. */
