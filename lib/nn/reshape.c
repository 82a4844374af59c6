/* nn/reshape.c: being written. */
