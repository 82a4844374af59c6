/* nn/loss.c: being written. */
