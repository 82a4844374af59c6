/* io/idx.c: being written. */
