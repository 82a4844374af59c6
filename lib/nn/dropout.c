/* nn/dropout.c: being written. */
