"""Optimizers, learning-rate schedules and gradient clipping against
torch.optim: five steps on a small nn.Linear with the same fixed gradients
on both sides (torch's .grad set directly, the library's through
dng_net_grad), parameters compared after every step."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import dngtest as D
from dngtest import assert_close

STEPS = 5


def np32(t):
    return t.detach().numpy().astype(np.float32)


def linear_pair(seed):
    torch.manual_seed(seed)
    tmod = nn.Sequential(nn.Linear(6, 4))
    net = D.Net([6], [D.dense(6, 4)])
    net.load_torch(tmod)
    return tmod, net


def fixed_grads(tmod, seed, steps=STEPS, scales=None):
    """A different, reproducible gradient for every step and parameter."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(steps):
        k = 1.0 if scales is None else scales[s]
        out.append({n: torch.randn(p.shape, generator=g) * k
                    for n, p in tmod.named_parameters()})
    return out


def set_grads(tmod, net, grads):
    for n, p in tmod.named_parameters():
        p.grad = grads[n].clone()
        net.set_grad(n, np32(grads[n]))


def compare_params(tmod, net, what):
    for n, p in tmod.named_parameters():
        assert_close(net.param(n), np32(p), what="%s: %s" % (what, n))


def run_steps(tmod, net, topt, dopt, grads, what, clip=None, sched=None):
    for s, g in enumerate(grads):
        set_grads(tmod, net, g)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(tmod.parameters(), clip)
        topt.step()
        dopt.step(net)
        compare_params(tmod, net, "%s step %d" % (what, s + 1))
        if clip is None:  # the step neither zeroes nor changes gradients
            for n in g:
                np.testing.assert_array_equal(net.grad(n), np32(g[n]))
        if sched is not None:
            sched.step()
            dopt.schedule_step()


SGD_CASES = {
    "plain": dict(momentum=0.0, nesterov=False, weight_decay=0.0),
    "momentum": dict(momentum=0.9, nesterov=False, weight_decay=0.0),
    "nesterov": dict(momentum=0.9, nesterov=True, weight_decay=0.0),
    "weight_decay": dict(momentum=0.0, nesterov=False, weight_decay=0.05),
    "momentum_wd": dict(momentum=0.8, nesterov=False, weight_decay=0.05),
    "nesterov_wd": dict(momentum=0.7, nesterov=True, weight_decay=0.05),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd(case):
    kw = SGD_CASES[case]
    tmod, net = linear_pair(1)
    topt = torch.optim.SGD(tmod.parameters(), lr=0.1, **kw)
    dopt = D.Optim.sgd(0.1, **kw)
    run_steps(tmod, net, topt, dopt, fixed_grads(tmod, 2), "sgd " + case)


ADAM_CASES = {
    "default": dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    "gan_betas": dict(betas=(0.5, 0.999), eps=1e-8, weight_decay=0.0),
    "l2": dict(betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1),
    "big_eps": dict(betas=(0.0, 0.9), eps=0.1, weight_decay=0.0),
}


@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam(case):
    kw = ADAM_CASES[case]
    tmod, net = linear_pair(3)
    topt = torch.optim.Adam(tmod.parameters(), lr=0.01, **kw)
    dopt = D.Optim.adam(0.01, kw["betas"][0], kw["betas"][1], kw["eps"],
                        kw["weight_decay"])
    run_steps(tmod, net, topt, dopt, fixed_grads(tmod, 4), "adam " + case)


@pytest.mark.parametrize("wd", [0.01, 0.5])
def test_adamw(wd):
    tmod, net = linear_pair(5)
    topt = torch.optim.AdamW(tmod.parameters(), lr=0.02, betas=(0.9, 0.999),
                             eps=1e-8, weight_decay=wd)
    dopt = D.Optim.adamw(0.02, 0.9, 0.999, 1e-8, wd)
    run_steps(tmod, net, topt, dopt, fixed_grads(tmod, 6), "adamw")


RMSPROP_CASES = {
    "plain": dict(alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0),
    "momentum": dict(alpha=0.9, eps=1e-8, momentum=0.9, weight_decay=0.0),
    "wd": dict(alpha=0.95, eps=1e-4, momentum=0.0, weight_decay=0.05),
    "momentum_wd": dict(alpha=0.9, eps=1e-3, momentum=0.5,
                        weight_decay=0.05),
}


@pytest.mark.parametrize("case", list(RMSPROP_CASES))
def test_rmsprop(case):
    kw = RMSPROP_CASES[case]
    tmod, net = linear_pair(7)
    topt = torch.optim.RMSprop(tmod.parameters(), lr=0.01, **kw)
    dopt = D.Optim.rmsprop(0.01, kw["alpha"], kw["eps"], kw["momentum"],
                           kw["weight_decay"])
    run_steps(tmod, net, topt, dopt, fixed_grads(tmod, 8), "rmsprop " + case)


# ---- schedules -------------------------------------------------------------

# Our kinds and their PyTorch counterparts. The warm-up maps exactly to
# LinearLR(start_factor = 1 / (P + 1), end_factor = 1, total_iters = P):
# torch's factor is (1 + min(t, P)) / (P + 1), which is our
# min(1, (t + 1) / (P + 1)).
BASE_LR = 0.1


def torch_schedule(name, opt, period, gamma, min_lr):
    S = torch.optim.lr_scheduler
    if name == "step":
        return S.StepLR(opt, step_size=period, gamma=gamma)
    if name == "exponential":
        return S.ExponentialLR(opt, gamma=gamma)
    if name == "cosine":
        return S.CosineAnnealingLR(opt, T_max=period, eta_min=min_lr)
    return S.LinearLR(opt, start_factor=1.0 / (period + 1), end_factor=1.0,
                      total_iters=period)


SCHEDULES = {
    # name: (kind, period, gamma, min_lr, units to follow)
    "step": (D.SCHED_STEP, 3, 0.5, 0.0, 10),
    "exponential": (D.SCHED_EXPONENTIAL, 1, 0.8, 0.0, 10),
    # The header defines the cosine for t <= T_max; past it, torch's
    # CosineAnnealingLR climbs back up (period 2 T_max), and so does the
    # closed form. Followed over 2.5 periods.
    "cosine": (D.SCHED_COSINE, 6, 1.0, 0.001, 15),
    "cosine_no_floor": (D.SCHED_COSINE, 4, 1.0, 0.0, 4),
    "warmup_linear": (D.SCHED_WARMUP_LINEAR, 4, 1.0, 0.0, 8),
}


def closed_form(kind, t, period, gamma, min_lr):
    """The header's definitions, as a third opinion."""
    if kind == D.SCHED_STEP:
        return BASE_LR * gamma ** (t // period)
    if kind == D.SCHED_EXPONENTIAL:
        return BASE_LR * gamma ** t
    if kind == D.SCHED_COSINE:
        return min_lr + (BASE_LR - min_lr) * (
            1 + math.cos(math.pi * t / period)) / 2
    return BASE_LR * min(1.0, (t + 1) / (period + 1))


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule(name):
    kind, period, gamma, min_lr, units = SCHEDULES[name]
    tmod, net = linear_pair(9)
    topt = torch.optim.SGD(tmod.parameters(), lr=BASE_LR, momentum=0.5)
    sched = torch_schedule(name.replace("_no_floor", ""), topt, period, gamma,
                           min_lr)
    dopt = D.Optim.sgd(BASE_LR, momentum=0.5)
    dopt.set_schedule(kind, period, gamma, min_lr)
    grads = fixed_grads(tmod, 10, steps=units + 1)
    for t, g in enumerate(grads):
        ref = topt.param_groups[0]["lr"]
        # The cosine's floor: torch's chained form reaches 0 up to
        # rounding (~1e-18), so the absolute tolerance is 1e-9 of lr.
        np.testing.assert_allclose(dopt.lr(), ref, rtol=1e-5,
                                   atol=1e-8 * BASE_LR,
                                   err_msg="%s lr at t=%d" % (name, t))
        np.testing.assert_allclose(
            dopt.lr(), closed_form(kind, t, period, gamma, min_lr),
            rtol=1e-5, atol=1e-8 * BASE_LR,
            err_msg="%s lr at t=%d vs closed form" % (name, t))
        # The scheduled rate is the one the step uses.
        set_grads(tmod, net, g)
        topt.step()
        dopt.step(net)
        compare_params(tmod, net, "%s t=%d" % (name, t))
        if t < units:
            sched.step()
            dopt.schedule_step()


def test_set_lr_rescales_schedule():
    """set_lr changes the base rate the schedule scales."""
    dopt = D.Optim.sgd(0.1)
    dopt.set_schedule(D.SCHED_EXPONENTIAL, 1, 0.5, 0.0)
    dopt.schedule_step()
    assert_close(dopt.lr(), 0.05, what="lr after one step")
    dopt.set_lr(0.4)
    assert_close(dopt.lr(), 0.2, what="lr after set_lr")


# ---- gradient clipping -----------------------------------------------------

@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_clip_grad_norm(opt):
    tmod, net = linear_pair(11)
    # Gradient norms from ~0.2 to ~20 around max_norm 1.5: some steps are
    # clipped, some are not (clip_grad_norm_ only ever scales down).
    scales = [0.05, 5.0, 0.1, 1.0, 4.0]
    grads = fixed_grads(tmod, 12, scales=scales)
    norms = [math.sqrt(sum(float((v ** 2).sum()) for v in g.values()))
             for g in grads]
    assert min(norms) < 1.5 < max(norms)
    if opt == "sgd":
        topt = torch.optim.SGD(tmod.parameters(), lr=0.1, momentum=0.9)
        dopt = D.Optim.sgd(0.1, momentum=0.9)
    else:
        topt = torch.optim.Adam(tmod.parameters(), lr=0.01)
        dopt = D.Optim.adam(0.01)
    dopt.set_clip_norm(1.5)
    for s, g in enumerate(grads):
        set_grads(tmod, net, g)
        torch.nn.utils.clip_grad_norm_(tmod.parameters(), 1.5)
        topt.step()
        dopt.step(net)
        compare_params(tmod, net, "clipped %s step %d" % (opt, s + 1))
        # Clipping scales the net's gradients in place, as
        # clip_grad_norm_ does to .grad; the step itself leaves them be.
        for n, p in tmod.named_parameters():
            assert_close(net.grad(n), np32(p.grad),
                         what="clipped grad %s step %d" % (n, s + 1))


# ---- contract checks on the same setup -------------------------------------

def test_nonfinite_gradient_updates_nothing():
    tmod, net = linear_pair(13)
    dopt = D.Optim.adam(0.01)
    before = {n: net.param(n) for n in net.param_names()}
    g = fixed_grads(tmod, 14, steps=1)[0]
    g["0.bias"][1] = float("nan")
    set_grads(tmod, net, g)
    with pytest.raises(D.DngError, match="non-finite"):
        dopt.step(net)
    for n, v in before.items():
        np.testing.assert_array_equal(net.param(n), v)


def test_state_belongs_to_first_net():
    _, net1 = linear_pair(15)
    _, net2 = linear_pair(16)
    dopt = D.Optim.sgd(0.1, momentum=0.9)
    dopt.step(net1)
    with pytest.raises(D.DngError, match="out of order"):
        dopt.step(net2)
