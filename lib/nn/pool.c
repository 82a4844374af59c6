/* nn/pool.c: being written. */
