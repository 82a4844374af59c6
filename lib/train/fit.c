/* train/fit.c: being written. */
