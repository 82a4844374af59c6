/* io/image.c: being written. */
