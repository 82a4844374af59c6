/* io/modelfile.c: being written. */
