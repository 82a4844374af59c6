/* optim/optim.c: being written. */
