/* io/npy.c: being written. */
