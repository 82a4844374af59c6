/* train/gan.c: being written. */
