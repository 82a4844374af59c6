/* nn/batchnorm.c: being written. */
