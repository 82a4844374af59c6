/* optim-impl.h: the optimizer's internals shared with the trainers, chiefly
 * the serialised state that GAN checkpoints carry (never installed). */
#ifndef DNG_OPTIM_IMPL_H
#define DNG_OPTIM_IMPL_H

#include "io-impl.h"

/* Append the complete optimizer state to w: kind, hyper-parameters, base
 * learning rate, schedule (kind, period, gamma, min_lr, position), clip
 * norm, step count, whether it is bound to a network and then the layout
 * and contents of every moment buffer, closed by a CRC-32 of the section.
 * Returns DNG_ERR_INVALID_ARGUMENT on NULL arguments and
 * DNG_ERR_OUT_OF_MEMORY when w could not grow (w->failed). */
dng_status dng__optim_write_state(dng__wbuf *w, const dng_optim *opt);

/* Read a section written by dng__optim_write_state() from r.
 * With apply = false the section is only checked, completely (CRC, values,
 * layout against net), and nothing changes but r's position; with
 * apply = true it is checked the same way and then restored into opt,
 * whose state then belongs to net (or to no network when it was saved
 * before its first step). On any failure opt is left as it was.
 * net may be NULL only when the saved state is not bound.
 * Errors: DNG_ERR_FORMAT (truncated or corrupt section, or one saved by
 * another kind of optimizer), DNG_ERR_SHAPE (net's parameters differ from
 * the saved layout), DNG_ERR_INVALID_ARGUMENT, DNG_ERR_OUT_OF_MEMORY. */
dng_status dng__optim_read_state(dng__rbuf *r, dng_optim *opt, dng_net *net,
                                 bool apply);

/* Updates made so far, or -1 when opt is NULL. */
int64_t dng__optim_steps(const dng_optim *opt);

/* The network whose state the optimizer holds, or NULL before its first
 * step (a trainer uses it to refuse sharing one optimizer between two
 * networks up front). */
const dng_net *dng__optim_owner(const dng_optim *opt);

#endif
