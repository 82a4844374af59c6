/* train/frechet.c: being written. */
