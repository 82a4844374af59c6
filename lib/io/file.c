/* io/file.c: being written. */
