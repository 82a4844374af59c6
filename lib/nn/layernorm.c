/* nn/layernorm.c: being written. */
